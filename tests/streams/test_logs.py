"""Folding the replicated logs from a checkpoint (``streams/app/logs.py``), on the embedded broker.

What it proves: a follower that starts after a checkpoint folds only the records written since
(not the logs from the beginning) and ends with exactly the views a fold of everything makes;
an unreadable newest checkpoint sends it to the one before, and none at all to the beginning."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.circuit import CircuitConfig
from swarmstream.agents.stats.book import ModelBook
from swarmstream.agents.stats.folded import FoldedViews
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import CallRecord, QualityEvent
from swarmstream.streams.app import logs
from swarmstream.streams.app.logs import (
    CHECKPOINT_KEY,
    Checkpoints,
    LogsCheckpoint,
    follow_logs,
)
from swarmstream.streams.engine.broker import bootstrap_servers, ensure_topics

from tests.conftest import wait_for

PARTITIONS = 2
CONFIG = CircuitConfig(consecutive_failures=3, min_calls=4)


def _records(rng: random.Random, n: int) -> list[CallRecord | QualityEvent]:
    out: list[CallRecord | QualityEvent] = []
    for i in range(n):
        model = rng.choice(("a", "b", "c"))
        if rng.random() < 0.25:
            out.append(QualityEvent(model_id=model, reward=rng.random(), source="consensus", task_id=f"t{i}",
                                    at_ms=1_000 * i))
        else:
            ok = rng.random() < 0.7
            out.append(CallRecord(model_id=model, ok=ok, failure_class=None if ok else "timeout", at_ms=1_000 * i,
                                  latency_ms=rng.randint(1, 3_000), cost_micros=rng.randint(0, 500)))
    return out


class Logs:
    def __init__(self, broker_url: str) -> None:
        run = uuid.uuid4().hex[:8]
        self.calls, self.quality, self.checkpoints = f"calls-{run}", f"quality-{run}", f"logs-cp-{run}"
        self.broker_url = broker_url
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all")
        self.written = 0

    async def start(self) -> Logs:
        await ensure_topics(self.broker_url, [self.calls, self.quality], PARTITIONS)
        await ensure_topics(self.broker_url, [self.checkpoints], 1)
        await self.producer.start()
        return self

    async def write(self, records: list[CallRecord | QualityEvent]) -> None:
        for record in records:  # keyed by model, as the model-call agents write them
            topic = self.calls if isinstance(record, CallRecord) else self.quality
            await self.producer.send_and_wait(topic, codec().encode(record), key=record.model_id.encode())
        self.written += len(records)

    async def send_checkpoint(self, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(self.checkpoints, value, key=key, partition=0)


@contextlib.asynccontextmanager
async def following(logs_: Logs, checkpoints: bool = True, caught_up: asyncio.Event | None = None
                    ) -> AsyncIterator[tuple[FoldedViews, list[int]]]:
    """A follower in the background: its views and [records it folded]."""
    views = FoldedViews(ModelBook(), CircuitBoard(lambda _m: CONFIG, lambda: 0))
    folded = [0]

    def counted(fold: Callable[[Any], None]) -> Callable[[Any], None]:
        def handle(record: Any) -> None:
            folded[0] += 1
            fold(record)
        return handle

    task = asyncio.ensure_future(follow_logs(
        bootstrap_servers(logs_.broker_url),
        {logs_.calls: counted(views.fold_call), logs_.quality: counted(views.book.add_quality)},
        checkpoints=Checkpoints(logs_.checkpoints, views) if checkpoints else None,
        caught_up=caught_up))
    try:
        yield views, folded
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _checkpointed(logs_: Logs, records: int) -> None:
    """Wait (reading the checkpoints as they are written) until one was folded up to ``records``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(logs_.broker_url), group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(logs_.checkpoints, 0)])
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    checkpoint = LogsCheckpoint.model_validate_json(record.value or b"")
                    if sum(offset for _, _, offset in checkpoint.positions) >= records:
                        return
        raise AssertionError(f"no checkpoint of {records} records in 30 s")
    finally:
        await consumer.stop()


@pytest.fixture
async def logs_(broker_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Logs]:
    monkeypatch.setattr(logs, "CHECKPOINT_EVERY_S", 0.0)
    monkeypatch.setattr(logs, "CHECKPOINT_MIN_RECORDS", 1)  # one after every batch folded
    written = await Logs(broker_url).start()
    try:
        yield written
    finally:
        await written.producer.stop()


async def _folded_everything(logs_: Logs) -> Any:
    """The views a fold of every record makes (no checkpoint read or written)."""
    async with following(logs_, checkpoints=False) as (views, folded):
        await wait_for(lambda: folded[0] == logs_.written, timeout_s=30, what="a fold of every record")
        return views.dump()


async def test_a_new_follower_folds_only_what_came_after_the_checkpoint(logs_: Logs) -> None:
    rng = random.Random(7)
    await logs_.write(_records(rng, 600))
    async with following(logs_):
        await _checkpointed(logs_, 600)
    await logs_.write(_records(rng, 150))

    expected = await _folded_everything(logs_)
    caught_up = asyncio.Event()
    async with following(logs_, caught_up=caught_up) as (views, folded):
        await asyncio.wait_for(caught_up.wait(), 30)
        assert views.dump() == expected  # caught up: folded to the end
        assert folded[0] == 150, f"folded {folded[0]} records, not the 150 written after the checkpoint"


async def test_an_unreadable_newest_checkpoint_falls_back_to_the_one_before(logs_: Logs) -> None:
    rng = random.Random(8)
    await logs_.write(_records(rng, 300))
    async with following(logs_):
        await _checkpointed(logs_, 300)
    await logs_.send_checkpoint(CHECKPOINT_KEY, b'{"positions": "not a checkpoint"}')
    async with following(logs_) as (views, folded):
        expected = await _folded_everything(logs_)
        await wait_for(lambda: views.dump() == expected, timeout_s=30, what="the views of a fold of everything")
        assert folded[0] == 0


async def test_views_that_do_not_fit_the_checkpoint_fold_from_the_beginning(logs_: Logs) -> None:
    await logs_.write(_records(random.Random(9), 200))
    await logs_.send_checkpoint(CHECKPOINT_KEY, b'{"positions": [], "views": {"book": 1}, "written_ms": 0}')
    async with following(logs_) as (views, folded):
        expected = await _folded_everything(logs_)
        await wait_for(lambda: views.dump() == expected, timeout_s=30, what="the views of a fold of everything")
        assert folded[0] == 200
