"""``read_to_end``: the records up to each partition's end, whatever the broker's pace."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.streams.engine.broker import (
    bootstrap_servers,
    ensure_topics,
    read_to_end,
)


async def test_reads_every_partition_to_its_end_from_where_it_was_put(broker_url: str) -> None:
    topic = f"read-to-end-{uuid.uuid4().hex[:8]}"
    await ensure_topics(broker_url, [topic], 4)
    servers = bootstrap_servers(broker_url)
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    try:
        for i in range(30):  # partitions 0 and 2 only; 1 and 3 stay empty
            await producer.send_and_wait(topic, str(i).encode(), partition=2 * (i % 2))
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 10 if tp.partition == 2 else 0)  # partition 2 from its 11th record
        read = [(r.partition, int(r.value)) async for batch in read_to_end(consumer, tps, timeout_s=30)
                for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()

    assert sorted(read) == sorted([(0, i) for i in range(0, 30, 2)] + [(2, i) for i in range(21, 30, 2)])
