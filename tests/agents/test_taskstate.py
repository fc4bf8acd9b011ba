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
