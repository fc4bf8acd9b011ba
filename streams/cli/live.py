"""Live views of a running deployment: ``swarmstream top`` and ``swarmstream tail``.

Both read the logs the workers already write, with group-less consumers
(like ``swarmstream stats``, streams/cli/stats_view.py), so they need no worker
and disturb none:

- ``top`` folds ``swarm.calls`` (one CallRecord per model call) into a table
  per model over a sliding window: requests/s, p95 latency, error rate,
  cost per minute, and the breaker state, which it folds from the whole log
  exactly as every worker does (agents/fallback/board.py); the window itself
  is streams/observe/calls.py, which the console's fleet page shares.
- ``tail`` prints results from ``swarm.results`` as they arrive, optionally
  only some statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import CallRecord, TaskResult, now_ms
from swarmstream.streams.app.security import aiokafka_security
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import bootstrap_servers, topic_partitions
from swarmstream.streams.engine.changelog import read_to_end
from swarmstream.streams.observe.calls import MIN_SPAN_MS, CallWindow, ModelRow

__all__ = ["MIN_SPAN_MS", "CallWindow", "ModelRow", "collect_top", "render_top", "run_tail", "run_top"]

TOPIC_WAIT_S = 3.0
"""How long a view waits for its topic to appear (a deployment that is still creating topics)."""


BREAKER_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}


def render_top(rows: Sequence[ModelRow], *, window_s: float, title: str = "swarmstream top") -> Table:
    table = Table(title=f"{title} (last {window_s:.0f} s)", title_justify="left")
    for name, justify in (("model", "left"), ("req/s", "right"), ("calls", "right"), ("p95 ms", "right"),
                          ("errors", "right"), ("breaker", "left"), ("$/min", "right"), ("failures", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.model,
            f"{r.requests_per_s:.2f}",
            str(r.calls),
            f"{r.latency_p95_ms:.0f}" if r.latency_p95_ms is not None else "-",
            Text(f"{r.error_rate:.0%}", style="red" if r.error_rate > 0.1 else ""),
            Text(r.breaker, style=BREAKER_STYLE.get(r.breaker, "")),
            f"{r.cost_micros_per_min / 1e6:.6f}",
            ", ".join(f"{k} {v}" for k, v in sorted(r.failures.items())),
        )
    return table


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings.broker), group_id=None, fetch_max_wait_ms=100,
                            enable_auto_commit=False, **aiokafka_security(settings))


async def _assign(consumer: AIOKafkaConsumer, topic: str, *, from_beginning: bool, timeout_s: float) -> None:
    # Ask for the list of all topics first: a metadata request naming a missing topic makes
    # brokers that auto-create topics (Tansu, Kafka's default) create it, so a mistyped
    # prefix would leave a stray topic behind.
    deadline = time.monotonic() + timeout_s
    while topic not in await consumer.topics():
        if time.monotonic() > deadline:
            raise LiveViewError(f"topic {topic} not found on {settings_hint(consumer)}: "
                                "check SWARM_BROKER and SWARM_TOPIC_PREFIX")
        await asyncio.sleep(0.2)
    tps = await topic_partitions(consumer, topic, timeout_s=timeout_s)
    consumer.assign(tps)
    if from_beginning:
        await consumer.seek_to_beginning(*tps)
    else:
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the lazy seek now: "from now on" means from this call
            await consumer.position(tp)


def settings_hint(consumer: AIOKafkaConsumer) -> str:
    return str(consumer._client._bootstrap_servers)


class LiveViewError(RuntimeError):
    """A live view cannot start; the message says which setting to check."""


def _fold(window: CallWindow, batches: dict[object, list[object]]) -> int:
    folded = 0
    for records in batches.values():
        for record in records:
            with contextlib.suppress(DecodeError):
                window.add(codec().decode_as(record.value or b"", CallRecord))  # type: ignore[attr-defined]
                folded += 1
    return folded


def _call_window(settings: Settings, window_s: float) -> CallWindow:
    """An empty window whose breakers follow the configured chains' circuit settings."""
    from swarmstream.agents.models.catalog import load_catalog
    from swarmstream.streams.app.topology import chains_for

    config = chains_for(settings, load_catalog(settings.models, sim_url=settings.sim_url or "http://127.0.0.1:1/v1"))
    return CallWindow(CircuitBoard(config.circuit_for, now_ms), window_s=window_s)


async def collect_top(settings: Settings, *, window_s: float = 60.0) -> list[ModelRow]:
    """One snapshot: the call log read to its end, folded."""
    window = _call_window(settings, window_s)
    consumer = _consumer(settings)
    await consumer.start()
    try:
        await _assign(consumer, settings.topics.calls, from_beginning=True, timeout_s=TOPIC_WAIT_S)
        firsts = await consumer.beginning_offsets(list(consumer.assignment()))
        await read_to_end(consumer, firsts, lambda tp, batch: _fold(window, {tp: batch}))
    finally:
        await consumer.stop()
    return window.rows(now_ms())


async def run_top(settings: Settings, *, once: bool = False, window_s: float = 60.0, refresh_s: float = 1.0,
                  console: Console | None = None, on_ready: Callable[[], None] | None = None) -> int:
    """The live table until cancelled (``once``: one snapshot). ``on_ready`` is called once the
    call log is assigned, before the first paint (not with ``once``)."""
    console = console or Console()
    try:
        if once:
            console.print(render_top(await collect_top(settings, window_s=window_s), window_s=window_s))
            return 0
        return await _top_forever(settings, window_s=window_s, refresh_s=refresh_s, console=console,
                                  on_ready=on_ready)
    except LiveViewError as exc:
        console.print(f"swarmstream top: {exc}", style="red")
        return 2


async def _top_forever(settings: Settings, *, window_s: float, refresh_s: float, console: Console,
                       on_ready: Callable[[], None] | None = None) -> int:
    """Paints until cancelled (streams/cli/signals.py cancels it on SIGTERM/SIGINT); the consumer is
    closed on the way out."""
    window = _call_window(settings, window_s)
    consumer = _consumer(settings)
    await consumer.start()
    try:
        await _assign(consumer, settings.topics.calls, from_beginning=True, timeout_s=TOPIC_WAIT_S)
        if on_ready is not None:
            on_ready()
        with Live(render_top([], window_s=window_s), console=console, auto_refresh=False) as live:
            next_paint = 0.0
            while True:
                _fold(window, await consumer.getmany(timeout_ms=int(refresh_s * 1000 / 2), max_records=5000))
                if time.monotonic() >= next_paint:
                    live.update(render_top(window.rows(now_ms()), window_s=window_s), refresh=True)
                    next_paint = time.monotonic() + refresh_s
    finally:
        await consumer.stop()


TAIL_REMEMBERS = 100_000
"""Task ids remembered to skip repeated results; a repeat comes within seconds of the first
(a crash between the result and its done mark), far inside this many results."""

STATUS_STYLE = {"ok": "green", "low_consensus": "yellow", "partial": "yellow", "timeout": "red", "failed": "bold red",
                "budget_exceeded": "magenta", "rejected": "magenta"}


def parse_statuses(values: Iterable[str] | None) -> frozenset[str] | None:
    """``--status ok --status failed,timeout`` -> {"ok", "failed", "timeout"}; None = every status."""
    if not values:
        return None
    return frozenset(s.strip() for value in values for s in value.split(",") if s.strip())


def render_result(result: TaskResult) -> Text:
    latency_ms = result.completed_ms - result.created_ms if result.completed_ms else None
    answer = (result.answer or "").replace("\n", " ")
    line = Text()
    line.append(f"{result.task_id[:32]:<32} ")
    line.append(f"{result.status:<15}", style=STATUS_STYLE.get(result.status, ""))
    line.append(f" {result.mode:<9} {answer[:40]!r:<42} ")
    line.append(f"by {result.answered_by or '-':<12} agree {result.agreement:.2f} ")
    line.append(f"{latency_ms if latency_ms is not None else '-':>6} ms  ${result.cost_micros / 1e6:.6f}")
    if result.reason:
        line.append(f"  {result.reason[:80]}", style="dim")
    return line


async def run_tail(settings: Settings, *, statuses: Iterable[str] | None = None, from_beginning: bool = False,
                   idle_exit_s: float | None = None, as_json: bool = False, console: Console | None = None,
                   on_ready: Callable[[], None] | None = None) -> int:
    """Print each result (the first of a task; at-least-once repeats are skipped) as it arrives.

    ``idle_exit_s`` ends the tail after that long without a new result (for scripts and tests);
    ``on_ready`` is called once the consumer's position is fixed, so nothing published after it is missed."""
    console = console or Console()
    wanted = parse_statuses(statuses)
    seen: set[str] = set()
    order: deque[str] = deque()  # forget the oldest ids past TAIL_REMEMBERS: a long tail stays small
    consumer = _consumer(settings)
    await consumer.start()
    try:
        await _assign(consumer, settings.topics.results, from_beginning=from_beginning, timeout_s=TOPIC_WAIT_S)
        if on_ready is not None:
            on_ready()
        last = time.monotonic()
        while idle_exit_s is None or time.monotonic() - last < idle_exit_s:
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            for records in batches.values():
                for record in records:
                    try:
                        result = codec().decode_as(record.value or b"", TaskResult)
                    except DecodeError:
                        continue
                    if result.task_id in seen:
                        continue
                    seen.add(result.task_id)
                    order.append(result.task_id)
                    if len(order) > TAIL_REMEMBERS:
                        seen.discard(order.popleft())
                    last = time.monotonic()
                    if wanted is None or result.status in wanted:
                        if as_json:
                            console.print(result.model_dump_json(), markup=False, highlight=False, soft_wrap=True)
                        else:
                            console.print(render_result(result), soft_wrap=True)
    except LiveViewError as exc:
        console.print(f"swarmstream tail: {exc}", style="red")
        return 2
    finally:
        await consumer.stop()
    return 0
