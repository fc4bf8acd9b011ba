"""Which tasks already have their result on the results topic, for this worker's partitions.

The Finisher publishes a result, waits for the broker, then writes the done mark
(``agents/taskstate.Finisher``). A worker killed between the two left a result on
the topic and a state without its mark; its successor finishes that task again
and the topic carries the result twice. Results are keyed by task id, so they sit
on the same partition number as the task's state: on every assignment the worker
reads the keys of the newest results of its partitions, and the Finisher skips
publishing a result already there (it still writes the done mark).

How far back: a result can only be repeated if it was published after the last
commit of the events that finish tasks, a few commit intervals before a crash;
:data:`SCAN_RECORDS` per partition covers that with a wide margin, and only keys are
read (no decoding).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

SCAN_RECORDS = 20_000
"""Newest results read per partition at an assignment (~20 s of a fast worker's results)."""

IDLE_MS = 50
"""The scan ends when a fetch brings nothing for this long (Tansu's end offsets can be short)."""


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
        tps = [TopicPartition(self._topic, p) for p in sorted(set(partitions))]
        found: dict[int, set[str]] = {tp.partition: set() for tp in tps}
        if tps:
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
                                        fetch_max_wait_ms=10, **self._security)
            await consumer.start()
            try:
                consumer.assign(tps)
                ends = await consumer.end_offsets(tps)
                for tp in tps:
                    consumer.seek(tp, max(ends[tp] - SCAN_RECORDS, 0))
                while batch := await consumer.getmany(timeout_ms=IDLE_MS, max_records=10_000):
                    for tp, records in batch.items():
                        found[tp.partition].update(r.key.decode("utf-8", "replace") for r in records if r.key)
                    await asyncio.sleep(0)
            finally:
                await consumer.stop()
        self._by_partition.update(found)
        return sum(len(ids) for ids in found.values())
