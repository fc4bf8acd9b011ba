"""SwarmClient: submit tasks, await their results.

    async with SwarmClient("127.0.0.1:9092") as client:
        task_id = await client.submit(TaskRequest(prompt="2 + 2?", answer_type="number"))
        result = await client.result(task_id, timeout_s=30)

Results are read by a consumer without a group (every partition assigned),
so any number of clients can watch the same results topic. The pipeline is
at-least-once, so the client delivers each task's first result and counts
any repeat in :attr:`duplicates`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import Feedback, TaskRequest, TaskResult
from swarmstream.streams.broker import bootstrap_servers, topic_partitions
from swarmstream.streams.settings import TopicNames


class SwarmClient:
    def __init__(self, broker: str, *, topics: TopicNames | None = None, from_beginning: bool = False,
                 security: Mapping[str, Any] | None = None) -> None:
        """``security``: SASL/TLS keyword arguments for aiokafka (``streams.security.aiokafka_security``)."""
        self._servers = bootstrap_servers(broker)
        self._security = dict(security or {})
        self.topics = topics or TopicNames()
        self._from_beginning = from_beginning
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._results: dict[str, TaskResult] = {}
        self._waiters: dict[str, asyncio.Future[TaskResult]] = {}
        self._queue: asyncio.Queue[TaskResult] = asyncio.Queue()
        self.duplicates = 0

    async def start(self) -> SwarmClient:
        self._producer = AIOKafkaProducer(bootstrap_servers=self._servers, acks="all", linger_ms=0,
                                          **self._security)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._servers, group_id=None, fetch_max_wait_ms=10,
                                          auto_offset_reset="earliest",  # a log wiped under us: from its start
                                          **self._security)
        await self._consumer.start()
        partitions = await topic_partitions(self._consumer, self.topics.results)
        if not partitions:
            raise RuntimeError(f"topic {self.topics.results} not found: create the topics first (ensure_topics)")
        self._consumer.assign(partitions)
        if self._from_beginning:
            await self._consumer.seek_to_beginning(*partitions)
        else:
            await self._consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the lazy seek now, before any task is submitted
                await self._consumer.position(tp)
        self._reader = asyncio.create_task(self._read())
        return self

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for part in (self._consumer, self._producer):
            if part is not None:
                await part.stop()

    async def __aenter__(self) -> SwarmClient:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def submit(self, task: TaskRequest, *, wait_ack: bool = True, headers: Mapping[str, bytes] | None = None) -> str:
        """Publish a task; returns its id once the broker has it (or at once with ``wait_ack=False``).
        ``headers``: for example a ``traceparent`` (``streams.tracing.inject()``), carried to the result."""
        assert self._producer is not None, "call start() first"
        fut = await self._producer.send(self.topics.tasks, codec().encode(task), key=task.task_id.encode(),
                                        headers=list(headers.items()) if headers else None)
        if wait_ack:
            await fut
        return task.task_id

    async def submit_raw(self, value: bytes, *, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None,
                         topic: str | None = None) -> None:
        """Publish bytes to the task topic, or another (JSON tasks, feedback, tests of bad input)."""
        assert self._producer is not None
        await (await self._producer.send(topic or self.topics.tasks, value, key=key, headers=headers))

    async def feedback(self, result: TaskResult, score: float, *, source: str = "user") -> None:
        """Judge a result (0 wrong .. 1 right): selection learns from it."""
        record = Feedback(task_id=result.task_id, created_ms=result.created_ms, score=score, source=source)
        await self.submit_raw(codec().encode(record), key=result.task_id.encode(), topic=self.topics.feedback)

    async def flush(self) -> None:
        assert self._producer is not None
        await self._producer.flush()

    async def result(self, task_id: str, timeout_s: float | None = None) -> TaskResult:
        if task_id in self._results:
            return self._results[task_id]
        fut = self._waiters.setdefault(task_id, asyncio.get_running_loop().create_future())
        async with asyncio.timeout(timeout_s):
            return await asyncio.shield(fut)

    async def results(self) -> AsyncIterator[TaskResult]:
        """Every distinct result from now on (or from the beginning), as it arrives."""
        while True:
            yield await self._queue.get()

    def forget(self, task_id: str) -> None:
        """Drop a result this client has seen (a later repeat then counts as new)."""
        self._results.pop(task_id, None)

    @property
    def received(self) -> dict[str, TaskResult]:
        return self._results

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batches: dict[Any, list[Any]] = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batches.values():
                for record in records:
                    try:
                        result = codec().decode_as(record.value, TaskResult)
                    except DecodeError:
                        continue
                    if result.task_id in self._results:
                        self.duplicates += 1
                        continue
                    self._results[result.task_id] = result
                    self._queue.put_nowait(result)
                    waiter = self._waiters.pop(result.task_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(result)
