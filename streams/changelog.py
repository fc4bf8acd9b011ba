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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

RESTORE_FETCH_MS = 50
"""How long one restore fetch waits for records."""

RESTORE_STALL_S = 60.0
"""A restore that reaches no end in this long fails the assignment loudly."""

Send = Callable[[str, bytes, bytes | None, Callable[[int], None] | None], int]
"""Writes a changelog record to the partition being handled, which it returns; the callback
is told the record's offset once the broker has it."""


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
    """A dict-like view over the partitions of one changelog topic this worker owns."""

    def __init__(self, topic: str, send: Send, disk: DiskStore | None = None) -> None:
        self.topic = topic
        self.disk = disk
        self._send = send
        self._data: dict[str, Any] = {}
        self._keys: dict[int, set[str]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setitem__(self, key: str, value: Any) -> None:
        self._write(key, orjson.dumps(value))
        self._data[key] = value

    set = __setitem__  # the tools' KeyValue protocol (agents/tools/agent.py)

    def __delitem__(self, key: str) -> None:
        self._write(key, None)
        self._data.pop(key, None)

    def _write(self, key: str, value: bytes | None) -> None:
        encoded = orjson.dumps(key)
        disk = self.disk
        if disk is None:
            partition = self._send(self.topic, encoded, value, None)
        else:
            # the callback runs once the record is acked, when ``partition`` is long assigned
            partition = self._send(self.topic, encoded, value,
                                   lambda offset: disk.write(partition, [(encoded, value)], offset + 1))
        self._keys.setdefault(partition, set()).add(key)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self._data.items()))

    def __len__(self) -> int:
        return len(self._data)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop keys from memory only (expired entries; their changelog records stay)."""
        for key in keys:
            self._data.pop(key, None)

    def apply(self, partition: int, key: bytes, value: bytes | None) -> None:
        """One changelog record (or disk entry), read while restoring."""
        name = orjson.loads(key)
        if value is None:
            self._data.pop(name, None)
            return
        self._data[name] = orjson.loads(value)
        self._keys.setdefault(partition, set()).add(name)

    def drop(self, partition: int) -> None:
        """The partition moved to another worker: its entries are that worker's now."""
        for key in self._keys.pop(partition, ()):
            self._data.pop(key, None)


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
