"""Faust tables as the stores handlers see (``agents/*`` protocols), every write durable.

A handler's input event is acked only once the table writes it made are in the
changelog (:func:`durable`, :func:`streams.inflight.track_table_write`): Faust's own
flush before a commit gives up after 0.1 s, and a crash could otherwise commit an
event whose state was lost.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

from swarmstream.agents.taskstate import State
from swarmstream.streams.inflight import track_table_write


def durable(table: Any) -> Any:
    """Make every changelog write of ``table`` hold back the ack of the event that made it
    (:func:`streams.inflight.track_table_write`)."""
    send = table.send_changelog

    def send_and_track(*args: Any, **kwargs: Any) -> Any:
        future = send(*args, **kwargs)
        track_table_write(future)
        return future

    table.send_changelog = send_and_track
    return table


class WindowedStore:
    """The task table addressed by the task's creation time.

    Every event of a task carries ``created_ms``, so all of them land in the
    same tumbling window however late they arrive; windows expire by wall
    clock, which is what garbage-collects finished tasks' dedupe records.
    Writes are durable before their event is acked (:func:`durable`).
    """

    def __init__(self, wrapper: Any) -> None:
        self._table = durable(wrapper.table)
        self._window = wrapper.table.window

    def _key(self, task_id: str, created_ms: int) -> tuple[str, tuple[float, float]]:
        start, end = self._window.ranges(created_ms / 1000)[0]
        return task_id, (start, end)

    def get(self, task_id: str, created_ms: int) -> State | None:
        return self._table.get(self._key(task_id, created_ms))

    def set(self, task_id: str, created_ms: int, state: State) -> None:
        self._table[self._key(task_id, created_ms)] = state

    def items(self) -> list[tuple[str, State]]:
        """This worker's task states (its partitions), for the deadline sweeper."""
        return [(key[0], state) for key, state in list(self._table.data.items()) if state is not None]


class ShardedCounters:
    """Counters per ``name|shard`` in a table, the shard being the input partition
    (each shard has one writer; readers add the shards up)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def add(self, name: str, metric: str, amount: int, partition: int) -> None:
        key = f"{name}|{partition}"
        counts = dict(self._table.get(key) or {})
        counts[metric] = counts.get(metric, 0) + amount
        self._table[key] = counts


_captured_writes: ContextVar[list[Any] | None] = ContextVar("swarm_captured_writes", default=None)


class TableKV:
    """A durable Faust table as ``get``/``set`` (agents/tools/agent.KeyValue)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str) -> Any:
        return self._table.get(key)

    def set(self, key: str, value: Any) -> None:
        self._table[key] = value


class TableLedger:
    """The ledger: :meth:`put` returns once the entry is in the changelog, so the ToolResult
    that follows is never published ahead of its ledger entry."""

    def __init__(self, table: Any) -> None:
        send = table.send_changelog  # already wrapped by durable(): the event's ack waits too

        def send_and_capture(*args: Any, **kwargs: Any) -> Any:
            future = send(*args, **kwargs)
            sink = _captured_writes.get()
            if sink is not None:
                sink.append(future)
            return future

        table.send_changelog = send_and_capture
        self._table = table

    def get(self, key: str) -> dict[str, Any] | None:
        return self._table.get(key)  # type: ignore[no-any-return]

    async def put(self, key: str, value: dict[str, Any]) -> None:
        writes: list[Any] = []
        token = _captured_writes.set(writes)
        try:
            self._table[key] = value
        finally:
            _captured_writes.reset(token)
        await asyncio.gather(*writes)
