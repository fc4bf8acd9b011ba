"""Folds the replicated logs into this worker's in-memory views.

``swarm.calls`` (one CallRecord per model call) and ``swarm.quality``
(QualityEvents) are keyed by model; every worker reads every partition of
both with a plain consumer (no group), so all workers hold the same breakers
and model stats.

A worker that starts does not replay the logs from the beginning: that is
every call ever made (issue 21's restart after 100,000 tasks: ~300,000
records, ~7 s of CPU beside the first tasks, and five times that after
500,000), and Tansu never compacts, so it only grows. Every worker writes a
checkpoint of its views, with the log offsets they were folded up to, every
:data:`CHECKPOINT_EVERY_S` while records come in; a new worker loads the
newest one and folds the logs from its offsets on (its first partitions wait
for that, ``topology.VIEWS_WAIT_S``). The views' counters are
the same as a replay from the start would make (they are sums of the
records); a breaker's state is also the writer's probes in flight, which the
log resolves as it would have on the writer. With no usable checkpoint (none
written yet, or unreadable) the worker replays from the beginning, as
before. The checkpoints topic is compacted with one key, so a real cluster
keeps one record of it; on Tansu it grows by a few kilobytes a checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import Record
from swarmstream.streams.engine.broker import topic_partitions
from swarmstream.streams.engine.changelog import read_to_end

log = logging.getLogger(__name__)

LOG_FETCH_WAIT_MS = 100
"""Breakers and stats may learn a call's outcome up to this late. At 10 ms this
consumer's idle fetching cost ~5% of the worker's CPU (bench pipeline); a breaker
that opens 0.1 s later lets a few more calls through to a failing model."""


REPLAY_BATCH_RECORDS = 100
"""Records folded between two yields to the event loop. A record costs ~23 us (decode ~11, fold ~12),
and a starting worker folds what was written since the last checkpoint while it restores its
tables (before checkpoints, every call since the start): with 5,000 at a time and no yield
(``getmany`` returns at once while records are buffered) the restore, which needs the loop for
many short steps between fetches, took 9.3 s instead of ~0.5 s alone; 500 at a time, 4.9 s.
100 hold the loop ~2.5 ms a turn."""

CHECKPOINT_EVERY_S = 5.0
"""A checkpoint at most this often: a starting worker then folds at most ~5 s of calls (at
1,000 tasks/s, ~20,000 records, ~0.5 s of CPU; at 10 s a restart after 100,000 tasks folded
13,000-39,000 records in 0.4-1.8 s beside the tables' restore), and a checkpoint (the views as
JSON, a few kilobytes per model and category, ~1 ms) costs nothing a worker would notice."""

CHECKPOINT_MIN_RECORDS = 1_000
"""Nor before this many records were folded since the last one: an idle worker writes none,
and on Tansu (which keeps every record) the topic grows with the logs, never with time alone."""

CHECKPOINT_TAIL = 8
"""Records read back from the checkpoints topic's end, the newest usable one loaded: one
unreadable record (a worker of another version) does not send a new worker back to the
beginning of the logs."""

CHECKPOINT_KEY = b"views"
"""The one key: a compacted topic keeps only the newest checkpoint."""


def logs_checkpoints_topic(app_id: str) -> str:
    """Compacted (the ``-changelog`` suffix, ``streams/engine/broker.py``); only its partition 0 is written."""
    return f"{app_id}-logs-checkpoints-changelog"


class Views(Protocol):
    """What the logs are folded into, as a JSON-able state and back."""

    def dump(self) -> Any: ...

    def load(self, state: Any) -> None: ...


class LogsCheckpoint(BaseModel):
    """The views as folded up to ``positions``: (topic, partition, next offset not folded)."""

    positions: list[tuple[str, int, int]]
    views: Any
    written_ms: int

    def offsets(self) -> dict[TopicPartition, int]:
        return {TopicPartition(topic, partition): offset for topic, partition, offset in self.positions}


@dataclass(frozen=True)
class Checkpoints:
    """Where the views' checkpoints go: partition 0 of ``topic``, which must exist (a worker
    creates it at start, ``Engine.writes_to``)."""

    topic: str
    views: Views


async def follow_logs(bootstrap: str, handlers: Mapping[str, Callable[[Record], None]],
                      security: Mapping[str, Any] | None = None, checkpoints: Checkpoints | None = None,
                      caught_up: asyncio.Event | None = None) -> None:
    """Apply every record of each topic to its handler, in log order, forever: from the newest
    checkpoint's offsets, its views loaded, where ``checkpoints`` has one; else from the beginning.
    ``caught_up`` is set once every partition was folded to the high watermark a fetch reported."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=LOG_FETCH_WAIT_MS,
                                enable_auto_commit=False, auto_offset_reset="earliest", **(security or {}))
    # its own producer: a checkpoint never shares a request (or a stall) with the tasks' records;
    # gzip: the views' JSON (~450 B a model and category; 50 models in 30 categories, 660 KB)
    # shrinks to ~100 KB, far under a broker's 1 MB record limit
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip",
                                **(security or {}))
    await consumer.start()
    await producer.start()
    try:
        found = await asyncio.gather(*(topic_partitions(consumer, topic, timeout_s=3600) for topic in handlers))
        tps = [tp for partitions in found for tp in partitions]
        start = await load_newest(consumer, checkpoints.topic, checkpoints.views) if checkpoints else None
        loaded = start.offsets() if start else {}
        positions = {tp: loaded.get(tp, 0) for tp in tps}
        consumer.assign(tps)
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        folded, since_start = 0, 0
        started = last_written = time.monotonic()
        while True:
            waiting = caught_up is not None and not caught_up.is_set()  # a first assignment waits on it: look often
            batches = await consumer.getmany(timeout_ms=10 if waiting else 200, max_records=REPLAY_BATCH_RECORDS)
            for tp, records in batches.items():
                handle = handlers[tp.topic]
                for record in records:
                    with contextlib.suppress(DecodeError):
                        handle(codec().decode(record.value or b""))
                positions[tp] = records[-1].offset + 1
                folded += len(records)
                since_start += len(records)
            if (checkpoints is not None and folded >= CHECKPOINT_MIN_RECORDS
                    and time.monotonic() - last_written >= CHECKPOINT_EVERY_S):
                await write_checkpoint(producer, checkpoints, positions)
                folded, last_written = 0, time.monotonic()
            if caught_up is not None and waiting and all(
                    (high := consumer.highwater(tp)) is not None and positions[tp] >= high for tp in tps):
                caught_up.set()
                log.info("logs folded to their end: %d records in %.2f s, from %s", since_start,
                         time.monotonic() - started, "the beginning" if start is None else
                         f"a checkpoint written {time.time() - start.written_ms / 1000:.1f} s before")
            if batches:
                await asyncio.sleep(0)  # getmany returns at once while records are buffered: let the loop in
    finally:
        await producer.stop()
        await consumer.stop()


async def write_checkpoint(producer: AIOKafkaProducer, checkpoints: Checkpoints,
                           positions: Mapping[TopicPartition, int]) -> None:
    """The views as they are now, with the offsets they were folded up to (nothing is folded
    between the two: both are read in one step of the loop)."""
    value = LogsCheckpoint(positions=[(tp.topic, tp.partition, offset) for tp, offset in sorted(positions.items())],
                           views=checkpoints.views.dump(), written_ms=int(time.time() * 1000))
    try:
        await producer.send_and_wait(checkpoints.topic, value.model_dump_json().encode(), key=CHECKPOINT_KEY,
                                     partition=0)
    except (KafkaError, OSError, ValueError) as exc:  # a checkpoint missed only makes a later start fold more
        log.warning("logs checkpoint not written (%s: %s)", type(exc).__name__, exc)


async def load_newest(consumer: AIOKafkaConsumer, topic: str, views: Views) -> LogsCheckpoint | None:
    """The newest checkpoint, loaded into ``views``; None (the logs are folded from the beginning)
    when there is none, or none that fits these views (another version's)."""
    checkpoint = await newest_checkpoint(consumer, topic)
    if checkpoint is None:
        return None
    try:
        views.load(checkpoint.views)
    except ValueError as exc:
        log.warning("the logs checkpoint in %s does not fit these views (%s): folding from the beginning", topic, exc)
        return None
    return checkpoint


async def newest_checkpoint(consumer: AIOKafkaConsumer, topic: str) -> LogsCheckpoint | None:
    """The newest readable checkpoint among the last :data:`CHECKPOINT_TAIL` records of
    ``topic``'s partition 0 (the high watermark from a fetch: Tansu's ListOffsets end can be
    short, ``read_to_end``); None when there is none."""
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    reported = (await consumer.end_offsets([tp]))[tp]
    if not reported:  # none written (Tansu's end falls short of its records, but not to 0; were it 0, the
        return None       # worker would fold from the beginning: slower, never wrong)
    values: list[bytes] = []
    await read_to_end(consumer, {tp: max(int(reported) - CHECKPOINT_TAIL, 0)},
                      lambda _, batch: values.extend(r.value for r in batch if r.value))
    for value in reversed(values[-CHECKPOINT_TAIL:]):
        try:
            return LogsCheckpoint.model_validate_json(value)
        except ValidationError as exc:
            log.warning("an unreadable logs checkpoint in %s skipped (%s)", topic, exc.errors()[0]["msg"])
    return None
