"""Crash safety with two workers: ``swarmstream bench crash [--quick] [--json]`` (issue 11).

The scenario (also run by ``tests/e2e/test_crash_two_workers.py``, on the test
broker): a stack with one worker (the *victim*) is joined by a second (the
*survivor*); once the group is stable with both, N tasks (1,000; quick 300) are
published at once, each a consensus of a slow model (``slow``: 300 ms median)
and a fast one, so slow calls are always in flight. The victim is killed with
SIGKILL mid-run, at one of two moments:

- ``random``: when a random share (10-60%, seeded) of the results has arrived;
- ``after_commit``: as soon as the victim's committed offsets move, polled
  every few ms through the group's OffsetFetch (a plain consumer of the
  group that never joins it). Which partitions are the victim's is learnt
  first: the victim is frozen (SIGSTOP) for a little over two commit
  intervals, and the partitions whose offsets move meanwhile are the
  survivor's (Tansu's DescribeGroups answers no assignments). Random kills
  rarely land right after a commit, which is where commit-ordering bugs lose
  events (under Faust: faust-streaming #606).

- ``stall``: not a kill. The victim is frozen (SIGSTOP) while slow calls are in
  flight, until the group has moved all its partitions to the survivor and at least
  :data:`STALL_S` (2.5x the session timeout) has passed, then woken (SIGCONT). It
  wakes with results, calls and records built before the stop, learns from its next
  heartbeat that it is out of the group (``streams/engine/fencing.py``), drops all of it,
  rejoins and gets half the partitions again: the same numbers or others, as the
  assignor's order of the new member ids falls (``same_partitions_back``).

The survivor takes the victim's partitions, restores the tables from their
changelogs and goes on. Measured, per variant:

- ``results``: distinct task ids on the results topic (read from its start to
  its true end after the client has seen every task), ``lost`` = tasks - results;
- ``duplicate_results``: records on the results topic beyond one per task, counted
  on the topic itself (not what ``SwarmClient`` dedupes);
- ``repeated_model_calls``: calls the simulated fleet served beyond one per
  (task, model): the at-least-once price of the crash;
- ``swept``: tasks ended by the deadline sweeper (an outcome never arrived): 0
  unless a record was lost on the way;
- ``calls_in_flight_at_kill``: the slow model's calls the fleet had started and
  not answered when the kill landed.

The bench runs each kill moment twice, with the model-call dedupe on (the default,
``agents/models/dedupe.py``) and off (``SWARM_DEDUPE_MODEL_CALLS=false``): the
top-level numbers are the runs with it on, summed over both moments, and
``repeated_model_calls_without_dedupe`` / ``swept_without_dedupe`` the same sums with
it off. Each run draws its own kill moment, so compare the sums, not single runs.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import TaskResult, now_ms
from swarmstream.streams.cli.runtime import Stack, running_stack, unique_settings
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.cli.demo import to_request
from swarmstream.streams.engine.broker import bootstrap_servers, true_end_offsets

KillAt = Literal["random", "after_commit", "stall"]

STALL_S = 5.0
"""The least time the victim stays frozen in the ``stall`` variant: 2.5x the 2 s session timeout."""

FREEZE_S = 1.2
"""How long the victim is frozen to learn its partitions: over two commit intervals
(0.5 s) of the survivor, under the session timeout (2 s), so the group does not
rebalance."""

COMMIT_POLL_S = 0.005
"""How often the committed offsets are polled: well under the 0.5 s commit interval,
so the kill lands within a few ms of the commit."""

RESULTS_TIMEOUT_S = 150.0
"""Every task has a 30 s deadline and the sweeper ends an overdue one 2 s after it;
with a takeover of a few seconds, everything ends well within this."""

BENCH_FLEET = """\
# bench crash: a slow model whose calls are in flight at every moment, and a fast one.
default_consensus: [slow, quick]
models:
  - id: slow
    provider: simulated
    family: s
    max_in_flight: 64
    simulated: {accuracy: 1.0, latency_median_ms: 300, latency_p99_ms: 600}
  - id: quick
    provider: simulated
    family: q
    simulated: {accuracy: 1.0, latency_median_ms: 2, latency_p99_ms: 10}
"""


@dataclass
class CrashReport:
    kill_at: str
    tasks: int
    results: int
    lost: int
    duplicate_results: int
    repeated_model_calls: int
    swept: int
    statuses: dict[str, int]
    killed_after_results: int
    calls_in_flight_at_kill: int
    client_duplicates: int
    model_calls: dict[str, int]
    seconds: float
    seed: int | None = None
    repeated_by_model: dict[str, int] = field(default_factory=dict)
    duplicates: list[list[int]] = field(default_factory=list)
    """For every task with a repeated result: each copy's completed_ms minus the kill's ms."""
    duplicates_agree: bool = True
    """Every task's copies carry the same status and answer."""
    same_partitions_back: bool | None = None
    """``stall``: whether the woken victim was given the partition numbers it had before."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def wait_for_members(broker_url: str, group: str, members: int, *, timeout_s: float = 60.0) -> None:
    """Until the consumer group is Stable with ``members`` members (a join is a rebalance)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            described = await admin.describe_consumer_groups([group])
            _error, _group, state, _ptype, _protocol, joined = described[0].groups[0][:6]
            if state == "Stable" and len(joined) == members:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"group {group}: {len(joined)} member(s), {state}, after {timeout_s} s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


class CommittedOffsets:
    """The group's committed offsets for some topics, read through OffsetFetch by a consumer
    that never joins the group (aiokafka's admin ``list_consumer_group_offsets`` fails
    to decode Tansu 0.6's answer)."""

    def __init__(self, broker_url: str, group: str, topics: list[str], partitions: int) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=group,
                                          enable_auto_commit=False)
        self._tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]

    async def __aenter__(self) -> CommittedOffsets:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def read(self) -> dict[TopicPartition, int | None]:
        return {tp: await self._consumer.committed(tp) for tp in self._tps}


async def results_on_topic(broker_url: str, topic: str, task_ids: set[str]) -> dict[str, list[TaskResult]]:
    """Every record the results topic holds for each of ``task_ids``, in order, from its
    start to its true end (Tansu's reported end can be short: ``true_end_offsets``)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await true_end_offsets(bootstrap_servers(broker_url), await consumer.end_offsets(tps))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: dict[str, list[TaskResult]] = {}
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    try:
                        result = codec().decode_as(record.value, TaskResult)
                    except DecodeError:
                        continue
                    if result.task_id in task_ids:
                        found.setdefault(result.task_id, []).append(result)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return found
    finally:
        await consumer.stop()


async def victim_partitions(offsets: CommittedOffsets, victim: Any, partitions: int) -> set[int]:
    """The partition numbers the victim owns: those that do not move while it is frozen.
    (The engine's range assignor gives one worker the same partition numbers of every topic.)"""
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(0.1)  # a commit the victim sent just before the freeze lands first
        before = await offsets.read()
        moved: set[int] = set()
        deadline = time.monotonic() + FREEZE_S
        while time.monotonic() < deadline:
            moved |= {tp.partition for tp, offset in (await offsets.read()).items() if offset != before[tp]}
            await asyncio.sleep(0.02)
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    mine = set(range(partitions)) - moved
    if not moved or not mine:
        raise AssertionError(f"could not tell the workers' partitions apart (moved while frozen: {sorted(moved)})")
    return mine


def _in_flight(counters: dict[str, dict[str, int]], model: str) -> int:
    counts = counters.get(model, {})
    return counts.get("calls", 0) - sum(v for k, v in counts.items() if k != "calls")


async def crash_run(stack: Stack, *, tasks: int, models: list[str], kill_at: KillAt, seed: int | None = None,
                    slow_model: str | None = None) -> CrashReport:
    """Run the scenario on ``stack`` (one worker running: the victim); see the module docstring."""
    assert stack.fleet is not None and len(stack.workers) == 1
    slow_model = slow_model or models[0]
    victim = stack.workers[0]
    survivor = stack.start_worker()
    await wait_for_members(stack.broker_url, stack.settings.app_id, 2)
    await stack.wait_ready()

    requests = [to_request(item, mode="consensus", models=models) for item in demo_tasks(tasks)]
    task_ids = {r.task_id for r in requests}
    calls_before = {m: c["calls"] for m, c in stack.fleet.counters.items()}
    started = time.monotonic()
    for request in requests:
        await stack.client.submit(request, wait_ack=False)
    await stack.client.flush()

    def done() -> int:
        return sum(1 for t in stack.client.received if t in task_ids)

    async def until(condition: Any, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            for worker in stack.workers:
                worker.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what} ({done()}/{tasks} results)")
            await asyncio.sleep(0.02)

    def slow_calls() -> int:
        return stack.fleet.counters[slow_model]["calls"] - calls_before.get(slow_model, 0)  # type: ignore[union-attr]

    # Results lag the calls (the join and its table writes are the slower part), so the
    # moment is picked on the slow model's calls: then some are always in flight.
    rng = random.Random(seed)
    if kill_at == "random":
        share = rng.uniform(0.1, 0.8)
        await until(lambda: slow_calls() >= int(tasks * share), f"{share:.0%} of the slow calls", 60)
    else:
        await until(lambda: slow_calls() >= tasks // 10, "10% of the slow calls", 60)
        topics = [stack.settings.topics.model(m) for m in models] + [
            stack.settings.topics.tasks, stack.settings.topics.responses, stack.settings.topics.failures]
        async with CommittedOffsets(stack.broker_url, stack.settings.app_id, topics, stack.settings.partitions) as offsets:
            mine = await victim_partitions(offsets, victim, stack.settings.partitions)
            before = await offsets.read()
            deadline = time.monotonic() + 30
            while not any(tp.partition in mine and offset != before[tp] for tp, offset in (await offsets.read()).items()):
                victim.check_alive()
                if time.monotonic() > deadline:
                    raise AssertionError("the victim committed no offset in 30 s")
                await asyncio.sleep(COMMIT_POLL_S)
    same_back = None
    if kill_at == "stall":
        await until(lambda: slow_calls() >= int(tasks * rng.uniform(0.1, 0.6)), "the stall's share of slow calls", 60)
        killed_ms = now_ms()
        in_flight = _in_flight(stack.fleet.counters, slow_model)
        killed_after = done()
        await stall(stack, victim)
        same_back = await back_after_fence(victim)
    else:
        victim.kill()
        killed_ms = now_ms()
        in_flight = _in_flight(stack.fleet.counters, slow_model)
        killed_after = done()

    await until(lambda: done() >= tasks, f"{tasks} results after the kill", RESULTS_TIMEOUT_S)
    survivor.check_alive()
    seconds = time.monotonic() - started

    on_topic = await results_on_topic(stack.broker_url, stack.settings.topics.results, task_ids)
    received = {t: r for t, r in stack.client.received.items() if t in task_ids}
    statuses = Counter(r.status for r in received.values())
    swept = sum(1 for r in received.values()
                if any(a.failure_class == "timeout" for a in r.attempts))
    calls = {m: stack.fleet.counters[m]["calls"] - calls_before.get(m, 0) for m in models}
    repeated = {m: calls[m] - tasks for m in models}
    return CrashReport(
        kill_at=kill_at,
        tasks=tasks,
        results=len(on_topic),
        lost=len(task_ids - set(on_topic)),
        duplicate_results=sum(len(copies) for copies in on_topic.values()) - len(on_topic),
        duplicates=[[c.completed_ms - killed_ms for c in copies] for copies in on_topic.values() if len(copies) > 1],
        duplicates_agree=all(len({(c.status, c.answer) for c in copies}) == 1 for copies in on_topic.values()),
        repeated_model_calls=sum(repeated.values()),
        repeated_by_model=repeated,
        swept=swept,
        statuses=dict(statuses),
        killed_after_results=killed_after,
        calls_in_flight_at_kill=in_flight,
        client_duplicates=stack.client.duplicates,
        model_calls=calls,
        seconds=round(seconds, 2),
        seed=seed,
        same_partitions_back=same_back,
    )


async def stall(stack: Stack, victim: Any) -> None:
    """Freeze the victim until the group has moved its partitions away (one member left, and
    at least :data:`STALL_S`), then wake it and wait until it is back in the group."""
    group = stack.settings.app_id
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        frozen_until = time.monotonic() + STALL_S
        await wait_for_members(stack.broker_url, group, 1)
        await asyncio.sleep(max(frozen_until - time.monotonic(), 0))
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    await wait_for_members(stack.broker_url, group, 2)


REJOINED = re.compile(r"rejoined after a fence: partitions \[([\d, ]*)\] gained anew \(held \[([\d, ]*)\] before\)")


async def back_after_fence(victim: Any, timeout_s: float = 30.0) -> bool | None:
    """Whether the woken victim got the partition numbers it held before its fence, from the line
    its engine logs when it rejoins (None without a log to read)."""
    if victim.log_path is None:
        return None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = REJOINED.search(Path(victim.log_path).read_text(errors="replace"))
        if found:
            return found.group(1) == found.group(2)
        await asyncio.sleep(0.1)
    raise AssertionError(f"the woken worker logged no rejoin after a fence in {timeout_s} s")


def run(*, quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick=quick))


async def _run(*, quick: bool) -> dict[str, Any]:
    tasks = 300 if quick else 1000
    seed = random.randrange(2**32)
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="swarm-bench-crash-") as tmp:
        fleet = Path(tmp) / "fleet.yaml"
        fleet.write_text(BENCH_FLEET)
        for kill_at in ("random", "after_commit", "stall"):
            for dedupe in (True, False):
                settings = unique_settings(Settings(models=fleet), data_dir=Path(tmp) / kill_at,
                                           dedupe_model_calls=dedupe)
                async with running_stack(settings, workers=1, log_dir=Path(tmp)) as stack:
                    report = await crash_run(stack, tasks=tasks, models=["slow", "quick"], kill_at=kill_at,
                                             seed=seed)
                reports[kill_at if dedupe else f"{kill_at}, no dedupe"] = report.to_dict()
    deduped = [r for name, r in reports.items() if "no dedupe" not in name]
    plain = [r for name, r in reports.items() if "no dedupe" in name]
    keys = ("tasks", "results", "lost", "duplicate_results", "repeated_model_calls", "swept")
    return {
        **{key: sum(r[key] for r in deduped) for key in keys},  # both kill moments, dedupe on (the default)
        "repeated_model_calls_without_dedupe": sum(r["repeated_model_calls"] for r in plain),
        "swept_without_dedupe": sum(r["swept"] for r in plain),
        "runs": len(deduped),
        "tasks_per_run": tasks,
        "variants": reports,
    }


def render(result: dict[str, Any]) -> str:
    lines = [f"crash: {result['tasks_per_run']} tasks a run, 2 workers, one killed (SIGKILL) or stalled (SIGSTOP)",
             f"{'kill':<24}{'results':>9}{'lost':>6}{'dup results':>13}{'repeated calls':>16}{'swept':>7}"
             f"{'in flight':>11}{'s':>7}"]
    for name, r in result["variants"].items():
        lines.append(f"{name:<24}{r['results']:>9}{r['lost']:>6}{r['duplicate_results']:>13}"
                     f"{r['repeated_model_calls']:>16}{r['swept']:>7}{r['calls_in_flight_at_kill']:>11}{r['seconds']:>7}")
    return "\n".join(lines)
