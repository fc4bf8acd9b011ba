"""The review queue and the approvals waiting, folded from the topics. Pure: records in, views out.

Review: every ReviewItem on ``swarm.review`` without a ReviewDecision on
``swarm.review-decisions``. A decision is also a Feedback (``decide``): the feedback
agent rewards the models that agreed with the result ``score`` and the others
``1 - score`` (``agents/stats/feedback.py``), so a picked candidate that differs
from the consensus teaches its model 1 and the consensus's models 0. The exact
verdict per model is on the decision (``correct_models``).

Approvals: a dangerous call waits once its ``awaiting_approval`` AuditEvent is on
``swarm.audit`` (the tool agent flushes it before it waits), keyed by task, tool and
the call's digest (the models of a consensus task that propose the same call share
one approval). It stops waiting when an Approval for it (or for every call of the
tool in the task: an empty digest) arrives, when any other audit decision for it
arrives (it ran, or was denied at its time limit), or when its time is up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from swarmstream.schemas.models import (
    Approval,
    AuditEvent,
    Feedback,
    ReviewDecision,
    ReviewItem,
)


class DecisionError(ValueError):
    """A reviewer's request that cannot become a decision; the message says why."""


@dataclass(frozen=True, slots=True)
class Candidate:
    answer: str
    models: tuple[str, ...]
    weight: float
    consensus: bool


def candidates(item: ReviewItem) -> list[Candidate]:
    """The distinct answers of the item's votes, heaviest first; the consensus marked."""
    by_answer: dict[str, tuple[list[str], float]] = {}
    for vote in item.result.votes:
        models, weight = by_answer.get(vote.answer, ([], 0.0))
        by_answer[vote.answer] = ([*models, vote.model_id], weight + vote.weight)
    return sorted((Candidate(answer, tuple(sorted(models)), round(weight, 4), answer == item.result.answer)
                   for answer, (models, weight) in by_answer.items()),
                  key=lambda c: (not c.consensus, -c.weight, c.answer))


def decide(item: ReviewItem, *, action: str, reviewer: str, now_ms: int, model_id: str | None = None,
           written: str | None = None, note: str = "") -> tuple[ReviewDecision, Feedback]:
    """The decision event and the feedback that teaches model quality from it."""
    consensus = item.result.answer
    if action == "accept":
        if consensus is None:
            raise DecisionError("this task has no consensus answer to accept: pick a candidate or write the answer")
        answer = consensus
    elif action == "candidate":
        picked = [v.answer for v in item.result.votes if v.model_id == model_id]
        if not picked:
            raise DecisionError(f"model {model_id!r} gave no answer to this task")
        answer = picked[0]
    elif action == "answer":
        answer = (written or "").strip()
        if not answer:
            raise DecisionError("write the right answer, or pick a candidate")
    else:
        raise DecisionError(f"unknown action {action!r} (accept, candidate or answer)")
    correct = sorted({v.model_id for v in item.result.votes if same_answer(v.answer, answer)})
    decision = ReviewDecision(task_id=item.task.task_id, created_ms=item.task.created_ms, action=action,  # type: ignore[arg-type]
                              answer=answer, model_id=model_id if action == "candidate" else None,
                              consensus=consensus, correct_models=correct, reviewer=reviewer, note=note,
                              decided_ms=now_ms)
    right = consensus is not None and same_answer(consensus, answer)
    feedback = Feedback(task_id=item.task.task_id, created_ms=item.result.created_ms, score=1.0 if right else 0.0,
                        source="review")
    return decision, feedback


def same_answer(a: str, b: str) -> bool:
    """Answers as a reviewer reads them: surrounding space and letter case do not count."""
    return a.strip().casefold() == b.strip().casefold()


class ReviewQueue:
    """Open review items by task id. ``version`` moves on every change (live pages poll it)."""

    def __init__(self) -> None:
        self._open: dict[str, ReviewItem] = {}
        self._decided: dict[str, ReviewDecision] = {}
        self.version = 0

    def add_item(self, item: ReviewItem) -> None:
        if item.task.task_id not in self._decided:
            self._open[item.task.task_id] = item
            self.version += 1

    def add_decision(self, decision: ReviewDecision) -> None:
        self._decided[decision.task_id] = decision
        if self._open.pop(decision.task_id, None) is not None:
            self.version += 1

    def get(self, task_id: str) -> ReviewItem | None:
        return self._open.get(task_id)

    def decision(self, task_id: str) -> ReviewDecision | None:
        return self._decided.get(task_id)

    def items(self) -> list[ReviewItem]:
        """Oldest first: the longest waiting is reviewed first."""
        return sorted(self._open.values(), key=lambda i: (i.flagged_ms, i.task.task_id))

    def __len__(self) -> int:
        return len(self._open)


@dataclass
class WaitingCall:
    task_id: str
    tool: str
    digest: str
    tenant: str
    arguments: str  # as audited: redacted
    side_effect: str
    turn: int
    since_ms: int
    models: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.task_id}|{self.tool}|{self.digest}"


@dataclass(frozen=True, slots=True)
class ShownCall:
    call: WaitingCall
    expires_ms: int
    time_left_ms: int


class ApprovalQueue:
    """Dangerous calls waiting for a person (module docstring)."""

    def __init__(self) -> None:
        self._waiting: dict[str, WaitingCall] = {}
        self._settled: set[str] = set()  # task|tool|digest, or task|tool| for every call of the tool
        self.version = 0

    def _is_settled(self, task_id: str, tool: str, digest: str) -> bool:
        return f"{task_id}|{tool}|{digest}" in self._settled or f"{task_id}|{tool}|" in self._settled

    def add_audit(self, event: AuditEvent) -> None:
        key = f"{event.task_id}|{event.tool}|{event.digest}"
        if event.decision != "awaiting_approval":
            if event.side_effect == "dangerous" or key in self._waiting:
                self._settled.add(key)
                if self._waiting.pop(key, None) is not None:
                    self.version += 1
            return
        if self._is_settled(event.task_id, event.tool, event.digest):
            return
        call = self._waiting.get(key)
        if call is None:
            call = self._waiting[key] = WaitingCall(event.task_id, event.tool, event.digest, event.tenant,
                                                    event.arguments, event.side_effect, event.turn, event.at_ms)
        call.models.add(event.model_id)
        self.version += 1

    def add_approval(self, approval: Approval) -> None:
        self._settled.add(f"{approval.task_id}|{approval.tool}|{approval.digest}")
        gone = [k for k, c in self._waiting.items() if c.task_id == approval.task_id and c.tool == approval.tool
                and (not approval.digest or c.digest == approval.digest)]
        for key in gone:
            del self._waiting[key]
        if gone:
            self.version += 1

    def get(self, key: str) -> WaitingCall | None:
        return self._waiting.get(key)

    def waiting(self, now_ms: int, expires_ms: Callable[[WaitingCall], int]) -> list[ShownCall]:
        """The calls still waiting at ``now_ms``, soonest to expire first (their time runs out)."""
        shown = [ShownCall(c, e, e - now_ms) for c in self._waiting.values() if (e := expires_ms(c)) > now_ms]
        return sorted(shown, key=lambda s: (s.expires_ms, s.call.key))

    def keys(self, now_ms: int, expires_ms: Callable[[WaitingCall], int]) -> Iterable[str]:
        return (s.call.key for s in self.waiting(now_ms, expires_ms))
