"""Tasks from another Kafka client, partitioned its own way, against two workers.

librdkafka-based clients (confluent-kafka, kcat, most non-Java clients) hash keys with
CRC32 by default, not the Java client's murmur2 that aiokafka and the engine use: ~75% of
tasks land on another partition number than the one their later events (keyed by task
id) go to. Before intake forwarded such a task to its home partition, its state opened on
one worker and its outcomes arrived at the other: 1,176 fake deadline-sweeper failures
for 28 of 50 tasks within 12 s, swept again every second until the 2 h expiry.

Here the tasks come from confluent-kafka's producer with its default partitioner, with
explicit partitions, with keys that are not the task id and with no key at all; every
task must end in exactly one result, with no swept failure and no sweeper warning.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer
from swarmstream.agents.taskstate import SWEEP_GRACE_MS
from swarmstream.bench.crash import results_on_topic
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import Failure, now_ms
from swarmstream.streams.app.topology import SWEEP_INTERVAL_S
from swarmstream.streams.engine.broker import bootstrap_servers, true_end_offsets

from tests.conftest import wait_for

TASKS_PER_WAY = 30
TIMEOUT_MS = 8_000
"""Short, so the sweeper would act within the test: a task whose state opened on one worker
while its outcomes went to the other is swept once its deadline and the grace have passed."""
JSON = [("content-type", b"application/json")]


def publish(broker_url: str, topic: str, partitions: int) -> set[str]:
    """Tasks four ways, all from librdkafka; returns their ids."""
    producer = Producer({"bootstrap.servers": bootstrap_servers(broker_url)})  # partitioner: consistent_random
    ids: set[str] = set()

    def task(way: str, n: int) -> tuple[str, bytes]:
        task_id = f"{way}-{uuid.uuid4().hex[:8]}-{n}"
        ids.add(task_id)
        return task_id, orjson.dumps({"task_id": task_id, "prompt": f"What is {n} + {n}? Answer with a number.",
                                      "answer_type": "number", "timeout_ms": TIMEOUT_MS})

    for n in range(TASKS_PER_WAY):
        task_id, value = task("crc32", n)
        producer.produce(topic, value=value, key=task_id.encode(), headers=JSON)
        task_id, value = task("explicit", n)
        producer.produce(topic, value=value, key=task_id.encode(), partition=n % partitions, headers=JSON)
        task_id, value = task("other-key", n)
        producer.produce(topic, value=value, key=f"customer-{n}".encode(), headers=JSON)
        task_id, value = task("no-key", n)
        producer.produce(topic, value=value, headers=JSON)
    assert producer.flush(30) == 0, "confluent-kafka did not deliver every task"
    return ids


@pytest.mark.timeout(240)
async def test_tasks_from_a_crc32_client_end_once_each_on_two_workers(make_stack, tmp_path: Path) -> None:
    async with make_stack(workers=2) as stack:
        topics = stack.settings.topics
        task_ids = await asyncio.to_thread(publish, stack.broker_url, topics.tasks, stack.settings.partitions)

        published_ms = now_ms()
        await wait_for(lambda: task_ids <= set(stack.client.received), timeout_s=120, stack=stack,
                       what=f"{len(task_ids)} results")
        # The sweeper is driven by the clock: past every deadline, its grace and two of its
        # runs, a scattered task's stranded state would have been swept.
        swept_by_ms = published_ms + TIMEOUT_MS + SWEEP_GRACE_MS + 2 * int(SWEEP_INTERVAL_S * 1000)
        await wait_for(lambda: now_ms() > swept_by_ms, timeout_s=60, stack=stack, what="the sweeper's turn")
        on_topic = await results_on_topic(stack.broker_url, topics.results, task_ids)
        failures = [f for f in await failures_of(stack, task_ids) if "swept" in f]

    assert set(on_topic) == task_ids
    assert {t: len(copies) for t, copies in on_topic.items() if len(copies) > 1} == {}
    assert {copies[0].status for copies in on_topic.values()} == {"ok"}
    assert failures == []
    logs = "".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
    assert "deadline sweeper" not in logs


async def failures_of(stack, task_ids: set[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """The messages of every Failure record of these tasks."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(stack.broker_url), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(stack.settings.topics.failures, p) for p in range(stack.settings.partitions)]
        ends = await true_end_offsets(bootstrap_servers(stack.broker_url), await consumer.end_offsets(tps))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        messages: list[str] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                for record in records:
                    failure = codec().decode_as(record.value, Failure)
                    if failure.step.task_id in task_ids:
                        messages.append(failure.message)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return messages
    finally:
        await consumer.stop()
