"""Restoring tables (``streams/changelog.restore_tables``) against the embedded broker.

What it proves: a restore reads a changelog to its real end, from the start or from a
disk store's mark, also where Tansu's ListOffsets end is short of it (records produced in
batches): the entries past that short end are the ones another owner of the partition
wrote, and they must come back. And the disk store holds exactly the changelog's
acknowledged prefix: a table write reaches it only with its record's ack.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.streams.broker import (
    bootstrap_servers,
    ensure_topics,
    true_end_offsets,
)
from swarmstream.streams.changelog import DiskStore, Table, restore_tables

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
        disk.write(0, [(orjson.dumps(f"k{i}"), orjson.dumps(i)) for i in range(mark)], mark)
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
        assert disk.load(0) == (42, [(orjson.dumps("task-1"), orjson.dumps({"done": True}))])
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

        async def send_now(topic: str, key: bytes, value: bytes | None, partition: int) -> None:
            await (await producer.send(topic, value, key=key, partition=partition))

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
