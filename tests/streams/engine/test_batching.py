"""Our own per-partition batches (``streams/engine/batching.py``) against the embedded broker.

What it proves: records appended in one loop turn travel in one batch per partition, in
order; each record's ``on_ack`` hears the offset the broker wrote it at; what arrives
while a handed-over batch lingers joins it, and what arrives after its drain the next.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from swarmstream.streams.engine.batching import Batcher
from swarmstream.streams.engine.broker import bootstrap_servers, ensure_topics

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
    batcher = Batcher(producer)
    acked: dict[bytes, int] = {}
    batches = [batcher.append(TopicPartition(topic, i % PARTITIONS), b"k%d" % (i % 6), b"v%d" % i,
                              [("n", b"%d" % i)], lambda offset, i=i: acked.__setitem__(b"v%d" % i, offset))
               for i in range(40)]
    distinct = {id(batch): batch for batch in batches}
    assert len(distinct) == PARTITIONS  # one batch per partition, not one per record
    await asyncio.gather(*(batch.acked for batch in distinct.values()))

    records = await read_raw(broker_url, topic, until=lambda got: len(got) >= 40, timeout_s=20)
    assert len(records) == 40
    assert {r.value: r.offset for r in records} == acked
    for partition in range(PARTITIONS):
        values = [int(r.value[1:]) for r in records if r.partition == partition]
        assert values == sorted(values)  # in append order within a partition
    assert all(r.partition == int(r.value[1:]) % PARTITIONS for r in records)
    assert all(dict(r.headers)["n"] == r.value[1:] for r in records)


async def test_what_comes_while_a_batch_lingers_joins_it_and_after_its_drain_goes_in_the_next(
    broker_url: str, producer: AIOKafkaProducer
) -> None:
    topic = await _topic(broker_url, producer)
    batcher = Batcher(producer)
    tp = TopicPartition(topic, 0)
    first = batcher.append(tp, None, b"a", None, None)
    await asyncio.sleep(0)  # one loop turn, not a wait: the submitter hands it to aiokafka, where it lingers 2 ms
    assert not batcher._lanes[tp].unsent  # handed over, not yet drained
    assert batcher.append(tp, None, b"b", None, None) is first  # same request, as aiokafka's own batches
    await first.acked
    third = batcher.append(tp, None, b"c", None, None)
    assert third is not first
    await third.acked
    await batcher.drain()
    records = await read_raw(broker_url, topic, until=lambda got: len(got) >= 3, timeout_s=20)
    assert [r.value for r in records] == [b"a", b"b", b"c"]


async def test_a_waiter_cancelled_on_a_shared_batch_leaves_it_to_the_others(
    broker_url: str, producer: AIOKafkaProducer
) -> None:
    """Events whose records share a batch all await its ack; one of them cancelled (its
    partition lost) must not cancel the ack for the rest, or their slots never finish."""
    topic = await _topic(broker_url, producer)
    batcher = Batcher(producer)
    tp = TopicPartition(topic, 0)
    batch = batcher.append(tp, None, b"lost", None, None)
    assert batcher.append(tp, None, b"kept", None, None) is batch

    async def wait() -> None:
        await batch.acked

    lost, kept = asyncio.ensure_future(wait()), asyncio.ensure_future(wait())
    await asyncio.sleep(0)  # both are awaiting the ack
    lost.cancel()
    await kept  # heard the ack, not a CancelledError
    assert batch.acked.done() and not batch.acked.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await lost  # cancelled once the ack came
