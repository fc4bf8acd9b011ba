"""The review queue and the approvals waiting, folded from records (no broker)."""

from __future__ import annotations

import pytest
from swarmstream.schemas.models import (
    Approval,
    AuditEvent,
    CastVote,
    ReviewDecision,
    ReviewItem,
    TaskRequest,
    TaskResult,
)
from swarmstream.streams.console.queues import (
    ApprovalQueue,
    DecisionError,
    ReviewQueue,
    candidates,
    decide,
)


def item(task_id: str = "t1", answers: dict[str, str] | None = None, consensus: str | None = "42",
         flagged_ms: int = 10) -> ReviewItem:
    answers = answers or {"a": "42", "b": "42", "c": "17"}
    task = TaskRequest(task_id=task_id, created_ms=5, prompt="What is 40 + 2?", answer_type="number")
    result = TaskResult(task_id=task_id, status="low_consensus", answer=consensus, agreement=2 / 3, created_ms=5,
                        votes=[CastVote(model_id=m, answer=a) for m, a in answers.items()])
    return ReviewItem(task=task, result=result, reason="agreement below the review threshold", flagged_ms=flagged_ms)


def test_candidates_group_votes_consensus_first() -> None:
    got = candidates(item())
    assert [(c.answer, c.models, c.weight, c.consensus) for c in got] == [
        ("42", ("a", "b"), 2.0, True), ("17", ("c",), 1.0, False)]


@pytest.mark.parametrize(("action", "extra", "answer", "correct", "score"), [
    ("accept", {}, "42", ["a", "b"], 1.0),
    ("candidate", {"model_id": "c"}, "17", ["c"], 0.0),
    ("answer", {"written": " 42 "}, "42", ["a", "b"], 1.0),
    ("answer", {"written": "99"}, "99", [], 0.0),
])
def test_a_decision_and_its_feedback(action: str, extra: dict, answer: str, correct: list[str], score: float) -> None:
    decision, feedback = decide(item(), action=action, reviewer="ada", now_ms=99, **extra)
    assert (decision.answer, decision.correct_models, decision.reviewer, decision.consensus) == (
        answer, correct, "ada", "42")
    assert decision.model_id == extra.get("model_id")
    assert (feedback.task_id, feedback.created_ms, feedback.score, feedback.source) == ("t1", 5, score, "review")


@pytest.mark.parametrize(("action", "extra", "consensus", "message"), [
    ("accept", {}, None, "no consensus answer"),
    ("candidate", {"model_id": "zz"}, "42", "gave no answer"),
    ("answer", {"written": "  "}, "42", "write the right answer"),
    ("delete", {}, "42", "unknown action"),
])
def test_decisions_that_cannot_be_made_say_why(action: str, extra: dict, consensus: str | None, message: str) -> None:
    with pytest.raises(DecisionError, match=message):
        decide(item(consensus=consensus), action=action, reviewer="ada", now_ms=1, **extra)


def test_an_item_with_a_decision_leaves_the_queue_even_when_the_decision_is_read_first() -> None:
    queue = ReviewQueue()
    queue.add_item(item("t1", flagged_ms=20))
    queue.add_item(item("t2", flagged_ms=10))
    assert [i.task.task_id for i in queue.items()] == ["t2", "t1"]  # oldest first
    decision = ReviewDecision(task_id="t1", created_ms=5, action="accept", answer="42", decided_ms=30)
    queue.add_decision(decision)
    queue.add_decision(decision.model_copy(update={"task_id": "t3"}))
    queue.add_item(item("t3"))  # a decision's topic partition read ahead of the review topic's
    assert [i.task.task_id for i in queue.items()] == ["t2"]
    assert queue.decision("t1") == decision


def audit(decision: str, *, model: str = "a", digest: str = "d1", at_ms: int = 100, side_effect: str = "dangerous",
          task_id: str = "t1") -> AuditEvent:
    return AuditEvent(task_id=task_id, model_id=model, tool="notify", digest=digest, arguments='{"text":"[REDACTED]"}',
                      side_effect=side_effect, decision=decision, at_ms=at_ms)


def test_waiting_calls_group_their_proposers_and_leave_on_any_decision() -> None:
    queue = ApprovalQueue()
    queue.add_audit(audit("awaiting_approval", model="a"))
    queue.add_audit(audit("awaiting_approval", model="b"))
    queue.add_audit(audit("awaiting_approval", digest="d2"))
    queue.add_audit(audit("awaiting_approval", digest="d3", task_id="t2"))
    queue.add_audit(audit("allowed", digest="other", side_effect="read"))  # not a waiting call's
    expires = {"t1|notify|d1": 1_000, "t1|notify|d2": 2_000, "t2|notify|d3": 150}
    shown = queue.waiting(200, lambda c: expires[c.key])
    assert [(s.call.key, sorted(s.call.models), s.time_left_ms) for s in shown] == [
        ("t1|notify|d1", ["a", "b"], 800), ("t1|notify|d2", ["a"], 1_800)]  # t2's time is up
    queue.add_approval(Approval(task_id="t1", tool="notify", digest="d1", at_ms=300))
    queue.add_audit(audit("denied", digest="d2"))  # no approval came in time: the tool agent denied it
    assert queue.waiting(200, lambda c: expires[c.key]) == []
    queue.add_audit(audit("awaiting_approval", model="c"))  # a late proposer of a decided call
    assert queue.get("t1|notify|d1") is None


def test_an_approval_without_a_digest_settles_every_call_of_the_tool_in_the_task() -> None:
    queue = ApprovalQueue()
    for digest in ("d1", "d2"):
        queue.add_audit(audit("awaiting_approval", digest=digest))
    queue.add_approval(Approval(task_id="t1", tool="notify", approved=False, at_ms=1))
    assert queue.waiting(0, lambda c: 10) == []
    queue.add_audit(audit("awaiting_approval", digest="d9"))
    assert queue.waiting(0, lambda c: 10) == []
