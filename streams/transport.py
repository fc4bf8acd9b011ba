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

And it keeps Faust from committing past a record that never reached its agent
(:class:`Consumer`), the cause of the "skipped record" in the crash tests.

Apps select it with the URL scheme ``swarmkafka://``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = logging.getLogger(__name__)

SCHEME = "swarmkafka"
DEFAULT_FETCH_MAX_WAIT_MS = 10

HOLE_REREAD_AFTER_S = 1.0
"""How long after re-reading a partition from a skipped record the same record may be
re-read again, should it still not have reached its agent."""

HOLE_STUCK_S = 3.0
"""How long a record handed to the agents may stay unacked while later ones of its
partition are acked before it is read again. Records are acked in offset order
(``streams.inflight``), so this is a record Faust dropped between its queue and the
agent; the wait only has to outlast a rebalance's re-delivery."""


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

    async def beginning_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return await self.call_thread(self._beginning_offsets, partitions)

    async def _beginning_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        consumer = self._ensure_consumer()
        first = await consumer.beginning_offsets([TopicPartition(tp.topic, tp.partition) for tp in partitions])
        return {tp: int(first.get(TopicPartition(tp.topic, tp.partition), 0)) for tp in partitions}

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
    thread = app.consumer._thread
    committed = await thread.committed_offsets(partitions)
    unknown = [tp for tp, offset in committed.items() if offset is None]
    first = await thread.beginning_offsets(unknown) if unknown else {}
    floors = {tp: offset if offset is not None else first.get(tp, 0) for tp, offset in committed.items()}
    app.consumer.swarm_assigned(floors)
    await app.consumer.seek_wait(floors)


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
    """Faust's consumer, made to never commit past a record its agent did not process.

    faust-streaming 0.15.3 loses records four ways, all seen in the crash tests
    (DESIGN.md, "Exactly one result"):

    - ``_drain_messages`` hands a record to the agents with
      ``wait_first(callback(message), suspend_flow.wait())``: when a rebalance starts
      while the callback waits (flow control, a full queue), the callback is cancelled,
      yet the record counts as read and the next one goes through;
    - it then records a "gap" from the last read offset to the next delivered one and
      ``_new_offset`` treats every offset in a gap as acked (gaps exist for compacted
      and transactional topics; our source topics are neither under at-least-once);
    - a stream skips an event it takes from its queue while flow control is off or
      the event's generation is stale, and acks it unprocessed (``Stream._py_aiter``
      and the Cython ``_c_aiter``): around a recovery's resume this dropped an answer
      that had reached the queue (seen: responses[3]@24, delivered at "Worker ready");
    - ``_new_offset`` commits past an unacked head when ``min(acked) - committed == 1``
      (it tests ``> 1``; faust-streaming #606), and checks nothing before a group's
      first commit.

    Here, under at-least-once, no gap is recorded, an ack that arrives while flow
    control is off or from a stale generation is not counted (a skipped event; a
    processed one is read again, harmlessly), and a partition's commit moves only
    over a run of acked offsets that starts at its committed offset (its *floor*, set at
    every assignment by :func:`reseek_to_committed` and moved by each commit). Every
    record handed to the agents is noted (per partition, since the last assignment); a
    floor that was never handed over while later records were is a skipped record: the
    partition is read again from the floor (repeats are idempotent). A floor that was
    handed over but unacked for :data:`HOLE_STUCK_S` while later records are acked was
    dropped on its way to the agent: read again too.
    """

    swarm_floors: dict[Any, int]
    swarm_rereads: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.swarm_floors = {}
        self._swarm_holes: dict[Any, float] = {}
        self._swarm_stuck: dict[Any, tuple[int, float]] = {}
        self._swarm_delivered: dict[Any, set[int]] = {}
        handed_over = self.callback
        acks_enabled_for = self.app.topics.acks_enabled_for

        async def callback(message: Any) -> None:
            await handed_over(message)  # cancelled when a rebalance starts: then not noted
            if acks_enabled_for(message.topic):
                self._swarm_delivered.setdefault(message.tp, set()).add(message.offset)

        self.callback = callback

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def swarm_assigned(self, floors: Mapping[Any, int]) -> None:
        """A new assignment: reading starts again at each partition's committed offset."""
        self.swarm_floors.update(floors)
        for tp in floors:
            self._swarm_delivered.pop(tp, None)
            self._swarm_holes.pop(tp, None)
            self._swarm_stuck.pop(tp, None)

    def ack(self, message: Any) -> bool:
        if not self.app.flow_control.is_active() or message.generation_id != self.app.consumer_generation_id:
            # Skipped by its stream, or handled under an older assignment: not counted, so
            # the commit stops before it and the record is read again.
            message.acked = True
            self._unacked_messages.discard(message)
            return False
        return bool(super().ack(message))

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        if self.app.conf.processing_guarantee == "exactly_once":  # transaction markers leave real gaps
            await super()._add_gap(tp, offset_from, offset_to)

    def _new_offset(self, tp: Any) -> int | None:
        committed = self._committed_offset[tp]  # Faust keeps a committed 0 as None
        floor = committed if committed is not None else self.swarm_floors.get(tp)
        acked = self._acked[tp]
        if acked and floor is not None:
            head = min(acked)
            gaps = self._gap.get(tp)
            if gaps:
                head = min(head, gaps.begin())
            if head > floor:
                self._on_hole(tp, floor, head)
                return None
        offset = super()._new_offset(tp)
        if offset is not None:
            self.swarm_floors[tp] = offset
            delivered = self._swarm_delivered.get(tp)
            if delivered:
                self._swarm_delivered[tp] = {o for o in delivered if o >= offset}
        return offset

    def _on_hole(self, tp: Any, floor: int, head: int) -> None:
        delivered = self._swarm_delivered.get(tp, set())
        now = time.monotonic()
        if floor in delivered:  # handed over: in flight, unless dropped on the way
            since = self._swarm_stuck.setdefault(tp, (floor, now))
            if since[0] != floor:
                self._swarm_stuck[tp] = since = (floor, now)
            if now - since[1] < HOLE_STUCK_S:
                return
            self._swarm_stuck.pop(tp, None)
        elif not any(o > floor for o in delivered):
            return  # not read again yet since a rebalance
        if now - self._swarm_holes.get(tp, -HOLE_REREAD_AFTER_S) < HOLE_REREAD_AFTER_S:
            return
        self._swarm_holes[tp] = now
        self.swarm_rereads += 1
        log.warning("%s[%d]: offset %d never reached its agent (acked from %d on): reading again from %d",
                    tp.topic, tp.partition, floor, head, floor)
        asyncio.ensure_future(self._reread(tp, floor))

    async def _reread(self, tp: Any, offset: int) -> None:
        try:
            await self.seek_wait({tp: offset})
        except Exception as exc:  # revoked meanwhile: its next owner reads from the commit
            log.info("re-read of %s[%d] from %d skipped: %r", tp.topic, tp.partition, offset, exc)


def local_lag(app: Any, topic: str, partition: int) -> int | None:
    """Records of ``topic[partition]`` after the group's committed offset, from what this
    worker's consumer already knows (the last fetch's high watermark): no I/O. None when
    the partition is not this worker's or not fetched yet."""
    consumer = app.consumer
    tp = TP(topic, partition)
    try:
        high = consumer.highwater(tp)
    except Exception:  # not assigned here
        return None
    done = consumer._committed_offset.get(tp)
    if done is None:
        done = getattr(consumer, "swarm_floors", {}).get(tp)
    if high is None or done is None:
        return None
    return max(int(high) - int(done), 0)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def faust_broker_url(url: str) -> str:
    """``kafka://a:1,b:2`` -> ``swarmkafka://a:1;b:2`` (Faust separates brokers with ';')."""
    hosts = url.split("://", 1)[-1].rstrip("/").replace(",", ";")
    return f"{SCHEME}://{hosts}"
