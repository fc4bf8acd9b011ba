"""Feeds the circuit log into this worker's CircuitBoard.

A plain consumer without a group reads every partition of ``swarm.circuit``
from the beginning, so every worker folds the same events into the same
breakers, and a restarted worker has its breakers back once it has replayed
the log (DESIGN.md: compaction never runs on Tansu, so the log holds every
call; on a real cluster give the topic a retention of a few cooldowns).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import CircuitEvent

log = logging.getLogger(__name__)


async def follow_circuit_log(bootstrap: str, topic: str, board: CircuitBoard) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=10,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            await consumer._client.force_metadata_update()
            consumer._client.add_topic(topic)
            await asyncio.sleep(0.1)
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(DecodeError):
                        event = codec().decode_as(record.value or b"", CircuitEvent)
                        board.apply(event)
    finally:
        await consumer.stop()
