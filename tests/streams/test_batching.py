"""Our own per-partition batches (``streams/batching.py``) against the embedded broker.

What it proves: records appended in one loop turn travel in one batch per partition, in
order; each record's ``on_ack`` hears the offset the broker wrote it at; what arrives
while a batch is on its way gathers in the next; a record too large to batch, or for a
topic whose partitions are not known yet, is left to aiokafka's own ``send``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from swarmstream.streams.batching import Batcher
from swarmstream.streams.broker import bootstrap_servers, ensure_topics
from swarmstream.streams.engine import _CachedPartitioner

from tests.conftest import read_raw

PARTITIONS = 3


@pytest.fixture
async def producer(broker_url: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all", linger_ms=2)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def _topic(broker_url: str, producer: AIOKafkaProducer) -> str:
    topic = f"batching-{uuid.uuid4().hex[:10]}"
    await ensure_topics(broker_url, [topic], PARTITIONS)
    await producer.partitions_for(topic)
    return topic


async def test_records_of_one_turn_share_a_batch_per_partition_and_hear_their_offsets(
    broker_url: str, producer: AIOKafkaProducer
) -> None:
    topic = await _topic(broker_url, producer)
    batcher = Batcher(producer, _CachedPartitioner(), max_record_bytes=1 << 16)
    acked: dict[bytes, int] = {}
    batches = [batcher.append(topic, b"k%d" % (i % 5), b"v%d" % i, [("n", b"%d" % i)], None,
                              lambda offset, i=i: acked.__setitem__(b"v%d" % i, offset)) for i in range(40)]
    assert all(batch is not None for batch in batches)
    distinct = {id(batch): batch for batch in batches}
    assert len(distinct) <= PARTITIONS  # one batch per partition, not one per record
    await asyncio.gather(*(batch.acked for batch in distinct.values()))  # type: ignore[union-attr]

    records = await read_raw(broker_url, topic, until=lambda got: len(got) >= 40, timeout_s=20)
    assert len(records) == 40
    assert {r.value: r.offset for r in records} == acked
    for partition in range(PARTITIONS):
        values = [int(r.value[1:]) for r in records if r.partition == partition]
        assert values == sorted(values)  # in append order within a partition
    by_key = {r.key: r.partition for r in records}
    assert all(by_key[r.key] == r.partition for r in records)  # a key always lands on one partition
    assert all(dict(r.headers)["n"] == r.value[1:] for r in records)


async def test_what_comes_while_a_batch_is_on_its_way_goes_in_the_next(
    broker_url: str, producer: AIOKafkaProducer
) -> None:
    topic = await _topic(broker_url, producer)
    batcher = Batcher(producer, _CachedPartitioner(), max_record_bytes=1 << 16)
    first = batcher.append(topic, None, b"a", None, 0, None)
    await asyncio.sleep(0)  # the submitter takes the first batch
    await asyncio.sleep(0)
    second = batcher.append(topic, None, b"b", None, 0, None)
    assert first is not None and second is not None and first is not second
    await asyncio.gather(first.acked, second.acked)
    await batcher.drain()
    records = await read_raw(broker_url, topic, until=lambda got: len(got) >= 2, timeout_s=20)
    assert [r.value for r in records] == [b"a", b"b"]


async def test_large_records_and_unknown_topics_are_left_to_aiokafka(
    broker_url: str, producer: AIOKafkaProducer
) -> None:
    topic = await _topic(broker_url, producer)
    batcher = Batcher(producer, _CachedPartitioner(), max_record_bytes=100)
    assert batcher.append(topic, b"k", b"x" * 101, None, None, None) is None
    assert batcher.append(f"never-seen-{uuid.uuid4().hex}", b"k", b"x", None, None, None) is None
    assert batcher.append(topic, b"k", b"x" * 100, None, None, None) is not None
    await batcher.drain()
