"""Many events in flight per agent, offsets committed strictly in order.

faust-streaming's agent ``concurrency > 1`` commits offsets past events that
are still in flight (faust-streaming #606; DESIGN.md measured 9% of commits
going past an unfinished call, and lost events on a kill). The pattern that
measured fastest and lost nothing: one agent actor reads ``noack`` events,
starts a task per event under a semaphore, and acks each partition's events
in offset order: the head is acked only when it and everything before it is
done, and an event is done only when its table writes are in the changelog. A handler that raises is logged and its event acked (it cannot be
retried in place without blocking the partition); handlers own their error
paths (dead letters, Failure events).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from swarmstream.agents.ports import InputMessage
from swarmstream.streams import tracing

log = logging.getLogger(__name__)

Handler = Callable[[InputMessage], Awaitable[None]]

_table_writes: ContextVar[list[Any] | None] = ContextVar("swarm_table_writes", default=None)


def track_table_write(future: Any) -> None:
    """Called for every changelog write (see ``topology.durable``): the write joins the
    writes of the event being handled, and the event is acked only once they are all
    in the changelog. Faust's own flush before a commit gives up after 0.1 s, so an
    event could otherwise be committed while its table write was lost in a crash
    (seen: a restarted worker waited forever for an answer its state never got)."""
    writes = _table_writes.get()
    if writes is not None:
        writes.append(future)


def _headers(raw: Any) -> dict[str, bytes]:
    if not raw:
        return {}
    items = raw.items() if hasattr(raw, "items") else raw
    return {str(k): (v if isinstance(v, bytes) else str(v).encode()) for k, v in items}


def to_input(event: Any) -> InputMessage:
    message = event.message
    return InputMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=_headers(message.headers),
    )


class _Slot:
    __slots__ = ("event", "done")

    def __init__(self, event: Any) -> None:
        self.event = event
        self.done = False


async def run_in_order(stream: Any, handler: Handler, *, max_in_flight: int, name: str, traced: bool = False) -> None:
    """Drive ``handler`` over a Faust stream with up to ``max_in_flight`` events at once.

    ``traced``: each event is handled inside an OpenTelemetry span, child of the context its
    headers carry, so what the handler emits carries the trace on (``streams/tracing.py``)."""
    limit = asyncio.Semaphore(max_in_flight)
    queues: dict[Any, deque[_Slot]] = {}
    tasks: set[asyncio.Task[None]] = set()
    noack = stream.noack()

    async def ack_ready(tp: Any) -> None:
        queue = queues.get(tp)
        while queue and queue[0].done:
            await noack.ack(queue.popleft().event)

    async def run(slot: _Slot, message: InputMessage) -> None:
        writes: list[Any] = []
        _table_writes.set(writes)  # this task's own context: only its writes land here
        try:
            if traced:
                with tracing.span(name, message.headers, topic=message.topic, partition=message.partition,
                                  offset=message.offset):
                    await handler(message)
            else:
                await handler(message)
            if writes:
                await asyncio.gather(*writes)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: handler failed on %s[%d]@%d", name, message.topic, message.partition, message.offset,
                          extra={"topic": message.topic, "partition": message.partition, "offset": message.offset,
                                 "task_id": (message.key or b"").decode("utf-8", "replace")})
        finally:
            slot.done = True
            limit.release()
        await ack_ready(slot.event.message.tp)

    try:
        async for event in noack.events():
            await limit.acquire()
            slot = _Slot(event)
            queues.setdefault(event.message.tp, deque()).append(slot)
            task = asyncio.create_task(run(slot, to_input(event)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in tasks:
            task.cancel()
