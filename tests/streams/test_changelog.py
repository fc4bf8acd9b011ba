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
