"""Which tasks already have their result on the results topic, for this worker's partitions.

The Finisher publishes a result, waits for the broker, then writes the done mark
(``agents/taskstate.Finisher``). A worker killed between the two left a result on
the topic and a state without its mark; its successor finishes that task again
and the topic carries the result twice. Results are keyed by task id, so they sit
on the same partition number as the task's state: on every assignment the worker
reads the keys of the newest results of its partitions, and the Finisher skips
publishing a result already there (it still writes the done mark).

How far back: only a result whose done mark missed the changelog can be repeated, and the
mark follows the result's acknowledgement by one changelog round trip (tens of ms). While a
worker owns a partition nothing else publishes its results, and its next owner scans before it
publishes one: so the results after the one at risk are the few its owner published in those
tens of ms, whenever the crash was. :data:`SCAN_RECORDS` per partition covers that with a wide
margin, and only keys are read (no decoding). The scan reads to each partition's high
watermark as a fetch tells it (``changelog.read_to_end``), not until the first empty fetch:
under load the first fetch is slow and empty too, and a scan that ended there knew no result
at all (a restart measured "0 records read") and would have published every unconfirmed
result again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from swarmstream.streams.engine.changelog import RESTORE_FETCH_BYTES, read_to_end

log = logging.getLogger(__name__)

SCAN_RECORDS = 5_000
"""Newest results read per partition at an assignment. The fastest burst here, ~1,500 tasks/s
over 4 partitions, publishes ~40 results a partition in 0.1 s: 5,000 is over 100x the window
(13 s of it). 20,000 before: after 100,000 tasks a restart read 80,000 results, 1.2-1.7 s of
the restore's 1.7-2.7 s, which shares one core with the tables' restore and the logs' fold."""


class PublishedResults:
    def __init__(self, bootstrap: str, topic: str, security: Mapping[str, Any] | None = None) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._security = dict(security or {})
        self._by_partition: dict[int, set[str]] = {}

    def __contains__(self, task_id: object) -> bool:
        return any(task_id in ids for ids in self._by_partition.values())

    async def load(self, partitions: Iterable[int]) -> int:
        """Replace what is known of ``partitions`` (newly gained ones) with their newest results'
        task ids; what is known of other partitions stays. Returns how many were found."""
        started = time.monotonic()
        read = 0
        tps = [TopicPartition(self._topic, p) for p in sorted(set(partitions))]
        found: dict[int, set[str]] = {tp.partition: set() for tp in tps}
        if tps:
            # earliest: a start before the log's (a broker's retention) reads from its first record
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=10,
                                        max_partition_fetch_bytes=RESTORE_FETCH_BYTES, **self._security)
            await consumer.start()
            try:
                consumer.assign(tps)
                ends = await consumer.end_offsets(tps)  # Tansu's can be short: the scan then starts earlier

                def take(tp: TopicPartition, records: list[ConsumerRecord]) -> None:
                    found[tp.partition].update(r.key.decode("utf-8", "replace") for r in records if r.key)

                read = await read_to_end(consumer, {tp: max(int(ends[tp]) - SCAN_RECORDS, 0) for tp in tps}, take)
            finally:
                await consumer.stop()
        self._by_partition.update(found)
        if tps:
            log.info("published results of partitions %s: %d records read in %.2f s", [tp.partition for tp in tps],
                     read, time.monotonic() - started)
        return sum(len(ids) for ids in found.values())

    def keep_only(self, partitions: Iterable[int], wanted: Callable[[str], bool]) -> int:
        """Forget the ids of ``partitions`` that ``wanted`` turns down; how many stay. The scan
        reads the newest results of each partition, and only the tasks that crash left open can
        be finished again: the rest were ~9 MB a restarted worker kept for good (at 20,000 a
        partition)."""
        kept = 0
        for partition in partitions:
            ids = self._by_partition.get(partition)
            if ids is not None:
                self._by_partition[partition] = {task_id for task_id in ids if wanted(task_id)}
                kept += len(self._by_partition[partition])
        return kept
