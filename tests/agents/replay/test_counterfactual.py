"""Counterfactual estimates on synthetic logs whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from swarmstream.agents.replay.counterfactual import (
    LoggedChoice,
    PolicyTarget,
    always,
    counterfactual_summary,
    evaluate,
    logged_choices,
    parse_target,
    policy_target,
)
from swarmstream.agents.replay.recording import Label, Recording
from swarmstream.agents.selection.policies import AlwaysBestPolicy, SelectionError
from swarmstream.schemas.models import ScoredCandidate, SelectionEvent, TaskResult

QUALITY = {"m0": 0.9, "m1": 0.6, "m2": 0.3}
MODELS = tuple(QUALITY)


def synthetic_log(n: int, *, seed: int, logging: dict[str, float] | None = None) -> list[LoggedChoice]:
    """``n`` selections by a random logger with ``logging`` propensities; reward ~ Bernoulli(quality)."""
    rng = np.random.default_rng(seed)
    mu = logging or {m: 1 / 3 for m in MODELS}
    probs = np.array([mu[m] for m in MODELS])
    picks = rng.choice(len(MODELS), size=n, p=probs / probs.sum())
    rewards = rng.random(n) < np.array([QUALITY[m] for m in MODELS])[picks]
    return [
        LoggedChoice(task_id=f"t{i}", category="c", at_ms=i, candidates=MODELS, cost_micros_est=(100, 100, 100),
                     propensities=mu, chosen=MODELS[picks[i]], reward=float(rewards[i]), latency_ms=50,
                     cost_micros=100, policy="random")
        for i in range(n)
    ]


def inside(value: float, interval: tuple[float, float] | None) -> bool:
    assert interval is not None
    return interval[0] <= value <= interval[1]


@pytest.mark.parametrize("model", MODELS)
def test_always_a_model_is_estimated_within_its_interval(model: str) -> None:
    choices = synthetic_log(3_000, seed=1, logging={"m0": 0.2, "m1": 0.5, "m2": 0.3})
    estimate = evaluate(choices, always(model))
    truth = QUALITY[model]
    assert inside(truth, estimate.ips_interval)
    assert inside(truth, estimate.snips_interval)
    assert inside(truth, estimate.dr_interval)
    assert estimate.snips == pytest.approx(truth, abs=0.05)
    assert (estimate.n, estimate.unsupported, estimate.invalid) == (3_000, 0, 0)
    assert estimate.ips_interval[1] - estimate.ips_interval[0] < 0.2  # type: ignore[index]


def test_interval_coverage_is_near_nominal() -> None:
    """Over 60 independent logs, the 95% intervals cover the truth at least ~85% of the time."""
    hits = {"ips": 0, "snips": 0, "dr": 0}
    runs = 60
    for seed in range(runs):
        estimate = evaluate(synthetic_log(400, seed=100 + seed), always("m1"))
        hits["ips"] += inside(0.6, estimate.ips_interval)
        hits["snips"] += inside(0.6, estimate.snips_interval)
        hits["dr"] += inside(0.6, estimate.dr_interval)
    for name, count in hits.items():
        assert count / runs >= 0.85, (name, count)


def test_policies_from_the_registry() -> None:
    choices = synthetic_log(3_000, seed=2)
    best = evaluate(choices, PolicyTarget(AlwaysBestPolicy(true_quality=QUALITY)))
    assert inside(0.9, best.ips_interval)
    random_ = evaluate(choices, policy_target("random"))
    assert inside(0.6, random_.snips_interval)
    assert random_.effective_sample_size == pytest.approx(3_000)  # same propensities as the logger: w = 1
    # a greedy learner on the log's own feedback soon prefers m0
    greedy = evaluate(choices, policy_target("weighted"))
    assert greedy.snips is not None and greedy.snips > 0.8
    thompson = evaluate(choices, policy_target("thompson", seed=3))
    assert thompson.snips is not None and 0.7 < thompson.snips <= 0.9 + 0.05


def test_unsupported_and_invalid_events_are_counted() -> None:
    choices = synthetic_log(200, seed=3, logging={"m0": 0.5, "m1": 0.5, "m2": 0.0})
    estimate = evaluate(choices, always("m2"))
    assert estimate.unsupported == 200
    assert estimate.ips == 0.0  # m2 never logged: IPS cannot see it, and says so in `unsupported`
    broken = [LoggedChoice(task_id="x", category="c", at_ms=0, candidates=MODELS, cost_micros_est=(1, 1, 1),
                           propensities={"m0": 0.0, "m1": 1.0, "m2": 0.0}, chosen="m0", reward=1.0)]
    estimate = evaluate(broken, always("m0"))
    assert (estimate.invalid, estimate.n, estimate.ips, estimate.ips_interval) == (1, 0, None, None)


def test_logged_choices_from_a_recording() -> None:
    rec = Recording()
    candidates = [ScoredCandidate(model_id=m, score=0.0, propensity=1 / 3, cost_micros_est=10) for m in MODELS]
    for i, (chosen, answer, status) in enumerate(
        [("m0", "yes", "selected"), ("m1", "no", "selected"), (None, None, "budget_exceeded"), ("m2", "yes", "selected")]
    ):
        tid = f"s{i}"
        rec.add(SelectionEvent(task_id=tid, tenant="default", category="c", policy="random", status=status,
                               chosen=chosen, candidates=candidates, at_ms=10 - i))
        if answer is not None:
            rec.add(TaskResult(task_id=tid, status="ok", mode="select", answer=answer, answered_by=chosen))
        if i != 3:
            rec.add(Label(tid, "yes"))
    choices = logged_choices(rec)
    assert [(c.task_id, c.chosen, c.reward) for c in choices] == [("s1", "m1", 0.0), ("s0", "m0", 1.0)]

    summary = counterfactual_summary(rec)
    assert summary["events"] == 2
    assert set(summary["targets"]) >= {"always:m0", "always:m1", "always:m2", "random", "thompson"}


def test_target_specs() -> None:
    assert parse_target("always:m1").name == "always:m1"
    assert parse_target("ucb").name == "ucb"
    with pytest.raises(SelectionError, match="unknown selection policy 'nope'"):
        parse_target("nope")
    with pytest.raises(SelectionError, match="needs a model id"):
        parse_target("always:")
