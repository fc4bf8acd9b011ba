"""The cascade's plan, step by step (pure): who is asked, when it escalates, what it decides."""

from __future__ import annotations

import pytest
from swarmstream.agents.consensus.cascade import Cascade, plan_cascade
from swarmstream.agents.consensus.votes import Vote

CONFIDENT = Cascade(first="pro", escalate=("sonnet", "4o"), confidence_floor=0.9)
CHECKED = Cascade(first="pro", escalate=("sonnet", "4o"), confidence_floor=None, checker="flash")


def votes(**answers: tuple[str, float | None]) -> dict[str, Vote]:
    weights = {"pro": 1.8, "sonnet": 1.9, "4o": 1.7, "flash": 1.0}
    return {m: Vote(m, answer, weight=weights[m], confidence=conf) for m, (answer, conf) in answers.items()}


@pytest.mark.parametrize(("cascade", "got", "ask", "answer", "escalated"), [
    # nothing yet: the opening asks the first model (and the checker with it)
    (CONFIDENT, {}, ("pro",), None, False),
    (CHECKED, {}, ("pro", "flash"), None, False),
    # a confident first answer stands: one call
    (CONFIDENT, votes(pro=("b", 0.95)), (), "b", False),
    # unsure: escalate, then the weighted vote of all three decides (two outvote the first)
    (CONFIDENT, votes(pro=("b", 0.6)), ("sonnet", "4o"), None, True),
    (CONFIDENT, votes(pro=("b", 0.6), sonnet=("c", 0.9), **{"4o": ("c", 0.8)}), (), "c", True),
    # no logprobs (confidence None) and no checker: nothing to doubt with, the answer stands
    (CONFIDENT, votes(pro=("b", None)), (), "b", False),
    # the checker agrees: stands, however unsure; disagrees: escalate
    (CHECKED, votes(pro=("b", 0.3), flash=("b", 0.5)), (), "b", False),
    (CHECKED, votes(pro=("b", 0.99), flash=("c", 0.5)), ("sonnet", "4o"), None, True),
    # after escalation each model's vote weight counts: pro + sonnet outweigh flash + 4o
    (CHECKED, votes(pro=("b", 0.99), flash=("c", 0.5), sonnet=("b", 0.7), **{"4o": ("c", 0.9)}), (), "b", True),
])
def test_plan_cascade(cascade, got, ask, answer, escalated):
    step = plan_cascade(cascade, got)
    assert step.ask == ask
    assert step.done == (answer is not None)
    assert step.escalated == escalated
    if answer is not None:
        assert step.decision is not None and step.decision.answer == answer


def test_a_cascade_that_could_never_escalate_or_names_a_model_twice_is_refused():
    with pytest.raises(ValueError, match="nothing would ever escalate"):
        Cascade(first="a", escalate=("b",), confidence_floor=None)
    with pytest.raises(ValueError, match="named twice"):
        Cascade(first="a", escalate=("a",))
