"""Judge strategies re-scored from recorded verdicts (agents/replay/judged.py): no model called."""

from __future__ import annotations

import pytest
from swarmstream.agents.consensus.judging import show, shuffle_seed
from swarmstream.agents.consensus.votes import Decision
from swarmstream.agents.replay.judged import replay_judged

CANDIDATES = {"a": {"answer": "fruit"}, "b": {"answer": "fruit"}, "c": {"answer": "animal"}}
SPLIT = Decision(answer="fruit", agreement=2 / 3, confidence=0.5, tie=False, strategy="majority", support=("a", "b"))
AGREED = Decision(answer="fruit", agreement=1.0, confidence=0.9, tie=False, strategy="majority", support=("a", "b"))


def _verdict_for(answer: str) -> str:
    shown = show([(slot, a["answer"]) for slot, a in CANDIDATES.items()], shuffle_seed("t", None))
    return f'{{"index": {shown.answers.index(answer) + 1}, "rationale": "r"}}'


JUDGES = {"j#judge": {"answer": _verdict_for("animal"), "cost_micros": 40}, "f#fuse": {"answer": "a plant", "cost_micros": 70}}


@pytest.mark.parametrize(("strategy", "vote", "answer", "calls", "cost"), [
    ("judge", SPLIT, "animal", 2, 40),  # the failed link and the verdict
    ("fuse", SPLIT, "a plant", 1, 70),
    ("vote_then_judge", SPLIT, "animal", 2, 40),
    ("vote_then_judge", AGREED, "fruit", 0, 0),  # not split: the recorded verdict is not paid for
])
def test_the_recorded_verdict_decides(strategy: str, vote: Decision, answer: str, calls: int, cost: int) -> None:
    replayed = replay_judged(strategy, vote, CANDIDATES, JUDGES, ("x#judge",), task_id="t", seed=None)

    assert (replayed.answer, replayed.judge_calls, replayed.judge_cost_micros) == (answer, calls, cost)


def test_without_a_recorded_verdict_the_vote_stands() -> None:
    replayed = replay_judged("judge", SPLIT, CANDIDATES, {"f#fuse": JUDGES["f#fuse"]}, (), task_id="t", seed=None)

    assert (replayed.answer, replayed.used_judge, replayed.judge_calls) == ("fruit", False, 0)


def test_a_verdict_read_with_another_seed_picks_by_that_order() -> None:
    """The shuffle seed is part of the verdict's meaning: replay must use the recorded one."""
    orders = {show([(s, a["answer"]) for s, a in CANDIDATES.items()], seed).answers for seed in range(10)}
    assert len(orders) == 2  # two distinct answers, both orders occur
