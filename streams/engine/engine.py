"""The stream engine: one consumer group over every source topic, many events in
flight per handler, offsets committed strictly in order, tables restored from
their changelogs on assignment.

    fetch (getmany) ──► per partition: slots in offset order ──► agent: handler tasks (≤ its limit)
    own record acked ──┘     │ (its next offset, while quiet)      └─ backlog full: pause its partitions
                             └─ head done (and its table writes in the changelog) ──► commit

Why not Faust (faust-streaming 0.15.3 ran this pipeline until issue 8; DESIGN.md,
"Why our own engine"): a trivial Faust agent moves ~3,000 events/s here and a
consensus task is 7 consumed events, so the 1,000 tasks/s target was out of reach
by construction; and Faust loses fetched records four ways under rebalances
(its drain cancels hand-overs, gaps count as acks, skipped events are acked,
#606's off-by-one), which the old ``streams/transport.py`` patched by overriding
its internals. Here a fetched record is either handled or read again, by
construction:

- records of a partition are dispatched in offset order, each to one handler
  task; the partition's commit point moves only over a run of finished slots
  from its head, so nothing is committed past an unfinished event (the in-flight
  pattern DESIGN.md measured fastest and lossless);
- what a handler produces (records it emits, its table writes to the changelogs,
  :class:`streams.engine.changelog.Table`) is sent when it returns, outputs before state,
  in per-partition batches (``streams/engine/batching.py``), and holds back its slot until
  the broker has all of it;
- a record it produces for a partition it consumes (a task's model requests and
  outcomes: co-partitioned) is handed to that agent once the broker has it, if it is
  the partition's next offset and the partition is quiet (``HAND_OVER_BELOW``); the
  fetcher brings it too, and skips it as already dispatched;
- rebalances are eager (every partition is revoked, then assigned): a partition
  kept across one (held without a gap in one membership: the same member id) keeps
  its in-flight handlers, its tables and its position (no re-delivery); what its
  events produce between the revocation and the assignment waits, and is sent if
  the partition is kept, dropped if it moved; a lost one has its handlers
  cancelled and its tables dropped, and its next owner reads from the commit; a
  gained one is restored from the changelogs before its first record is handled;
- a worker publishes only while it can prove its membership (``streams/engine/fencing.py``):
  a stalled worker's records wait for its next heartbeat, and a lost membership
  drops every partition at once (:meth:`Engine._fence`);
- a handler that raises has its event reported (``on_error``: the app dead-letters
  it) and committed: no record's content stops a worker.

Partitions are co-assigned by number across topics (``RangePartitionAssignor``:
every topic has the same partition count, so each member gets the same numbers of
each), which is what makes the task-keyed join local.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import InvalidSessionTimeoutError, KafkaError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from swarmstream.streams.engine import tracing
from swarmstream.streams.engine.batching import Batcher, OnAck
from swarmstream.streams.engine.broker import BrokerRefused, ensure_topics
from swarmstream.streams.engine.changelog import DiskStore, Table, restore_tables
from swarmstream.streams.engine.checkpoint import checkpoints_topic
from swarmstream.streams.engine.fencing import (
    Fenced,
    Lease,
    guard_produce_requests,
    heartbeating,
    membership,
    purge_unsent,
    watch_heartbeats,
)
from swarmstream.streams.engine.fetchwait import FetchWait
from swarmstream.streams.engine.horizon import HorizonKeeper, horizons_topic
from swarmstream.streams.engine.message import InputMessage

log = logging.getLogger(__name__)

Handler = Callable[[InputMessage], Awaitable[None]]

OnError = Callable[[InputMessage, BaseException], Awaitable[None]]
"""Told of a handler that raised, while its event is still being handled (what it sends is
part of the event's output): a record's content must never stop a worker."""

current_partition: ContextVar[int | None] = ContextVar("swarm_current_partition", default=None)
"""The partition of the event a handler is handling: where its table writes go."""

_outbox: ContextVar[_Outbox | None] = ContextVar("swarm_outbox", default=None)

BACKLOG_PER_LIMIT = 2
"""An agent's partitions are paused once it holds this many times its in-flight limit
waiting: enough to start the next call the moment one ends, little memory."""

PRODUCER_BATCH_BYTES = 256 * 1024
"""aiokafka keeps one open batch per partition and makes every send to a full one wait (an
``asyncio.wait`` each) until the sender drains it; its 16 KiB default filled within a burst."""

HAND_OVER_BELOW = 64
"""A record this worker produced for a partition it consumes goes to its agent as soon as the
broker acknowledges it while the partition has fewer events than this in flight; past that the
fetcher brings it, in batches. Measured (``bench pipeline``'s latency run, 100 ms models): at
50 tasks/s the overhead fell from 23-25 to 14 ms at the median and 30-35 to 20 ms at p99, at
250/s from 30-37 to 21-30 ms; handing over under a burst cost ~10% of the throughput, hence
a bound. It was 8 at first, which a model topic's partition passes at ~300 tasks/s with 100 ms
models (4 partitions: rate x 0.1 s / 4 calls in flight each): at 500 tasks/s, 64 instead of 8
took the overhead from 40-43 to 24-32 ms p50 and 83-97 to 52-65 ms p99, with bursts as fast."""

MAX_REQUEST_BYTES = 1024 * 1024
"""The producer's largest request, set rather than inherited: Kafka's default ``message.max.bytes``
(1 MiB), so what the producer accepts a broker with default settings accepts too."""

PRODUCE_LIMIT_BYTES = MAX_REQUEST_BYTES - 16 * 1024
"""The largest record (key + value + headers) :meth:`Engine.send` takes; a larger one raises
:class:`RecordTooLarge` where it is emitted, inside the handler that made it, which decides what
it means (a dead letter, a failed task). 16 KiB under the request size leaves room for the batch
and record framing. Before this bound, one dead letter that copied a 1 MiB record failed in the
producer, and the worker stopped at that offset for good."""

PARTITION_CHECK_TRIES = 50
"""Metadata reads (0.1 s apart) before a topic the worker just created counts as missing."""

STOP_GRACE_S = 5.0
"""On SIGTERM, how long handlers in flight may run on before the final commit."""


FETCH_WATCH_INTERVAL_S = 0.5
"""How often the partitions' fetch positions are compared with their high watermarks: a few
dozen attribute reads, and a starved partition is noticed within ``STARVED_S`` + this."""


def _fetch_position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The partition's fetch position without waiting for one (``consumer.position`` waits while
    it is reset); None while it has none."""
    state = consumer._subscription.subscription.assignment.state_value(tp)
    return state.position if state is not None and state.has_valid_position else None


class RecordTooLarge(ValueError):
    """A record larger than :data:`PRODUCE_LIMIT_BYTES`: refused before it reaches the producer."""


HASHES_KEPT = 8_192
"""Keys whose partition hash is kept. The hashes of one task fall within its life (two keys: the
task id, and its changelog key), so this covers ~4,000 tasks in flight (1,000 tasks/s for 4 s).
An entry costs ~230 bytes (key, hash, cache node): at 65,536 the cache was ~15 MB of a worker's
RSS that a fresh worker did not have, and that a soak read as growth (issue 21)."""


class _CachedPartitioner:
    """aiokafka's partitioner (murmur2 of the key, as the Java client: records land where any
    other client would put them) with the hashes of recent keys kept. Its murmur2 is pure
    Python, and one task id is hashed ~8 times (requests, outcomes, result, table writes)."""

    def __init__(self) -> None:
        self._hash = functools.lru_cache(maxsize=HASHES_KEPT)(murmur2)

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return DefaultPartitioner()(key, all_partitions, available)
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]


_Record = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]] | None, int | None, OnAck | None]


@dataclass(eq=False, slots=True)
class _Outbox:
    """What the handler of one event produced and has not sent yet.

    A handler's records go out when it returns, in one loop over the producer (a send that
    finds room in its batch does not suspend: no task, no ack wait per record), and its event
    is done once every one is acknowledged. Outputs are sent and acknowledged before table
    writes: the state that says a record was produced never outlives the record (a worker
    dying in between leaves state that re-handling the event brings up to date)."""

    engine: Engine
    part: _Partition | None = None  # the source partition of the event (None: a test's outbox)
    outputs: list[_Record] = field(default_factory=list)
    writes: list[_Record] = field(default_factory=list)
    closed: bool = False  # sent: a task the handler spawned and that outlives it sends directly

    async def send(self) -> None:
        if self.part is not None and not await self.engine._owns(self.part):
            self.outputs.clear()
            self.writes.clear()
            raise Fenced(f"{self.part.tp} is no longer this worker's: what its event produced is dropped")
        while self.outputs or self.writes:  # a task the handler spawned may add while we wait
            records = self.outputs or self.writes
            batch = records[:]
            records.clear()
            acks = {await self.engine._produce(*record) for record in batch}  # records share batches
            for ack in acks:  # in turn, not asyncio.gather: ~10 us of CPU per event less
                await ack


async def flush() -> None:
    """Send what the event being handled produced so far and wait until the broker has it (the
    tool ledger: an effect runs only once its entry is durable). A no-op outside a handler,
    where every send is acknowledged before it returns."""
    box = _outbox.get()
    if box is not None and not box.closed:
        await box.send()


@dataclass(eq=False, slots=True)
class _Slot:
    offset: int
    done: bool = False
    task: asyncio.Task[None] | None = None


@dataclass(eq=False)
class _Partition:
    """A source partition this worker owns: its dispatched events in offset order."""

    tp: TopicPartition
    next_offset: int = -1  # the next record to dispatch; -1 until the first one
    commit_at: int | None = None  # the offset to commit (after the last finished head)
    committed: int | None = None  # the last offset committed
    slots: deque[_Slot] = field(default_factory=deque)

    def advance(self) -> None:
        slots = self.slots
        while slots and slots[0].done:
            self.commit_at = slots.popleft().offset + 1


@dataclass(eq=False)
class Agent:
    """A handler over some topics, with at most ``limit`` events in flight."""

    name: str
    topics: tuple[str, ...]
    handler: Handler
    limit: int
    running: int = 0
    backlog: deque[tuple[_Partition, _Slot, InputMessage]] = field(default_factory=deque)
    paused: bool = False


class Engine:
    """The worker's runtime: producer, consumer group, agents, tables, timers.

    Capabilities see none of it: handlers take :class:`agents.ports.InputMessage` and
    an ``emit``; tables are plain mappings (``streams/engine/changelog.py``)."""

    def __init__(self, *, app_id: str, bootstrap: str, partitions: int, session_timeout_s: float = 2.0,
                 heartbeat_interval_s: float = 0.3, commit_interval_s: float = 0.5, max_poll_records: int = 500,
                 fetch_max_wait_ms: int = 10, fetch_min_bytes: int = 1, producer_linger_ms: int = 2,
                 group_instance_id: str | None = None,
                 security: Mapping[str, Any] | None = None, traced: bool = False,
                 data_dir: Path | None = None) -> None:
        """``data_dir``: keep tables on local disk there as well (``SWARM_STORE=rocksdb://``), so a
        restarted worker reads only the changelogs' tails."""
        self.app_id = app_id
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.security = dict(security or {})
        self.traced = traced
        self._session_timeout_s = session_timeout_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._commit_interval_s = commit_interval_s
        self._max_poll_records = max_poll_records
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._fetch_min_bytes = fetch_min_bytes
        self.fetch_wait = FetchWait(fetch_max_wait_ms)
        self._linger_ms = producer_linger_ms
        self._group_instance_id = group_instance_id
        self._data_dir = data_dir
        self.agents: dict[str, Agent] = {}
        self._agent_of: dict[str, Agent] = {}
        self.tables: dict[str, Table] = {}
        self._timers: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        self._services: list[Callable[[], Awaitable[None]]] = []
        self._written_topics: list[str] = []
        self._on_assigned: list[Callable[[set[TopicPartition]], Awaitable[None]]] = []
        self._beside_restore: list[Callable[[set[TopicPartition]], Awaitable[None]]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._parts: dict[TopicPartition, _Partition] = {}
        self._owned: set[int] = set()  # partition numbers whose tables this worker holds
        self._background: set[asyncio.Task[Any]] = set()
        self.producer: AIOKafkaProducer | None = None
        self._batcher: Batcher | None = None
        self._partitioner = _CachedPartitioner()
        self._numbers = list(range(partitions))
        self.consumer: AIOKafkaConsumer | None = None
        self.ready = asyncio.Event()
        self._stopping = False
        self._failed: asyncio.Future[None] | None = None  # set by start (it needs the running loop)
        # Fencing (streams/engine/fencing.py): the membership as this worker can prove it; the member id
        # its partitions were assigned under; set from a revocation until the next assignment.
        self._lease = Lease(max(session_timeout_s - heartbeat_interval_s, heartbeat_interval_s))
        self._member: str | None = None
        self._rebalancing: asyncio.Future[None] | None = None
        self._on_error: OnError | None = None
        self._fenced_from: list[int] | None = None  # what a fence dropped, until the next assignment
        self.produce_limit_bytes = PRODUCE_LIMIT_BYTES
        # restore horizons of the tables' partitions (streams/engine/horizon.py): a timer once a table exists
        self.horizons = HorizonKeeper(
            horizons_topic(app_id), lambda: self.tables.values(),
            lambda key, value, partition: self.send(self.horizons.topic, key, value, partition=partition),
            owns=lambda partition: self._rebalancing is None and partition in self._owned,
            checkpoints=checkpoints_topic(app_id))

    # -- declaring -------------------------------------------------------------------------

    def agent(self, name: str, topics: Iterable[str], handler: Handler, max_in_flight: int) -> Agent:
        agent = Agent(name, tuple(topics), handler, max_in_flight)
        for topic in agent.topics:
            if topic in self._agent_of:
                raise ValueError(f"topic {topic} already has an agent ({self._agent_of[topic].name})")
            self._agent_of[topic] = agent
        self.agents[name] = agent
        return agent

    def table(self, name: str) -> Table:
        disk = DiskStore(self._data_dir / self.app_id / name) if self._data_dir is not None else None
        table = Table(f"{self.app_id}-{name}-changelog", self._send_changelog, disk,
                      # a timer's tombstones and rewrites: outside a handler ``send`` returns once the broker has it
                      send_now=lambda topic, key, value, partition, on_ack: self.send(topic, key, value,
                                                                                     partition=partition,
                                                                                     on_ack=on_ack))
        if not self.tables:
            self.timer(self.horizons.interval_s, self.horizons.round)
        self.tables[name] = table
        return table

    def timer(self, interval_s: float, fn: Callable[[], Awaitable[None]]) -> None:
        self._timers.append((interval_s, fn))

    def writes_to(self, topic: str) -> None:
        """A topic a service of this worker writes (not a table's changelog): created at start with
        the others, never while records flow."""
        self._written_topics.append(topic)

    def service(self, fn: Callable[[], Awaitable[None]]) -> None:
        """A coroutine run for the worker's life (a failure is logged, not fatal)."""
        self._services.append(fn)

    def on_assigned(self, fn: Callable[[set[TopicPartition]], Awaitable[None]], *,
                    beside_restore: bool = False) -> None:
        """Called with the newly gained partitions, after their tables are restored and before
        their first record is handled; ``beside_restore``: while they are restored, for a hook that
        reads no table (the published results' scan: ~1.4 s of a restart after 100,000 tasks)."""
        (self._beside_restore if beside_restore else self._on_assigned).append(fn)

    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._on_stop.append(fn)

    def on_error(self, fn: OnError) -> None:
        """Called when a handler raises, with the event and the error (the app dead-letters it);
        without one the error is only logged. Either way the event is done and committed."""
        self._on_error = fn

    def source_topics(self) -> list[str]:
        return sorted(self._agent_of)

    def changelog_topics(self) -> list[str]:
        topics = sorted(table.topic for table in self.tables.values())
        return [*topics, self.horizons.topic, checkpoints_topic(self.app_id)] if topics else topics

    # -- writing ---------------------------------------------------------------------------

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   headers: Mapping[str, bytes] | None = None, partition: int | None = None,
                   on_ack: OnAck | None = None) -> None:
        """While handling an event: queued, sent when the handler returns (its event is done
        once the broker has it; :func:`flush` sends sooner). Anywhere else: returns once the
        broker acknowledged the record. ``on_ack`` is told the record's offset then (a table's
        tombstones and rewrites move its restore horizon, ``streams/engine/horizon.py``)."""
        header_list = list(headers.items()) if headers else None
        size = len(key or b"") + len(value or b"")
        if header_list:
            size += sum(len(k) + len(v or b"") for k, v in header_list)
        if size > self.produce_limit_bytes:
            raise RecordTooLarge(f"a record of {size} bytes for {topic} is over the {self.produce_limit_bytes}-byte limit")
        record = (topic, key, value, header_list, partition, on_ack)
        box = _outbox.get()
        if box is not None and not box.closed:
            box.outputs.append(record)
        else:
            await (await self._produce(*record))

    async def _produce(self, topic: str, key: bytes | None, value: bytes | None,
                       headers: list[tuple[str, bytes]] | None, partition: int | None,
                       on_ack: OnAck | None) -> asyncio.Future[Any]:
        assert self.producer is not None and self._batcher is not None, "the engine is not started"
        if partition is None:
            partition = self._partition_of(topic, key)
        if partition is not None and (value is None or len(value) <= PRODUCER_BATCH_BYTES):
            tp = TopicPartition(topic, partition)
            if tp in self._parts:
                on_ack = self._hand_over(tp, key, value, headers, on_ack)
            return self._batcher.append(tp, key, value, headers, on_ack).acked
        # the topic's partitions are not known yet, or the record is larger than a batch
        # (aiokafka's send checks it against the request size and says so)
        ack: asyncio.Future[Any] = await self.producer.send(topic, value, key=key, partition=partition,
                                                            headers=headers)
        if on_ack is not None:
            ack.add_done_callback(lambda f: f.cancelled() or f.exception() or on_ack(f.result().offset))
        return ack

    def home(self, key: bytes) -> int:
        """The partition a keyed record of any source topic belongs to: the producer's hash over
        the engine's partition count (every topic has that many, ``ensure_topics``), whoever
        produced it."""
        return self._partitioner(key, self._numbers, self._numbers)

    def _partition_of(self, topic: str, key: bytes | None) -> int | None:
        assert self.producer is not None
        partitions = self.producer.client.cluster.partitions_for_topic(topic)
        if not partitions:
            return None
        ordered = sorted(partitions)
        return self._partitioner(key, ordered, ordered)

    def _hand_over(self, tp: TopicPartition, key: bytes | None, value: bytes | None,
                   headers: list[tuple[str, bytes]] | None, on_ack: OnAck | None) -> OnAck:
        """A record for a partition this worker consumes goes to its agent the moment the broker
        has it, not a fetch later (DESIGN.md, "Where a task's time goes"); the fetcher skips it."""

        def acked(offset: int) -> None:
            if on_ack is not None:
                on_ack(offset)
            part = self._parts.get(tp)
            agent = self._agent_of[tp.topic]
            # Only next in line: a record before it (another producer's) is not read yet, and
            # order within a partition is what commits rely on. Otherwise the fetcher brings it.
            if (part is not None and part.next_offset == offset and len(part.slots) < HAND_OVER_BELOW
                    and not agent.paused and not self._stopping and self._rebalancing is None):
                self._dispatch(agent, part, InputMessage(tp.topic, tp.partition, offset, key, value,
                                                         dict(headers) if headers else {}, int(time.time() * 1000)))

        return acked

    def _send_changelog(self, topic: str, key: bytes, value: bytes | None, on_ack: OnAck | None) -> int:
        partition = current_partition.get()
        box = _outbox.get()
        if partition is None or box is None or box.closed:
            raise RuntimeError(f"{topic}: a table is written only while handling an event (its partition)")
        box.writes.append((topic, key, value, None, partition, on_ack))
        return partition

    # -- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._failed = asyncio.get_running_loop().create_future()
        await ensure_topics(f"kafka://{self.bootstrap}",
                            dict.fromkeys([*self.source_topics(), *self.changelog_topics(), *self._written_topics]),
                            self.partitions, security=self.security)
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=self._linger_ms,
                                         max_batch_size=PRODUCER_BATCH_BYTES, partitioner=self._partitioner,
                                         max_request_size=MAX_REQUEST_BYTES, **self.security)
        await self.producer.start()
        await self._check_partition_counts()
        guard_produce_requests(self.producer, self._lease)
        self._batcher = Batcher(self.producer, self._lease)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.app_id,
            group_instance_id=self._group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=int(self._session_timeout_s * 1000),
            heartbeat_interval_ms=int(self._heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(self._session_timeout_s * 1000),
            max_poll_records=self._max_poll_records,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            fetch_min_bytes=self._fetch_min_bytes,
            **self.security,
        )
        self.consumer.subscribe(self.source_topics(), listener=_Listener(self))
        try:
            await self.consumer.start()
        except InvalidSessionTimeoutError:
            raise BrokerRefused(
                f"the broker refuses a {self._session_timeout_s:g} s session timeout: it must lie within the "
                f"broker's group.min.session.timeout.ms and group.max.session.timeout.ms (Apache Kafka's "
                f"defaults: 6 s and 30 min); set SWARM_SESSION_TIMEOUT_S within them") from None
        watch_heartbeats(self.consumer, self._lease, self._fence)
        for fn in self._services:
            self._spawn(_logged(fn, fn.__name__))
        for interval_s, fn in self._timers:
            self._spawn(_every(interval_s, fn))
        self._spawn(_every(FETCH_WATCH_INTERVAL_S, self._watch_fetches))
        self._spawn(self._commit_loop())

    async def _watch_fetches(self) -> None:
        """Raise the fetch wait when a partition the fetcher should read stays unread
        (``streams/engine/fetchwait.py``: a broker whose fetches give up before they list it)."""
        consumer = self.consumer
        fetcher = getattr(consumer, "_fetcher", None)
        if consumer is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
            return  # an aiokafka without it: the wait stays as configured
        paused = consumer.paused()
        buffered = getattr(fetcher, "_records", {})  # fetched, not handed to getmany yet: not the broker's wait
        watched = [(tp, _fetch_position(consumer, tp), consumer.highwater(tp)) for tp in list(self._parts)
                   if tp not in paused and tp not in buffered and consumer._subscription.is_assigned(tp)]
        wait_ms = self.fetch_wait.observe(time.monotonic(), watched)
        if wait_ms is not None:
            fetcher._fetch_max_wait_ms = wait_ms  # type: ignore[union-attr]  # read for each fetch request
            log.warning("a partition stayed behind its high watermark for %.1f s: fetch wait raised to %d ms "
                        "(a broker whose fetch cost grows with history, such as the embedded Tansu: DESIGN.md, "
                        "Brokers)", self.fetch_wait.starved_s, wait_ms)

    async def _check_partition_counts(self) -> None:
        """Every source topic and changelog must have the engine's partition count: the join is
        local only because partition *n* of each goes to the same member, and a task's home
        (:meth:`home`) is its hash over that count. A topic made elsewhere with another count
        would split tasks from their state, so the worker refuses to start and says which."""
        assert self.producer is not None
        topics = [*self.source_topics(), *self.changelog_topics()]
        counts: dict[str, int] = {}
        for _ in range(PARTITION_CHECK_TRIES):
            cluster = await self.producer.client.fetch_all_metadata()
            counts = {topic: len(cluster.partitions_for_topic(topic) or ()) for topic in topics}
            if all(counts.values()):
                break
            await asyncio.sleep(0.1)  # a topic just created may not be in the metadata yet
        wrong = {topic: n for topic, n in counts.items() if n and n != self.partitions}
        if wrong:
            raise ValueError(f"topics with another partition count than SWARM_PARTITIONS={self.partitions}: "
                             + ", ".join(f"{topic} has {n}" for topic, n in sorted(wrong.items()))
                             + " (recreate them, or set SWARM_PARTITIONS to match)")

    async def run(self, stop: asyncio.Event) -> None:
        """Handle events until ``stop`` is set, then finish what is in flight (for a while),
        commit and leave the group."""
        await self.start()
        assert self._failed is not None
        fetching = asyncio.ensure_future(self._fetch_loop())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([fetching, stopping, self._failed], return_when=asyncio.FIRST_COMPLETED)
            for crashed in (self._failed, fetching):
                if crashed.done():
                    crashed.result()  # a crash of the fetch loop or a fatal fault is the worker's crash
        finally:
            fetching.cancel()
            stopping.cancel()
            await self.stop()

    async def stop(self) -> None:
        self._stopping = True
        running = [slot.task for part in self._parts.values() for slot in part.slots if slot.task]
        if running:
            await asyncio.wait(running, timeout=STOP_GRACE_S)
        with contextlib.suppress(Exception):
            await self._commit()
        for task in [*self._background, *running]:
            task.cancel()
        for fn in self._on_stop:
            with contextlib.suppress(Exception):
                await fn()
        if self.consumer is not None:
            await self.consumer.stop()
        if not self._lease.valid():
            # Out of the group now: no heartbeat will confirm a lapsed lease, and the sends it
            # holds belong to events not committed (their next owner handles them again).
            self._lease.lose()
        if self._batcher is not None:
            await self._batcher.drain()
        if self.producer is not None:
            await self.producer.stop()
        for table in self.tables.values():
            if table.disk is not None:
                table.disk.close()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fetch_loop(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=self._max_poll_records)
            for tp, records in batches.items():
                part = self._parts.get(tp)
                agent = self._agent_of.get(tp.topic)
                if part is None or agent is None:
                    continue  # revoked since the fetch
                for record in records:
                    if record.offset < part.next_offset:
                        continue  # already dispatched here (fetched before, or handed over when acked)
                    self._dispatch(agent, part, InputMessage(
                        record.topic, record.partition, record.offset, record.key, record.value,
                        dict(record.headers) if record.headers else {}, record.timestamp))

    def _dispatch(self, agent: Agent, part: _Partition, message: InputMessage) -> None:
        """The partition's next record: to a handler now, or to the agent's backlog."""
        part.next_offset = message.offset + 1
        slot = _Slot(message.offset)
        part.slots.append(slot)
        if agent.running < agent.limit:
            self._start(agent, part, slot, message)
            return
        agent.backlog.append((part, slot, message))
        if not agent.paused and len(agent.backlog) >= agent.limit * BACKLOG_PER_LIMIT:
            self._pause(agent, True)

    def _pause(self, agent: Agent, paused: bool) -> None:
        assert self.consumer is not None
        owned = self.consumer.assignment()  # during a rebalance, _parts may still hold revoked ones
        tps = [tp for tp in self._parts if tp.topic in agent.topics and tp in owned]
        agent.paused = paused
        if paused:
            self.consumer.pause(*tps)
        else:
            self.consumer.resume(*tps)

    def _start(self, agent: Agent, part: _Partition, slot: _Slot, message: InputMessage) -> None:
        agent.running += 1
        slot.task = asyncio.ensure_future(self._handle(agent, part, slot, message))

    async def _handle(self, agent: Agent, part: _Partition, slot: _Slot, message: InputMessage) -> None:
        box = _Outbox(self, part)
        _outbox.set(box)  # this task's own context: only its records land here
        current_partition.set(message.partition)
        try:
            try:
                if self.traced:
                    with tracing.span(agent.name, message.headers, topic=message.topic,
                                      partition=message.partition, offset=message.offset):
                        await agent.handler(message)
                else:
                    await agent.handler(message)
            except Fenced:
                raise
            except Exception as exc:
                # It cannot be retried in place without blocking its partition (a record's content
                # fails the same way every time), so it goes to on_error (a dead letter) and the
                # partition moves on. Handlers own their expected error paths: this is a bug or
                # hostile input, logged loudly.
                log.exception("%s: handler failed on %s[%d]@%d", agent.name, message.topic, message.partition,
                              message.offset, extra={"topic": message.topic, "partition": message.partition,
                                                     "offset": message.offset,
                                                     "task_id": (message.key or b"")[:256].decode("utf-8", "replace")})
                await self._report(agent, message, exc)
            await box.send()  # also a failed handler's: the state it left is the state it wrote
            slot.done = True
        except Fenced:
            pass  # not this worker's partition any more: its next owner handles the event again
        except Exception as exc:
            # The producer refused or gave up on a record: committing this event would lose it
            # (an output, or the state), so its slot stays unfinished (nothing is committed past
            # it) and the worker stops; its partitions' next owner handles the event again.
            self._fail(RuntimeError(f"{agent.name}: a record produced for {message.topic}[{message.partition}]"
                                    f"@{message.offset} failed: {exc!r}"))
        finally:
            box.closed = True
            agent.running -= 1
            slot.task = None
            if slot.done:
                part.advance()
            self._drain(agent)

    async def _report(self, agent: Agent, message: InputMessage, exc: Exception) -> None:
        if self._on_error is None:
            return
        try:
            await self._on_error(message, exc)
        except Fenced:
            raise
        except Exception:
            log.exception("%s: reporting the failure on %s[%d]@%d failed too", agent.name, message.topic,
                          message.partition, message.offset)

    def _fail(self, exc: BaseException) -> None:
        """A fault the worker cannot carry on past: ``run`` raises it (the process exits non-zero
        and its supervisor restarts it; the group hands its partitions on meanwhile)."""
        log.error("worker failing: %s", exc)
        if self._failed is not None and not self._failed.done():
            self._failed.set_exception(exc)

    def _drain(self, agent: Agent) -> None:
        """Start waiting events while the agent has room; resume its partitions once the backlog is short."""
        if self._stopping:
            return
        backlog = agent.backlog
        while backlog and agent.running < agent.limit:
            self._start(agent, *backlog.popleft())
        if agent.paused and len(backlog) < agent.limit:
            self._pause(agent, False)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self._commit_interval_s)
            try:
                await self._commit()
            except KafkaError as exc:  # a rebalance under way: the listener commits before it
                log.info("commit skipped: %r", exc)

    async def _commit(self) -> None:
        assert self.consumer is not None
        offsets = {tp: part.commit_at for tp, part in self._parts.items()
                   if part.commit_at is not None and part.commit_at != part.committed}
        if not offsets:
            return
        await self.consumer.commit(offsets)  # type: ignore[arg-type]
        for tp, offset in offsets.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = offset

    # -- rebalancing -----------------------------------------------------------------------

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        self.ready.clear()
        if self._rebalancing is None:  # what events produce now waits for the assignment (_owns)
            self._rebalancing = asyncio.get_running_loop().create_future()
        assert self.consumer is not None
        if membership(self.consumer)[0] != self._member:
            self._fence()  # the membership lapsed before this rejoin: nothing here is ours to commit
            return
        try:
            await self._commit()  # so the next owner starts after everything finished here
        except KafkaError as exc:
            log.warning("commit before the rebalance failed (%r): the next owner re-reads from the last commit", exc)

    async def _assigned(self, assigned: set[TopicPartition]) -> None:
        assert self.consumer is not None
        try:
            async with heartbeating(self.consumer, self._heartbeat_interval_s):
                await self._take(assigned)
        except Exception as exc:
            # aiokafka only logs a listener's failure; the gained partitions would stay paused
            # (owned here, handled nowhere) for good.
            self._fail(RuntimeError(f"taking partitions failed: {exc!r}"))
        finally:
            rebalancing, self._rebalancing = self._rebalancing, None
            if rebalancing is not None and not rebalancing.done():
                rebalancing.set_result(None)

    async def _take(self, assigned: set[TopicPartition]) -> None:
        assert self.consumer is not None
        started = time.monotonic()
        member = membership(self.consumer)[0]
        if member != self._member:
            # Kept means held without a gap in one membership: a new member id means the group
            # dropped this worker meanwhile (a stall), and whatever it held may have moved on.
            self._fence()
            self._member = member
        self._lease.renew(started)
        for tp in [tp for tp in self._parts if tp not in assigned]:
            self._lose(self._parts.pop(tp))
        owned = {tp.partition for tp in assigned}
        for partition in self._owned - owned:
            for table in self.tables.values():
                table.drop(partition)
        gained_numbers = owned - self._owned
        self._owned = owned
        gained = {tp for tp in assigned if tp not in self._parts}
        # Nothing of a gained partition may be handled before its tables are restored and the
        # hooks ran (the published results): paused, the fetcher returns none of its records.
        self.consumer.pause(*gained)
        restoring = [restore_tables(self.bootstrap, list(self.tables.values()), gained_numbers, self.security,
                                    horizons=self.horizons.topic)] if gained_numbers and self.tables else []
        await asyncio.gather(*restoring, *(fn(gained) for fn in self._beside_restore))
        for fn in self._on_assigned:
            await fn(gained)
        for tp in assigned:
            part = self._parts.get(tp)
            if part is None:
                self._parts[tp] = _Partition(tp)
            elif part.next_offset >= 0:
                self.consumer.seek(tp, part.next_offset)  # kept: go on after what was dispatched
        self.consumer.resume(*gained)
        for agent in self.agents.values():
            if agent.paused:
                self._pause(agent, True)
        log.info("assigned %d partitions (%d new, tables of %s restored) in %.2f s", len(assigned), len(gained),
                 sorted(gained_numbers), time.monotonic() - started)
        if self._fenced_from is not None:
            log.warning("rejoined after a fence: partitions %s gained anew (held %s before)", sorted(owned),
                        self._fenced_from)
            self._fenced_from = None
        self.ready.set()

    def _fence(self) -> None:
        """The group membership is gone (``streams/engine/fencing.py``): every partition is treated as
        lost at once (handlers cancelled, tables dropped, nothing more sent for them), and the
        next assignment gains whatever it brings: tables restored, published results re-read,
        positions from the committed offsets."""
        if self._parts or self._owned:
            log.warning("fenced: dropping partitions %s until the group assigns again", sorted(self._owned))
            self._fenced_from = sorted(self._owned)
        self.ready.clear()
        if not self._lease.lost:
            self._lease.lose()
        for part in self._parts.values():
            self._lose(part)
        self._parts.clear()
        for partition in self._owned:
            for table in self.tables.values():
                table.drop(partition)
        self._owned = set()
        self._member = None
        if self.producer is not None:
            purge_unsent(self.producer)

    async def _owns(self, part: _Partition) -> bool:
        """Whether ``part`` is still this worker's, in the membership it was handled under. From
        a revocation until the next assignment it is not known: the event's outputs wait, then
        go (kept) or are dropped (lost), never sent for a partition another member may own."""
        while self._rebalancing is not None:
            await asyncio.shield(self._rebalancing)
        return self._parts.get(part.tp) is part

    def _lose(self, part: _Partition) -> None:
        for slot in part.slots:
            if slot.task is not None:
                slot.task.cancel()
        for agent in self.agents.values():
            if agent.backlog and part.tp.topic in agent.topics:
                agent.backlog = deque(item for item in agent.backlog if item[0] is not part)

    # -- reading ---------------------------------------------------------------------------

    def lag(self, topic: str, partition: int) -> int | None:
        """Records of ``topic[partition]`` after this worker's commit point, from the last
        fetch's high watermark (no I/O); None when not owned here or not fetched yet."""
        tp = TopicPartition(topic, partition)
        part = self._parts.get(tp)
        if part is None or self.consumer is None:
            return None
        high = self.consumer.highwater(tp)
        done = part.commit_at if part.commit_at is not None else (part.slots[0].offset if part.slots else None)
        if high is None or done is None:
            return None
        return max(int(high) - done, 0)

    def waiting_since_ms(self, topic: str) -> int | None:
        """The record timestamp of the oldest event the agent reading ``topic`` holds fetched
        with no handler free for it (its backlog's head), or None when none waits (no I/O).
        ``now - this`` is how long work queues inside this worker: intake's admission reads it
        (``agents/dispatch/shedding.py``). One backlog per agent, first in first out over all its
        partitions, so a new event waits behind its head whichever partition it is on."""
        agent = self._agent_of.get(topic)
        if agent is None or not agent.backlog:
            return None
        stamp = agent.backlog[0][2].timestamp_ms
        return stamp if stamp >= 0 else None

    def positions(self) -> list[tuple[str, int, int | None, int | None]]:
        """(topic, partition, high watermark, next offset to read) of every owned partition."""
        if self.consumer is None:
            return []
        return [(tp.topic, tp.partition, self.consumer.highwater(tp),
                 part.next_offset if part.next_offset >= 0 else None) for tp, part in list(self._parts.items())]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._engine._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._engine._assigned(set(assigned))


async def _every(interval_s: float, fn: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await fn()
        except Exception:
            log.exception("timer %s failed", getattr(fn, "__name__", fn))


async def _logged(fn: Callable[[], Awaitable[None]], name: str) -> None:
    try:
        await fn()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s failed", name)
