"""Results back to the instance that asked: its own reply topic, and lookups by task id.

Every task this instance sends carries ``reply_to = <results>.<instance>``; the Finisher
publishes the result there and to the results topic (``agents/taskstate.py``).
So an instance reads only its own results, whatever the traffic of the others, and
holds only what it waits for plus a bounded memory of recent results
(``streams/client.ResultMemory``).

A restart loses nothing: the reply topic keeps what arrived while the instance was down
(:data:`BACKFILL` of them are read back at start), and :meth:`Replies.lookup` finds any
task's result on the results topic itself, by its key, for a caller that asks by id
(``GET /v1/swarm/tasks/{id}``) on any instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import TaskResult
from swarmstream.streams.client import RecentIds, ResultMemory
from swarmstream.streams.engine.broker import ensure_topics, topic_partitions

log = logging.getLogger("swarmstream.gateway")

RETRY_S = 0.5
"""The reader's pause after a fetch error: aiokafka reconnects on its own; this only keeps a
broker restart from becoming a busy loop of errors."""

BACKFILL = 20_000
"""Replies read back at start: the results of requests in flight when the instance stopped
(at most its in-flight limit, 4,096 by default) with a wide margin, ~4 MB decoded."""

KEPT = 20_000
"""Results remembered for retries and lookups, the oldest out first (``ResultMemory``)."""

TTL_S = 600.0
"""A result nobody asked for again within ten minutes is forgotten (then looked up by id)."""

LOOKUP_SCAN = 50_000
"""Newest results per partition a lookup by id reads: minutes of a busy pipeline's results;
an older task's result needs a reader of the whole log (``swarmstream replay``)."""

LOOKUP_IDLE_MS = 100
"""A lookup's scan ends when a fetch brings nothing for this long (as ``engine/published.py``)."""


class Replies:
    def __init__(self, url: str, servers: str, results_topic: str, instance: str,
                 security: Mapping[str, Any] | None = None) -> None:
        self.topic = f"{results_topic}.{instance}"
        self._url = url
        self._servers = servers
        self._results_topic = results_topic
        self._security = dict(security or {})
        self._memory = ResultMemory(KEPT, TTL_S)
        self._seen = RecentIds(max(KEPT * 5, 100_000))
        self._waiters: dict[str, list[asyncio.Future[TaskResult]]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lookup: AIOKafkaConsumer | None = None
        self._lookup_lock = asyncio.Lock()
        self.duplicates = 0

    async def start(self) -> None:
        await ensure_topics(self._url, [self.topic], 1, security=self._security)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._servers, group_id=None, fetch_max_wait_ms=10,
                                          auto_offset_reset="earliest", **self._security)
        await self._consumer.start()
        partitions = await topic_partitions(self._consumer, self.topic)
        self._consumer.assign(partitions)
        ends = await self._consumer.end_offsets(partitions)
        for tp in partitions:
            self._consumer.seek(tp, max(ends[tp] - BACKFILL, 0))
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for consumer in (self._consumer, self._lookup):
            if consumer is not None:
                await consumer.stop()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def known(self, task_id: str) -> TaskResult | None:
        return self._memory.get(task_id)

    async def wait(self, task_id: str, timeout_s: float) -> TaskResult:
        """The task's result when it comes (or from memory); TimeoutError after ``timeout_s``."""
        found = self._memory.get(task_id)
        if found is not None:
            return found
        waiter: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(task_id, [])
        waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        finally:
            waiters.remove(waiter)
            if not waiters and self._waiters.get(task_id) is waiters:
                del self._waiters[task_id]

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            except KafkaError as exc:  # a broker away for a moment: keep reading, the log keeps the replies
                log.warning("reading %s: %s; retrying", self.topic, type(exc).__name__)
                await asyncio.sleep(RETRY_S)
                continue
            for records in batches.values():
                for record in records:
                    try:
                        result = codec().decode_as(record.value, TaskResult)
                    except DecodeError:
                        continue
                    self.deliver(result)

    def deliver(self, result: TaskResult) -> None:
        if result.task_id in self._seen:
            self.duplicates += 1
            return
        self._seen.add(result.task_id)
        self._memory.add(result)
        for waiter in self._waiters.get(result.task_id, ()):
            if not waiter.done():
                waiter.set_result(result)

    async def lookup(self, task_id: str) -> TaskResult | None:
        """The task's result: from memory, else from the newest :data:`LOOKUP_SCAN` results of
        the task's partition of the results topic (any instance's task, or one from before a
        restart). Every result the scan passes is remembered too (bounded as any), so a caller
        asking for many tasks by id after a crash costs one scan per partition, not one each."""
        found = self._memory.get(task_id)
        if found is not None:
            return found
        async with self._lookup_lock:
            found = self._memory.get(task_id)  # a scan while this one waited may have found it
            if found is not None:
                return found
            await self._scan(task_id.encode())
        return self._memory.get(task_id)

    async def _scan(self, key: bytes) -> None:
        if self._lookup is None:
            self._lookup = AIOKafkaConsumer(bootstrap_servers=self._servers, group_id=None, enable_auto_commit=False,
                                            fetch_max_wait_ms=10, **self._security)
            await self._lookup.start()
        consumer = self._lookup
        tps = await topic_partitions(consumer, self._results_topic, timeout_s=5)
        if not tps:
            return
        numbers = sorted(tp.partition for tp in tps)
        home = TopicPartition(self._results_topic, _PARTITIONER(key, numbers, numbers))  # where the worker wrote it
        consumer.assign([home])
        end = (await consumer.end_offsets([home]))[home]
        consumer.seek(home, max(end - LOOKUP_SCAN, 0))
        while await consumer.position(home) < end:
            batch = await consumer.getmany(home, timeout_ms=LOOKUP_IDLE_MS, max_records=10_000)
            if not batch:
                break
            for record in batch.get(home, ()):
                with contextlib.suppress(DecodeError):
                    self._memory.add(codec().decode_as(record.value, TaskResult))


_PARTITIONER = DefaultPartitioner()
"""The partitioner the workers' engine writes results with (murmur2 of the key, ``engine.py``)."""
