"""The stores handlers see (``agents/*`` protocols) over the engine's changelog tables: the
task table (:class:`WindowedStore`), counters and the tool ledger.

Every write is durable before its event is committed (``streams.engine``). The task table keeps
every task for ``SWARM_CONSENSUS_EXPIRES_S`` (2 h: millions of entries at a few hundred
tasks/s), so its timers use indexes by time and never read the whole table.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

import orjson
from swarmstream.agents.donecodec import (
    created_of,
    decode_done,
    encode_done,
    is_done_entry,
)
from swarmstream.agents.taskstate import DoneRecord, State
from swarmstream.streams.engine import flush
from swarmstream.streams.engine.changelog import Table, own_sized
from swarmstream.streams.engine.tables import ExpiryIndex, Retained


def _created_of(entry: Any) -> int:
    """The ``created_ms`` of a task table entry, ``[created_ms, state]``, held as a list or, a
    finished task, as its bytes: compact (``agents/donecodec.py``) or JSON, ``b"[1712345678901,{...``."""
    if type(entry) is bytes:
        return created_of(entry) if is_done_entry(entry) else int(entry[1:entry.index(b",")])
    return int(entry[0])


def _done_of(entry: bytes) -> State | DoneRecord:
    return decode_done(entry)[1] if is_done_entry(entry) else orjson.loads(entry)[1]  # type: ignore[no-any-return]


DONE_PREFIX = b'{"done":true'
"""How a finished task's record begins (:class:`~swarmstream.agents.taskstate.DoneRecord`'s first
key), so a restore tells it without parsing it."""


def hold_task_entry(raw: bytes) -> Any:
    """How the task table holds a changelog value: a finished task as its bytes, an open one parsed.

    Bytes are never tracked by the garbage collector, and a finished task is read rarely (a
    redelivered event, a late outcome, feedback): decoding ~120 bytes then costs ~2 us. Held as
    dicts, 2 h of finished tasks were millions of containers that every full collection walked."""
    if is_done_entry(raw) or raw.find(DONE_PREFIX, 0, 32) != -1:
        return raw
    entry = orjson.loads(raw)
    return raw if entry[1].get("done") else entry  # a full state marked done, as written before DoneRecord


EXPIRY_BUCKET_MS = 1_000
"""The task table's expiry index keeps tasks by the second their window ends: a task goes at most
1 s after its 2 h, and the index costs ~8 bytes a task instead of ~100 (``ExpiryIndex`` by the second)."""


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
        self._by_creation = ExpiryIndex(bucket_ms=EXPIRY_BUCKET_MS)  # created_ms + expires_ms -> task ids, every entry
        self._by_deadline: list[tuple[int, str]] = []  # (deadline_ms, task id) of open tasks
        self._waited: set[str] = set()  # the task ids in _by_deadline

    def get(self, task_id: str, created_ms: int) -> State | None:
        entry = self._table.get(task_id)
        if entry is None:
            return None
        if type(entry) is bytes:
            return _done_of(entry)  # type: ignore[return-value]  # a DoneRecord is a finished State
        return entry[1]  # type: ignore[no-any-return]

    def set(self, task_id: str, created_ms: int, state: State | DoneRecord) -> None:
        new = task_id not in self._table
        if state["done"]:
            encoded = encode_done(created_ms, state)  # type: ignore[arg-type]  # done: a DoneRecord
            if encoded is None:  # a record the compact form cannot hold exactly (never written by Finisher)
                encoded = own_sized(orjson.dumps([created_ms, state]))  # held for the window
            self._table.put(task_id, encoded, encoded)
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
