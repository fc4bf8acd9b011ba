"""Tables: a key-value map per worker, every write also a record of its changelog topic.

A table is written only by the owner of the partition whose event is being
handled (``streams.engine.current_partition``): the write goes to the same
partition number of the table's changelog, so the next owner of that partition
rebuilds exactly that part by reading it (:func:`restore_tables`). A write holds
back its event's commit until the changelog has it
(``streams.engine._Outbox``).

Keys and values are JSON (orjson), as Faust wrote them (``swarmstream stats`` reads
the chain-metrics changelog); a ``None`` value is a tombstone. Tansu never compacts
(DESIGN.md, "Brokers"), so a changelog holds every write: restoring from memory
reads them all, the newest winning, unless a restore horizon says where the live state
begins (``streams/engine/horizon.py``: each table partition's owner publishes the offset before which
every record is superseded or deleted, and the next owner starts there), and the marker's checkpoint,
if any, holds the live entries up to a tail offset in a few large records
(``streams/engine/checkpoint.py``: the next owner loads them and reads only the tail). With
``SWARM_STORE=rocksdb://`` each table also keeps its entries on local disk (:class:`DiskStore`),
with the changelog offset they are complete up to, so a restarted worker reopens them and reads
only the tail.

Entries past their retention are deleted by a timer, outside any handler
(:meth:`Table.delete_now`): a tombstone each on the entry's partition, so the next
owner of the partition does not bring them back and a compacting broker can drop
them (changelogs are created with ``cleanup.policy=compact``, ``streams/engine/broker.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from swarmstream.streams.engine.checkpoint import (
    CHUNKS_PER_SLICE,
    ENTRIES_PER_SLICE,
    CheckpointRef,
    Entry,
    chunk_key,
    chunk_prefix,
    decode_chunk,
    encode_chunks,
)
from swarmstream.streams.engine.fencing import Fenced
from swarmstream.streams.engine.horizon import (
    MARKER_TAIL,
    REWRITES_AT_ONCE,
    UNPINNED,
    LiveOffsets,
    newest_marker_refs,
)
from swarmstream.streams.engine.settled import Settled

log = logging.getLogger(__name__)

RESTORE_FETCH_MS = 50
"""How long one restore fetch waits for records."""

RESTORE_FETCH_BYTES = 256 << 10
"""Per partition and fetch, for the restore and the published-results scan. They read at 8 MiB
(aiokafka's default is 1 MiB): Apache Kafka then answers a fetch with up to 50 MB, all decoded
at once, and a restarted worker's RSS stayed there (restart probe on Kafka 4.0, 100,000 tasks,
fresh 87 MB: 125 / 128 MB at its first result / 10 s later, 5.4-6.5 s to that result; at 1
MiB 110 / 109 MB and 3.3-3.5 s; at 256 KiB 107 / 106 MB and 3.3 s). Tansu answers with less
whatever the limit: there the restart stayed as it was (4.7 s; 112 / 110 MB)."""

RESTORE_STALL_S = 60.0
"""A restore that reaches no end in this long fails the assignment loudly."""

OnAck = Callable[[int], None]
"""Told the offset a record was written at, once the broker has it. A partition's records are
acknowledged in offset order (aiokafka sends one batch per partition at a time), which the
restore horizon's tracking relies on (``streams/horizon.LiveOffsets``)."""

Send = Callable[[str, bytes, bytes | None, OnAck | None], int]
"""Writes a changelog record to the partition being handled, which it returns; the callback
is told the record's offset once the broker has it (later: never from within ``send``)."""

SendNow = Callable[[str, bytes, bytes | None, int, OnAck], Awaitable[None]]
"""Writes a changelog record outside any handler (a timer's tombstones and rewrites): (topic, key,
value, partition, on_ack), done once the broker has it. It must append the record to the
partition's batch before its first suspension (the engine's ``send`` does), so that no handler's
write of the same key can come between the check that the entry is to go (or to be written
again) and its record (see :meth:`Table.delete_now`)."""

TOMBSTONES_AT_ONCE = 2_000
"""Tombstones awaited together by :meth:`Table.delete_now`: one task each, so a first pass over
a large backlog of expired entries (a worker restarted after hours) does not hold a task per
entry at once, and a few thousand still fill the producer's batches."""


DISK_FORMAT = b"2"
"""Each entry's value is preceded by its record's offset (8 bytes), so a restart from disk knows
every key's newest offset (its restore horizon, ``streams/engine/horizon.py``). A store of another format
is emptied at open: the restore then reads the changelog (from its horizon), once."""


class DiskStore:
    """One table's entries on local disk (rocksdict), by partition, with the changelog offset
    each partition is complete up to: exactly the changelog's prefix up to that offset.

    An entry is written when the broker acknowledges its changelog record, with the new
    offset in the same atomic batch; not when the table is written. A state written at once
    would outlive a crash before the handler's outputs were sent (the outbox sends them
    before the table's records): a task state saying ``done`` whose result never left, and
    a restart that reopened it would ignore its redelivered outcome for good."""

    def __init__(self, path: Path) -> None:
        from rocksdict import (  # the rocksdb extra: pip install 'swarmstream[rocksdb]'
            Rdict,
            WriteBatch,
        )

        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path))
        if self._db.get(b"format") != DISK_FORMAT:
            if next(iter(self._db.keys()), None) is not None:
                log.warning("%s: a table store of another format, emptied (the changelog is read instead)", path)
                self._db.close()
                Rdict.destroy(str(path))
                self._db = Rdict(str(path))
            self._db.put(b"format", DISK_FORMAT)
        self._batch = WriteBatch

    @staticmethod
    def _prefix(kind: bytes, partition: int) -> bytes:
        return kind + partition.to_bytes(4, "big")

    def write(self, partition: int, entries: Iterable[tuple[bytes, bytes | None, int]], complete_to: int) -> None:
        """The changelog's records up to ``complete_to - 1`` are acknowledged (or were read back),
        these (key, value, offset) the last of them."""
        batch = self._batch()
        prefix = self._prefix(b"d", partition)
        for key, value, offset in entries:
            if value is None:
                batch.delete(prefix + key)
            else:
                batch.put(prefix + key, offset.to_bytes(8, "big") + value)
        mark = self._prefix(b"o", partition)
        if complete_to > int.from_bytes(self._db.get(mark) or b"\0", "big"):
            batch.put(mark, complete_to.to_bytes(8, "big"))
        self._db.write(batch)

    def load(self, partition: int) -> tuple[int, list[tuple[bytes, bytes, int]]]:
        """(the offset to read the changelog from, the entries up to it: key, value, offset)."""
        offset = int.from_bytes(self._db.get(self._prefix(b"o", partition)) or b"\0", "big")
        prefix = self._prefix(b"d", partition)
        entries = []
        for name, stored in self._db.items(from_key=prefix):
            if not name.startswith(prefix):
                break
            entries.append((name[len(prefix):], stored[8:], int.from_bytes(stored[:8], "big")))
        return offset, entries

    def reset(self, partition: int) -> None:
        """Forget the partition (entries and mark): the changelog from its horizon is the state now."""
        batch = self._batch()
        batch.delete_range(self._prefix(b"d", partition), self._prefix(b"d", partition + 1))
        batch.delete(self._prefix(b"o", partition))
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()


def encode_held(held: Any) -> bytes:
    """A held value as the changelog record it came from (a rewrite writes it again): bytes are
    held as written (``hold_task_entry``'s finished tasks); anything else is what ``orjson.loads``
    made of its JSON."""
    return held if type(held) is bytes else own_sized(orjson.dumps(held))


def encode_key(key: str) -> bytes:
    """A key as its changelog records carry it (JSON), in bytes of its own size."""
    return own_sized(orjson.dumps(key))


def own_sized(encoded: bytes) -> bytes:
    """A copy of ``orjson.dumps``'s output in an object of its own size: orjson's bytes keep the
    ~4 KB buffer they were written in (orjson 3.13), which is what each record on its way held
    until its ack: 17 MB of a restarted worker's heap for ~4,400 writes in flight (the soak's
    restart, tracemalloc), 100 MB for a checkpoint of 25,000 keys until its chunks were built."""
    return memoryview(encoded).tobytes()


class Table:
    """A dict-like view over the partitions of one changelog topic this worker owns.

    Values are held as ``hold`` makes them from their JSON (``orjson.loads`` unless the store
    over the table says otherwise: the task table keeps finished tasks as their bytes, which
    the garbage collector never walks). Each partition's keys are known with the offset of their
    newest acknowledged record (:class:`~swarmstream.streams.engine.horizon.LiveOffsets`), so a partition
    that moves away is dropped, an expired entry's tombstone goes to its partition, and the
    partition's restore horizon is known.

    A held value is never changed in place: handlers write a new one (``{**state, ...}``), so
    memory differs from the changelog only while a write is on its way, and a key with none on
    its way can be written again as memory holds it (:meth:`rewrite_now`).

    A table that settles (:meth:`settle_with`: the task table's finished tasks) moves an entry out
    of memory into a local file (``streams/engine/settled.py``) once its record is acknowledged
    and its value is one that only a delete or a new write changes; reads find it there, a write
    or a tombstone brings it back under the partition's tracking, a checkpoint includes it, and
    it goes when its time comes (:meth:`settled_due`)."""

    def __init__(self, topic: str, send: Send, disk: DiskStore | None = None, *,
                 send_now: SendNow | None = None, hold: Callable[[bytes], Any] = orjson.loads) -> None:
        self.topic = topic
        self.disk = disk
        self.hold = hold
        self._send = send
        self._send_now = send_now
        self._data: dict[str, Any] = {}
        self._live: dict[int, LiveOffsets] = {}
        self._settled: Settled | None = None
        self._settles: Callable[[Any], int | None] = lambda held: None

    def settle_with(self, expiry: Callable[[Any], int | None]) -> None:
        """Entries whose held value ``expiry`` gives a time for (ms since the epoch; None: it stays
        in memory) leave memory once their newest record is acknowledged with nothing else of
        theirs on its way, until that time or their next write."""
        self._settled = Settled()
        self._settles = expiry

    def get(self, key: str, default: Any = None) -> Any:
        held = self._data.get(key, _MISSING)
        if held is not _MISSING:
            return held
        row = self._settled.get(key) if self._settled is not None else None
        return default if row is None else self.hold(row[1])

    def in_memory(self, key: str) -> Any:
        """The value held in memory for ``key`` (None: none, or a settled one)."""
        return self._data.get(key)

    def __getitem__(self, key: str) -> Any:
        held = self.get(key, _MISSING)
        if held is _MISSING:
            raise KeyError(key)
        return held

    def __contains__(self, key: object) -> bool:
        return key in self._data or (self._settled is not None and type(key) is str and key in self._settled)

    def __setitem__(self, key: str, value: Any) -> None:
        self._write(key, orjson.dumps(value))
        self._data[key] = value

    set = __setitem__  # the tools' KeyValue protocol (agents/tools/agent.py)

    def put(self, key: str, encoded: bytes, held: Any) -> None:
        """Write ``encoded`` (the value's JSON) and hold ``held`` for it in memory (what ``hold``
        would make of ``encoded``): the task table keeps a finished task as its bytes."""
        self._write(key, encoded)
        self._data[key] = held

    def __delitem__(self, key: str) -> None:
        self._write(key, None)
        self._data.pop(key, None)

    def _write(self, key: str, value: bytes | None) -> int:
        encoded = encode_key(key)
        deleted = value is None
        disk = self.disk
        settling = self._settled is not None and not deleted
        if self._settled is not None and key not in self._data:
            self._unsettle(key)

        # The callbacks run once the record is acked, when ``live`` is long assigned; a partition
        # dropped meanwhile has had its LiveOffsets replaced, and this one is no one's any more.
        if disk is None:
            def acked(offset: int) -> None:
                live.acked(key, offset, deleted=deleted)
                if settling:
                    self._settle(live, partition, key, offset)
        else:
            def acked(offset: int) -> None:
                live.acked(key, offset, deleted=deleted)
                disk.write(partition, [(encoded, value, offset)], offset + 1)
                if settling:
                    self._settle(live, partition, key, offset)

        partition = self._send(self.topic, encoded, value, acked)
        live = self._live.get(partition) or self._offsets_of(partition)
        live.wrote(key, deleted=deleted)
        return partition

    def _settle(self, live: LiveOffsets, partition: int, key: str, offset: int) -> None:
        """``key``'s record at ``offset`` is acknowledged: out of memory into the settled file if
        that record is still its newest (nothing else of it on its way) and its value settles."""
        held = self._data.get(key, _MISSING)
        if (held is _MISSING or key in live.pending or live.held.get(key) != offset
                or self._live.get(partition) is not live):
            return
        expires = self._settles(held)
        if expires is not None:
            assert self._settled is not None
            del self._data[key]
            del live.held[key]
            self._settled.put(partition, key, encode_held(held), offset, expires)

    def _unsettle(self, key: str) -> int | None:
        """A settled key about to be written again or deleted leaves the file; its record pins the
        partition's horizon until the new one is acknowledged, as a deleted key's does (``gone``).
        Returns its partition (None: it was not settled)."""
        assert self._settled is not None
        row = self._settled.take(key)
        if row is None:
            return None
        partition, offset = row
        self._offsets_of(partition).gone[key] = offset
        return partition

    def settled_due(self, now_ms: int, limit: int) -> list[str]:
        """Up to ``limit`` settled keys whose time has come (for :meth:`delete_now`)."""
        return self._settled.due(now_ms, limit) if self._settled is not None else []

    def _offsets_of(self, partition: int, start: int = 0) -> LiveOffsets:
        live = self._live.get(partition)
        if live is None:
            live = self._live[partition] = LiveOffsets(start)
            if self._settled is not None:
                live.settled, live.partition = self._settled, partition
        return live

    def items(self) -> Iterator[tuple[str, Any]]:
        settled = [(key, self.hold(value)) for key, value in self._settled.items()] if self._settled else []
        return iter(list(self._data.items()) + settled)

    def keys_of(self, partitions: Iterable[int]) -> list[str]:
        """The keys this worker holds in memory of ``partitions`` (a settled key goes by :meth:`settled_due`)."""
        return [key for p in partitions if (live := self._live.get(p)) is not None for key in live.held]

    def partition_of(self, key: str) -> int | None:
        """The partition whose changelog holds ``key`` (a worker owns a handful: a look in each)."""
        for partition, live in self._live.items():
            if key in live.held:
                return partition
        row = self._settled.get(key) if self._settled is not None else None
        return None if row is None else row[0]

    def partitions_held(self) -> list[int]:
        return sorted(self._live)

    def offsets(self, partition: int) -> LiveOffsets | None:
        """The partition's keys and their newest acknowledged offsets (its restore horizon)."""
        return self._live.get(partition)

    def __len__(self) -> int:
        return len(self._data) + (len(self._settled) if self._settled is not None else 0)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop keys from memory only (their changelog records stay: a restore brings them back)."""
        for key in keys:
            if self._data.pop(key, _MISSING) is not _MISSING:
                partition = self.partition_of(key)
                if partition is not None:
                    self._live[partition].forget(key)

    async def delete_now(self, keys: Iterable[str], still: Callable[[str], bool] = lambda key: True) -> int:
        """Delete ``keys`` outside a handler (a timer's expiry): each leaves memory and gets a
        tombstone on its partition of the changelog, acknowledged before this returns; with a
        disk store, it leaves the disk then. Returns how many were deleted.

        Each key is checked (``still``: is it still to go?), dropped from memory and its
        tombstone appended to the partition's batch in one step, with no suspension between:
        a handler that writes the key again (a task reopened) writes after the tombstone, in
        memory as in the changelog, so a restore rebuilds what memory holds. A key whose
        partition moved away meanwhile is not here any more, and is left to its new owner."""
        send_now = self._needs_send_now("deleting")
        deleted = 0

        async def tombstone(key: str) -> bool:
            partition = self._take(key, still)
            if partition is None:
                return False
            live = self._live[partition]
            live.wrote(key, deleted=True)
            encoded = encode_key(key)

            def acked(offset: int) -> None:
                live.acked(key, offset, deleted=True)
                if self.disk is not None:  # gone from the disk's prefix too (its mark stays where it is)
                    self.disk.write(partition, [(encoded, None, offset)], 0)

            try:
                await send_now(self.topic, encoded, None, partition, acked)
            except BaseException:
                live.unsent(key)  # still pinned by its value until the partition moves (a restore brings it back)
                raise
            return True

        pending = list(keys)
        for start in range(0, len(pending), TOMBSTONES_AT_ONCE):
            done = await asyncio.gather(*(tombstone(key) for key in pending[start:start + TOMBSTONES_AT_ONCE]),
                                        return_exceptions=True)
            failed = [d for d in done if isinstance(d, BaseException)]
            deleted += sum(d is True for d in done)
            if failed:
                # out of memory already; without its tombstone a restore brings it back, and it
                # is deleted again at the next expiry after that
                log.warning("%s: %d tombstone(s) failed (%r)", self.topic, len(failed), failed[0])
        return deleted

    def _take(self, key: str, still: Callable[[str], bool]) -> int | None:
        """``key`` out of memory (or the settled file) if it is here and ``still`` to go; its partition."""
        if key in self._data:
            partition = self.partition_of(key)
            if partition is None or not still(key):
                return None
            del self._data[key]
            return partition
        if self._settled is None or not still(key):
            return None
        return self._unsettle(key)

    async def rewrite_now(self, partition: int, cut: int, owns: Callable[[int], bool]) -> int:
        """Write again, outside a handler, each key of ``partition`` whose newest record is before
        ``cut``, as memory holds it, so the partition's restore horizon can move past its old
        record (``streams/engine/horizon.py``: a chain's counters or a month's spend live for good).
        Returns how many were written; raises ``Fenced`` (the membership was lost).

        Each key is checked (the partition still this worker's and not in a rebalance, the key
        held and still behind, no write of it on its way) and its record appended in one step, like
        :meth:`delete_now`'s tombstones: a handler's later write of the key lands after it. Settled
        keys are not rewritten (a table that settles has checkpoints, which replace rewrites)."""
        send_now = self._needs_send_now("rewriting")
        live = self._live.get(partition)
        if live is None:
            return 0

        async def again(key: str) -> bool:
            if (self._live.get(partition) is not live or not live.restored or not owns(partition)
                    or not live.rewritable(key, cut)):
                return False
            held = self._data.get(key, _MISSING)
            if held is _MISSING:
                return False
            encoded, value = encode_key(key), encode_held(held)

            def acked(offset: int) -> None:
                live.acked(key, offset, deleted=False)
                if self.disk is not None:
                    self.disk.write(partition, [(encoded, value, offset)], offset + 1)

            live.wrote(key, deleted=False)
            try:
                await send_now(self.topic, encoded, value, partition, acked)
            except BaseException:
                live.unsent(key)
                raise
            return True

        keys = live.behind(cut)
        written = 0
        for start in range(0, len(keys), REWRITES_AT_ONCE):
            done = await asyncio.gather(*(again(key) for key in keys[start:start + REWRITES_AT_ONCE]),
                                        return_exceptions=True)
            written += sum(d is True for d in done)
            failed = [d for d in done if isinstance(d, BaseException)]
            if failed:
                fenced = [f for f in failed if isinstance(f, Fenced)]
                raise (fenced or failed)[0]
        if written:
            log.debug("%s[%d]: %d key(s) written again past offset %d", self.topic, partition, written, cut)
        return written

    async def checkpoint_now(self, partition: int, topic: str, owns: Callable[[int], bool]) -> CheckpointRef | None:
        """Write a checkpoint of ``partition`` to ``topic`` (``streams/engine/checkpoint.py``), outside any
        handler: every held key with no write on its way, as memory holds it, with the offset of its
        newest record; ``tail`` at the partition's end when it began, pulled down to the record of
        every key left out that may still matter (a write or a tombstone on its way). Returns its
        reference once every chunk is acknowledged (None: nothing held, or the partition moved
        meanwhile); raises ``Fenced`` (the membership was lost).

        Taken in slices with the event loop's other work between: each key is read as it is when
        its slice comes (a held value is never changed in place, so value and offset agree), and a
        key written meanwhile is either in with its newer record or left out and in the tail. The
        settled keys follow, read from their file in slices by offset; one settled again meanwhile
        may be read twice, and only its newest record is kept."""
        send_now = self._needs_send_now("checkpointing")
        live = self._live.get(partition)
        if live is None or not live.restored or not owns(partition):
            return None
        if live.checkpoint is not None and live.checkpoint.id == live.end:
            return None  # nothing written since that one (its id: chunk keys must differ)
        tail = live.end
        keys = list(live.held)
        entries: list[Entry] = []
        data = self._data
        for start in range(0, len(keys), ENTRIES_PER_SLICE):
            if start:
                await asyncio.sleep(0)
                if self._live.get(partition) is not live or not owns(partition):
                    return None
            held, pending = live.held, live.pending
            for key in keys[start:start + ENTRIES_PER_SLICE]:
                offset = held.get(key)
                if offset is None or offset == UNPINNED:
                    continue  # deleted since (its tombstone is past ``tail``) or no value record yet
                value = data.get(key, _MISSING)
                if key in pending or value is _MISSING:
                    tail = min(tail, offset)  # memory may differ from the changelog: the restore reads it
                    continue
                entries.append((encode_key(key), encode_held(value), offset))  # own-sized (own_sized)
        settled, after = self._settled, -1
        while settled is not None:
            await asyncio.sleep(0)
            if self._live.get(partition) is not live or not owns(partition):
                return None
            rows = settled.slice(partition, after, ENTRIES_PER_SLICE)
            entries += [(encode_key(key), value, offset) for key, value, offset in rows]
            if len(rows) < ENTRIES_PER_SLICE:
                break
            after = rows[-1][2]
        if live.gone:
            tail = min(tail, min(live.gone.values()))  # tombstones on their way
        if not entries:
            return None
        entries.sort(key=lambda entry: entry[2])  # a restore applies them in offset order (LiveOffsets.held)
        if settled is not None:  # each key once, with its newest record (the last in offset order)
            entries = sorted({entry[0]: entry for entry in entries}.values(), key=lambda entry: entry[2])
        checkpoint_id = live.end
        offsets: list[int] = []
        sends: list[asyncio.Future[None]] = []
        for index, chunk in enumerate(encode_chunks(entries)):
            sends.append(asyncio.ensure_future(send_now(topic, chunk_key(self.topic, partition, checkpoint_id, index),
                                                        chunk, partition, offsets.append)))
            if index % CHUNKS_PER_SLICE == CHUNKS_PER_SLICE - 1:
                await asyncio.sleep(0)
        done = await asyncio.gather(*sends, return_exceptions=True)
        failed = [d for d in done if isinstance(d, BaseException)]
        if failed:
            raise ([f for f in failed if isinstance(f, Fenced)] or failed)[0]
        ref = CheckpointRef(topic=topic, id=checkpoint_id, first=min(offsets), last=max(offsets), chunks=len(sends),
                            entries=len(entries), tail=tail)
        log.debug("%s[%d]: checkpoint of %d entries in %d chunks, tail %d", self.topic, partition, len(entries),
                  len(sends), tail)
        return ref

    async def tombstone_chunks(self, partition: int, keys: list[bytes], topic: str) -> None:
        """Tombstones for a replaced checkpoint's chunks: a compacting broker drops them (Tansu keeps
        every record anyway); one that fails leaves a chunk no marker names."""
        send_now = self._needs_send_now("tombstoning checkpoint chunks")
        done = await asyncio.gather(*(send_now(topic, key, None, partition, lambda offset: None) for key in keys),
                                    return_exceptions=True)
        failed = [d for d in done if isinstance(d, BaseException)]
        if failed:
            log.info("%s[%d]: %d checkpoint chunk tombstone(s) failed (%r)", self.topic, partition, len(failed),
                     failed[0])

    def _needs_send_now(self, what: str) -> SendNow:
        if self._send_now is None:
            raise RuntimeError(f"{self.topic}: {what} outside a handler needs the engine's send (send_now)")
        return self._send_now

    def apply(self, partition: int, key: bytes, value: bytes | None, offset: int) -> bool:
        """One changelog record (or disk entry) at ``offset``, read while restoring; False when
        the table already holds a newer record of the key (a checkpoint's entry, :meth:`load_checkpoint`)."""
        name = orjson.loads(key)
        live = self._offsets_of(partition)
        if live.newer(name, offset):
            return False
        settled = self._settled
        if settled is not None:
            row = settled.get(name)
            if row is not None:
                if row[2] > offset:
                    return False
                settled.take(name)
        held = None if value is None else self.hold(value)
        expires = None if held is None else self._settles(held)
        if expires is not None:
            assert settled is not None and value is not None
            live.read(name, offset, deleted=True)  # out of memory's tracking: the file holds it
            self._data.pop(name, None)
            settled.put(partition, name, value, offset, expires)
            return True
        live.read(name, offset, deleted=value is None)
        if value is None:
            self._data.pop(name, None)
        else:
            self._data[name] = held
        return True

    def begin_restore(self, partition: int, horizon: int, checkpoint: CheckpointRef | None = None) -> int:
        """Forget what memory holds of ``partition`` and take what the disk store has of it; returns
        the changelog offset to read from: the disk's mark, or else ``checkpoint``'s tail when it is
        past ``horizon`` (the caller then loads the checkpoint, :meth:`load_checkpoint`, before the
        changelog), or else ``horizon`` (the newest marker, 0 if none).

        A disk behind the horizon (or the checkpoint's tail) is emptied, not read: the records
        between its mark and the horizon may be tombstones of keys it holds, which a restore from
        the horizon would never see. From the horizon the changelog alone is the whole state."""
        self.drop(partition)
        start = max(horizon, checkpoint.tail) if checkpoint is not None else horizon
        disk = self.disk
        if disk is not None:
            mark, entries = disk.load(partition)
            if mark >= start:
                start = mark
                self._offsets_of(partition, start)
                for key, value, offset in sorted(entries, key=lambda entry: entry[2]):
                    self.apply(partition, key, value, offset)
            elif mark or entries:
                disk.reset(partition)
        live = self._offsets_of(partition, start)
        live.published = horizon
        live.checkpoint = live.marked = checkpoint  # the newest marker names it
        live.restored = False  # until restore_tables has read the changelog to its end
        return start

    def load_checkpoint(self, partition: int, chunks: Iterable[list[Entry]], tail: int) -> int:
        """A checkpoint's entries, chunk by chunk in offset order (``decode_chunk``'s lists, each
        dropped once loaded), before the changelog from ``tail`` (:meth:`begin_restore`): each held
        as of its record's offset, which the tail's older records of the key do not undo. Returns
        the entries loaded. A chunk that fails to decode raises ValueError with part of the
        checkpoint loaded: the caller restores the partition from its horizon instead, which
        begins by dropping it."""
        live = self._live.get(partition)
        empty = self._settled is not None and not self._settled.count(partition) and not (live and live.held)
        loaded = 0
        for entries in chunks:
            entries.sort(key=lambda entry: entry[2])  # LiveOffsets.held stays in offset order
            settled: list[tuple[str, bytes, int, int]] = []
            for key, value, offset in entries:
                expires = self._settles(self.hold(value)) if empty else None
                if expires is None:
                    self.apply(partition, key, value, offset)
                else:  # a checkpoint holds a key once, and the partition held nothing: into the file at once
                    settled.append((orjson.loads(key), value, offset, expires))
            if settled:
                assert self._settled is not None
                self._settled.put_many(partition, settled)
            if self.disk is not None and entries:
                self.disk.write(partition, entries, 0)  # complete up to the tail only once all is in
            loaded += len(entries)
        if self.disk is not None and loaded:
            self.disk.write(partition, [], tail)
        return loaded

    def drop(self, partition: int) -> None:
        """The partition moved to another worker: its entries are that worker's now."""
        live = self._live.pop(partition, None)
        if live is not None:
            for key in live.held:
                self._data.pop(key, None)
        if self._settled is not None:
            self._settled.drop(partition)


_MISSING = object()


async def restore_tables(bootstrap: str, tables: list[Table], partitions: Iterable[int],
                         security: Mapping[str, Any] | None = None, *, horizons: str | None = None) -> int:
    """Rebuild ``partitions`` of every table: from its disk store (if any) and then the changelog
    from where the disk is complete, or else from the partition's newest restore horizon in the
    ``horizons`` topic (``streams/engine/horizon.py``), or else from the start; returns the changelog
    records read."""
    numbers = sorted(partitions)
    by_topic = {table.topic: table for table in tables}
    started = time.monotonic()
    # earliest: a start past a changelog's end (a broker that lost its data) reads all of it
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=10,
                                max_partition_fetch_bytes=RESTORE_FETCH_BYTES, **(security or {}))
    await consumer.start()
    try:
        markers = await _read_markers(consumer, horizons, numbers) if horizons and numbers else {}
        starts: dict[TopicPartition, int] = {}
        checkpoints: dict[tuple[str, int], CheckpointRef] = {}
        for table in tables:
            for p in numbers:
                horizon, checkpoint = markers.get((table.topic, p), (0, None))
                if checkpoint is not None and checkpoint.tail <= horizon:
                    checkpoint = None  # the changelog from the horizon is no more to read
                start = starts[TopicPartition(table.topic, p)] = table.begin_restore(p, horizon, checkpoint)
                if checkpoint is not None and start == checkpoint.tail:  # not a disk store's mark past it
                    checkpoints[table.topic, p] = checkpoint
        loaded, missing = await _load_checkpoints(consumer, by_topic, checkpoints) if checkpoints else (0, [])
        for changelog, p in missing:  # from the horizon after all: the changelog alone is the whole state
            horizon = markers[changelog, p][0]
            starts[TopicPartition(changelog, p)] = by_topic[changelog].begin_restore(p, horizon)
            del checkpoints[changelog, p]

        def restored(tp: TopicPartition, records: list[ConsumerRecord]) -> None:
            table = by_topic[tp.topic]
            applied = [r for r in records if table.apply(tp.partition, r.key or b"", r.value, r.offset)]
            if records and table.disk is not None:  # not a record older than a checkpoint's entry
                table.disk.write(tp.partition, [(r.key or b"", r.value, r.offset) for r in applied],
                                 records[-1].offset + 1)

        read = await read_to_end(consumer, starts, restored)
        for tp in starts:
            live = by_topic[tp.topic].offsets(tp.partition)
            if live is not None:
                live.restored = True
        if markers:
            log.info("restored %s from their horizons: %d changelog records read, %d entries from %d checkpoint(s), "
                     "in %.2f s", sorted(by_topic), read, loaded, len(checkpoints), time.monotonic() - started)
        return read
    finally:
        await consumer.stop()


async def _load_checkpoints(consumer: AIOKafkaConsumer, by_topic: Mapping[str, Table],
                            checkpoints: Mapping[tuple[str, int], CheckpointRef]) -> tuple[int, list[tuple[str, int]]]:
    """Read each checkpoint's chunks (a range of its checkpoints partition, shared with other tables'
    checkpoints) and load them into their tables; returns the entries loaded and the table
    partitions whose checkpoint was not whole (a compacting broker dropped a chunk of one that a
    newer marker replaced while this restore began): those are restored from their horizon."""
    ranges: dict[TopicPartition, tuple[int, int]] = {}
    wanted: dict[bytes, tuple[Table, int, CheckpointRef]] = {}
    for (changelog, p), ref in checkpoints.items():
        tp = TopicPartition(ref.topic, p)
        first, last = ranges.get(tp, (ref.first, ref.last))
        ranges[tp] = (min(first, ref.first), max(last, ref.last))
        wanted[chunk_prefix(changelog, p, ref.id)] = (by_topic[changelog], p, ref)
    found: dict[bytes, list[bytes]] = {prefix: [] for prefix in wanted}

    def take(tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        for record in records:
            key = record.key or b""
            prefix = key[:key.rfind(b"|") + 1]
            if prefix in found and record.value is not None and record.offset <= ranges[tp][1]:
                found[prefix].append(record.value)

    await read_to_end(consumer, {tp: first for tp, (first, _) in ranges.items()}, take,
                       stop={tp: last + 1 for tp, (_, last) in ranges.items()})
    loaded = 0
    missing: list[tuple[str, int]] = []
    for prefix, (table, p, ref) in wanted.items():
        chunks = found.pop(prefix)
        try:
            if len(chunks) != ref.chunks:
                raise ValueError(f"{len(chunks)} of its {ref.chunks} chunks found")
            chunks.reverse()  # popped from the end: each chunk's bytes go once it is loaded
            loaded += table.load_checkpoint(p, (decode_chunk(chunks.pop()) for _ in range(ref.chunks)), ref.tail)
        except ValueError as exc:
            log.warning("%s[%d]: checkpoint %d in %s (offsets %d-%d) unusable (%s): restoring from the horizon",
                        table.topic, p, ref.id, ref.topic, ref.first, ref.last, exc)
            missing.append((table.topic, p))
    return loaded, missing


async def _read_markers(consumer: AIOKafkaConsumer, topic: str, partitions: list[int]
                        ) -> dict[tuple[str, int], tuple[int, CheckpointRef | None]]:
    """The newest marker of each table partition among the last ``MARKER_TAIL`` records of the
    horizons topic's ``partitions`` (the high watermark from a fetch: Tansu's ListOffsets end can
    be short, ``read_to_end``)."""
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    reported = await consumer.end_offsets(tps)
    for tp in tps:
        consumer.seek(tp, max(int(reported[tp]) - 1, 0))
    started = time.monotonic()
    while any(consumer.highwater(tp) is None for tp in tps):
        if time.monotonic() - started > RESTORE_STALL_S:
            raise RuntimeError(f"no fetch of {topic} answered in {RESTORE_STALL_S:.0f} s")
        await consumer.getmany(timeout_ms=RESTORE_FETCH_MS)
    starts = {tp: max(int(consumer.highwater(tp)) - MARKER_TAIL, 0) for tp in tps}
    records: list[tuple[bytes | None, bytes | None]] = []
    await read_to_end(consumer, starts, lambda tp, batch: records.extend((r.key, r.value) for r in batch))
    return newest_marker_refs(records)


async def read_to_end(consumer: AIOKafkaConsumer, starts: Mapping[TopicPartition, int],
                       take: Callable[[TopicPartition, list[ConsumerRecord]], None],
                       stop: Mapping[TopicPartition, int] | None = None) -> int:
    """Read each partition from its start to its high watermark (or to ``stop``, where given: the
    batch holding it may bring more), handing every batch to ``take`` in offset order; returns the
    records read."""
    tps = list(starts)
    consumer.assign(tps)
    for tp, start in starts.items():
        consumer.seek(tp, start)
    read = 0
    started = time.monotonic()
    while True:
        batches = await consumer.getmany(timeout_ms=RESTORE_FETCH_MS, max_records=10_000)
        for tp, records in batches.items():
            take(tp, records)
            read += len(records)
        # Done once a fetch has told each partition's high watermark and the position is
        # there. Not ListOffsets' end: Tansu's is short once records were produced in
        # batches (548 reported for 1,000 records); nor the first empty fetch: a slow first
        # fetch is empty too, and a restore that started from the disk's mark, past that
        # short end, then ended without the tail (another owner's writes).
        highs = {tp: consumer.highwater(tp) for tp in tps}
        if stop is not None:
            highs = {tp: min(high, stop[tp]) if high is not None else None for tp, high in highs.items()}
        if all(high is not None for high in highs.values()):
            behind = [tp for tp, high in highs.items() if await consumer.position(tp) < high]
            if not behind:
                return read
        if time.monotonic() - started > RESTORE_STALL_S:
            raise RuntimeError(f"restoring {sorted({tp.topic for tp in tps})} stalled short of the high "
                               f"watermarks {highs}")
        await asyncio.sleep(0)
