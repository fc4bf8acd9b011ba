"""The broker side of the console: one group-less consumer that reads every topic the
console shows from the beginning and then follows it, a producer for decisions, and the
workers' consumer lag. Like ``swarmstream top`` it needs no worker and disturbs none."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import Record
from swarmstream.streams.console.state import ConsoleState
from swarmstream.streams.engine.broker import (
    bootstrap_servers,
    ensure_topics,
    topic_partitions,
)

log = logging.getLogger(__name__)

FETCH_RECORDS = 10_000
"""Records per fetch: the first read of a long log goes in large steps (10,000 tasks are ~100,000 records)."""

LAG_EVERY_S = 2.0
"""How often the workers' committed offsets are read: lag moves slower than the page refreshes."""

TOPIC_WAIT_S = 3.0


class Follower:
    def __init__(self, state: ConsoleState, *, broker_url: str, group: str, partitions: int,
                 security: Mapping[str, Any]) -> None:
        self.state = state
        self._bootstrap = bootstrap_servers(broker_url)
        self._url = broker_url
        self._group = group
        self._partitions = partitions
        self._security = dict(security)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._tps: list[TopicPartition] = []
        self._next: dict[TopicPartition, int] = {}  # the offset after the last record read, per partition
        self.lag: dict[str, int] = {}  # topic -> records the workers have yet to commit
        self.lag_error = ""

    async def start(self) -> None:
        # the decisions topic is the console's own: create it if no worker did, so it gets the
        # deployment's partition count (a topic auto-created by a send would get the broker's)
        await ensure_topics(self._url, [self.state.topics.decisions], self._partitions, security=self._security)
        self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", **self._security)
        await self._producer.start()
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
                                    fetch_max_wait_ms=100, max_partition_fetch_bytes=4 << 20, **self._security)
        await consumer.start()
        self._consumer = consumer
        # list the topics first: asking for a missing one by name makes Tansu create it
        existing = await consumer.topics()
        for topic in self.state.topics.all():
            if topic in existing:
                self._tps += await topic_partitions(consumer, topic, timeout_s=TOPIC_WAIT_S)
        consumer.assign(self._tps)
        if self._tps:
            await consumer.seek_to_beginning(*self._tps)
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self._watch_lag())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def _follow(self) -> None:
        assert self._consumer is not None
        ingest = self.state.ingest
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=FETCH_RECORDS)
            for tp, records in batches.items():
                for r in records:
                    ingest(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value)
                if records:
                    self._next[tp] = records[-1].offset + 1

    def caught_up(self) -> bool:
        """Every partition read to the end its last fetch reported."""
        consumer = self._consumer
        if consumer is None:
            return False
        for tp in self._tps:
            high = consumer.highwater(tp)
            if high is None:
                return False
            if self._next.get(tp, 0) < high:
                return False
        return True

    async def wait_caught_up(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.caught_up():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def publish(self, topic: str, key: str, record: Record) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(topic, codec().encode(record), key=key.encode())

    async def _watch_lag(self) -> None:
        # A consumer in the workers' group that never joins it (no subscribe, no poll) and never
        # commits: it only asks the group coordinator for the committed offsets (OffsetFetch).
        # aiokafka's admin client is not used: Tansu closes the connection on its requests.
        reader = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=self._group, enable_auto_commit=False,
                                  **self._security)
        try:
            await reader.start()
            while True:
                await self._read_lag(reader)
                await asyncio.sleep(LAG_EVERY_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - lag is one column of one page: it shows why, nothing stops
            self.lag_error = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("console: consumer lag unavailable: %s", self.lag_error)
        finally:
            with contextlib.suppress(Exception):
                await reader.stop()

    async def _read_lag(self, reader: AIOKafkaConsumer) -> None:
        assert self._consumer is not None
        # one OffsetFetch for every partition (``reader.committed(tp)`` asks one partition a request)
        committed = await reader._coordinator.fetch_committed_offsets(self._tps)  # type: ignore[union-attr]
        lag: dict[str, int] = {}
        for tp, meta in committed.items():
            high = self._consumer.highwater(tp)
            if meta.offset >= 0 and high is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - meta.offset)
        self.lag = lag
        self.lag_error = ""
