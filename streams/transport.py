"""Faust's aiokafka transport with a configurable consumer fetch wait.

faust-streaming 0.15.3 hard-codes ``fetch_max_wait_ms=1500`` when it builds
the worker's consumer (``faust/transport/drivers/aiokafka.py``,
``AIOKafkaConsumerThread._create_worker_consumer``). Tansu holds every fetch
that long when a partition is idle, so each hop cost ~0.8 s median; at 10 ms
two hops take ~15 ms (DESIGN.md, "Brokers"). This module is the one place that
overrides it; ``tests/streams/test_transport.py`` fails if a Faust upgrade
moves the attribute this relies on.

It also corrects table recovery on brokers whose ListOffsets answer is
short. Tansu 0.6 reports an end offset below the real one once records were
produced in batches (measured: 548 reported for 1,000 records), and Faust's
recovery stops reading a changelog at that "highwater", so the newest table
writes would be missing after a restart (seen in the crash test: a stats
changelog restored one record short). :func:`true_end_offsets` reads forward
from the reported end until the partition is exhausted.

Apps select it with the URL scheme ``swarmkafka://``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

SCHEME = "swarmkafka"
DEFAULT_FETCH_MAX_WAIT_MS = 10


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka copies this into its Fetcher in start(), which runs later.
        consumer._fetch_max_wait_ms = getattr(self.app, "swarm_fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        return consumer

    async def committed_offsets(self, partitions: list[Any]) -> dict[Any, int | None]:
        return await self.call_thread(self._committed_offsets, partitions)

    async def _committed_offsets(self, partitions: list[Any]) -> dict[Any, int | None]:
        consumer = self._ensure_consumer()
        return {tp: await consumer.committed(TopicPartition(tp.topic, tp.partition)) for tp in partitions}

    async def _highwaters(self, partitions: list[Any]) -> Mapping[Any, int]:
        reported = await super()._highwaters(partitions)
        bootstrap = getattr(self.app, "swarm_bootstrap", None)
        if not bootstrap or not reported:
            return reported
        return await true_end_offsets(bootstrap, reported)


async def reseek_to_committed(app: Any, partitions: list[Any]) -> None:
    """Seek source partitions back to their committed offsets after an assignment.

    A rebalance can drop records Faust had already fetched for a partition this
    worker keeps, and resume after them (faust-streaming #216, #221; the
    pipeline bench lost 1 task of 40 when a second worker joined, 2 runs of 2).
    For a group's first commit Faust does not check for gaps either (#606), so
    the offset could be committed past the dropped record: lost for good.
    Re-reading from the committed offset (the start, before any commit) makes
    every record arrive again; repeats are ignored by the idempotent handlers.
    """
    if not partitions:
        return
    committed = await app.consumer._thread.committed_offsets(partitions)
    await app.consumer.seek_wait({tp: offset or 0 for tp, offset in committed.items()})


async def true_end_offsets(bootstrap: str, reported: Mapping[Any, int], *, idle_ms: int = 50) -> dict[Any, int]:
    """The offset after each partition's last record, reading from the reported end."""
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        tps = {TopicPartition(tp.topic, tp.partition): tp for tp in reported}
        consumer.assign(list(tps))
        ends = {tp: int(reported[orig]) for tp, orig in tps.items()}
        for tp, end in ends.items():
            consumer.seek(tp, max(end - 1, 0))
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            if not batch:
                break
            for tp, records in batch.items():
                if records:
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
            await asyncio.sleep(0)
        return {tps[tp]: end for tp, end in ends.items()}
    finally:
        await consumer.stop()


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def faust_broker_url(url: str) -> str:
    """``kafka://a:1,b:2`` -> ``swarmkafka://a:1;b:2`` (Faust separates brokers with ';')."""
    hosts = url.split("://", 1)[-1].rstrip("/").replace(",", ";")
    return f"{SCHEME}://{hosts}"
