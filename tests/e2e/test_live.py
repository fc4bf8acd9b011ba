"""`swarmstream top` and `swarmstream tail` on the real broker, and the window arithmetic behind top."""

from __future__ import annotations

import asyncio
import io

import orjson
import pytest
from rich.console import Console
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.circuit import CircuitConfig
from swarmstream.schemas.models import CallRecord, TaskRequest
from swarmstream.streams.cli.live import (
    CallWindow,
    collect_top,
    parse_statuses,
    render_top,
    run_tail,
    run_top,
)


def call(model: str, at_ms: int, *, ok: bool = True, latency_ms: int = 10, cost_micros: int = 0,
         failure: str | None = None) -> CallRecord:
    return CallRecord(model_id=model, ok=ok, failure_class=failure if not ok else None, at_ms=at_ms,
                      latency_ms=latency_ms, cost_micros=cost_micros)


def window_of(records: list[CallRecord], window_s: float = 10.0) -> CallWindow:
    board = CircuitBoard(lambda model: CircuitConfig(consecutive_failures=2, min_calls=100, cooldown_ms=60_000),
                         lambda: 100_000)
    window = CallWindow(board, window_s=window_s)
    for record in records:
        window.add(record)
    return window


NOW = 100_000


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        # 10 calls in a full 10 s window: 1/s; p95 of 1..10 ms; cost 100 micros / (1/6 min)
        ([call("m", NOW - 10_000 + i * 1000, latency_ms=i + 1, cost_micros=10) for i in range(10)],
         {"calls": 10, "requests_per_s": 1.0, "latency_p95_ms": 9.55, "error_rate": 0.0,
          "cost_micros_per_min": 600.0, "breaker": "closed"}),
        # calls older than the window are left out
        ([call("m", NOW - 30_000), call("m", NOW - 2_000), call("m", NOW - 1_000)],
         {"calls": 2, "requests_per_s": 1.0, "error_rate": 0.0}),
        # a young log: the rate is over the time since its first call, not the whole window
        ([call("m", NOW - 500 * i) for i in range(4)], {"calls": 4, "requests_per_s": 4 / 1.5}),
        # one call just now: at most one per MIN_SPAN_MS, not a thousand per second
        ([call("m", NOW)], {"calls": 1, "requests_per_s": 1.0}),
        # two failures in a row open this board's breaker; errors by class
        ([call("m", NOW - 3000), call("m", NOW - 2000, ok=False, failure="server_error"),
          call("m", NOW - 1000, ok=False, failure="timeout")],
         {"calls": 3, "error_rate": 2 / 3, "breaker": "open", "failures": {"server_error": 1, "timeout": 1}}),
    ],
)
def test_the_window_per_model(records: list[CallRecord], expected: dict[str, object]) -> None:
    (row,) = window_of(records).rows(NOW)
    for name, value in expected.items():
        got = getattr(row, name)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, name


def test_models_are_listed_apart_and_idle_ones_show_zero() -> None:
    window = window_of([call("a", NOW - 20_000), call("b", NOW - 1000)])
    rows = {r.model: r for r in window.rows(NOW)}
    assert (rows["a"].calls, rows["a"].requests_per_s, rows["a"].latency_p95_ms) == (0, 0.0, None)
    assert rows["b"].calls == 1


@pytest.mark.parametrize(("values", "expected"), [
    (None, None), ([], None), (["ok"], {"ok"}), (["failed,timeout", "ok"], {"failed", "timeout", "ok"}),
])
def test_status_filter(values: list[str] | None, expected: set[str] | None) -> None:
    assert parse_statuses(values) == (frozenset(expected) if expected is not None else None)


def chain_task(chain: str, i: int) -> TaskRequest:
    return TaskRequest(prompt=f"What is {i} + 1? Answer with a number.", answer_type="number", mode="chain", chain=chain)


async def test_top_once_and_tail_on_a_running_stack(stack) -> None:
    settings = stack.settings.model_copy(update={"broker": stack.broker_url})
    tail_out = io.StringIO()
    ready = asyncio.Event()
    tail = asyncio.create_task(run_tail(settings, statuses=["failed"], idle_exit_s=3.0, as_json=True,
                                        console=Console(file=tail_out, width=400), on_ready=ready.set))
    await asyncio.wait_for(ready.wait(), timeout=20)

    ok_tasks = [chain_task("two", i) for i in range(4)]  # flaky fails, fast-a answers: ok
    doomed = [chain_task("doomed", i) for i in range(2)]  # every link fails: failed
    breaker = [chain_task("breaker", i) for i in range(3)]  # three failures open its breaker
    for task in ok_tasks + doomed + breaker:
        await stack.client.submit(task)
    results = {t.task_id: await stack.client.result(t.task_id, timeout_s=30) for t in ok_tasks + doomed + breaker}
    assert [results[t.task_id].status for t in doomed] == ["failed", "failed"]

    # tail: only the failed results, each once, as JSON lines
    assert await asyncio.wait_for(tail, timeout=60) == 0
    lines = [orjson.loads(line) for line in tail_out.getvalue().splitlines() if line.strip()]
    assert sorted(line["task_id"] for line in lines) == sorted(t.task_id for t in doomed)
    assert {line["status"] for line in lines} == {"failed"}

    # top: per-model numbers agree with what the fleet served
    fleet = stack.fleet.counters
    rows = {r.model: r for r in await collect_top(settings, window_s=300)}
    for model in ("flaky", "fast-a", "breaker"):
        assert rows[model].calls == fleet[model]["calls"], model
    assert rows["flaky"].error_rate == 1.0 and rows["flaky"].failures == {"server_error": 6}  # 4 two + 2 doomed
    assert rows["fast-a"].error_rate == 0.0 and rows["fast-a"].latency_p95_ms is not None
    assert rows["fast-a"].cost_micros_per_min > 0
    assert rows["breaker"].breaker == "open" and rows["fast-a"].breaker == "closed"

    screen = Console(file=io.StringIO(), width=200, record=True)
    assert await run_top(settings, once=True, window_s=300, console=screen) == 0
    text = screen.export_text()
    assert "swarmstream top" in text and "breaker" in text and "open" in text and "req/s" in text
    rendered = Console(file=io.StringIO(), width=200, record=True)
    rendered.print(render_top(list(rows.values()), window_s=300))
    assert "server_error 6" in rendered.export_text()


async def test_tail_names_the_setting_when_the_topic_is_missing(broker_url: str) -> None:
    from swarmstream.streams.app.settings import Settings

    out = io.StringIO()
    settings = Settings(broker=broker_url, topic_prefix="no-such-prefix-xyz")
    code = await run_tail(settings, idle_exit_s=0.1, console=Console(file=out, width=200))
    assert code == 2
    assert "no-such-prefix-xyz.results not found" in out.getvalue() and "SWARM_TOPIC_PREFIX" in out.getvalue()
