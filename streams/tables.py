"""Changelog tables (``streams/changelog.py``) as the stores handlers see (``agents/*`` protocols).

Every write is durable before its event is committed (``streams.engine._Outbox``).
"""

from __future__ import annotations

import heapq
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
        self._deadlines: list[tuple[int, str]] = []  # a heap of (deadline_ms, task id) of open tasks
        self._indexed: set[str] = set()

    def get(self, task_id: str, created_ms: int) -> State | None:
        entry = self._table.get(task_id)
        return entry[1] if entry is not None else None

    def set(self, task_id: str, created_ms: int, state: State) -> None:
        self._table[task_id] = [created_ms, state]
        if task_id not in self._indexed and not state.get("done"):
            self._index(task_id, state)

    def past_deadline(self, cutoff_ms: int) -> list[tuple[str, State]]:
        """The open tasks whose deadline is ``cutoff_ms`` or earlier, for the deadline sweepers;
        each is returned by every call until it is done (or forgotten).

        From an index of open tasks by deadline, not a scan: the table keeps finished tasks
        for ``SWARM_CONSENSUS_EXPIRES_S`` (2 h: millions at a few hundred tasks/s), and a
        scan of 20,000 states held the event loop ~40 ms, once a second."""
        due = []
        while self._deadlines and self._deadlines[0][0] <= cutoff_ms:
            _, task_id = heapq.heappop(self._deadlines)
            self._indexed.discard(task_id)
            state = self.get(task_id, 0)
            if state is not None and not state.get("done"):
                due.append((task_id, state))
        for task_id, state in due:
            self._index(task_id, state)
        return due

    def reindex(self) -> None:
        """Index the open tasks a restore brought in (the changelog writes past :meth:`set`)."""
        for task_id, entry in self._table.items():
            if task_id not in self._indexed and entry[1] is not None and not entry[1].get("done"):
                self._index(task_id, entry[1])

    def _index(self, task_id: str, state: State) -> None:
        heapq.heappush(self._deadlines, (state["deadline_ms"], task_id))  # a task's deadline never changes
        self._indexed.add(task_id)

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
