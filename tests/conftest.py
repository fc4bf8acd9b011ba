"""One broker for the whole session; every test gets its own topics and group.

``SWARM_TEST_BROKER=host:port`` runs the suite against another Kafka-protocol
cluster; otherwise the embedded Tansu broker is started once per pytest process
(``.ci/run`` runs two: ``-n 2``).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import Record
from swarmstream.streams.cli.runtime import Stack, running_stack, unique_settings
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import (
    EmbeddedBroker,
    bootstrap_servers,
    topic_partitions,
)

TEST_FLEET = Path(__file__).parent / "fleet.yaml"
TEST_CHAINS = Path(__file__).parent / "chains.yaml"


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    external = os.environ.get("SWARM_TEST_BROKER")
    if external:
        yield external if "://" in external else f"kafka://{external}"
        return
    with EmbeddedBroker() as broker:
        yield broker.url


@pytest.fixture
def make_stack(broker_url: str, tmp_path: Path) -> Callable[..., object]:
    """``async with make_stack(workers=1, **settings) as stack``: a fresh pipeline on the session broker."""

    def factory(*, workers: int = 1, **overrides: object):  # type: ignore[no-untyped-def]
        settings = unique_settings(Settings(models=TEST_FLEET, chains=TEST_CHAINS), **overrides)
        return running_stack(settings, broker_url=broker_url, workers=workers, log_dir=tmp_path)

    return factory


async def wait_for(condition: Callable[[], bool | Awaitable[bool]], *, timeout_s: float, stack: Stack | None = None,
                   what: str = "condition") -> None:
    """Poll ``condition`` (a plain check, or one that needs I/O and is awaited) until true; fail
    with ``what`` after the deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while not await _holds(condition):
        if stack is not None:
            for worker in stack.workers:
                worker.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def _holds(condition: Callable[[], bool | Awaitable[bool]]) -> bool:
    held = condition()
    return await held if inspect.isawaitable(held) else held


async def read_raw(broker_url: str, topic: str, *, until: Callable[[list[ConsumerRecord]], bool], timeout_s: float,
                   keep: Callable[[ConsumerRecord], bool] = lambda record: True) -> list[ConsumerRecord]:
    """The records of ``topic`` (all partitions, from the beginning) that ``keep`` accepts,
    read until ``until(kept)`` holds or ``timeout_s`` passes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        kept: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while not until(kept) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            kept += [r for rs in batch.values() for r in rs if keep(r)]
        return kept
    finally:
        await consumer.stop()


async def read_topic(broker_url: str, topic: str, *, count: int, timeout_s: float) -> list[Record]:
    """The first ``count`` records of ``topic`` (all partitions, from the beginning), decoded."""
    raw = await read_raw(broker_url, topic, until=lambda records: len(records) >= count, timeout_s=timeout_s)
    return [codec().decode(r.value) for r in raw]


@pytest.fixture
def topic_reader(broker_url: str) -> Callable[..., Awaitable[list[Record]]]:
    async def reader(topic: str, *, count: int, timeout_s: float = 20.0) -> list[Record]:
        return await read_topic(broker_url, topic, count=count, timeout_s=timeout_s)

    return reader


@pytest.fixture
async def stack(make_stack: Callable[..., object]) -> AsyncIterator[Stack]:
    async with make_stack() as s:  # type: ignore[attr-defined]
        yield s
