"""Changelog tables (``streams/changelog.py``) as the stores handlers see (``agents/*`` protocols),
each with a retention: an entry past its time is deleted with a tombstone on its changelog.

Every write is durable before its event is committed (``streams.engine._Outbox``). Deletion
runs in a timer, outside any handler (``Table.delete_now``), from an index by time
(:class:`ExpiryIndex`) so that no timer reads the whole table: the task table keeps every task
for ``SWARM_CONSENSUS_EXPIRES_S`` (2 h: millions of entries at a few hundred tasks/s), and one
scan of 20,000 states held the event loop ~40 ms.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from swarmstream.agents.taskstate import DoneRecord, State
from swarmstream.streams.changelog import Table
from swarmstream.streams.engine import flush


class ExpiryIndex:
    """Keys by the time they may go (a heap of ``(at_ms, key)``), checked again when due: an
    entry written since with a later time goes back in, one deleted or dropped is skipped. A key
    may be in it twice (indexed again after its partition came back): harmless, the second is
    skipped once the first deleted it."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []

    def add(self, at_ms: int, key: str) -> None:
        heapq.heappush(self._heap, (at_ms, key))

    def due(self, now_ms: int, at_ms: Callable[[str], int | None]) -> list[str]:
        """Keys whose time (``at_ms(key)``, None: gone) is ``now_ms`` or earlier; keys due by the
        index but not by their entry go back in with the entry's time."""
        heap = self._heap
        out = []
        later = []
        while heap and heap[0][0] <= now_ms:
            _, key = heapq.heappop(heap)
            at = at_ms(key)
            if at is None:
                continue
            if at <= now_ms:
                out.append(key)
            else:
                later.append((at, key))
        for item in later:
            heapq.heappush(heap, item)
        return out

    def __len__(self) -> int:
        return len(self._heap)


def _created_of(entry: Any) -> int:
    """The ``created_ms`` of a task table entry, ``[created_ms, state]``, held as a list or as
    its JSON bytes (a finished task): ``b"[1712345678901,{...``."""
    if type(entry) is bytes:
        return int(entry[1:entry.index(b",")])
    return int(entry[0])


DONE_PREFIX = b'{"done":true'
"""How a finished task's record begins (:class:`~swarmstream.agents.taskstate.DoneRecord`'s first
key), so a restore tells it without parsing it."""


def hold_task_entry(raw: bytes) -> Any:
    """How the task table holds a changelog value: a finished task as its bytes, an open one parsed.

    Bytes are never tracked by the garbage collector, and a finished task is read rarely (a
    redelivered event, a late outcome, feedback): parsing ~200 bytes then costs ~1 us. Held as
    dicts, 2 h of finished tasks were millions of containers that every full collection walked."""
    if raw.find(DONE_PREFIX, 0, 32) != -1:
        return raw
    entry = orjson.loads(raw)
    return raw if entry[1].get("done") else entry  # a full state marked done, as written before DoneRecord


class WindowedStore:
    """Task states by task id, each living ``expires_ms`` past its task's creation, then deleted
    with a tombstone on the changelog.

    Every event of a task carries ``created_ms``; an entry is ``[created_ms, state]``, an open
    task's held as that list, a finished task's (its :class:`DoneRecord`) as its JSON bytes
    (:func:`hold_task_entry`). Two heaps index the entries, so that neither timer reads the whole
    table: :meth:`expire` deletes entries by creation time, :meth:`past_deadline` finds the open
    tasks the deadline sweepers must end."""

    def __init__(self, table: Table, *, expires_ms: int) -> None:
        self._table = table
        table.hold = hold_task_entry  # also for what a restore reads
        self._expires_ms = expires_ms
        self._by_creation = ExpiryIndex()  # (created_ms + expires_ms, task id) of every entry
        self._by_deadline: list[tuple[int, str]] = []  # (deadline_ms, task id) of open tasks
        self._waited: set[str] = set()  # the task ids in _by_deadline

    def get(self, task_id: str, created_ms: int) -> State | None:
        entry = self._table.get(task_id)
        if entry is None:
            return None
        if type(entry) is bytes:
            return orjson.loads(entry)[1]  # type: ignore[no-any-return]
        return entry[1]  # type: ignore[no-any-return]

    def set(self, task_id: str, created_ms: int, state: State | DoneRecord) -> None:
        new = task_id not in self._table
        if state["done"]:
            encoded = orjson.dumps([created_ms, state])
            # a copy of its own size: orjson's bytes keep the ~4 KB buffer they were written in
            # (orjson 3.13), which held for the window cost more than the full state did
            self._table.put(task_id, encoded, memoryview(encoded).tobytes())
        else:
            self._table[task_id] = [created_ms, state]
            if task_id not in self._waited:
                self._wait(task_id, state["deadline_ms"])  # type: ignore[typeddict-item]  # open: a State
        if new:
            self._by_creation.add(created_ms + self._expires_ms, task_id)

    def reindex(self, partitions: Iterable[int]) -> None:
        """Index what a restore brought in for ``partitions`` (the changelog writes past :meth:`set`)."""
        table = self._table
        for task_id in table.keys_of(partitions):
            entry = table.get(task_id)
            if entry is None:
                continue
            self._by_creation.add(_created_of(entry) + self._expires_ms, task_id)
            if type(entry) is not bytes and not entry[1].get("done") and task_id not in self._waited:
                self._wait(task_id, entry[1]["deadline_ms"])

    def past_deadline(self, cutoff_ms: int) -> list[tuple[str, State]]:
        """The open tasks whose deadline is ``cutoff_ms`` or earlier; each is named by every
        call until it is done (or deleted)."""
        due = []
        while self._by_deadline and self._by_deadline[0][0] <= cutoff_ms:
            _, task_id = heapq.heappop(self._by_deadline)
            self._waited.discard(task_id)
            entry = self._table.get(task_id)
            if entry is not None and type(entry) is not bytes and not entry[1].get("done"):
                due.append((task_id, entry[1]))
        for task_id, state in due:
            self._wait(task_id, state["deadline_ms"])
        return due

    async def expire(self, now_ms: int) -> int:
        """Delete the entries created more than ``expires_ms`` before ``now_ms``, each with a
        tombstone on its changelog partition (acknowledged before this returns)."""
        old = self._by_creation.due(now_ms, self._expiry_of)
        if not old:
            return 0
        return await self._table.delete_now(old, still=lambda key: (at := self._expiry_of(key)) is not None
                                            and at <= now_ms)

    def _expiry_of(self, task_id: str) -> int | None:
        entry = self._table.get(task_id)
        return None if entry is None else _created_of(entry) + self._expires_ms

    def _wait(self, task_id: str, deadline_ms: int) -> None:
        heapq.heappush(self._by_deadline, (deadline_ms, task_id))  # a task's deadline never changes
        self._waited.add(task_id)


Expiry = Callable[[str, Any], int | None]
"""(key, value) -> when the entry may go (ms since epoch); None: it has no time of its own,
and goes the table's ``default_ms`` after this worker first indexed it."""


class Retained:
    """A table whose entries go once past their time, each with a tombstone on the changelog.

    The mapping handlers see (``get``, ``[]``, ``set``): what every table but the task tables is
    wrapped in, with the time its entries may go (``expiry``, from the key or the value) and a
    reason for it (``streams/topology.py``, ``tool_wiring.py``, ``workflow_wiring.py``)."""

    def __init__(self, table: Table, *, expiry: Expiry, default_ms: int,
                 clock: Callable[[], int]) -> None:
        self._table = table
        self._expiry = expiry
        self._default_ms = default_ms
        self._clock = clock
        self._index = ExpiryIndex()

    @property
    def table(self) -> Table:
        return self._table

    def get(self, key: str, default: Any = None) -> Any:
        return self._table.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._table[key]

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def __setitem__(self, key: str, value: Any) -> None:
        new = key not in self._table
        self._table[key] = value
        if new:
            self._add(key, value)

    set = __setitem__  # the tools' KeyValue protocol (agents/tools/agent.py)

    def __delitem__(self, key: str) -> None:
        del self._table[key]

    def items(self) -> Iterator[tuple[str, Any]]:
        return self._table.items()

    def __len__(self) -> int:
        return len(self._table)

    def reindex(self, partitions: Iterable[int]) -> None:
        """Index what a restore brought in for ``partitions``."""
        for key in self._table.keys_of(partitions):
            value = self._table.get(key)
            if value is not None:
                self._add(key, value)

    async def expire(self, now_ms: int) -> int:
        """Delete the entries whose time has come (a tombstone each, acknowledged on return)."""
        due = self._index.due(now_ms, self._time_of)
        if not due:
            return 0
        return await self._table.delete_now(due, still=lambda key: (at := self._time_of(key)) is not None
                                            and at <= now_ms)

    def _add(self, key: str, value: Any) -> None:
        at = self._expiry(key, value)
        self._index.add(self._clock() + self._default_ms if at is None else at, key)

    def _time_of(self, key: str) -> int | None:
        """An entry's time, for the index: None when it is gone; an entry with no time of its own
        is due when its index time is (the index is asked only then)."""
        if key not in self._table:
            return None
        at = self._expiry(key, self._table[key])
        return -1 if at is None else at


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

    def __init__(self, table: Table | Retained) -> None:
        self._table = table

    def get(self, key: str) -> dict[str, Any] | None:
        return self._table.get(key)  # type: ignore[no-any-return]

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self._table[key] = value
        await flush()
