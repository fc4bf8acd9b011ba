"""The deadline sweeper's rule: which outcomes an overdue task still waits for."""

from __future__ import annotations

import pytest
from swarmstream.agents.taskstate import SWEEP_GRACE_MS, overdue

DEADLINE = 10_000


def consensus(**extra: object) -> dict:
    return {"task": {}, "asked": ["a", "b", "c"], "answers": {"a": {}}, "failures": {"b": {}}, "done": False,
            "deadline_ms": DEADLINE, **extra}


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        (consensus(), DEADLINE, []),  # not overdue yet
        (consensus(), DEADLINE + SWEEP_GRACE_MS - 1, []),
        (consensus(), DEADLINE + SWEEP_GRACE_MS, [("c", 0)]),  # only the missing model
        (consensus(done=True), DEADLINE * 10, []),  # finished tasks are left alone
        (consensus(asked=[], answers={}, failures={}), DEADLINE * 10, [("(selector)", 0)]),  # select: none chosen
        ({"task": {}, "done": False, "deadline_ms": DEADLINE,
          "chain": {"links": ["x", "y"], "index": 1, "awaiting_attempt": 3}}, DEADLINE * 10, [("y", 3)]),
        ({"task": {}, "done": False, "deadline_ms": DEADLINE,
          "chain": {"links": ["x"], "index": 0, "awaiting_attempt": None}}, DEADLINE * 10, []),
    ],
)
def test_overdue(state: dict, now: int, expected: list) -> None:
    assert overdue(state, now) == expected


class MemoryStore:
    def __init__(self) -> None:
        self.states: dict[str, dict] = {}

    def get(self, task_id: str, created_ms: int) -> dict | None:
        return self.states.get(task_id)

    def set(self, task_id: str, created_ms: int, state: dict) -> None:
        self.states[task_id] = state


@pytest.mark.parametrize("already_published", [False, True])
async def test_finisher_publishes_once_then_marks_done(already_published: bool) -> None:
    """A result already on the results topic (a crash lost its done mark) is not published
    again; the done mark is written either way."""
    from swarmstream.agents.taskstate import Finisher
    from swarmstream.schemas.models import TaskResult

    sent: list[tuple[str, str]] = []

    async def emit(topic: str, key: str, record: object, headers: object = None) -> None:
        sent.append((topic, key))

    store = MemoryStore()
    finisher = Finisher(store=store, emit=emit, results_topic="results", review_topic="review", review_threshold=0.5,
                        published=lambda task_id: already_published and task_id == "t1")
    state = {"task": {"task_id": "t1", "created_ms": 1, "prompt": "p"}, "done": False}
    await finisher.finish(state, TaskResult(task_id="t1", mode="consensus", status="low_consensus", answer="a",
                                            created_ms=1, completed_ms=2))
    assert sent == ([] if already_published else [("review", "t1"), ("results", "t1")])
    assert store.states["t1"]["done"] is True
