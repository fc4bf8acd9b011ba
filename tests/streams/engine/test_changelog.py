"""Restoring tables (``streams/changelog.restore_tables``) against the embedded broker.

What it proves: a restore reads a changelog to its real end, from the start or from a
disk store's mark, also where Tansu's ListOffsets end is short of it (records produced in
batches): the entries past that short end are the ones another owner of the partition
wrote, and they must come back. And the disk store holds exactly the changelog's
acknowledged prefix: a table write reaches it only with its record's ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.streams.engine.broker import (
    bootstrap_servers,
    ensure_topics,
    true_end_offsets,
)
from swarmstream.streams.engine.changelog import DiskStore, Table, restore_tables
from swarmstream.streams.engine.horizon import HorizonKeeper, horizons_topic

BATCHES, PER_BATCH = 3, 10


async def _changelog(broker_url: str) -> str:
    """A changelog of one partition: key ``k<i>`` -> ``i``, written in batches."""
    topic = f"changelog-{uuid.uuid4().hex[:10]}"
    await ensure_topics(broker_url, [topic], 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all", linger_ms=20)
    await producer.start()
    try:
        for b in range(BATCHES):
            acks = [await producer.send(topic, orjson.dumps(i), key=orjson.dumps(f"k{i}"), partition=0)
                    for i in range(b * PER_BATCH, (b + 1) * PER_BATCH)]
            await asyncio.gather(*acks)
    finally:
        await producer.stop()
    return topic


async def _reported_end(broker_url: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


def _table(topic: str, disk: DiskStore | None = None) -> Table:
    return Table(topic, lambda *_: 0, disk)


async def test_a_restore_from_the_start_reads_to_the_real_end(broker_url: str) -> None:
    topic = await _changelog(broker_url)
    table = _table(topic)
    read = await restore_tables(bootstrap_servers(broker_url), [table], [0])
    assert read == BATCHES * PER_BATCH
    assert dict(table.items()) == {f"k{i}": i for i in range(BATCHES * PER_BATCH)}


async def test_a_restore_from_a_disk_mark_past_the_reported_end_reads_the_tail(
    broker_url: str, tmp_path: Path
) -> None:
    pytest.importorskip("rocksdict", reason="the rocksdb:// table store needs the rocksdict package")
    topic = await _changelog(broker_url)
    total = BATCHES * PER_BATCH
    reported = await _reported_end(broker_url, topic)
    mark = max(reported, total - PER_BATCH // 2)  # past what ListOffsets says, short of the real end
    disk = DiskStore(tmp_path / "table")
    try:
        # what this worker had on disk: everything before the mark
        disk.write(0, [(orjson.dumps(f"k{i}"), orjson.dumps(i), i) for i in range(mark)], mark)
        table = _table(topic, disk)
        read = await restore_tables(bootstrap_servers(broker_url), [table], [0])
        assert read == total - mark
        assert dict(table.items()) == {f"k{i}": i for i in range(total)}
        assert disk.load(0)[0] == total  # the disk is complete up to the end now
    finally:
        disk.close()


async def test_true_end_offsets_is_the_high_watermark(broker_url: str) -> None:
    topic = await _changelog(broker_url)
    tp = TopicPartition(topic, 0)
    reported = await _reported_end(broker_url, topic)
    ends = await true_end_offsets(bootstrap_servers(broker_url), {tp: reported})
    assert ends == {tp: BATCHES * PER_BATCH}


def test_a_table_write_reaches_the_disk_only_once_its_changelog_record_is_acknowledged(tmp_path: Path) -> None:
    """The disk holds the changelog's prefix and no more: a state written by a handler whose
    outputs never left (killed before its outbox sent them) must not come back at a restart."""
    pytest.importorskip("rocksdict", reason="the rocksdb:// table store needs the rocksdict package")
    acks: list[Callable[[int], None]] = []

    def send(topic: str, key: bytes, value: bytes | None, on_ack: Callable[[int], None] | None) -> int:
        assert on_ack is not None
        acks.append(on_ack)
        return 0

    disk = DiskStore(tmp_path / "table")
    try:
        table = Table("t-changelog", send, disk)
        table["task-1"] = {"done": True}
        assert table["task-1"] == {"done": True}  # handlers see it at once
        assert disk.load(0) == (0, [])  # the disk does not, yet
        acks.pop()(41)
        assert disk.load(0) == (42, [(orjson.dumps("task-1"), orjson.dumps({"done": True}), 41)])
        del table["task-1"]
        acks.pop()(42)
        assert disk.load(0) == (43, [])
    finally:
        disk.close()


async def test_changelogs_are_created_compacted_and_other_topics_not(broker_url: str) -> None:
    """A real cluster then keeps each table's newest record per key, tombstones for a while; Tansu
    accepts and reports the setting (it never compacts: DESIGN.md, "Brokers")."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    run = uuid.uuid4().hex[:10]
    changelog, source = f"app-{run}-tasks-changelog", f"swarm-{run}.tasks"
    await ensure_topics(broker_url, [source, changelog], 2)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        policies = {}
        for topic in (changelog, source):
            (answer,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entries = {entry[0]: entry[1] for resource in answer.resources for entry in resource[4]}
            policies[topic] = entries.get("cleanup.policy", "delete")
    finally:
        await admin.close()
    assert policies == {changelog: "compact", source: "delete"}


async def test_tombstones_written_outside_a_handler_leave_a_restore_with_what_memory_held(broker_url: str) -> None:
    """A timer's expiry (``Table.delete_now``): each deleted entry gets a tombstone on its own
    partition, so the next owner of a partition restores exactly what this worker held of it."""
    topic = f"changelog-{uuid.uuid4().hex[:10]}"
    await ensure_topics(broker_url, [topic], 2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all", linger_ms=5)
    await producer.start()
    try:
        for i in range(40):  # as handlers wrote them: key k<i> on partition i % 2
            await producer.send(topic, orjson.dumps({"n": i}), key=orjson.dumps(f"k{i}"), partition=i % 2)
        await producer.flush()

        async def send_now(topic: str, key: bytes, value: bytes | None, partition: int,
                           on_ack: Callable[[int], None]) -> None:
            on_ack((await (await producer.send(topic, value, key=key, partition=partition))).offset)

        held = Table(topic, lambda *_: 0, send_now=send_now)
        await restore_tables(bootstrap_servers(broker_url), [held], [0, 1])
        assert len(held) == 40
        deleted = await held.delete_now([f"k{i}" for i in range(0, 40, 3)] + ["absent"],
                                        still=lambda key: key != "k3")  # k3 was written again meanwhile
        assert deleted == 13 and "k3" in held and "k0" not in held

        again = Table(topic, lambda *_: 0)
        await restore_tables(bootstrap_servers(broker_url), [again], [0, 1])
        assert dict(again.items()) == dict(held.items())
        one = Table(topic, lambda *_: 0)
        await restore_tables(bootstrap_servers(broker_url), [one], [1])
        assert sorted(one.keys_of([1])) == sorted(held.keys_of([1])) == sorted(dict(one.items()))
    finally:
        await producer.stop()


# -- restore horizons (streams/engine/horizon.py) on the real broker -----------------------------------


class Writer:
    """A table's changelog on the broker, written as the engine writes it: a handler's records are
    queued and sent together (``flush``, acks told in offset order), a timer's are sent at once; and
    a keeper publishing the table's markers to the horizons topic, owning every partition."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, horizons: str) -> None:
        self.producer = producer
        self.partition = 0  # of the event "being handled"
        self.queued: list[tuple[str, bytes, bytes | None, int, Callable[[int], None] | None]] = []
        self.table = Table(topic, self.send, send_now=self.send_now)
        self.keeper = HorizonKeeper(horizons, lambda: [self.table], self.marker, owns=lambda p: True,
                                    min_behind=40, per_live=2)

    def send(self, topic: str, key: bytes, value: bytes | None, on_ack: Callable[[int], None] | None) -> int:
        self.queued.append((topic, key, value, self.partition, on_ack))
        return self.partition

    async def flush(self) -> None:
        queued, self.queued = self.queued, []
        acks = [(await self.producer.send(t, v, key=k, partition=p), on_ack) for t, k, v, p, on_ack in queued]
        for ack, on_ack in acks:
            offset = (await ack).offset
            if on_ack is not None:
                on_ack(offset)

    async def send_now(self, topic: str, key: bytes, value: bytes | None, partition: int,
                       on_ack: Callable[[int], None]) -> None:
        on_ack((await (await self.producer.send(topic, value, key=key, partition=partition))).offset)

    async def marker(self, key: bytes, value: bytes, partition: int) -> None:
        await (await self.producer.send(self.keeper.topic, value, key=key, partition=partition))


@contextlib.asynccontextmanager
async def writer(broker_url: str, partitions: int) -> AsyncIterator[Writer]:
    run = uuid.uuid4().hex[:10]
    topic, horizons = f"app-{run}-t-changelog", horizons_topic(f"app-{run}")
    await ensure_topics(broker_url, [topic, horizons], partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all", linger_ms=2)
    await producer.start()
    try:
        yield Writer(producer, topic, horizons)
    finally:
        await producer.stop()


async def _restored(broker_url: str, w: Writer, partitions: list[int], *, horizons: bool,
                    disk: DiskStore | None = None) -> tuple[dict[str, Any], int]:
    table = Table(w.table.topic, lambda *_: 0, disk)
    read = await restore_tables(bootstrap_servers(broker_url), [table], partitions,
                                horizons=w.keeper.topic if horizons else None)
    return dict(table.items()), read


async def test_a_new_owner_restoring_from_the_horizon_and_the_tail_holds_what_a_full_restore_holds(
    broker_url: str
) -> None:
    """Tasks written three times then deleted (by a handler or by expiry), a counter written all
    along, a month's key written once (rewritten forward by the keeper so the horizon can move),
    markers every 50 events, and a tail after the last marker (writes and a delete)."""
    async with writer(broker_url, 2) as w:
        table = w.table
        for p in (0, 1):
            w.partition = p
            table[f"month|{p}"] = {"spent": p}
        await w.flush()
        for i in range(600):
            w.partition = i % 2
            for step in range(3):
                table[f"t{i}"] = {"step": step}
            table[f"metrics|{i % 2}"] = {"tasks": i}
            if i >= 20 and i % 3 == 0:
                del table[f"t{i - 20}"]
            await w.flush()
            if i >= 20 and i % 3 == 1:
                await table.delete_now([f"t{i - 20}"])
            if i % 50 == 49:
                await w.keeper.round()
        w.partition = 1  # the tail: after the last marker
        table["t599"] = {"step": "tail"}
        del table["t597"]
        table["new"] = {"after": "the last marker"}
        await w.flush()

        full, read_all = await _restored(broker_url, w, [0, 1], horizons=False)
        from_horizon, read = await _restored(broker_url, w, [0, 1], horizons=True)
    assert from_horizon == full == dict(table.items())
    assert "t597" not in full and full["t599"] == {"step": "tail"} and full["new"] == {"after": "the last marker"}
    assert full["month|0"] == {"spent": 0} and full["metrics|1"] == {"tasks": 599}
    assert read < read_all / 4, (read, read_all)


async def test_a_restore_after_many_writes_of_few_live_keys_reads_few_records(broker_url: str) -> None:
    async with writer(broker_url, 1) as w:
        for i in range(2_000):
            w.table[f"k{i % 10}"] = i
            if i % 500 == 0:
                await w.flush()
        await w.flush()
        await w.keeper.round()
        full, read_all = await _restored(broker_url, w, [0], horizons=False)
        restored, read = await _restored(broker_url, w, [0], horizons=True)
    assert restored == full == {f"k{i}": 1_990 + i for i in range(10)}
    assert (read_all, read) == (2_000, 10)  # the ten newest writes: every key's last


async def test_a_disk_behind_the_horizon_is_not_read_past_tombstones_it_never_saw(
    broker_url: str, tmp_path: Path
) -> None:
    """The disk's mark wins when it is at or past the newest marker; a disk behind it is emptied
    (reading it and then the changelog from the horizon would bring back a key deleted between)."""
    pytest.importorskip("rocksdict", reason="the rocksdb:// table store needs the rocksdict package")
    async with writer(broker_url, 1) as w:
        w.table["gone"] = 1
        w.table["kept"] = 1
        await w.flush()
        disk = DiskStore(tmp_path / "table")
        try:
            # what a worker that owned the partition then had on disk: both keys, complete to 2
            disk.write(0, [(orjson.dumps("gone"), b"1", 0), (orjson.dumps("kept"), b"1", 1)], 2)
            del w.table["gone"]
            for i in range(50):
                w.table["kept"] = i
            await w.flush()
            await w.keeper.round()  # horizon: kept's newest record (the 52nd), past the disk's mark
            restored, read = await _restored(broker_url, w, [0], horizons=True, disk=disk)
            assert restored == {"kept": 49} and read == 1
            assert disk.load(0) == (53, [(orjson.dumps("kept"), b"49", 52)])  # emptied, then the restore's

            w.table["kept"] = 50
            await w.flush()
            restored, read = await _restored(broker_url, w, [0], horizons=True, disk=disk)
            assert restored == {"kept": 50} and read == 1  # the disk's mark (53) is past the marker (52)
        finally:
            disk.close()
