"""The stores handlers see (``agents/*`` protocols) over the engine's changelog tables: the
task table (:class:`WindowedStore`), counters and the tool ledger.

Every write is durable before its event is committed (``streams.engine``). The task table keeps
every task for ``SWARM_CONSENSUS_EXPIRES_S`` (2 h: millions of entries at a few hundred
tasks/s), so its timers use indexes by time and never read the whole table, and a finished
task leaves memory for the table's settled file (``streams/engine/settled.py``).
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
from swarmstream.streams.engine.tables import Retained


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


EXPIRE_AT_ONCE = 20_000
"""Finished tasks an expiry round asks the settled file for at a time, until it has no more due: a
worker restarted after hours finds a large backlog, and its keys are never all in memory at once."""


class WindowedStore:
    """Task states by task id, each finished one living ``expires_ms`` past its task's creation,
    then deleted with a tombstone on the changelog.

    Every event of a task carries ``created_ms``; an entry is ``[created_ms, state]``, an open
    task's held as that list, a finished task's (its :class:`DoneRecord`) as its bytes
    (:func:`hold_task_entry`), which leave memory for the table's settled file once written
    (``Table.settle_with``): ~0 bytes of heap a finished task, where in memory one took ~310.
    Neither timer reads the whole table: :meth:`expire` asks the settled file for the tasks whose
    window ended, :meth:`past_deadline` pops the open tasks the deadline sweepers must end from a
    heap. An open task never expires: the sweepers end it at its deadline, and it settles then."""

    def __init__(self, table: Table, *, expires_ms: int) -> None:
        self._table = table
        table.hold = hold_task_entry  # also for what a restore reads
        table.settle_with(self._window_end)
        self._expires_ms = expires_ms
        self._by_deadline: list[tuple[int, str]] = []  # (deadline_ms, task id) of open tasks
        self._waited: set[str] = set()  # the task ids in _by_deadline

    def _window_end(self, entry: Any) -> int | None:
        """When a finished task (held as bytes) goes; None for an open one (it stays in memory)."""
        return _created_of(entry) + self._expires_ms if type(entry) is bytes else None

    def get(self, task_id: str, created_ms: int) -> State | None:
        entry = self._table.get(task_id)
        if entry is None:
            return None
        if type(entry) is bytes:
            return _done_of(entry)  # type: ignore[return-value]  # a DoneRecord is a finished State
        return entry[1]  # type: ignore[no-any-return]

    def is_open(self, task_id: str) -> bool:
        """Whether the task is held open (an open task is always in memory: no file read)."""
        entry = self._table.in_memory(task_id)
        return entry is not None and type(entry) is not bytes and not entry[1].get("done")

    def set(self, task_id: str, created_ms: int, state: State | DoneRecord) -> None:
        if state["done"]:
            encoded = encode_done(created_ms, state)  # type: ignore[arg-type]  # done: a DoneRecord
            if encoded is None:  # a record the compact form cannot hold exactly (never written by Finisher)
                encoded = own_sized(orjson.dumps([created_ms, state]))  # held for the window
            self._table.put(task_id, encoded, encoded)
        else:
            self._table[task_id] = [created_ms, state]
            if task_id not in self._waited:
                self._wait(task_id, state["deadline_ms"])  # type: ignore[typeddict-item]  # open: a State

    def reindex(self, partitions: Iterable[int]) -> None:
        """Index the open tasks a restore brought in for ``partitions`` (the changelog writes past :meth:`set`)."""
        for task_id in self._table.keys_of(partitions):
            if self.is_open(task_id) and task_id not in self._waited:
                self._wait(task_id, self._table.in_memory(task_id)[1]["deadline_ms"])

    def past_deadline(self, cutoff_ms: int) -> list[tuple[str, State]]:
        """The open tasks whose deadline is ``cutoff_ms`` or earlier; each is named by every
        call until it is done (or deleted)."""
        due = []
        while self._by_deadline and self._by_deadline[0][0] <= cutoff_ms:
            _, task_id = heapq.heappop(self._by_deadline)
            self._waited.discard(task_id)
            if self.is_open(task_id):
                due.append((task_id, self._table.in_memory(task_id)[1]))
        for task_id, state in due:
            self._wait(task_id, state["deadline_ms"])
        return due

    async def expire(self, now_ms: int) -> int:
        """Delete the finished tasks created more than ``expires_ms`` before ``now_ms``, each with a
        tombstone on its changelog partition (acknowledged before this returns), asking the file for
        ``EXPIRE_AT_ONCE`` at a time while it has more and some went (a round whose tombstones all
        failed leaves the rest to the next)."""
        deleted = 0
        while old := self._table.settled_due(now_ms, EXPIRE_AT_ONCE):
            went = await self._table.delete_now(old, still=lambda key: (at := self._expiry_of(key)) is not None
                                                and at <= now_ms)
            deleted += went
            if len(old) < EXPIRE_AT_ONCE or not went:
                break
        return deleted

    def _expiry_of(self, task_id: str) -> int | None:
        """When the task goes, asked again right before its tombstone: None once it is gone or open
        again (an open task never expires)."""
        entry = self._table.get(task_id)
        return None if entry is None else self._window_end(entry)

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
