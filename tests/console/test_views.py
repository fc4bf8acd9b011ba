"""The fleet numbers and a task's trail, folded from records (no broker)."""

from __future__ import annotations

import pytest
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.chains import CircuitConfig
from swarmstream.agents.selection.budget import BudgetLimits
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import (
    CallRecord,
    Failure,
    ModelRequest,
    ModelResponse,
    StepContext,
    TaskRequest,
    TaskResult,
    ToolCall,
)
from swarmstream.streams.console.fleet import FleetView, runs_out_at
from swarmstream.streams.console.trail import Filed, TrailIndex
from swarmstream.streams.observe.calls import CallWindow

DAY_MS = 24 * 3600 * 1000
NOON = 20_000 * DAY_MS + DAY_MS // 2  # a UTC noon


@pytest.mark.parametrize(("spent", "limit", "rate", "expected"), [
    (0, None, 5.0, None),  # no budget: never
    (100, 100, 1.0, NOON),  # spent already
    (0, 100, 0.0, None),  # not spending
    (0, 100, 1.0, NOON + 100),  # 100 micros left at 1 per ms
    (0, 10**12, 1.0, None),  # not before the window ends and the budget resets
])
def test_when_a_budget_runs_out(spent: int, limit: int | None, rate: float, expected: int | None) -> None:
    assert runs_out_at(spent, limit, rate, NOON, NOON + DAY_MS // 2) == expected


def test_fleet_rows_and_spend() -> None:
    board = CircuitBoard(lambda model: CircuitConfig(consecutive_failures=2, min_calls=100, cooldown_ms=60_000),
                         lambda: NOON)
    fleet = FleetView(CallWindow(board, window_s=60))
    for i, latency in enumerate((10, 20, 30, 40)):
        fleet.add(CallRecord(model_id="a", ok=True, at_ms=NOON - 1000 * i, latency_ms=latency, cost_micros=600,
                             tenant="acme"))
    for i in range(2):
        fleet.add(CallRecord(model_id="b", ok=False, failure_class="server_error", at_ms=NOON - i, latency_ms=5))
    rows = {r.model: r for r in fleet.rows(NOON)}
    assert (rows["a"].latency_p50_ms, rows["a"].calls) == (25, 4)
    assert (rows["b"].breaker, rows["b"].failures, rows["b"].error_rate) == (
        "open", {"server_error": 2}, 1.0)
    day, month = fleet.spend(NOON, {"acme": BudgetLimits(per_day_micros=3_000)})
    assert (month.window, month.spent_micros, month.limit_micros, month.runs_out_ms) == ("month", 2_400, None, None)
    assert (day.tenant, day.window, day.spent_micros, day.limit_micros) == ("acme", "day", 2_400, 3_000)
    assert day.rate_micros_per_min == pytest.approx(2_400 / 3 * 60)  # over the 3 s since its first call
    assert day.runs_out_ms == NOON + int(600 / (2_400 / 3_000))


def test_a_chain_tasks_trail_reads_in_order_and_shows_no_raw_tool_arguments() -> None:
    task = TaskRequest(task_id="t1", created_ms=NOON, prompt="q?", mode="chain", tools=["echo"])
    step = StepContext(task_id="t1", model_id="flaky", created_ms=NOON, deadline_ms=NOON + 9)
    secret = "sk-live-" + "0123456789abcdef" * 2
    records = [  # (kafka timestamp, record): the failure and the retry's request share a millisecond
        (NOON, task),
        (NOON + 1, ModelRequest(task=task, model_id="flaky", deadline_ms=NOON + 9)),
        (NOON + 2, ModelRequest(task=task, model_id="fast-a", attempt=1, deadline_ms=NOON + 9)),
        (NOON + 2, Failure(step=step, failure_class="server_error")),
        (NOON + 3, ToolCall(request=ModelRequest(task=task, model_id="fast-a", attempt=1, deadline_ms=NOON + 9),
                            turn=0, call_id="c", tool="echo", arguments=f'{{"api_key": "{secret}"}}', digest="d")),
        (NOON + 4, ModelResponse(step=step.model_copy(update={"model_id": "fast-a", "attempt": 1}), text="4",
                                 answer="4")),
        (NOON + 4, TaskResult(task_id="t1", status="ok", answer="4", answered_by="fast-a")),
    ]
    index = TrailIndex()
    for offset, (at, record) in enumerate(reversed(records)):  # filed out of order, from several topics
        index.file(b"t1", Filed(f"topic-{type(record).__name__}", 0, offset, at, codec().encode(record)))
    events = index.events("t1", secrets=[])
    assert [e.kind for e in events] == ["TaskRequest", "ModelRequest", "Failure", "ModelRequest", "ToolCall",
                                        "ModelResponse", "TaskResult"]
    assert events[1].summary == "request to flaky (attempt 0)"
    assert events[3].summary == "request to fast-a (attempt 1)"
    assert all(secret not in e.detail and secret not in e.summary for e in events)
    assert "[REDACTED]" in events[4].detail
    assert index.events("nobody", secrets=[]) == []
