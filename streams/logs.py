"""Folds the replicated logs into this worker's in-memory views.

``swarm.calls`` (one CallRecord per model call) and ``swarm.quality``
(QualityEvents) are keyed by model; every worker reads every partition of
both from the beginning with a plain consumer (no group), so all workers
hold the same breakers and model stats, and a restarted worker rebuilds them
by replaying (DESIGN.md: Tansu never compacts, so the logs hold everything;
on a real cluster give them a retention of the longest memory you need:
breaker windows and the quality discount's horizon).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import Record


LOG_FETCH_WAIT_MS = 100
"""Breakers and stats may learn a call's outcome up to this late. At 10 ms this
consumer's idle fetching cost ~5% of the worker's CPU (bench pipeline); a breaker
that opens 0.1 s later lets a few more calls through to a failing model."""


async def _partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    while True:
        found = {t: consumer.partitions_for_topic(t) for t in topics}
        if all(found.values()):
            return [TopicPartition(t, p) for t, parts in found.items() for p in sorted(parts or ())]
        for topic in topics:
            consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)


async def follow_logs(bootstrap: str, handlers: Mapping[str, Callable[[Record], None]]) -> None:
    """Apply every record of each topic to its handler, in log order, forever."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=LOG_FETCH_WAIT_MS,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(consumer, list(handlers))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                handle = handlers[tp.topic]
                for record in records:
                    with contextlib.suppress(DecodeError):
                        handle(codec().decode(record.value or b""))
    finally:
        await consumer.stop()
