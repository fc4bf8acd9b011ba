"""Restore horizons end to end (``streams/engine/horizon.py``): real engines, their timers publishing markers
to ``<app_id>-restore-horizons-changelog``, partitions moving between two workers.

What it proves: a worker that gains a partition another worker owned (once while both run, once
when the other leaves) restores it from that worker's newest marker plus the changelog's tail, and
holds exactly what a restore from offset 0 holds and what the handlers wrote: deletes stay deleted,
keys the timer wrote again (a key written once, a counter) are there with their last values."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from swarmstream.streams.engine import Engine, InputMessage
from swarmstream.streams.engine.broker import bootstrap_servers, ensure_topics
from swarmstream.streams.engine.changelog import Table, restore_tables
from swarmstream.streams.engine.horizon import newest_markers

from tests.conftest import read_raw, wait_for

DEADLINE_S = 40.0
PARTITIONS = 2


def worker(broker_url: str, app: str, topic: str) -> Engine:
    """An engine whose handler applies ``{"k": key, "v": value or null}`` to table ``t``, with a
    horizon round every 0.2 s and rewrites from 30 records behind (production: 10 s, 10,000), and
    no checkpoints (which replace the rewrites: ``tests/e2e/test_checkpoint.py``)."""
    engine = Engine(app_id=app, bootstrap=bootstrap_servers(broker_url), partitions=PARTITIONS,
                    session_timeout_s=2.0, heartbeat_interval_s=0.3, commit_interval_s=0.1)
    engine.horizons.interval_s = 0.2
    engine.horizons.min_behind = 30
    engine.horizons.checkpoints = None
    table = engine.table("t")

    async def apply(msg: InputMessage) -> None:
        op = orjson.loads(msg.value or b"{}")
        if op["v"] is None:
            if op["k"] in table:
                del table[op["k"]]
        else:
            table[op["k"]] = op["v"]

    engine.agent("apply", [topic], apply, max_in_flight=16)
    return engine


class Events:
    """Ops per partition, as the handlers will apply them, and what the table must then hold."""

    def __init__(self) -> None:
        self.expected: dict[str, Any] = {}
        self.sent = {p: 0 for p in range(PARTITIONS)}

    def tasks(self, start: int, stop: int) -> list[tuple[int, bytes]]:
        ops: list[tuple[int, str, Any]] = []
        for p in range(PARTITIONS):
            if start == 0:
                ops.append((p, f"p{p}-month", {"spent": p}))  # written once: the timer must move it forward
            for i in range(start, stop):
                ops += [(p, f"p{p}-t{i}", {"step": step}) for step in range(3)]
                ops.append((p, f"p{p}-metrics", {"tasks": i}))
                if i >= 10:
                    ops.append((p, f"p{p}-t{i - 10}", None))
        for p, key, value in ops:
            if value is None:
                self.expected.pop(key, None)
            else:
                self.expected[key] = value
            self.sent[p] += 1
        return [(p, orjson.dumps({"k": key, "v": value})) for p, key, value in ops]


async def send(broker_url: str, topic: str, events: list[tuple[int, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all", linger_ms=5)
    await producer.start()
    try:
        acks = [await producer.send(topic, value, partition=p) for p, value in events]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def markers(broker_url: str, app: str) -> dict[tuple[str, int], int]:
    records = await read_raw(broker_url, f"{app}-restore-horizons-changelog", until=lambda rs: False, timeout_s=1.0)
    return newest_markers((r.key, r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset)))


async def full_restore(broker_url: str, app: str) -> tuple[dict[str, Any], int]:
    table = Table(f"{app}-t-changelog", lambda *_: 0)
    read = await restore_tables(bootstrap_servers(broker_url), [table], range(PARTITIONS))
    return dict(table.items()), read


def holds(engine: Engine, events: Events, partitions: set[int]) -> bool:
    table = engine.tables["t"]
    return (set(table.partitions_held()) == partitions
            and {k: v for k, v in table.items() if int(k[1]) in partitions}
            == {k: v for k, v in events.expected.items() if int(k[1]) in partitions})


async def test_a_partition_that_moves_is_restored_from_its_marker_and_holds_what_a_full_restore_holds(
    broker_url: str
) -> None:
    run = uuid.uuid4().hex[:8]
    app, topic = f"hz-{run}", f"hz-{run}-in"
    await ensure_topics(broker_url, [topic], PARTITIONS)
    events = Events()
    first, second = worker(broker_url, app, topic), worker(broker_url, app, topic)
    changelog = f"{app}-t-changelog"

    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    first_run = asyncio.ensure_future(first.run(first_stop))
    second_run: asyncio.Future[None] | None = None
    try:
        await wait_for(lambda: first.ready.is_set() or first_run.done(), timeout_s=DEADLINE_S, what="the first worker")
        await send(broker_url, topic, events.tasks(0, 120))
        await wait_for(lambda: holds(first, events, {0, 1}), timeout_s=DEADLINE_S, what="the first worker's writes")
        published: dict[tuple[str, int], int] = {}
        for _ in range(int(DEADLINE_S / 0.2)):
            published = await markers(broker_url, app)
            if all(published.get((changelog, p), 0) > 100 for p in range(PARTITIONS)):
                break
        assert all(published.get((changelog, p), 0) > 100 for p in range(PARTITIONS)), published

        second_run = asyncio.ensure_future(second.run(second_stop))  # a partition moves to it, from its marker
        await wait_for(lambda: len(second.tables["t"].partitions_held()) == 1 and second.ready.is_set()
                       and first.ready.is_set() and len(first.tables["t"].partitions_held()) == 1,
                       timeout_s=DEADLINE_S, what="the rebalance")
        (moved,) = second.tables["t"].partitions_held()
        live = second.tables["t"].offsets(moved)
        # restored from a marker (the one read above, or a newer one: the first worker's rounds go on)
        assert live is not None and live.published >= published[changelog, moved]
        await send(broker_url, topic, events.tasks(120, 180))
        await wait_for(lambda: holds(second, events, {moved}) and holds(first, events, {1 - moved}),
                       timeout_s=DEADLINE_S, what="both workers' writes")
        await first_round_after(first)  # its last marker of the partition it keeps

        first_stop.set()  # it leaves: the second worker gains the other partition, from the first one's marker
        await first_run
        await wait_for(lambda: holds(second, events, {0, 1}), timeout_s=DEADLINE_S,
                       what="the second worker holding both partitions")
        gained = second.tables["t"].offsets(1 - moved)
        assert gained is not None and gained.published > published[changelog, 1 - moved]

        full, read_all = await full_restore(broker_url, app)
        assert full == events.expected == dict(second.tables["t"].items())
        assert "p0-t0" not in full and full["p1-month"] == {"spent": 1} and full["p0-metrics"] == {"tasks": 179}
        await first_round_after(second)
        from_markers = Table(changelog, lambda *_: 0)
        read = await restore_tables(bootstrap_servers(broker_url), [from_markers], range(PARTITIONS),
                                    horizons=f"{app}-restore-horizons-changelog")
        assert dict(from_markers.items()) == full
        assert read < read_all / 3, (read, read_all)
    finally:
        first_stop.set()
        second_stop.set()
        await asyncio.gather(first_run, *([second_run] if second_run else []))


async def first_round_after(engine: Engine) -> None:
    """Until a horizon round of ``engine`` has run since now (its timer: every 0.2 s here)."""
    rounds = engine.horizons.rounds
    await wait_for(lambda: engine.horizons.rounds > rounds + 1, timeout_s=DEADLINE_S, what="a horizon round")
