"""Folds the replicated logs into this worker's in-memory views.

``swarm.calls`` (one CallRecord per model call) and ``swarm.quality``
(QualityEvents) are keyed by model; every worker reads every partition of
both from the beginning with a plain consumer (no group), so all workers
hold the same breakers and model stats, and a restarted worker rebuilds them
by replaying (DESIGN.md: Tansu never compacts, so the logs hold everything;
on a real cluster give them a retention of the longest memory you need:
breaker windows and the quality discount's horizon).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import Record
from swarmstream.streams.engine.broker import topic_partitions

LOG_FETCH_WAIT_MS = 100
"""Breakers and stats may learn a call's outcome up to this late. At 10 ms this
consumer's idle fetching cost ~5% of the worker's CPU (bench pipeline); a breaker
that opens 0.1 s later lets a few more calls through to a failing model."""


REPLAY_BATCH_RECORDS = 100
"""Records folded between two yields to the event loop. A record costs ~23 us (decode ~11, fold ~12),
and a restarted worker replays every call since the start (issue 21's restart: ~300,000 after
100,000 tasks, ~7 s of CPU) while it restores its tables: with 5,000 at a time and no yield
(``getmany`` returns at once while records are buffered) the restore, which needs the loop for
many short steps between fetches, took 9.3 s instead of ~0.5 s alone; 500 at a time, 4.9 s.
100 hold the loop ~2.5 ms a turn."""


async def follow_logs(bootstrap: str, handlers: Mapping[str, Callable[[Record], None]],
                      security: Mapping[str, Any] | None = None) -> None:
    """Apply every record of each topic to its handler, in log order, forever."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=LOG_FETCH_WAIT_MS,
                                enable_auto_commit=False, **(security or {}))
    await consumer.start()
    try:
        tps = [tp for topic in handlers for tp in await topic_partitions(consumer, topic, timeout_s=3600)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=REPLAY_BATCH_RECORDS)
            for tp, records in batches.items():
                handle = handlers[tp.topic]
                for record in records:
                    with contextlib.suppress(DecodeError):
                        handle(codec().decode(record.value or b""))
            if batches:
                await asyncio.sleep(0)  # getmany returns at once while records are buffered: let the loop in
    finally:
        await consumer.stop()
