"""Checkpoints end to end (``streams/engine/checkpoint.py``): real engines, their timers writing each
table partition's live entries in chunks to ``<app_id>-table-checkpoints-changelog`` and naming
them in the partition's marker, partitions moving between two workers.

What it proves: every key stays live (as every task does inside its 2 h window), so the horizon
cannot move and only a checkpoint shortens a restore; a worker that gains a partition (once
while both run, once when the other leaves) loads the other's newest checkpoint and reads the
changelog from its tail, and holds exactly what a restore from offset 0 holds and what the
handlers wrote, although keys the checkpoint holds were written again and deleted after it
(the tail's records older than a checkpoint's entry are skipped, newer ones applied)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
from swarmstream.streams.engine import Engine, InputMessage
from swarmstream.streams.engine.broker import bootstrap_servers, ensure_topics
from swarmstream.streams.engine.changelog import Table, restore_tables
from swarmstream.streams.engine.checkpoint import CheckpointRef, chunk_key
from swarmstream.streams.engine.horizon import newest_marker_refs

from tests.conftest import read_raw, wait_for
from tests.e2e.test_restore_horizon import first_round_after, holds, send

DEADLINE_S = 40.0
PARTITIONS = 2


def worker(broker_url: str, app: str, topic: str) -> Engine:
    """An engine whose handler applies ``{"k": key, "v": value or null}`` to table ``t``, with a
    horizon round every 0.2 s, no rewrites, and a checkpoint once 40 records are past the restore
    start (production: 10 s, and 20,000 records or half the live entries)."""
    engine = Engine(app_id=app, bootstrap=bootstrap_servers(broker_url), partitions=PARTITIONS,
                    session_timeout_s=2.0, heartbeat_interval_s=0.3, commit_interval_s=0.1)
    engine.horizons.interval_s = 0.2
    engine.horizons.checkpoint_min_behind = 40
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
    """Ops per partition, as the handlers will apply them, and what the table must then hold:
    tasks opened then done (none deleted: all in their window), and from ``rework`` on, earlier
    tasks written again or deleted (keys a checkpoint already holds)."""

    def __init__(self) -> None:
        self.expected: dict[str, Any] = {}

    def tasks(self, start: int, stop: int, *, rework: bool = False) -> list[tuple[int, bytes]]:
        ops: list[tuple[int, str, Any]] = []
        for p in range(PARTITIONS):
            for i in range(start, stop):
                ops += [(p, f"p{p}-t{i}", {"open": i}), (p, f"p{p}-t{i}", {"done": i})]
                if rework:
                    ops.append((p, f"p{p}-t{i - start}", None if i % 3 == 0 else {"again": i}))
        for _, key, value in ops:
            if value is None:
                self.expected.pop(key, None)
            else:
                self.expected[key] = value
        return [(p, orjson.dumps({"k": key, "v": value})) for p, key, value in ops]


async def marker_refs(broker_url: str, app: str) -> dict[tuple[str, int], tuple[int, CheckpointRef | None]]:
    records = await read_raw(broker_url, f"{app}-restore-horizons-changelog", until=lambda rs: False, timeout_s=0.5)
    return newest_marker_refs((r.key, r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset)))


async def test_a_partition_that_moves_is_restored_from_its_checkpoint_and_tail_with_identical_contents(
    broker_url: str
) -> None:
    run = uuid.uuid4().hex[:8]
    app, topic = f"ck-{run}", f"ck-{run}-in"
    await ensure_topics(broker_url, [topic], PARTITIONS)
    events = Events()
    first, second = worker(broker_url, app, topic), worker(broker_url, app, topic)
    changelog = f"{app}-t-changelog"

    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    first_run = asyncio.ensure_future(first.run(first_stop))
    second_run: asyncio.Future[None] | None = None
    try:
        await wait_for(lambda: first.ready.is_set() or first_run.done(), timeout_s=DEADLINE_S, what="the first worker")
        await send(broker_url, topic, events.tasks(0, 100))
        await wait_for(lambda: holds(first, events, {0, 1}), timeout_s=DEADLINE_S, what="the first worker's writes")
        refs: dict[tuple[str, int], tuple[int, CheckpointRef | None]] = {}

        def checkpointed(p: int) -> bool:  # named by a marker, and a restore reads less for it
            horizon, ref = refs.get((changelog, p), (0, None))
            return ref is not None and ref.tail > horizon + 100

        deadline = time.monotonic() + DEADLINE_S
        while not all(checkpointed(p) for p in range(PARTITIONS)) and time.monotonic() < deadline:
            refs = await marker_refs(broker_url, app)
        assert all(checkpointed(p) for p in range(PARTITIONS)), refs

        second_run = asyncio.ensure_future(second.run(second_stop))  # a partition moves to it
        await wait_for(lambda: len(second.tables["t"].partitions_held()) == 1 and second.ready.is_set()
                       and first.ready.is_set() and len(first.tables["t"].partitions_held()) == 1,
                       timeout_s=DEADLINE_S, what="the rebalance")
        (moved,) = second.tables["t"].partitions_held()
        live = second.tables["t"].offsets(moved)
        # loaded a checkpoint: the one read above or a newer one (the first worker's rounds go on)
        assert live is not None and live.checkpoint is not None
        assert live.checkpoint.id >= refs[changelog, moved][1].id  # type: ignore[union-attr]
        assert holds(second, events, {moved})
        await send(broker_url, topic, events.tasks(100, 160, rework=True))  # keys the checkpoints hold, again
        await wait_for(lambda: holds(second, events, {moved}) and holds(first, events, {1 - moved}),
                       timeout_s=DEADLINE_S, what="both workers' writes")
        kept_live = first.tables["t"].offsets(1 - moved)
        assert kept_live is not None
        await wait_for(lambda: kept_live.checkpoint is not None and kept_live.checkpoint is kept_live.marked
                       and kept_live.checkpoint.tail > refs[changelog, 1 - moved][1].tail,  # type: ignore[union-attr]
                       timeout_s=DEADLINE_S, what="a checkpoint after the rework, named by a marker")

        first_stop.set()  # it leaves: the second worker gains the other partition, from its checkpoint
        await first_run
        await wait_for(lambda: holds(second, events, {0, 1}), timeout_s=DEADLINE_S,
                       what="the second worker holding both partitions")
        gained = second.tables["t"].offsets(1 - moved)
        assert gained is not None and gained.checkpoint is not None
        assert gained.checkpoint.id >= kept_live.checkpoint.id  # type: ignore[union-attr]

        from_zero = Table(changelog, lambda *_: 0)
        read_all = await restore_tables(bootstrap_servers(broker_url), [from_zero], range(PARTITIONS))
        assert dict(from_zero.items()) == events.expected == dict(second.tables["t"].items())
        assert "p0-t2" not in events.expected and events.expected["p1-t1"] == {"again": 101}
        await first_round_after(second)
        from_checkpoints = Table(changelog, lambda *_: 0)
        read = await restore_tables(bootstrap_servers(broker_url), [from_checkpoints], range(PARTITIONS),
                                    horizons=f"{app}-restore-horizons-changelog")
        assert dict(from_checkpoints.items()) == dict(from_zero.items())
        assert read < read_all / 2, (read, read_all)

        # the checkpoints no marker names any more have tombstones (a compacting broker drops them)
        replaced = refs[changelog, 1 - moved][1]
        assert replaced is not None
        keys = {chunk_key(changelog, 1 - moved, replaced.id, i) for i in range(replaced.chunks)}
        chunks = await read_raw(broker_url, f"{app}-table-checkpoints-changelog", until=lambda rs: False,
                                timeout_s=1.0, keep=lambda r: r.key in keys)
        assert {r.key for r in chunks if r.value is None} == keys
    finally:
        first_stop.set()
        second_stop.set()
        await asyncio.gather(first_run, *([second_run] if second_run else []))
