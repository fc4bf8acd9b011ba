"""Sequential consensus: whom to ask next, and when to stop (``sequential.plan_next``)."""

from __future__ import annotations

import itertools

import pytest
from swarmstream.agents.consensus.sequential import NextStep, plan_next

FIVE = ["m1", "m2", "m3", "m4", "m5"]


@pytest.mark.parametrize(
    "order, answers, failed, max_models, threshold, done, ask, reason_has",
    [
        # edge cases first
        ([], {}, [], 5, 0.95, True, [], "no models to ask"),
        (["m1"], {}, [], 1, 0.95, False, ["m1"], "first batch"),
        (["m1"], {"m1": "a"}, [], 1, 0.95, True, [], "cannot be overturned"),
        (["m1"], {}, ["m1"], 1, 0.95, True, [], "all 1 models asked"),  # the only model failed
        # the first batch is stopping.initial_batch(budget), in order
        (FIVE, {}, [], 5, 0.95, False, ["m1", "m2", "m3"], "first batch: ask 3 of at most 5"),
        (FIVE, {}, [], 3, 0.95, False, ["m1", "m2"], "first batch: ask 2 of at most 3"),
        (FIVE[:2], {}, [], 5, 0.95, False, ["m1", "m2"], "of at most 2"),  # budget capped by order
        # a unanimous first batch stops
        (FIVE, {"m1": "a", "m2": "a", "m3": "a"}, [], 5, 0.95, True, [], "cannot be overturned"),
        (FIVE, {"m1": "a", "m2": "a"}, [], 3, 0.95, True, [], "cannot be overturned"),
        # a split batch asks more: one when one more vote could settle it ...
        (FIVE, {"m1": "a", "m2": "a", "m3": "b"}, [], 5, 0.95, False, ["m4"], "ask 1 more model"),
        # ... two when the first answers are split three ways
        (FIVE, {"m1": "a", "m2": "b", "m3": "c"}, [], 5, 0.95, False, ["m4", "m5"], "ask 2 more models"),
        # a lower threshold lets the Beta rule stop a 2-1 split (P = 11/16 = 0.6875)
        (FIVE, {"m1": "a", "m2": "a", "m3": "b"}, [], 5, 0.65, True, [], "Beta rule"),
        (FIVE, {"m1": "a", "m2": "b", "m3": "c"}, [], 5, 0.65, False, ["m4"], "ask 1 more model"),
        # split to the end: stops when the budget is spent
        (FIVE, {"m1": "a", "m2": "b", "m3": "a", "m4": "b"}, [], 5, 0.95, False, ["m5"], "ask 1 more"),
        (FIVE, {"m1": "a", "m2": "b", "m3": "a", "m4": "b", "m5": "c"}, [], 5, 0.95, True, [], "all 5 models"),
        # failures count as asked but back nothing
        (FIVE, {"m1": "a", "m2": "a"}, ["m3"], 5, 0.95, False, ["m4"], "ask 1 more"),
        (FIVE, {"m1": "a"}, ["m2", "m3"], 3, 0.95, True, [], "cannot be overturned"),
        (FIVE, {}, ["m1", "m2", "m3"], 5, 0.95, False, ["m4", "m5"], "ask 2 more"),
        (FIVE, {}, ["m1", "m2", "m3", "m4", "m5"], 5, 0.95, True, [], "all 5 models asked"),
        # an empty answer is no vote
        (FIVE, {"m1": "a", "m2": " ", "m3": "a"}, [], 5, 0.95, False, ["m4"], "2 vs 0"),
        # a model in both answers and failed (a retry that succeeded) counts as answered
        (FIVE, {"m1": "a", "m2": "a", "m3": "a"}, ["m3"], 5, 0.95, True, [], "cannot be overturned"),
    ],
)
def test_plan_next(order, answers, failed, max_models, threshold, done, ask, reason_has):
    step = plan_next(order, answers, failed, max_models=max_models, threshold=threshold)
    assert isinstance(step, NextStep)
    assert step.done is done
    assert step.ask == ask
    assert reason_has in step.reason
    if done:
        assert step.ask == []


@pytest.mark.parametrize(
    "answers, pending, ask, reason_has",
    [
        ({}, ["m1", "m2", "m3"], [], "waiting for m1, m2, m3"),  # the first batch is out
        ({"m1": "a"}, ["m2", "m3"], [], "waiting for m2, m3"),
        ({"m1": "a", "m2": "b", "m3": "c"}, ["m4"], ["m5"], "ask 1 more"),  # 2 needed, 1 in flight
    ],
)
def test_plan_next_counts_answers_in_flight(answers, pending, ask, reason_has):
    step = plan_next(FIVE, answers, [], max_models=5, pending=pending)
    assert step.done is False
    assert step.ask == ask
    assert reason_has in step.reason


def test_plan_next_is_done_while_answers_are_in_flight():
    """Settled votes end the task; the answers still in flight are not waited for."""
    step = plan_next(FIVE, {"m1": "a", "m2": "a", "m3": "a"}, [], max_models=5, pending=["m4"])
    assert step.done is True
    assert step.ask == []


def test_plan_next_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_models must be >= 1"):
        plan_next(FIVE, {}, [], max_models=0)
    with pytest.raises(ValueError, match="'m1' more than once"):
        plan_next(["m1", "m1"], {}, [], max_models=2)


@pytest.mark.parametrize("max_models", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("threshold", [0.6, 0.95])
def test_never_asks_more_than_max_models(max_models, threshold):
    """Drive every answer pattern of 5 models (3 possible answers, or a failure) to the end."""
    outcomes = ["a", "b", "c", None]  # None: the model failed
    for pattern in itertools.product(outcomes, repeat=len(FIVE)):
        script = dict(zip(FIVE, pattern, strict=True))
        answers: dict[str, str] = {}
        failed: list[str] = []
        asked: list[str] = []
        for _ in range(len(FIVE) + 1):
            step = plan_next(FIVE, answers, failed, max_models=max_models, threshold=threshold)
            if step.done:
                break
            assert step.ask, f"{pattern}: not done but asks nobody ({step.reason})"
            assert not set(step.ask) & set(asked), f"{pattern}: asks {step.ask} again"
            asked.extend(step.ask)
            for model in step.ask:
                if script[model] is None:
                    failed.append(model)
                else:
                    answers[model] = script[model]
        else:
            pytest.fail(f"{pattern}: never done")
        assert len(asked) <= min(max_models, len(FIVE))
        assert asked == FIVE[: len(asked)]  # always in order
