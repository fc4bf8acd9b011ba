"""Record a run's topics into a recording file, or read them straight into a replay.

``read_topics`` reads the tasks, responses, failures, results, selections and
feedback topics of one topic prefix with a plain consumer: every partition
assigned by hand, nothing committed, in its own consumer group (or none), so no
production group is joined or rebalanced (``agents/replay/isolation.py``). What
it reads is bounded by a :class:`RecordRange`: an offset range per partition
and/or a time range of the records' timestamps; without an end it stops when
no record has arrived for ``idle_s``, since Tansu's end offsets can be short
(DESIGN.md, "What the code taught us"), so "caught up" is judged by silence,
not by the reported end. Records come in fetch order, so each partition's
order (and so each task's, since every task event is keyed by task id) is kept.

Values are decoded as the live agents decode them: Avro single-object encoding
(``codec().decode``), and on the tasks topic JSON too when the record's
``content-type`` header says so (``decode_task``). A record that does not decode,
or is not of the topic's kind, is skipped and counted (``Recorded.skipped``):
the dead letters topic already holds it for whoever must look at it.

``record_run`` writes them to a file (``.avro``: an Avro container, else JSON
Lines; ``agents/replay/recording.py``); ``read_run`` files them in memory for
``swarmstream replay --from-topics``; ``publish_results`` sends re-scored
results to a replay's own topic, after ``isolation.check_output_topic``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.agents.replay.isolation import check_output_topic
from swarmstream.agents.replay.recording import Label, Recording, RecordingWriter
from swarmstream.schemas.codec import DecodeError, codec, decode_task
from swarmstream.schemas.models import (
    Failure,
    Feedback,
    ModelResponse,
    Record,
    SelectionEvent,
    TaskResult,
)
from swarmstream.streams.app.settings import TopicNames
from swarmstream.streams.engine.broker import bootstrap_servers, topic_partitions

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 10
"""Tansu holds a fetch for its full wait (DESIGN.md): 10 ms keeps idle detection sharp."""
METADATA_WAIT_S = 10.0
"""How long to wait for a topic's partitions to appear in the metadata before giving up on it."""


@dataclass(frozen=True)
class RecordRange:
    """Which records of each partition to read: offsets ``[start_offset, end_offset)`` and
    timestamps ``[since_ms, until_ms)`` (both when both are given). Offsets apply to every
    partition of every topic read (each partition counts its own); ``None`` is open."""

    start_offset: int | None = None
    end_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def __post_init__(self) -> None:
        for name in ("start_offset", "end_offset", "since_ms", "until_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"record range: {name} must be >= 0, got {value}")
        if self.start_offset is not None and self.end_offset is not None and self.end_offset <= self.start_offset:
            raise ValueError(f"record range: end offset {self.end_offset} must be above start {self.start_offset}")
        if self.since_ms is not None and self.until_ms is not None and self.until_ms <= self.since_ms:
            raise ValueError(f"record range: until {self.until_ms} ms must be after since {self.since_ms} ms")


@dataclass
class Recorded:
    """What one recording run wrote: records per kind, and what it skipped (with why)."""

    path: Path | None
    records: dict[str, int] = field(default_factory=dict)
    labels: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.records.values()) + self.labels


_EXPECTED: dict[str, tuple[type[Record], ...]] = {
    "responses": (ModelResponse,),
    "failures": (Failure,),
    "results": (TaskResult,),
    "selections": (SelectionEvent,),
    "feedback": (Feedback,),
}


def recorded_topics(topics: TopicNames) -> dict[str, str]:
    """Topic name -> kind of source, for the topics a recording holds."""
    return {
        topics.tasks: "tasks",
        topics.responses: "responses",
        topics.failures: "failures",
        topics.results: "results",
        topics.selections: "selections",
        topics.feedback: "feedback",
    }


async def read_topics(
    broker_url: str,
    topics: TopicNames,
    recorded: Recorded,
    *,
    span: RecordRange = RecordRange(),
    idle_s: float = 1.0,
    max_s: float | None = None,
    group_id: str | None = None,
) -> AsyncIterator[Record]:
    """Every decodable record of the recorded topics within ``span``, in fetch order;
    counts into ``recorded`` (module docstring)."""
    names = recorded_topics(topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_WAIT_MS,
    )
    await consumer.start()
    try:
        assigned: list[TopicPartition] = []
        for topic in names:
            found = await topic_partitions(consumer, topic, timeout_s=METADATA_WAIT_S)
            if not found:
                log.warning("recorder: topic %s has no partitions after %.0f s; not recorded", topic, METADATA_WAIT_S)
            assigned += found
        consumer.assign(assigned)
        if assigned:
            await consumer.seek_to_beginning(*assigned)
            if span.start_offset:
                for tp in assigned:
                    consumer.seek(tp, span.start_offset)
        open_partitions = set(assigned)
        started = last = time.monotonic()
        while open_partitions:
            batch = await consumer.getmany(*open_partitions, timeout_ms=100, max_records=10_000)
            now = time.monotonic()
            if not any(batch.values()):
                if now - last >= idle_s or (max_s is not None and now - started >= max_s):
                    break
                continue
            last = now
            for tp, messages in batch.items():
                if tp not in open_partitions:
                    continue
                source = names[tp.topic]
                for message in messages:
                    if span.end_offset is not None and message.offset >= span.end_offset:
                        open_partitions.discard(tp)
                        break
                    stamp = message.timestamp
                    if span.until_ms is not None and stamp >= span.until_ms:
                        open_partitions.discard(tp)  # CreateTime grows within a partition's producer
                        break
                    if span.since_ms is not None and stamp < span.since_ms:
                        continue
                    record = _decode(source, message.value, message.headers, message.key, recorded)
                    if record is not None:
                        recorded.records[source] = recorded.records.get(source, 0) + 1
                        yield record
                if span.end_offset is not None and tp in open_partitions \
                        and messages and messages[-1].offset >= span.end_offset - 1:
                    open_partitions.discard(tp)
            if max_s is not None and now - started >= max_s:
                break
    finally:
        await consumer.stop()


async def record_run(
    broker_url: str,
    topics: TopicNames,
    path: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    idle_s: float = 1.0,
    max_s: float | None = None,
    span: RecordRange = RecordRange(),
    group_id: str | None = None,
) -> Recorded:
    """Record ``topics`` (tasks, responses, failures, results, selections, feedback) within
    ``span`` into ``path`` (its suffix picks the format), then ``labels`` (task id -> right
    answer); stops at the span's end, after ``idle_s`` without a record, or after ``max_s``."""
    recorded = Recorded(Path(path))
    with RecordingWriter(path) as writer:
        async for record in read_topics(broker_url, topics, recorded, span=span, idle_s=idle_s, max_s=max_s,
                                        group_id=group_id):
            writer.write(record)
        for task_id, answer in (labels or {}).items():
            writer.write_label(task_id, answer)
            recorded.labels += 1
    return recorded


async def read_run(
    broker_url: str,
    topics: TopicNames,
    *,
    labels: Mapping[str, str] | None = None,
    idle_s: float = 1.0,
    max_s: float | None = None,
    span: RecordRange = RecordRange(),
    group_id: str | None = None,
) -> tuple[Recording, Recorded]:
    """:func:`record_run` into memory: the topics as a :class:`Recording`, for replay."""
    recorded = Recorded(None)
    recording = Recording()
    async for record in read_topics(broker_url, topics, recorded, span=span, idle_s=idle_s, max_s=max_s,
                                    group_id=group_id):
        recording.add(record)
    for task_id, answer in (labels or {}).items():
        recording.add(Label(task_id, answer))
        recorded.labels += 1
    return recording, recorded


def _decode(source: str, value: bytes | None, headers: object, key: bytes | None, recorded: Recorded) -> Record | None:
    try:
        if source == "tasks":
            return decode_task(value, headers, key=key)
        record = codec().decode(value or b"")
    except DecodeError as exc:
        why = f"{source}: undecodable"
        recorded.skipped[why] = recorded.skipped.get(why, 0) + 1
        log.debug("recorder: skipped a record on %s: %s", source, exc)
        return None
    if not isinstance(record, _EXPECTED[source]):
        why = f"{source}: {type(record).__name__}"
        recorded.skipped[why] = recorded.skipped.get(why, 0) + 1
        return None
    return record


def production_topics(topics: TopicNames, model_ids: Sequence[str] = ()) -> list[str]:
    """Every topic the live pipeline of ``topics.prefix`` reads or writes (model topics too)."""
    return topics.all(list(model_ids))


async def publish_results(
    broker_url: str,
    topic: str,
    results: Sequence[tuple[str, TaskResult]],
    *,
    topics: TopicNames,
    app_id: str,
    model_ids: Sequence[str] = (),
) -> int:
    """Send ``(strategy, result)`` pairs to ``topic`` (keyed by task id, header
    ``replay-strategy``), after refusing any production topic; returns how many."""
    check_output_topic(topic, prefix=topics.prefix, app_id=app_id,
                       production_topics=production_topics(topics, model_ids))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, codec().encode(result), key=result.task_id.encode(),
                                headers=[("replay-strategy", strategy.encode())])
            for strategy, result in results
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()
    return len(results)
