"""SwarmClient: submit tasks, await their results.

    async with SwarmClient("127.0.0.1:9092") as client:
        task_id = await client.submit(TaskRequest(prompt="2 + 2?", answer_type="number"))
        result = await client.result(task_id, timeout_s=30)

Results are read by a consumer without a group (every partition assigned),
so any number of clients can watch the same results topic. The pipeline is
at-least-once, so the client delivers each task's first result and counts
any repeat in :attr:`duplicates`.

Topics: ``topics=`` when given, else those of ``SWARM_TOPIC_PREFIX`` (as the workers
and the CLI read it), else ``swarm.*``.

Memory is bounded whatever the traffic (a client may watch a busy results topic
for weeks): it keeps the last ``RESULTS_KEPT`` results for :meth:`result` and
:attr:`received`, each for at most ``RESULT_TTL_S``; the last ``SEEN_IDS_KEPT``
task ids to recognise repeats; at most ``STREAM_BACKLOG`` results not yet taken
from :meth:`results`; and a waiter only while its :meth:`result` call waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import Feedback, TaskRequest, TaskResult
from swarmstream.streams.app.settings import TopicNames
from swarmstream.streams.engine.broker import bootstrap_servers, topic_partitions

RESULTS_KEPT = 20_000
"""Results kept for :meth:`SwarmClient.result` and :attr:`SwarmClient.received`, the oldest
forgotten first. A three-vote consensus result takes ~3.8 KB decoded (measured with
tracemalloc), so this caps them at ~75 MB; it is above the most results anything here
waits for at once (bench/pipeline.py's open-loop phase: 0.75 x ~1,500 tasks/s x 8 s,
~9,000; its bursts: at most ~3,200), which must all be present together."""

RESULT_TTL_S = 600.0
"""A result nobody asked for within this long is forgotten even below ``RESULTS_KEPT``: callers
ask for a result when they submit (or within a task's timeout, 30 s by default); the longest
wait here is the demo's 120 s, so ten minutes is only ever reached by results nobody waits for."""

SEEN_IDS_KEPT = 100_000
"""Task ids remembered to recognise a repeated result (at-least-once). A repeat comes within
seconds of the first (a crash between the result and its done mark, redelivered after the
session timeout), far inside this many results; ids cost ~100 bytes each, ~10 MB in all.
Same reasoning as ``live.TAIL_REMEMBERS``."""

STREAM_BACKLOG = 10_000
"""Results not yet taken from :meth:`SwarmClient.results`. A reader that keeps up holds a
handful; a client used only for :meth:`SwarmClient.result` never takes any and must not keep
them all; a reader this far behind loses the oldest, counted in ``stream_dropped``."""


def default_topics(environ: Mapping[str, str] | None = None) -> TopicNames:
    """The topics of ``SWARM_TOPIC_PREFIX``, as workers and the CLI name them; ``swarm.*`` without it."""
    prefix = (os.environ if environ is None else environ).get("SWARM_TOPIC_PREFIX", "").strip()
    return TopicNames(prefix) if prefix else TopicNames()


class ResultMemory(Mapping[str, TaskResult]):
    """task id -> result, at most ``max_results`` (the oldest out first), each for at most ``ttl_s``.
    A read-only mapping for callers (``SwarmClient.received``); expiry happens on every access."""

    def __init__(self, max_results: int = RESULTS_KEPT, ttl_s: float = RESULT_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_results < 1 or ttl_s <= 0:
            raise ValueError(f"ResultMemory needs max_results >= 1 and ttl_s > 0, got {max_results}, {ttl_s}")
        self.max_results = max_results
        self.ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[str, tuple[TaskResult, float]] = OrderedDict()

    def add(self, result: TaskResult) -> None:
        self._items[result.task_id] = (result, self._clock())
        self._items.move_to_end(result.task_id)
        self._expire()

    def discard(self, task_id: str) -> None:
        self._items.pop(task_id, None)

    def _expire(self) -> None:
        oldest_kept = self._clock() - self.ttl_s
        items = self._items
        while items and (len(items) > self.max_results or next(iter(items.values()))[1] < oldest_kept):
            items.popitem(last=False)

    def __getitem__(self, task_id: str) -> TaskResult:
        self._expire()
        return self._items[task_id][0]

    def __contains__(self, task_id: object) -> bool:
        self._expire()
        return task_id in self._items

    def __iter__(self) -> Iterator[str]:
        self._expire()
        return iter(list(self._items))

    def __len__(self) -> int:
        self._expire()
        return len(self._items)


class RecentIds:
    """The last ``max_ids`` ids added, for membership tests; the oldest forgotten first."""

    def __init__(self, max_ids: int = SEEN_IDS_KEPT) -> None:
        self.max_ids = max_ids
        self._ids: OrderedDict[str, None] = OrderedDict()  # an insertion-ordered set

    def add(self, item: str) -> None:
        self._ids[item] = None
        while len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)

    def discard(self, item: str) -> None:
        self._ids.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class SwarmClient:
    def __init__(self, broker: str, *, topics: TopicNames | None = None, from_beginning: bool = False,
                 security: Mapping[str, Any] | None = None, keep_results: int = RESULTS_KEPT,
                 result_ttl_s: float = RESULT_TTL_S) -> None:
        """``topics``: default :func:`default_topics` (``SWARM_TOPIC_PREFIX``). ``security``: SASL/TLS
        keyword arguments for aiokafka (``streams.app.security.aiokafka_security``). ``keep_results``,
        ``result_ttl_s``: how many results, and how long, :meth:`result` can still answer from memory."""
        self._servers = bootstrap_servers(broker)
        self._security = dict(security or {})
        self.topics = topics or default_topics()
        self._from_beginning = from_beginning
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._results = ResultMemory(keep_results, result_ttl_s)
        self._seen = RecentIds(max(SEEN_IDS_KEPT, keep_results))
        self._waiters: dict[str, set[asyncio.Future[TaskResult]]] = {}
        self._stream: deque[TaskResult] = deque()
        self._stream_ready = asyncio.Event()
        self.duplicates = 0
        self.stream_dropped = 0

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
        ``headers``: for example a ``traceparent`` (``streams.engine.tracing.inject()``), carried to the result."""
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
        """The task's result: from memory if it came in the last ``keep_results`` results and
        ``result_ttl_s``, else the next one to come; TimeoutError after ``timeout_s``. A call
        that ends (answered, timed out, cancelled) leaves nothing behind."""
        with contextlib.suppress(KeyError):
            return self._results[task_id]
        waiter: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(task_id, set())
        waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        finally:
            waiters.discard(waiter)
            if not waiters and self._waiters.get(task_id) is waiters:
                del self._waiters[task_id]

    async def results(self) -> AsyncIterator[TaskResult]:
        """Every distinct result from now on (or from the beginning), as it arrives. Up to
        ``STREAM_BACKLOG`` results wait here for a reader; past that the oldest are dropped."""
        while True:
            while not self._stream:
                self._stream_ready.clear()
                await self._stream_ready.wait()
            yield self._stream.popleft()

    def forget(self, task_id: str) -> None:
        """Drop a result this client has seen (a later repeat then counts as new)."""
        self._results.discard(task_id)
        self._seen.discard(task_id)

    @property
    def received(self) -> Mapping[str, TaskResult]:
        """The results this client still remembers (``keep_results``, ``result_ttl_s``), by task id."""
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
                    self._deliver(result)

    def _deliver(self, result: TaskResult) -> None:
        """A decoded result: remembered, streamed and handed to its waiters, or counted as a repeat."""
        if result.task_id in self._seen:
            self.duplicates += 1
            return
        self._seen.add(result.task_id)
        self._results.add(result)
        if len(self._stream) >= STREAM_BACKLOG:
            self._stream.popleft()
            self.stream_dropped += 1
        self._stream.append(result)
        self._stream_ready.set()
        for waiter in self._waiters.pop(result.task_id, ()):
            if not waiter.done():
                waiter.set_result(result)
