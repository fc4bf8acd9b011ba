"""The correlated-error model: its normal arithmetic, the fit, samples and confidence (pure),
and the simulated fleet serving it over HTTP."""

from __future__ import annotations

import itertools
import math

import aiohttp
import numpy as np
import orjson
import pytest
from swarmstream.agents.models.catalog import CorrelatedErrorsProfile
from swarmstream.agents.models.simulated import SimFleet, SimProfile, normal, solve
from swarmstream.agents.models.simulated.correlated import (
    DEFAULT_LATENT_CORRELATION,
    ModelTarget,
    PairTarget,
    fit,
    fit_profiles,
    pair_stats,
    targets_of,
)
from swarmstream.agents.models.simulated.taskset import Truth, demo_tasks

TRUTH = Truth("a", ("b", "c", "d"), "label")  # an MMLU-like item: one answer, three distractors
ITEMS = 20_000


def items(n: int = ITEMS) -> list[str]:
    return [f"item {i}" for i in range(n)]


# --- normal.py ------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.3, 0.8, 0.95])
def test_bivariate_cdf_at_the_origin_is_sheppards_formula(rho):
    assert normal.bivariate_cdf(0.0, 0.0, rho) == pytest.approx(0.25 + math.asin(rho) / (2 * math.pi), abs=1e-9)


@pytest.mark.parametrize(("p_a", "p_b", "rho"), [(0.87, 0.85, 0.8), (0.73, 0.76, 0.67), (0.6, 0.9, 0.3), (0.5, 0.5, 0.0)])
def test_tetrachoric_inverts_the_bivariate_cdf(p_a, p_b, rho):
    both = float(normal.bivariate_cdf(normal.norm_ppf(p_a), normal.norm_ppf(p_b), rho))
    assert normal.tetrachoric(p_a, p_b, both) == pytest.approx(rho, abs=1e-6)


def test_agreement_runs_from_chance_to_certainty_and_inverts():
    assert normal.agreement(0.0, 3) == pytest.approx(1 / 3, abs=1e-6)
    curve = [normal.agreement(s, 3) for s in np.linspace(0, 0.95, 20)]
    assert all(b > a for a, b in itertools.pairwise(curve))
    assert normal.agreement_correlation(normal.agreement(0.7, 3), 3) == pytest.approx(0.7, abs=1e-3)
    # against a direct simulation of "each picks its highest-utility distractor"
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200_000, 3))
    y = 0.7 * x + math.sqrt(1 - 0.49) * rng.standard_normal((200_000, 3))
    assert np.mean(x.argmax(1) == y.argmax(1)) == pytest.approx(normal.agreement(0.7, 3), abs=0.005)


def test_noise_for_auroc_inverts_confidence_auroc():
    noise = normal.noise_for_auroc(1.0, 0.8)
    assert normal.confidence_auroc(1.0, noise) == pytest.approx(0.8, abs=1e-4)
    assert normal.confidence_auroc(1.0, 0.1) > normal.confidence_auroc(1.0, 3.0)


def test_nearest_correlation_repairs_an_impossible_matrix():
    bad = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])  # not positive semi-definite
    fixed = normal.nearest_correlation(bad)
    assert np.linalg.eigvalsh(fixed).min() > 0
    assert np.allclose(np.diag(fixed), 1.0)
    good = np.array([[1.0, 0.5], [0.5, 1.0]])
    assert np.allclose(normal.nearest_correlation(good), good)


# --- the fit --------------------------------------------------------------------------------


def measure(fleet, prompts, truth=TRUTH, **kwargs):
    rows = [fleet.answers(0, p, truth, **kwargs) for p in prompts]
    correct = np.array([[r[m].correct for m in fleet.models] for r in rows])
    answers = np.array([[r[m].answer for m in fleet.models] for r in rows], dtype=object)
    return correct, answers


def test_a_fit_hits_its_targets_and_a_missing_pair_gets_the_defaults():
    targets = {"strong": ModelTarget(0.85), "medium": ModelTarget(0.75), "weak": ModelTarget(0.6)}
    pairs = {("medium", "strong"): PairTarget(both_correct=0.70, both_wrong_agreement=0.75),
             ("strong", "weak"): PairTarget(both_correct=0.56, both_wrong_agreement=0.5)}
    fleet = fit(targets, pairs)
    assert fleet.correctness[0, 1] > 0.5  # strong/medium: far above independence (0.6375)
    assert fleet.correctness[1, 2] == pytest.approx(DEFAULT_LATENT_CORRELATION, abs=0.01)  # medium/weak unstated
    correct, answers = measure(fleet, items())
    for i, p in enumerate((0.85, 0.75, 0.6)):
        assert correct[:, i].mean() == pytest.approx(p, abs=0.01)
    strong_medium = pair_stats(correct, answers, 0, 1)
    assert strong_medium.both_correct == pytest.approx(0.70, abs=0.01)
    assert strong_medium.both_wrong_agreement == pytest.approx(0.75, abs=0.03)
    assert pair_stats(correct, answers, 0, 2).both_wrong_agreement == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize(("pair", "message"), [
    (PairTarget(both_correct=0.9), "outside"),  # more than the weaker model's accuracy
    (PairTarget(both_wrong_agreement=0.2), "chance to certainty"),  # below chance (1/3)
])
def test_impossible_targets_are_refused_by_name(pair, message):
    with pytest.raises(ValueError, match=message) as info:
        fit({"x": ModelTarget(0.8), "y": ModelTarget(0.7)}, {("x", "y"): pair})
    assert "x and y" in str(info.value)


def test_profiles_state_a_pair_once_or_alike():
    one = SimProfile(accuracy=0.8, correlated=CorrelatedErrorsProfile(both_correct={"y": 0.6}))
    other = SimProfile(accuracy=0.7, correlated=CorrelatedErrorsProfile(both_correct={"x": 0.61}))
    with pytest.raises(ValueError, match="stated twice"):
        targets_of({"x": one, "y": other})
    with pytest.raises(ValueError, match="no such correlated model"):
        targets_of({"x": one})
    assert fit_profiles({"x": SimProfile(accuracy=0.8)}) is None  # no targets: the independent model


def test_raising_accuracy_only_turns_wrong_answers_right():
    fleet = fit({"m": ModelTarget(0.7), "n": ModelTarget(0.7)}, {})
    before = [fleet.decide(0, "m", p, TRUTH, 0.6).correct for p in items(2000)]
    after = [fleet.decide(0, "m", p, TRUTH, 0.8).correct for p in items(2000)]
    assert all(a for b, a in zip(before, after) if b)
    assert sum(after) > sum(before)


# --- samples and confidence -----------------------------------------------------------------


def test_samples_of_one_model_are_not_independent_voters():
    fleet = fit({"m": ModelTarget(0.75, sample_correlation=0.85), "n": ModelTarget(0.75)}, {})
    prompts = items(3000)
    greedy = [fleet.decide(0, "m", p, TRUTH) for p in prompts]
    assert [fleet.decide(0, "m", p, TRUTH, sample=3, temperature=0.0) for p in prompts[:200]] == greedy[:200]
    samples = [[fleet.decide(0, "m", p, TRUTH, sample=k, temperature=1.0) for k in range(1, 6)] for p in prompts]
    each = np.mean([[s.correct for s in row] for row in samples], axis=0)
    assert np.allclose(each, 0.75, atol=0.025)  # every sample is as accurate as the model
    majority = np.mean([sum(s.correct for s in row) >= 3 for row in samples])
    # five independent voters of 0.75 would be right 89.6% of the time; five samples of one model are not
    assert majority - 0.75 < 0.05
    differs = np.mean([row[0].answer != g.answer for row, g in zip(samples, greedy)])
    assert 0.05 < differs < 0.4  # temperature does change some answers


def test_confidence_is_informative_and_overconfident_where_told():
    prompts = items(10_000)
    for overconfidence, calibrated in ((0.0, True), (1.0, False)):
        fleet = fit({"m": ModelTarget(0.75, confidence_auroc=0.78, overconfidence=overconfidence),
                     "n": ModelTarget(0.75)}, {})
        decisions = [fleet.decide(0, "m", p, TRUTH) for p in prompts]
        confidence = np.exp([d.confidence_logprob for d in decisions])
        right = np.array([d.correct for d in decisions])
        ranks = confidence.argsort().argsort() + 1
        auroc = (ranks[right].sum() - right.sum() * (right.sum() + 1) / 2) / (right.sum() * (~right).sum())
        assert auroc == pytest.approx(0.78, abs=0.02)
        if calibrated:
            assert confidence.mean() == pytest.approx(right.mean(), abs=0.02)
        else:
            assert confidence.mean() > right.mean() + 0.08
            assert np.mean(confidence[~right] >= 0.9) > 0.05  # confidently wrong, and not rarely


# --- the fleet over HTTP --------------------------------------------------------------------


async def test_the_fleet_serves_correlated_models_and_samples_at_temperature():
    fast = {"latency_median_ms": 0, "latency_p99_ms": 0}
    profiles = {
        "a": SimProfile(accuracy=0.7, correlated=CorrelatedErrorsProfile(both_correct={"b": 0.6},
                                                                         both_wrong_agreement={"b": 0.9}), **fast),
        "b": SimProfile(accuracy=0.7, correlated=CorrelatedErrorsProfile(), **fast),
        "c": SimProfile(accuracy=0.7, **fast),  # independent, as before
    }
    prompts = [t.prompt for t in demo_tasks(80, kinds=("label",))]
    async with SimFleet(profiles, seed=3) as fleet, aiohttp.ClientSession() as session:
        url = f"{fleet.base_url}/chat/completions"

        async def ask(model: str, prompt: str, **extra: object) -> str:
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}
            async with session.post(url, data=orjson.dumps(body)) as resp:
                assert resp.status == 200
                return (await resp.json())["choices"][0]["message"]["content"]

        a = [await ask("a", p) for p in prompts]
        b = [await ask("b", p) for p in prompts]
        assert a == [await ask("a", p) for p in prompts]  # greedy: a retry gets the same answer
        wrong_both = [(x, y) for p, x, y in zip(prompts, a, b) if solve(p).answer not in (x[8:], y[8:])]
        assert wrong_both and sum(x == y for x, y in wrong_both) / len(wrong_both) > 0.6
        seeded = [await ask("a", p, temperature=1.0, seed=7) for p in prompts]
        assert seeded == [await ask("a", p, temperature=1.0, seed=7) for p in prompts]
        assert [await ask("c", p) for p in prompts[:5]]  # an independent model still answers
        assert fleet.counters["a"]["calls"] == 4 * len(prompts)
