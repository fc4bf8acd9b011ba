"""Changelog tables (``streams/changelog.py``) as the stores handlers see (``agents/*`` protocols).

Every write is durable before its event is committed (``streams.engine._Outbox``).
"""

from __future__ import annotations

from typing import Any

from swarmstream.agents.taskstate import State
from swarmstream.streams.changelog import Table
from swarmstream.streams.engine import flush


class WindowedStore:
    """Task states by task id, each living ``expires_ms`` past its task's creation.

    Every event of a task carries ``created_ms``; an entry is ``[created_ms, state]``, so
    :meth:`expire` (a timer) forgets finished tasks' states, the dedupe records of a task
    that is long over, without reading them."""

    def __init__(self, table: Table, *, expires_ms: int) -> None:
        self._table = table
        self._expires_ms = expires_ms

    def get(self, task_id: str, created_ms: int) -> State | None:
        entry = self._table.get(task_id)
        return entry[1] if entry is not None else None

    def set(self, task_id: str, created_ms: int, state: State) -> None:
        self._table[task_id] = [created_ms, state]

    def items(self) -> list[tuple[str, State]]:
        """This worker's task states (its partitions), for the deadline sweeper."""
        return [(task_id, entry[1]) for task_id, entry in self._table.items() if entry[1] is not None]

    def expire(self, now_ms: int) -> int:
        old = [task_id for task_id, entry in self._table.items() if entry[0] + self._expires_ms < now_ms]
        self._table.forget(old)
        return len(old)


class ShardedCounters:
    """Counters per ``name|shard`` in a table, the shard being the input partition
    (each shard has one writer; readers add the shards up)."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def add(self, name: str, metric: str, amount: int, partition: int) -> None:
        key = f"{name}|{partition}"
        counts = dict(self._table.get(key) or {})
        counts[metric] = counts.get(metric, 0) + amount
        self._table[key] = counts


class TableLedger:
    """The tool ledger: :meth:`put` returns once the entry is in the changelog, so the
    ToolResult that follows is never published ahead of its ledger entry."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, key: str) -> dict[str, Any] | None:
        return self._table.get(key)  # type: ignore[no-any-return]

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self._table[key] = value
        await flush()
