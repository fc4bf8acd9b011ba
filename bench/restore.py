"""Restore from the restore horizon against restore from 0: ``python -m swarmstream.bench.restore [--quick]``.

Issue 21: Tansu never compacts, so a restarted worker read each changelog partition from offset 0,
every write ever made. This writes a changelog shaped like the task table's through a real
:class:`~swarmstream.streams.engine.changelog.Table` and producer (4 partitions, as ``SWARM_PARTITIONS``):
per task four writes and, once ``LIVE_TASKS`` newer tasks exist on its partition, a tombstone; a
counter per partition written with every task (chain metrics); a key per partition written once at
the start and never again (a month's spend). A :class:`~swarmstream.streams.engine.horizon.HorizonKeeper`
runs a round every ``ROUND_EVERY`` records (10 s at ~4,000 changelog records/s, 1,000 tasks/s),
publishing markers to the horizons topic, once with rewrites off and once with its defaults.

Reported per log: ``records_written`` (``rewrites`` of them by the keeper), then for a restore of
all 4 partitions into a fresh table, from 0 and from the newest markers, ``records_read`` and
``seconds`` (best of ``REPEATS``), and the entries restored (the same both ways, checked).
Full: 400,000 writes, 2,000 live tasks; ``--quick``: 100,000 and 500. A third log (``all_live``)
deletes nothing: every task is still in its window (the soak's restart, issue 21), so the
horizon can only come from rewrites (``REWRITE_BEHIND_PER_LIVE``); a fourth (``all_live_checkpoints``)
is the same log with the keeper writing checkpoints instead (``streams/engine/checkpoint.py``: with
checkpoints it rewrites nothing), which a restore from the markers loads before the changelog's
tail (``checkpoint_entries`` reports how many entries the checkpoints wrote in all).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from swarmstream.streams.engine.broker import (
    EmbeddedBroker,
    bootstrap_servers,
    ensure_topics,
)
from swarmstream.streams.engine.changelog import Table, restore_tables
from swarmstream.streams.engine.checkpoint import checkpoints_topic
from swarmstream.streams.engine.horizon import HorizonKeeper, horizons_topic

PARTITIONS = 4
ROUND_EVERY = 40_000
"""Records written between horizon rounds: the keeper's 10 s at ~4,000 changelog records/s."""
FLUSH_EVERY = 256
"""Records sent together, as a busy worker's outbox sends a burst of handlers' writes."""
REPEATS = 2

VARIANTS = (("horizon_no_rewrites", False, None, False), ("horizon", True, None, False),
            ("all_live", True, 1 << 30, False), ("all_live_checkpoints", True, 1 << 30, True))
"""(name, keeper rewrites on, live tasks per partition: None for the run's, else a number no run
reaches: every task still in its window, as after the soak's burst of tasks before its kill;
keeper checkpoints on)."""


class Writer:
    """A table written as the engine writes it (handlers' records queued and sent together, acks
    told in offset order; the timer's records sent at once) and its keeper's markers."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, horizons: str, *, rewrites: bool,
                 checkpoints: str | None = None) -> None:
        self.producer = producer
        self.partition = 0
        self.queued: list[tuple[bytes, bytes | None, int, Callable[[int], None] | None]] = []
        self.written = 0
        self.rewrites = 0
        self.checkpoint_entries = 0
        self.table = Table(topic, self.send, send_now=self.send_now)
        self.keeper = HorizonKeeper(horizons, lambda: [self.table], self.marker, owns=lambda p: True,
                                    checkpoints=checkpoints)
        if not rewrites:
            self.keeper.min_behind = 1 << 60

    def send(self, topic: str, key: bytes, value: bytes | None, on_ack: Callable[[int], None] | None) -> int:
        self.queued.append((key, value, self.partition, on_ack))
        return self.partition

    async def flush(self) -> None:
        queued, self.queued = self.queued, []
        acks = [(await self.producer.send(self.table.topic, v, key=k, partition=p), on_ack)
                for k, v, p, on_ack in queued]
        for ack, on_ack in acks:
            offset = (await ack).offset
            if on_ack is not None:
                on_ack(offset)
        self.written += len(queued)

    async def send_now(self, topic: str, key: bytes, value: bytes | None, partition: int,
                       on_ack: Callable[[int], None]) -> None:
        on_ack((await (await self.producer.send(topic, value, key=key, partition=partition))).offset)
        if topic != self.table.topic:
            return  # a checkpoint's chunk (or its tombstone)
        self.written += 1
        self.rewrites += value is not None

    async def round(self) -> None:
        def current() -> dict[int, Any]:
            return {p: live.checkpoint for p in self.table.partitions_held() if (live := self.table.offsets(p))}

        before = current()
        await self.keeper.round()
        self.checkpoint_entries += sum(ref.entries for p, ref in current().items()
                                       if ref is not None and ref is not before.get(p))

    async def marker(self, key: bytes, value: bytes, partition: int) -> None:
        await (await self.producer.send(self.keeper.topic, value, key=key, partition=partition))


async def write_log(bootstrap: str, url: str, *, writes: int, live_tasks: int, rewrites: bool,
                    checkpoints: bool) -> tuple[Writer, str]:
    app = f"bench-restore-{uuid.uuid4().hex[:8]}"
    topic, horizons = f"{app}-tasks-changelog", horizons_topic(app)
    await ensure_topics(url, [topic, horizons, checkpoints_topic(app)], PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=256 * 1024)
    await producer.start()
    w = Writer(producer, topic, horizons, rewrites=rewrites, checkpoints=checkpoints_topic(app) if checkpoints else None)
    table = w.table
    tasks: list[list[str]] = [[] for _ in range(PARTITIONS)]
    next_round = ROUND_EVERY
    for p in range(PARTITIONS):
        w.partition = p
        table[f"acme|2026-11|{p}"] = {"spent_micros": 1_000 * p}
    i = 0
    while w.written + len(w.queued) < writes:
        p = i % PARTITIONS
        w.partition = p
        key = f"task-{i:08d}"
        for step in range(4):
            table[key] = [1_700_000_000_000 + i, {"done": step == 3, "step": step, "answers": {"a": "yes"}}]
        table[f"chain-default|{p}"] = {"attempts.ok": i}
        tasks[p].append(key)
        if len(tasks[p]) > live_tasks:
            del table[tasks[p].pop(0)]
        i += 1
        if len(w.queued) >= FLUSH_EVERY:
            await w.flush()
        if w.written >= next_round:
            await w.round()
            next_round += ROUND_EVERY
    await w.flush()
    await w.round()
    await producer.stop()
    return w, topic


async def timed_restore(bootstrap: str, topic: str, horizons: str | None) -> tuple[int, float, dict[str, Any]]:
    best = float("inf")
    read = 0
    entries: dict[str, Any] = {}
    for _ in range(REPEATS):
        table = Table(topic, lambda *_: 0)
        started = time.perf_counter()
        read = await restore_tables(bootstrap, [table], range(PARTITIONS), horizons=horizons)
        best = min(best, time.perf_counter() - started)
        entries = dict(table.items())
    return read, best, entries


async def measure(url: str, *, quick: bool) -> dict[str, Any]:
    bootstrap = bootstrap_servers(url)
    writes, live_tasks = (100_000, 125) if quick else (400_000, 500)  # live tasks per partition
    result: dict[str, Any] = {"partitions": PARTITIONS, "live_tasks": live_tasks * PARTITIONS}
    for name, rewrites, live, checkpoints in VARIANTS:
        w, topic = await write_log(bootstrap, url, writes=writes, live_tasks=live or live_tasks, rewrites=rewrites,
                                   checkpoints=checkpoints)
        read_all, seconds_all, full = await timed_restore(bootstrap, topic, None)
        read, seconds, restored = await timed_restore(bootstrap, topic, w.keeper.topic)
        if restored != full or full != dict(w.table.items()):
            raise AssertionError(f"{name}: the restore from the markers differs from the one from 0")
        result[name] = {"records_written": w.written, "rewrites": w.rewrites, "entries": len(full),
                        **({"checkpoint_entries": w.checkpoint_entries} if checkpoints else {}),
                        "from_zero": {"records_read": read_all, "seconds": round(seconds_all, 3)},
                        "from_markers": {"records_read": read, "seconds": round(seconds, 3)}}
    return result


def run(*, quick: bool) -> dict[str, Any]:
    url = os.environ.get("SWARM_BROKER")
    if url:
        return asyncio.run(measure(url, quick=quick))
    with EmbeddedBroker() as broker:
        return asyncio.run(measure(broker.url, quick=quick))


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['partitions']} partitions, {result['live_tasks']} live tasks (+ a counter and a month key each)"]
    for name, *_ in VARIANTS:
        row = result[name]
        lines.append(f"  {name}: {row['records_written']} records written ({row['rewrites']} rewrites), "
                     f"{row['entries']} entries")
        for start in ("from_zero", "from_markers"):
            lines.append(f"    {start:>12}: {row[start]['records_read']:>8} records read in {row[start]['seconds']} s")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    outcome = run(quick=args.quick)
    print(json.dumps(outcome) if args.json else render(outcome))
