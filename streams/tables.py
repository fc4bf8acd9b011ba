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

    Every event of a task carries ``created_ms``; an entry is ``[created_ms, state]``.
    Two heaps index the entries, so that neither timer reads the whole table: it keeps
    finished tasks for ``expires_ms`` (``SWARM_CONSENSUS_EXPIRES_S``, 2 h: millions of
    entries at a few hundred tasks/s), and one scan of 20,000 states held the event loop
    ~40 ms. :meth:`expire` forgets entries by creation time, :meth:`past_deadline` finds
    the open tasks the deadline sweepers must end."""

    def __init__(self, table: Table, *, expires_ms: int) -> None:
        self._table = table
        self._expires_ms = expires_ms
        self._by_creation: list[tuple[int, str]] = []  # (created_ms, task id) of every entry
        self._by_deadline: list[tuple[int, str]] = []  # (deadline_ms, task id) of open tasks
        self._dated: set[str] = set()  # the task ids in _by_creation
        self._waited: set[str] = set()  # the task ids in _by_deadline

    def get(self, task_id: str, created_ms: int) -> State | None:
        entry = self._table.get(task_id)
        return entry[1] if entry is not None else None

    def set(self, task_id: str, created_ms: int, state: State) -> None:
        self._table[task_id] = [created_ms, state]
        self._index(task_id, created_ms, state)

    def reindex(self) -> None:
        """Index what a restore brought in (the changelog writes past :meth:`set`)."""
        for task_id, (created_ms, state) in self._table.items():
            if state is not None:
                self._index(task_id, created_ms, state)

    def past_deadline(self, cutoff_ms: int) -> list[tuple[str, State]]:
        """The open tasks whose deadline is ``cutoff_ms`` or earlier; each is named by every
        call until it is done (or forgotten)."""
        due = []
        while self._by_deadline and self._by_deadline[0][0] <= cutoff_ms:
            _, task_id = heapq.heappop(self._by_deadline)
            self._waited.discard(task_id)
            state = self.get(task_id, 0)
            if state is not None and not state.get("done"):
                due.append((task_id, state))
        for task_id, state in due:
            self._wait(task_id, state)
        return due

    def expire(self, now_ms: int) -> int:
        cutoff = now_ms - self._expires_ms
        old = []
        while self._by_creation and self._by_creation[0][0] < cutoff:
            _, task_id = heapq.heappop(self._by_creation)
            self._dated.discard(task_id)
            entry = self._table.get(task_id)
            if entry is not None:
                if entry[0] < cutoff:
                    old.append(task_id)
                else:
                    self._index(task_id, entry[0], entry[1])
        self._table.forget(old)
        return len(old)

    def _index(self, task_id: str, created_ms: int, state: State) -> None:
        if task_id not in self._dated:
            heapq.heappush(self._by_creation, (created_ms, task_id))
            self._dated.add(task_id)
        if task_id not in self._waited and not state.get("done"):
            self._wait(task_id, state)

    def _wait(self, task_id: str, state: State) -> None:
        heapq.heappush(self._by_deadline, (state["deadline_ms"], task_id))  # a task's deadline never changes
        self._waited.add(task_id)


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
