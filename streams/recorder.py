"""Record a run's topics into a recording file (``agents/replay/recording.py``).

``record_topics`` reads the tasks, responses, failures, results and selections
topics of one topic prefix from the beginning, with a plain consumer: no group
(nothing is committed, no production group is joined or rebalanced), every
partition assigned. It stops when no record has arrived for ``idle_s``: Tansu's
end offsets can be short (DESIGN.md, "Brokers"), so "caught up" is judged by
silence, not by the reported end. Records are written in fetch order, so each
partition's order (and so each task's, since every task event is keyed by task id)
is kept.

Values are decoded as the live agents decode them: Avro single-object encoding
(``codec().decode``), and on the tasks topic JSON too when the record's
``content-type`` header says so (``decode_task``). A record that does not decode,
or is not of the topic's kind, is skipped and counted (``Recorded.skipped``):
the dead letters topic already holds it for whoever must look at it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from swarmstream.agents.replay.recording import RecordingWriter
from swarmstream.schemas.codec import DecodeError, codec, decode_task
from swarmstream.schemas.models import Failure, ModelResponse, Record, SelectionEvent, TaskResult
from swarmstream.streams.broker import bootstrap_servers, topic_partitions
from swarmstream.streams.settings import TopicNames

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 10
"""Tansu holds a fetch for its full wait (DESIGN.md): 10 ms keeps idle detection sharp."""
METADATA_WAIT_S = 10.0
"""How long to wait for a topic's partitions to appear in the metadata before giving up on it."""


@dataclass
class Recorded:
    """What one recording run wrote: records per kind, and what it skipped (with why)."""

    path: Path
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
}


async def record_run(
    broker_url: str,
    topics: TopicNames,
    path: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    idle_s: float = 1.0,
    max_s: float | None = None,
) -> Recorded:
    """Record ``topics`` (tasks, responses, failures, results, selections) into ``path``,
    then ``labels`` (task id -> right answer); stops after ``idle_s`` without a record,
    or after ``max_s`` in all. Returns what was written."""
    names = {
        topics.tasks: "tasks",
        topics.responses: "responses",
        topics.failures: "failures",
        topics.results: "results",
        topics.selections: "selections",
    }
    recorded = Recorded(Path(path))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url),
        group_id=None,
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
        started = last = time.monotonic()
        with RecordingWriter(path) as writer:
            while assigned:
                batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
                now = time.monotonic()
                if not any(batch.values()):
                    if now - last >= idle_s or (max_s is not None and now - started >= max_s):
                        break
                    continue
                last = now
                for tp, messages in batch.items():
                    source = names[tp.topic]
                    for message in messages:
                        record = _decode(source, message.value, message.headers, message.key, recorded)
                        if record is not None:
                            writer.write(record)
                            recorded.records[source] = recorded.records.get(source, 0) + 1
                if max_s is not None and now - started >= max_s:
                    break
            for task_id, answer in (labels or {}).items():
                writer.write_label(task_id, answer)
                recorded.labels += 1
    finally:
        await consumer.stop()
    return recorded


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


async def record_topics(
    broker_url: str,
    topics: TopicNames,
    path: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    idle_s: float = 1.0,
    max_s: float | None = None,
) -> int:
    """:func:`record_run`, returning only the number of records written (labels included)."""
    return (await record_run(broker_url, topics, path, labels=labels, idle_s=idle_s, max_s=max_s)).total
