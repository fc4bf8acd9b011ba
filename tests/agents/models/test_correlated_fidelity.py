"""The helm-mmlu preset reproduces the published numbers it is fitted to (issue 24's fidelity test).

Items are the demo's label prompts (four labels: MMLU's one answer and three distractors),
answered by every model of the fitted fleet exactly as the live fleet answers them.

Sampling noise decides what a fixed number of prompts can show. Accuracy (+-0.01) and the
both-correct rate (+-0.02) over 10,000 prompts are several standard errors wide. The
both-wrong agreement is a share of only the items both models get wrong (950-1,400 of
10,000 for these pairs), so its standard error is 0.012-0.015 and, over 28 pairs, the
largest deviation at 10,000 prompts was 0.031-0.037 for each fleet seed we tried (0, 1, 2). So the
10,000-prompt test holds each pair's agreement to three of its standard errors and the mean
over pairs to +-0.02, and the +-0.02 per pair is asserted on 43,200 prompts (the whole label
prompt set, once per fleet seed 0, 1, 2), where the standard error is ~0.007.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from swarmstream.agents.models.simulated.correlated import (
    CorrelatedErrors,
    PairTarget,
    fit_profiles,
    pair_key,
    pair_stats,
    targets_of,
)
from swarmstream.agents.models.simulated.presets import load_preset
from swarmstream.agents.models.simulated.taskset import demo_tasks, solve

LABEL_PROMPTS = 14_400  # demo_tasks' label kind has ~14,000 distinct prompts; ask for all of them
FLEET_SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def preset() -> tuple[CorrelatedErrors, dict[tuple[str, str], PairTarget], dict[str, float]]:
    catalog = load_preset("helm-mmlu")
    profiles = {m: spec.simulated for m, spec in catalog.models.items() if spec.simulated is not None}
    fleet = fit_profiles(profiles)
    assert fleet is not None
    _, pairs = targets_of(profiles)
    return fleet, pairs, {m: p.accuracy for m, p in profiles.items()}


@pytest.fixture(scope="module")
def answered(preset) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """fleet seed -> (correct, answers), items x models, for every label prompt."""
    fleet = preset[0]
    tasks = demo_tasks(LABEL_PROMPTS, seed=7, kinds=("label",))
    out = {}
    for seed in FLEET_SEEDS:
        correct, answers = [], []
        for task in tasks:
            truth = solve(task.prompt)
            assert truth is not None and len(truth.wrong) == 3
            row = fleet.answers(seed, task.prompt, truth)
            correct.append([row[m].correct for m in fleet.models])
            answers.append([row[m].answer for m in fleet.models])
        out[seed] = (np.array(correct), np.array(answers, dtype=object))
    return out


def test_the_preset_states_every_pair_of_eight_models(preset):
    fleet, pairs, _ = preset
    assert len(fleet.models) == 8
    assert set(pairs) == {pair_key(a, b) for a, b in itertools.combinations(fleet.models, 2)}
    assert all(p.both_correct is not None and p.both_wrong_agreement is not None for p in pairs.values())
    # the example, as published: sonnet and gpt-4o both right on 80.5%, agreeing on 77% of shared misses
    example = pairs[pair_key("claude-3-5-sonnet-20240620", "gpt-4o-2024-08-06")]
    assert round(example.both_correct, 3) == 0.805 and round(example.both_wrong_agreement, 2) == 0.77


def test_fidelity_over_10000_prompts(preset, answered):
    fleet, pairs, accuracy = preset
    correct, answers = (a[:10_000] for a in answered[0])
    for i, model in enumerate(fleet.models):
        assert abs(correct[:, i].mean() - accuracy[model]) <= 0.01, model
    gaps = []
    for (i, a), (j, b) in itertools.combinations(enumerate(fleet.models), 2):
        target = pairs[pair_key(a, b)]
        got = pair_stats(correct, answers, i, j)
        assert abs(got.both_correct - target.both_correct) <= 0.02, (a, b, got)
        g = target.both_wrong_agreement
        standard_error = math.sqrt(g * (1 - g) / got.both_wrong)
        assert abs(got.both_wrong_agreement - g) <= 3 * standard_error, (a, b, got, standard_error)
        gaps.append(got.both_wrong_agreement - g)
    assert abs(float(np.mean(gaps))) <= 0.02


def test_both_wrong_agreement_per_pair_over_43200_prompts(preset, answered):
    fleet, pairs, accuracy = preset
    correct = np.concatenate([answered[s][0] for s in FLEET_SEEDS])
    answers = np.concatenate([answered[s][1] for s in FLEET_SEEDS])
    for i, model in enumerate(fleet.models):
        assert abs(correct[:, i].mean() - accuracy[model]) <= 0.01, model
    for (i, a), (j, b) in itertools.combinations(enumerate(fleet.models), 2):
        target = pairs[pair_key(a, b)]
        got = pair_stats(correct, answers, i, j)
        assert abs(got.both_correct - target.both_correct) <= 0.02, (a, b, got)
        assert abs(got.both_wrong_agreement - target.both_wrong_agreement) <= 0.02, (a, b, got)


def test_the_answers_are_deterministic(preset):
    fleet = preset[0]
    task = demo_tasks(1, seed=7, kinds=("label",))[0]
    truth = solve(task.prompt)
    assert fleet.answers(0, task.prompt, truth) == fleet.answers(0, task.prompt, truth)
