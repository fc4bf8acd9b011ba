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
reads them all, the newest winning. With ``SWARM_STORE=rocksdb://`` each table also
keeps its entries on local disk (:class:`DiskStore`), with the changelog offset they
are complete up to, so a restarted worker reopens them and reads only the tail.

Entries past their retention are deleted by a timer, outside any handler
(:meth:`Table.delete_now`): a tombstone each on the entry's partition, so the next
owner of the partition does not bring them back and a compacting broker can drop
them (changelogs are created with ``cleanup.policy=compact``, ``streams/broker.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

RESTORE_FETCH_MS = 50
"""How long one restore fetch waits for records."""

RESTORE_STALL_S = 60.0
"""A restore that reaches no end in this long fails the assignment loudly."""

Send = Callable[[str, bytes, bytes | None, Callable[[int], None] | None], int]
"""Writes a changelog record to the partition being handled, which it returns; the callback
is told the record's offset once the broker has it."""

SendNow = Callable[[str, bytes, bytes | None, int], Awaitable[None]]
"""Writes a changelog record outside any handler (a timer's tombstones): (topic, key, value,
partition), done once the broker has it. It must append the record to the partition's batch
before its first suspension (the engine's ``send`` does), so that no handler's write of the
same key can come between the entry leaving memory and its tombstone (see
:meth:`Table.delete_now`)."""

TOMBSTONES_AT_ONCE = 2_000
"""Tombstones awaited together by :meth:`Table.delete_now`: one task each, so a first pass over
a large backlog of expired entries (a worker restarted after hours) does not hold a task per
entry at once, and a few thousand still fill the producer's batches."""


class DiskStore:
    """One table's entries on local disk (rocksdict), by partition, with the changelog offset
    each partition is complete up to: exactly the changelog's prefix up to that offset.

    An entry is written when the broker acknowledges its changelog record, with the new
    offset in the same atomic batch; not when the table is written. A state written at once
    would outlive a crash before the handler's outputs were sent (the outbox sends them
    before the table's records): a task state saying ``done`` whose result never left, and
    a restart that reopened it would ignore its redelivered outcome for good."""

    def __init__(self, path: Path) -> None:
        from rocksdict import Rdict, WriteBatch  # the rocksdb extra: pip install 'swarmstream[rocksdb]'

        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path))
        self._batch = WriteBatch

    @staticmethod
    def _prefix(kind: bytes, partition: int) -> bytes:
        return kind + partition.to_bytes(4, "big")

    def write(self, partition: int, entries: Iterable[tuple[bytes, bytes | None]], complete_to: int) -> None:
        """The changelog's records up to ``complete_to - 1`` are acknowledged (or were read back),
        these the last of them."""
        batch = self._batch()
        prefix = self._prefix(b"d", partition)
        for key, value in entries:
            if value is None:
                batch.delete(prefix + key)
            else:
                batch.put(prefix + key, value)
        mark = self._prefix(b"o", partition)
        if complete_to > int.from_bytes(self._db.get(mark) or b"\0", "big"):
            batch.put(mark, complete_to.to_bytes(8, "big"))
        self._db.write(batch)

    def load(self, partition: int) -> tuple[int, list[tuple[bytes, bytes]]]:
        """(the offset to read the changelog from, the entries up to it)."""
        offset = int.from_bytes(self._db.get(self._prefix(b"o", partition)) or b"\0", "big")
        prefix = self._prefix(b"d", partition)
        entries = []
        for name, value in self._db.items(from_key=prefix):
            if not name.startswith(prefix):
                break
            entries.append((name[len(prefix):], value))
        return offset, entries

    def close(self) -> None:
        self._db.close()


class Table:
    """A dict-like view over the partitions of one changelog topic this worker owns.

    Values are held as ``hold`` makes them from their JSON (``orjson.loads`` unless the store
    over the table says otherwise: the task table keeps finished tasks as their bytes, which
    the garbage collector never walks); ``_keys`` knows each partition's keys, so a partition
    that moves away is dropped and an expired entry's tombstone goes to its partition."""

    def __init__(self, topic: str, send: Send, disk: DiskStore | None = None, *,
                 send_now: SendNow | None = None, hold: Callable[[bytes], Any] = orjson.loads) -> None:
        self.topic = topic
        self.disk = disk
        self.hold = hold
        self._send = send
        self._send_now = send_now
        self._data: dict[str, Any] = {}
        self._keys: dict[int, set[str]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setitem__(self, key: str, value: Any) -> None:
        self._keys.setdefault(self._write(key, orjson.dumps(value)), set()).add(key)
        self._data[key] = value

    set = __setitem__  # the tools' KeyValue protocol (agents/tools/agent.py)

    def put(self, key: str, encoded: bytes, held: Any) -> None:
        """Write ``encoded`` (the value's JSON) and hold ``held`` for it in memory (what ``hold``
        would make of ``encoded``): the task table keeps a finished task as its bytes."""
        self._keys.setdefault(self._write(key, encoded), set()).add(key)
        self._data[key] = held

    def __delitem__(self, key: str) -> None:
        keys = self._keys.get(self._write(key, None))
        if keys is not None:
            keys.discard(key)
        self._data.pop(key, None)

    def _write(self, key: str, value: bytes | None) -> int:
        encoded = orjson.dumps(key)
        disk = self.disk
        if disk is None:
            return self._send(self.topic, encoded, value, None)
        # the callback runs once the record is acked, when ``partition`` is long assigned
        partition = self._send(self.topic, encoded, value,
                               lambda offset: disk.write(partition, [(encoded, value)], offset + 1))
        return partition

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self._data.items()))

    def keys_of(self, partitions: Iterable[int]) -> list[str]:
        """The keys this worker holds of ``partitions``."""
        return [key for p in partitions for key in self._keys.get(p, ())]

    def partition_of(self, key: str) -> int | None:
        """The partition whose changelog holds ``key`` (a worker owns a handful: a look in each)."""
        for partition, keys in self._keys.items():
            if key in keys:
                return partition
        return None

    def __len__(self) -> int:
        return len(self._data)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop keys from memory only (their changelog records stay: a restore brings them back)."""
        for key in keys:
            if self._data.pop(key, _MISSING) is not _MISSING:
                partition = self.partition_of(key)
                if partition is not None:
                    self._keys[partition].discard(key)

    async def delete_now(self, keys: Iterable[str], still: Callable[[str], bool] = lambda key: True) -> int:
        """Delete ``keys`` outside a handler (a timer's expiry): each leaves memory and gets a
        tombstone on its partition of the changelog, acknowledged before this returns; with a
        disk store, it leaves the disk then. Returns how many were deleted.

        Each key is checked (``still``: is it still to go?), dropped from memory and its
        tombstone appended to the partition's batch in one step, with no suspension between:
        a handler that writes the key again (a task reopened) writes after the tombstone, in
        memory as in the changelog, so a restore rebuilds what memory holds. A key whose
        partition moved away meanwhile is not here any more, and is left to its new owner."""
        if self._send_now is None:
            raise RuntimeError(f"{self.topic}: deleting outside a handler needs the engine's send (send_now)")
        send_now = self._send_now
        deleted = 0

        async def tombstone(key: str) -> bool:
            partition = self.partition_of(key)
            if partition is None or key not in self._data or not still(key):
                return False
            del self._data[key]
            self._keys[partition].discard(key)
            encoded = orjson.dumps(key)
            await send_now(self.topic, encoded, None, partition)
            if self.disk is not None:  # gone from the disk's prefix too (its mark stays where it is)
                self.disk.write(partition, [(encoded, None)], 0)
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

    def apply(self, partition: int, key: bytes, value: bytes | None) -> None:
        """One changelog record (or disk entry), read while restoring."""
        name = orjson.loads(key)
        if value is None:
            self._data.pop(name, None)
            keys = self._keys.get(partition)
            if keys is not None:
                keys.discard(name)
            return
        self._data[name] = self.hold(value)
        self._keys.setdefault(partition, set()).add(name)

    def drop(self, partition: int) -> None:
        """The partition moved to another worker: its entries are that worker's now."""
        for key in self._keys.pop(partition, ()):
            self._data.pop(key, None)


_MISSING = object()


async def restore_tables(bootstrap: str, tables: list[Table], partitions: Iterable[int],
                         security: Mapping[str, Any] | None = None) -> int:
    """Rebuild ``partitions`` of every table: from its disk store (if any) and then the changelog
    from where the disk is complete (or from the start); returns the changelog records read."""
    by_topic = {table.topic: table for table in tables}
    starts: dict[TopicPartition, int] = {}
    for table in tables:
        for p in sorted(partitions):
            start = 0
            if table.disk is not None:
                start, entries = table.disk.load(p)
                for key, value in entries:
                    table.apply(p, key, value)
            starts[TopicPartition(table.topic, p)] = start
    tps = list(starts)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10, max_partition_fetch_bytes=8 << 20, **(security or {}))
    await consumer.start()
    read = 0
    try:
        consumer.assign(tps)
        for tp, start in starts.items():
            consumer.seek(tp, start)
        started = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=RESTORE_FETCH_MS, max_records=10_000)
            for tp, records in batches.items():
                table = by_topic[tp.topic]
                for record in records:
                    table.apply(tp.partition, record.key or b"", record.value)
                if records and table.disk is not None:
                    table.disk.write(tp.partition, [(r.key or b"", r.value) for r in records], records[-1].offset + 1)
                read += len(records)
            # Done once a fetch has told each partition's high watermark and the position is
            # there. Not ListOffsets' end: Tansu's is short once records were produced in
            # batches (548 reported for 1,000 records); nor the first empty fetch: a slow first
            # fetch is empty too, and a restore that started from the disk's mark, past that
            # short end, then ended without the tail (another owner's writes).
            highs = {tp: consumer.highwater(tp) for tp in tps}
            if all(high is not None for high in highs.values()):
                behind = [tp for tp, high in highs.items() if await consumer.position(tp) < high]
                if not behind:
                    return read
            if time.monotonic() - started > RESTORE_STALL_S:
                raise RuntimeError(f"restoring {sorted(by_topic)} stalled short of the high watermarks {highs}")
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
