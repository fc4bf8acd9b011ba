"""Throughput, latency and scaling of the whole pipeline, beside raw Kafka in the same run:
``swarmstream bench pipeline [--quick] [--json]`` (issue 8).

Everything runs on one embedded broker (or ``SWARM_BROKER``), started once; each part
gets its own stack (``streams.cli.runtime.running_stack``: fresh topic prefix and consumer
group, workers as child processes, exactly as the demo runs them). Model answers come
from ``provider: inproc`` (``agents/models/providers/inproc.py``): the simulated
fleet's decisions inside the worker, no HTTP, so the figures are the orchestration's
own cost; part (a) is repeated over the HTTP fleet for comparison. Every consensus task
names three models, early stopping off, so each task is exactly three model calls.

Parts:

(a) Throughput, one worker, 0 ms models: M tasks (3,000; quick 1,000) published as fast
    as the client's producer takes them (``submit(wait_ack=False)``, then ``flush``),
    after a warm-up burst; three such bursts, the median one reported (each rate in
    ``repeats_tasks_per_s``). ``consensus_tasks_per_s`` = M / (last result's
    ``completed_ms`` - the first submit), in wall-clock ms.
    Events: after the burst every topic of the run is read back (``topic_census``).
    ``events_per_task`` = records on the pipeline's own topics (``<prefix>.*``: the task,
    the model requests, responses and failures, results, and whatever side records the
    topology writes, e.g. call records) per task; each is produced once and consumed at
    least once, the unit of the raw ceiling below. ``events_per_s`` = events_per_task x
    tasks/s. Table changelog records are counted apart
    (``changelog_records_per_task[_by_table]``), not in events.
    ``cpu_ms_per_task``: the worker process's CPU (utime + stime of every thread, from
    ``/proc/<pid>/stat``) over the burst, divided by M. ``client_cpu_ms_per_task`` is
    this process (the producer and the result consumer of ``SwarmClient``) and
    ``broker_cpu_ms_per_task`` the embedded broker, both reported beside it, not in it.
    ``peak_rss_mb``: the worker's ``VmHWM`` after the burst.
    ``worker_main_thread_cpu_share``: the part of the worker's CPU spent on its main
    thread (the event loop running the agents); the rest is aiokafka's and the other
    threads, from ``/proc/<pid>/task/*/stat``.
    Then ``select`` and ``chain`` tasks (M/2, no models named; chain tasks use the
    catalog's one chain, whose first model answers) when ``TaskRequest.mode`` has
    them: ``select_tasks_per_s``, ``chain_tasks_per_s`` (null when not wired).
    Then a second worker joins (below) and the burst is repeated:
    ``tasks_per_s_2_workers_0ms``, ``cpu_ms_per_task_2_workers`` (both workers' CPU).
(a') The same over the HTTP fleet (``provider: simulated``, 0 ms): ``cpu_ms_per_task_http``
    counts the worker *and* this process, which here also serves the simulated fleet
    (aiohttp) besides the client: the whole pipeline minus the broker, as the issue's
    4 CPU-ms target defines it. ``cpu_ms_per_task_http_worker`` is the worker alone.
(b) The ceiling: raw aiokafka in this process moving as many records as (a)'s burst put
    on the pipeline's topics (events_per_task x M), of their mean size (``event_bytes``),
    through consume -> produce -> commit: the input topic is filled first; a consumer
    group (same partitions, 10 ms fetch wait, as the worker) reads a batch (``getmany``),
    produces each record to an output topic (acks=all, linger 0, as the worker), waits
    for the acks, commits, repeats. No worker runs meanwhile. ``raw_events_per_s`` is
    counted from the first batch fetched (the group join is excluded) to the last
    commit; ``ratio`` = events_per_s / raw_events_per_s.
(c) Latency under load: open-loop arrivals (a fixed schedule, evenly spaced, not waiting
    for results) at 25/50/75% of (a)'s rate, models of exactly 100 ms
    (median = p99), 4 s per rate (full: 8 s), the first 0.5 s dropped as warm-up.
    End to end is ``completed_ms - created_ms`` of each TaskResult (``created_ms`` is
    stamped when the task is built, just before it is published); overhead is end to
    end minus the slowest vote's ``latency_ms`` (the model time the task had to wait
    for). ``overhead_p99_ms`` is at 50%.
(d) Concurrency: models of 500 ms, ``max_in_flight`` 256 each, a burst of tasks (own stack);
    tasks/s one worker sustains, and the mean calls in flight that implies
    (tasks/s x 3 x 0.5 s).
(e) Scaling: models of 100 ms capped at ``cap`` calls in flight per model per worker,
    so one worker's ceiling is cap / 0.1 s tasks/s whatever the CPU, two workers' twice
    that. ``cap`` is fixed for the run from (a)'s rate (``SCALING_LOAD``): small enough
    that two workers' load stays well under what the two cores do, so the workers, not
    the machine, are the limit. A burst of ``scaling_s`` seconds' worth at one worker's
    ceiling with 1 worker, then a second worker joins the group (the run waits until
    the group is Stable with 2 members and a warm-up burst has gone through) and the
    same burst is repeated: ``scaling_2_workers`` = rate2 / rate1.
(f) Profile: a separate stack whose worker runs under cProfile in *every* thread (a
    profiler per thread, started by ``threading.setprofile``, so work on any other
    thread is counted too, which ``python -m cProfile`` would miss), timed by each
    thread's CPU clock so idle waits count nothing, stopped with SIGTERM after a burst
    of 0 ms tasks; the merged top 30 functions by cumulative and by own time are written
    to ``bench/results/pipeline-profile.txt``. Profiling slows the worker (~3x); read
    shares, not absolute times.

Lost tasks do not fail the run: every burst waits ``RESULT_TIMEOUT_S`` at most and
reports ``missing``; ``tasks_missing`` and ``tasks_lost_when_a_worker_joins`` sum them.

``--quick``: fewer tasks and shorter latency runs, under 2 minutes; full under 6.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.schemas.models import Mode, TaskRequest, TaskResult, now_ms
from swarmstream.streams.cli.runtime import Stack, running_stack, unique_settings
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.app.worker import settings_env
from swarmstream.streams.cli.demo import to_request
from swarmstream.streams.engine.broker import (
    EmbeddedBroker,
    bootstrap_servers,
    ensure_topics,
)

MODELS = ("bench-a", "bench-b", "bench-c")
"""Three models per consensus task (the demo's default fan-out)."""

MODE_TIMEOUT_S = 20.0
"""Results of a select/chain burst are waited for this long: a mode that loses tasks costs little."""
BENCH_CHAIN = "bench"
"""The one fallback chain of every bench catalog: its default consensus models, in order."""
OTHER_MODES = ("select", "chain")
"""Measured like (a) when ``TaskRequest.mode`` accepts them, else reported as null."""
TASK_TIMEOUT_MS = 120_000
"""Far above any queueing delay here: a burst must not end in deadline failures."""
THROUGHPUT_REPEATS = 3
"""(a)'s burst is run this many times and the median reported: on the shared 2-core build
machines one burst's rate swung by +-25% with the host (raw aiokafka's too, in the same runs)."""

BATCH_IN_FLIGHT = 256
"""``max_in_flight`` per model for the uncapped runs: the concurrency bench's value."""
SCALING_LOAD = 0.3
"""(e)'s cap is set so one worker's ceiling is this share of (a)'s measured rate: two workers
then ask for 60% of what one worker did flat out, and the two cores (one worker used about
one of them in (a), the broker part of the other) have room for both. A fixed cap such as
32 would need 320 tasks/s per worker, more than the machine does today, and the run would
measure the CPU, not the workers."""
SCALING_CAP_RANGE = (2, 32)
SCALING_LATENCY_MS = 100
LATENCY_LOADS = (0.25, 0.5, 0.75)
WARMUP_S = 0.5
RESULT_TIMEOUT_S = 60.0
PROFILE_PATH = Path("bench/results/pipeline-profile.txt")
"""Next to the JSON the CLI writes (``bench/results/pipeline.json``, relative to the cwd)."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    """Task counts and durations of one run (quick or full)."""

    burst: int
    warm: int
    http_burst: int
    latency_s: float
    slow_burst: int
    scaling_s: float
    profile_burst: int


FULL = Sizes(burst=3000, warm=300, http_burst=2000, latency_s=8.0, slow_burst=2000, scaling_s=10.0, profile_burst=1000)
QUICK = Sizes(burst=1000, warm=200, http_burst=400, latency_s=3.0, slow_burst=400, scaling_s=4.0, profile_burst=300)


# --- process accounting (/proc) ---------------------------------------------------------------


def _stat_cpu_s(stat_path: str) -> float:
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of proc(5))


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    return _stat_cpu_s(f"/proc/{pid}/stat")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds per thread id (the main thread's id is the pid)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            out[int(tid)] = _stat_cpu_s(f"/proc/{pid}/task/{tid}/stat")
    return out


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class CpuMeter:
    """CPU of a set of processes (and this one) between ``start`` and ``stop``."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._before: dict[str, float] = {}
        self._threads: dict[int, dict[int, float]] = {}
        self.used_s: dict[str, float] = {}
        self.main_thread_share: float | None = None

    def start(self) -> CpuMeter:
        self._before = {name: proc_cpu_s(pid) for name, pid in self._pids.items()}
        self._before["client"] = time.process_time()
        self._threads = {pid: thread_cpu_s(pid) for name, pid in self._pids.items() if name.startswith("worker")}
        return self

    def stop(self) -> CpuMeter:
        self.used_s = {name: proc_cpu_s(pid) - self._before[name] for name, pid in self._pids.items()}
        self.used_s["client"] = time.process_time() - self._before["client"]
        main = total = 0.0
        for pid, before in self._threads.items():
            for tid, cpu in thread_cpu_s(pid).items():
                used = cpu - before.get(tid, 0.0)
                total += used
                main += used if tid == pid else 0.0
        self.main_thread_share = round(main / total, 3) if total > 0 else None
        return self

    def workers_s(self) -> float:
        return sum(v for k, v in self.used_s.items() if k.startswith("worker"))


# --- stacks -----------------------------------------------------------------------------------


def write_catalog(directory: Path, name: str, models: Mapping[str, Mapping[str, Any]], default: Sequence[str]) -> Path:
    """A catalog file of ``models`` (id -> fields besides ``id``/``family``/prices)."""
    entries = [
        {"id": model_id, "family": f"family-{model_id}", "input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.6, **fields}
        for model_id, fields in models.items()
    ]
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"default_consensus": list(default), "models": entries}, sort_keys=False))
    # Workers validate the fallback chains against the catalog at start-up: one chain over these models.
    chains = {"default": BENCH_CHAIN, "chains": {BENCH_CHAIN: {"links": [{"model": m} for m in default]}}}
    chains_path(path).write_text(yaml.safe_dump(chains, sort_keys=False))
    return path


def chains_path(catalog: Path) -> Path:
    return catalog.with_name(f"{catalog.stem}-chains.yaml")


def sim_models(ids: Sequence[str], *, provider: str, latency_ms: float, max_in_flight: int) -> dict[str, dict[str, Any]]:
    profile = {"accuracy": 0.7, "latency_median_ms": latency_ms, "latency_p99_ms": latency_ms}
    return {m: {"provider": provider, "max_in_flight": max_in_flight, "simulated": profile} for m in ids}


@contextlib.asynccontextmanager
async def bench_stack(
    broker_url: str, catalog: Path, *, workers: int = 1, fleet: bool = False
) -> AsyncIterator[Stack]:
    overrides: dict[str, Any] = {"models": catalog}
    if "chains" in Settings.model_fields:
        overrides["chains"] = chains_path(catalog)
    settings = unique_settings(Settings(**overrides), broker=broker_url)
    async with running_stack(settings, broker_url=broker_url, workers=workers, fleet=fleet) as stack:
        yield stack


def make_tasks(tag: str, n: int, models: Sequence[str], *, mode: str = "consensus") -> list[TaskRequest]:
    """Demo tasks with ids unique to this call; chain tasks name the catalog's one chain."""
    run = uuid.uuid4().hex[:6]
    update: dict[str, Any] = {"chain": BENCH_CHAIN} if mode == "chain" else {}
    return [
        to_request(item, mode=mode, models=models, timeout_ms=TASK_TIMEOUT_MS).model_copy(
            update={"task_id": f"{tag}-{run}-{i:05d}", **update}
        )
        for i, item in enumerate(demo_tasks(n))
    ]


async def wait_results(stack: Stack, ids: Sequence[str], timeout_s: float = RESULT_TIMEOUT_S) -> list[TaskResult]:
    """The results of ``ids``, in order; after ``timeout_s`` those that came (a run that lost
    tasks reports how many rather than failing the whole benchmark)."""
    received = stack.client.received
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [task_id for task_id in ids if task_id not in received]
        if not missing or time.monotonic() > deadline:
            return [received[task_id] for task_id in ids if task_id in received]
        for worker in stack.workers:
            worker.check_alive()
        await asyncio.sleep(0.01 if len(missing) < 50 else 0.05)


def worker_pids(stack: Stack) -> dict[str, int]:
    return {f"worker{i}": w.pid for i, w in enumerate(stack.workers)}


async def burst(
    stack: Stack, tag: str, n: int, models: Sequence[str], extra_pids: Mapping[str, int], *,
    mode: str = "consensus", timeout_s: float = RESULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Publish n tasks as fast as the producer takes them; rate and CPU until the last result."""
    tasks = make_tasks(tag, n, models, mode=mode)
    meter = CpuMeter({**worker_pids(stack), **extra_pids}).start()
    started_ms = now_ms()
    for task in tasks:
        await stack.client.submit(task, wait_ack=False)
    await stack.client.flush()
    published_s = (now_ms() - started_ms) / 1000
    results = await wait_results(stack, [t.task_id for t in tasks], timeout_s)
    meter.stop()
    if not results:
        raise RuntimeError(f"{tag}: no result of {n} tasks within {timeout_s:.0f} s")
    wall_s = (max(r.completed_ms for r in results) - started_ms) / 1000
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    workers_cpu_s = meter.workers_s()
    out = {
        "tasks": n,
        "wall_s": round(wall_s, 3),
        "publish_s": round(published_s, 3),
        "tasks_per_s": round(len(results) / wall_s, 1),
        "cpu_ms_per_task": round(workers_cpu_s * 1000 / n, 3),
        "client_cpu_ms_per_task": round(meter.used_s["client"] * 1000 / n, 3),
        "worker_cpu_utilisation": round(workers_cpu_s / wall_s, 3),
        "worker_main_thread_cpu_share": meter.main_thread_share,
        "statuses": statuses,
        "missing": n - len(results),
        "duplicates": stack.client.duplicates,
    }
    if "broker" in meter.used_s:
        out["broker_cpu_ms_per_task"] = round(meter.used_s["broker"] * 1000 / n, 3)
    return out


# --- (b) raw aiokafka ceiling -----------------------------------------------------------------


async def raw_ceiling(broker_url: str, messages: int, size: int, partitions: int) -> dict[str, Any]:
    servers = bootstrap_servers(broker_url)
    prefix = f"raw-{uuid.uuid4().hex[:8]}"
    source, sink = f"{prefix}.in", f"{prefix}.out"
    await ensure_topics(broker_url, [source, sink], partitions)
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=0)
    await producer.start()
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=servers, group_id=prefix, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=10, max_poll_records=500,
        session_timeout_ms=2000, heartbeat_interval_ms=300, rebalance_timeout_ms=2000,
    )
    try:
        value = os.urandom(size)
        fill = [await producer.send(source, value, key=f"task-{i:07d}".encode()) for i in range(messages)]
        await asyncio.gather(*fill)
        await consumer.start()
        moved = 0
        first_s: float | None = None
        cpu_s = 0.0
        while moved < messages:
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            if not batches:
                continue
            if first_s is None:
                first_s, cpu_started = time.perf_counter(), time.process_time()
            sends = [
                await producer.send(sink, record.value, key=record.key)
                for records in batches.values()
                for record in records
            ]
            await asyncio.gather(*sends)
            await consumer.commit()
            moved += len(sends)
        assert first_s is not None
        wall_s = time.perf_counter() - first_s
        cpu_s = time.process_time() - cpu_started
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "messages": messages,
        "bytes": size,
        "wall_s": round(wall_s, 3),
        "events_per_s": round(messages / wall_s, 1),
        "cpu_us_per_event": round(cpu_s * 1e6 / messages, 1),
    }


# --- (c) latency under load -------------------------------------------------------------------


async def open_loop(stack: Stack, tag: str, rate: float, duration_s: float, models: Sequence[str]) -> dict[str, Any]:
    """Tasks at ``rate``/s on a fixed schedule, whatever the results do; e2e and overhead percentiles."""
    n = max(1, int(rate * duration_s))
    templates = make_tasks(tag, n, models)
    meter = CpuMeter(worker_pids(stack)).start()
    started = time.perf_counter()
    sent: list[TaskRequest] = []
    for i, template in enumerate(templates):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = template.model_copy(update={"created_ms": now_ms()})
        sent.append(task)
        await stack.client.submit(task, wait_ack=False)
    send_s = time.perf_counter() - started
    results = await wait_results(stack, [t.task_id for t in sent])
    meter.stop()
    if not results:
        raise RuntimeError(f"{tag}: no result of {n} tasks within {RESULT_TIMEOUT_S:.0f} s")
    warm_ms = sent[0].created_ms + WARMUP_S * 1000
    measured = [r for r in results if r.created_ms >= warm_ms] or results
    e2e = np.array([r.completed_ms - r.created_ms for r in measured], dtype=float)
    model = np.array([max((v.latency_ms for v in r.votes), default=0) for r in measured], dtype=float)
    overhead = e2e - model

    def pct(values: np.ndarray) -> dict[str, float]:
        return {f"p{q}": round(float(np.percentile(values, q)), 1) for q in (50, 95, 99)}

    return {
        "rate_per_s": round(rate, 1),
        "tasks": n,
        "measured": len(measured),
        "achieved_send_rate_per_s": round(n / send_s, 1),
        "e2e_ms": pct(e2e),
        "overhead_ms": pct(overhead),
        "model_ms_p50": round(float(np.percentile(model, 50)), 1),
        # CPU per task rises when tasks trickle in: fewer records per fetch and per produce request
        "cpu_ms_per_task": round(meter.workers_s() * 1000 / n, 3),
        "worker_cpu_utilisation": round(meter.workers_s() / (time.perf_counter() - started), 3),
        "failed": sum(1 for r in measured if r.status != "ok" and not r.votes),
        "missing": n - len(results),
    }


# --- (e) a second worker ----------------------------------------------------------------------


async def wait_members(stack: Stack, members: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """Until the worker group is Stable with ``members`` members, then a warm-up burst has
    gone through (tasks on every partition, so every worker has recovered its tables).

    Tansu reports the group Stable as soon as the leader's SyncGroup lands, before the
    members have restored their tables, so the run also waits one session timeout.
    Under Faust, tasks published while a worker was still settling could be skipped by
    a worker that kept a partition (faust-streaming #216, #221: 1 of 40 warm-up tasks
    in 2 runs of 2). The warm-up's lost tasks are reported (``lost_in_join``), not
    waited for."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(stack.broker_url))
    await admin.start()
    started = time.monotonic()
    try:
        while True:
            for worker in stack.workers:
                worker.check_alive()
            with contextlib.suppress(Exception):
                if _stable_members(await admin.describe_consumer_groups([stack.settings.app_id])) >= members:
                    break
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"group {stack.settings.app_id} did not reach {members} members in {timeout_s:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    stable_s = time.monotonic() - started
    await asyncio.sleep(stack.settings.session_timeout_s)
    warm = make_tasks("join", JOIN_WARMUP_TASKS, MODELS)
    for task in warm:
        await stack.client.submit(task, wait_ack=False)
    await wait_results(stack, [t.task_id for t in warm], timeout_s=JOIN_WARMUP_TIMEOUT_S)
    lost = sum(1 for t in warm if t.task_id not in stack.client.received)
    return {"stable_s": round(stable_s, 2), "ready_s": round(time.monotonic() - started, 2), "lost_in_join": lost}


JOIN_WARMUP_TASKS = 40
JOIN_WARMUP_TIMEOUT_S = 15.0


def _stable_members(responses: Any) -> int:
    """Members of a Stable group. Tansu 0.6 reports members with empty assignments, so the
    count, not the assignment, is what can be read; the warm-up burst proves the rest."""
    for response in responses:
        for group in response.groups:
            # (error_code, group_id, state, protocol_type, protocol, members[, authorized_operations])
            if group[2] == "Stable":
                return len(group[5])
    return 0


# --- (f) profile ------------------------------------------------------------------------------

PROFILE_SIGNAL = signal.SIGRTMIN + 1
"""Marks the profiled window: the first signal snapshots the counters (start-up ends), the
second writes the profile of what happened between the two. The worker handles SIGINT
and SIGTERM; a real-time signal is free for this."""

_PROFILED_WORKER = r"""
import cProfile, marshal, pstats, runpy, signal, sys, threading, time
out, signum = sys.argv[1], int(sys.argv[2])
profilers = []
lock = threading.Lock()
baseline = None

def start_in_thread(frame, event, arg):
    # called once in each new thread: replace this hook with a cProfile profiler of its own
    profiler = cProfile.Profile(time.thread_time)
    with lock:
        profilers.append(profiler)
    profiler.enable()

def merged():
    # every thread's counters so far, added up (the profilers keep running)
    total = {}
    with lock:
        for profiler in profilers:
            profiler.snapshot_stats()
            for func, row in profiler.stats.items():
                total[func] = pstats.add_func_stats(total[func], row) if func in total else row
    return total

def minus(after, before):
    def sub(a, b):
        return tuple(x - y for x, y in zip(a, b))
    window = {}
    for func, (cc, nc, tt, ct, callers) in after.items():
        if func in before:
            bcc, bnc, btt, bct, bcallers = before[func]
            cc, nc, tt, ct = cc - bcc, nc - bnc, tt - btt, ct - bct
            callers = {k: sub(v, bcallers[k]) if k in bcallers else v for k, v in callers.items()}
            callers = {k: v for k, v in callers.items() if v[0] > 0}
        if nc > 0:
            window[func] = (cc, nc, tt, ct, callers)
    return window

def mark(sig, frame):
    global baseline
    if baseline is None:
        baseline = merged()
        open(out + ".started", "w").close()
    else:
        with open(out, "wb") as f:
            marshal.dump(minus(merged(), baseline), f)

# thread_time: each thread's own CPU time, so waiting in epoll or for the GIL counts nothing
main = cProfile.Profile(time.thread_time)
profilers.append(main)
threading.setprofile(start_in_thread)
signal.signal(signum, mark)
sys.argv = ["swarmstream", "worker", "--loglevel", "warning"]
main.enable()
try:
    runpy.run_module("swarmstream.streams.cli", run_name="__main__")
except SystemExit:
    pass
finally:
    main.disable()
"""


REPO_ROOT = Path(__file__).resolve().parent.parent
"""Where swarmstream's own modules live (the editable install maps them here)."""


def code_area(filename: str) -> str:
    """Which part of the stack a profiled function belongs to, for the share-by-area table."""
    if filename == "~":
        return "C builtins (sockets, struct, epoll, ...)"
    for name in ("aiokafka", "pydantic", "fastavro", "orjson", "numpy"):
        if f"/site-packages/{name}/" in filename:
            return name
    if "/site-packages/" in filename:
        return "other packages"
    if filename.startswith(str(REPO_ROOT)):
        return "swarmstream"
    for name in ("asyncio", "logging"):
        if f"/{name}/" in filename:
            return f"stdlib {name}"
    return "other stdlib"


def profile_report(prof_path: Path, out_path: Path, header: str, top: int = 30) -> dict[str, Any]:
    """Write CPU share by area, then top-N by cumulative and by own time; return both summaries."""
    import io

    buffer = io.StringIO()
    stats = pstats.Stats(str(prof_path), stream=buffer)
    total_s = stats.total_tt  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    for (file, _line, _name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        areas[code_area(file)] = areas.get(code_area(file), 0.0) + tt
    by_area = {area: round(own / total_s, 3) for area, own in sorted(areas.items(), key=lambda kv: -kv[1])}
    buffer.write(header + "\n\n=== share of the worker's CPU by where the code lives (own time) ===\n")
    for area, share in by_area.items():
        buffer.write(f"{share * 100:6.1f}%  {area}\n")
    buffer.write(f"\n=== top {top} by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(top)
    buffer.write(f"\n=== top {top} by own (total) time ===\n")
    stats.sort_stats("tottime").print_stats(top)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(buffer.getvalue())
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    top_own = [
        {"function": f"{Path(file).name}:{line}({name})", "own_s": round(tt, 3), "own_share": round(tt / total_s, 3),
         "cum_s": round(ct, 3)}
        for (file, line, name), (cc, nc, tt, ct, callers) in rows
    ]
    return {"by_area": by_area, "top_own": top_own}


async def profiled_run(broker_url: str, catalog: Path, tasks: int, workdir: Path) -> dict[str, Any]:
    prof_path = workdir / "worker.prof"
    log_path = workdir / "profiled-worker.log"
    async with bench_stack(broker_url, catalog, workers=0) as stack:
        env = {**os.environ, **settings_env(stack.settings, stack.broker_url)}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", _PROFILED_WORKER, str(prof_path), str(int(PROFILE_SIGNAL))],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        try:
            await asyncio.wait_for(stack.wait_ready(), 60)
            await burst(stack, "warm", 50, MODELS, {})
            proc.send_signal(PROFILE_SIGNAL)
            await _wait_for_file(Path(f"{prof_path}.started"))
            run = await burst(stack, "profile", tasks, MODELS, {"worker0": proc.pid})
            proc.send_signal(PROFILE_SIGNAL)
            await _wait_for_file(prof_path)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    if not prof_path.exists():
        return {"written": False, "exit_code": proc.returncode, "log": log_path.read_text()[-2000:]}
    header = (
        f"swarmstream bench pipeline: the worker under cProfile (every thread, timer = the thread's CPU time,\n"
        f"so idle waits count nothing), {tasks} consensus tasks x 3 inproc models of 0 ms, one worker;\n"
        f"{run['tasks_per_s']} tasks/s while profiled ({run['cpu_ms_per_task']} CPU-ms/task incl. profiler overhead).\n"
        "The window is the burst only (counters at its start subtracted: no start-up, no shutdown).\n"
        "The profiler inflates times; compare shares."
    )
    summary = profile_report(prof_path, PROFILE_PATH, header)
    return {"written": True, "path": str(PROFILE_PATH), "tasks_per_s_profiled": run["tasks_per_s"],
            "cpu_share_by_area": summary["by_area"], "top_own": summary["top_own"][:12]}


async def _wait_for_file(path: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the profiled worker wrote no {path.name} within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)  # written by the worker's main thread; let it finish the file


# --- changelog volume -------------------------------------------------------------------------


@dataclass
class Census:
    """Records and value bytes per topic of one run, read from the broker after it."""

    pipeline: dict[str, tuple[int, int]]  # "<prefix>.<name>" topics: (records, bytes)
    changelogs: dict[str, int]  # table name -> records

    def pipeline_records(self) -> int:
        return sum(count for count, _ in self.pipeline.values())

    def mean_bytes(self) -> int:
        records = self.pipeline_records()
        return round(sum(size for _, size in self.pipeline.values()) / records) if records else 0


async def topic_census(broker_url: str, settings: Settings) -> Census:
    """Every record of the run's topics, read to the end (Tansu's end offsets can be short)."""
    prefix, app_id = f"{settings.topic_prefix}.", f"{settings.app_id}-"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=10, auto_offset_reset="earliest")
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith((prefix, app_id))]
        tps = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        counts = dict.fromkeys(topics, 0)
        sizes = dict.fromkeys(topics, 0)
        if tps:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            idle = 0
            while idle < 3:
                batches = await consumer.getmany(timeout_ms=100, max_records=20_000)
                for tp, records in batches.items():
                    counts[tp.topic] += len(records)
                    sizes[tp.topic] += sum(len(r.value or b"") for r in records)
                idle = idle + 1 if not batches else 0
    finally:
        await consumer.stop()
    return Census(
        pipeline={t.removeprefix(prefix): (counts[t], sizes[t]) for t in topics if t.startswith(prefix) and counts[t]},
        changelogs={t.removeprefix(app_id).removesuffix("-changelog"): counts[t]
                    for t in topics if t.startswith(app_id) and t.endswith("-changelog") and counts[t]},
    )


# --- the run ----------------------------------------------------------------------------------


async def _run(quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    started = time.monotonic()
    phases: dict[str, float] = {}
    base = Settings()
    broker: EmbeddedBroker | None = None
    if not base.broker:
        broker = EmbeddedBroker().start()
    broker_url = base.broker or broker.url  # type: ignore[union-attr]
    broker_pid: dict[str, int] = {}
    if broker is not None and broker._proc is not None:
        broker_pid = {"broker": broker._proc.pid}
    result: dict[str, Any] = {
        "quick": quick,
        "broker": "embedded (Tansu)" if broker else broker_url,
        # other work on the machine moves absolute rates; the ratios in one run hold better
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    modes: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="swarm-bench-pipeline-") as tmp:
            workdir = Path(tmp)
            fast = write_catalog(workdir, "inproc-0ms",
                                 sim_models(MODELS, provider="inproc", latency_ms=0, max_in_flight=BATCH_IN_FLIGHT), MODELS)
            http = write_catalog(workdir, "http-0ms",
                                 sim_models(MODELS, provider="simulated", latency_ms=0, max_in_flight=BATCH_IN_FLIGHT), MODELS)
            timed = write_catalog(workdir, "inproc-100ms",
                                  sim_models(MODELS, provider="inproc", latency_ms=100, max_in_flight=BATCH_IN_FLIGHT), MODELS)
            slow_catalog = write_catalog(workdir, "inproc-500ms",
                                         sim_models(MODELS, provider="inproc", latency_ms=500, max_in_flight=BATCH_IN_FLIGHT),
                                         MODELS)

            # (a) throughput, one worker, 0 ms inproc; the topics' census; other modes; then two workers
            t = time.monotonic()
            async with bench_stack(broker_url, fast) as stack:
                warm = sizes.warm
                await burst(stack, "warm", warm, MODELS, broker_pid)
                repeats = [await burst(stack, f"tput{i}", sizes.burst, MODELS, broker_pid)
                           for i in range(THROUGHPUT_REPEATS)]
                one = sorted(repeats, key=lambda run: run["tasks_per_s"])[THROUGHPUT_REPEATS // 2]
                one["repeats_tasks_per_s"] = [run["tasks_per_s"] for run in repeats]
                one["peak_rss_mb"] = round(peak_rss_mb(stack.workers[0].pid), 1)
                census = await topic_census(broker_url, stack.settings)
                tasks_so_far = warm + THROUGHPUT_REPEATS * sizes.burst + 1  # + the readiness probe
                for mode in OTHER_MODES:
                    if mode not in get_args(Mode):
                        modes[mode] = None
                        continue
                    try:
                        modes[mode] = await burst(stack, mode, sizes.burst // 2, (), broker_pid, mode=mode,
                                                  timeout_s=MODE_TIMEOUT_S)
                    except Exception as exc:  # a mode that is wired but broken must not cost the run
                        modes[mode] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                stack.start_worker()
                join = await wait_members(stack, 2)
                two = await burst(stack, "tput2", sizes.burst, MODELS, broker_pid)
                two["join"] = join
            phases["throughput"] = time.monotonic() - t
            records_per_task = census.pipeline_records() / tasks_so_far

            # (b) the ceiling: as many records as (a)'s burst moved, of the same mean size; no worker runs
            t = time.monotonic()
            raw = await raw_ceiling(broker_url, round(records_per_task * sizes.burst), census.mean_bytes(),
                                    base.partitions)
            phases["raw"] = time.monotonic() - t

            # (a') the same as (a) over the HTTP fleet
            t = time.monotonic()
            async with bench_stack(broker_url, http, fleet=True) as stack:
                await burst(stack, "warm", sizes.warm, MODELS, broker_pid)
                over_http = await burst(stack, "http", sizes.http_burst, MODELS, broker_pid)
            phases["http"] = time.monotonic() - t

            # (c) latency under load and (d) concurrency
            max_rate = one["tasks_per_s"]
            t = time.monotonic()
            async with bench_stack(broker_url, timed) as stack:
                await burst(stack, "warm", 100, MODELS, broker_pid)
                loads = {}
                for load in LATENCY_LOADS:
                    loads[f"{round(load * 100)}%"] = await open_loop(
                        stack, f"lat{round(load * 100)}", load * max_rate, sizes.latency_s, MODELS
                    )
            phases["latency"] = time.monotonic() - t
            t = time.monotonic()
            async with bench_stack(broker_url, slow_catalog) as stack:
                slow = await burst(stack, "slow", sizes.slow_burst, MODELS, broker_pid)
                slow["mean_calls_in_flight"] = round(slow["tasks_per_s"] * 3 * 0.5, 1)
            phases["concurrency"] = time.monotonic() - t

            # (e) scaling at a fixed in-flight cap
            t = time.monotonic()
            low, high = SCALING_CAP_RANGE
            cap = max(low, min(high, int(SCALING_LOAD * max_rate * SCALING_LATENCY_MS / 1000)))
            ceiling = cap * 1000 / SCALING_LATENCY_MS
            capped = write_catalog(workdir, "inproc-100ms-capped", sim_models(
                MODELS, provider="inproc", latency_ms=SCALING_LATENCY_MS, max_in_flight=cap), MODELS)
            scaling_tasks = max(100, int(ceiling * sizes.scaling_s))  # one worker at its ceiling: scaling_s
            async with bench_stack(broker_url, capped) as stack:
                await burst(stack, "warm", 2 * cap, MODELS, broker_pid)
                scale1 = await burst(stack, "scale1", scaling_tasks, MODELS, broker_pid)
                stack.start_worker()
                scale_join = await wait_members(stack, 2)
                scale2 = await burst(stack, "scale2", scaling_tasks, MODELS, broker_pid)
                scale2["join"] = scale_join
            phases["scaling"] = time.monotonic() - t

            # (f) profile
            t = time.monotonic()
            profile = await profiled_run(broker_url, fast, sizes.profile_burst, workdir)
            phases["profile"] = time.monotonic() - t
    finally:
        if broker is not None:
            broker.stop()

    for row in (one, two, over_http):
        row["events_per_s"] = round(records_per_task * row["tasks_per_s"], 1)
    ratio = one["events_per_s"] / raw["events_per_s"]
    runs = {"throughput_1_worker": one, "throughput_2_workers": two, "http_1_worker": over_http,
            "concurrency_500ms": slow, "scaling_1_worker": scale1, "scaling_2_workers": scale2}
    result.update({
        "consensus_tasks_per_s": one["tasks_per_s"],
        "events_per_s": one["events_per_s"],
        "raw_events_per_s": raw["events_per_s"],
        "ratio": round(ratio, 4),
        "overhead_p99_ms": loads["50%"]["overhead_ms"]["p99"],
        "cpu_ms_per_task": one["cpu_ms_per_task"],
        "cpu_ms_per_task_http": round(over_http["cpu_ms_per_task"] + over_http["client_cpu_ms_per_task"], 3),
        "peak_rss_mb": one["peak_rss_mb"],
        "scaling_2_workers": round(scale2["tasks_per_s"] / scale1["tasks_per_s"], 3),
        "select_tasks_per_s": _mode_rate(modes.get("select")),
        "chain_tasks_per_s": _mode_rate(modes.get("chain")),
        "cpu_ms_per_task_http_worker": over_http["cpu_ms_per_task"],
        "http_tasks_per_s": over_http["tasks_per_s"],
        "tasks_per_s_2_workers_0ms": two["tasks_per_s"],
        "cpu_ms_per_task_2_workers": two["cpu_ms_per_task"],
        "tasks_per_s_500ms": slow["tasks_per_s"],
        "events_per_task": round(records_per_task, 2),
        "events_per_task_by_topic": {
            topic: round(count / tasks_so_far, 2) for topic, (count, _) in sorted(census.pipeline.items())
        },
        "event_bytes": census.mean_bytes(),
        "changelog_records_per_task": round(sum(census.changelogs.values()) / tasks_so_far, 2),
        "changelog_records_per_task_by_table": {
            table: round(count / tasks_so_far, 2) for table, count in sorted(census.changelogs.items())
        },
        "tasks_lost_when_a_worker_joins": two["join"]["lost_in_join"] + scale2["join"]["lost_in_join"],
        "tasks_missing": sum(r.get("missing", 0) for r in runs.values()) + sum(r["missing"] for r in loads.values()),
        "scaling_in_flight_cap": cap,
        "scaling_ceiling_tasks_per_s_per_worker": round(ceiling, 1),
        "runs": {**runs, "raw": raw, "latency_100ms": loads, "modes": modes},
        "profile": profile,
        "phase_s": {k: round(v, 1) for k, v in phases.items()},
        "wall_s": round(time.monotonic() - started, 1),
    })
    return result


def _mode_rate(run: Any) -> float | None:
    return run.get("tasks_per_s") if isinstance(run, dict) else None


def run(*, quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick))


def render(result: Mapping[str, Any]) -> str:
    runs = result["runs"]
    one, two, http, raw = runs["throughput_1_worker"], runs["throughput_2_workers"], runs["http_1_worker"], runs["raw"]
    lines = [
        f"swarmstream pipeline ({'quick' if result['quick'] else 'full'}), broker: {result['broker']}; "
        f"3-model consensus tasks: {result['events_per_task']} records/task on the pipeline's topics "
        f"({result['event_bytes']} B mean) + {result['changelog_records_per_task']} changelog records/task",
        "",
        f"{'run':<32} {'tasks/s':>8} {'events/s':>9} {'CPU ms/task: worker':>20} {'client':>7} {'broker':>7}",
    ]
    for name, row in (("(a) 1 worker, inproc 0 ms", one), ("    2 workers, inproc 0 ms", two),
                      ("(a') 1 worker, HTTP fleet 0 ms", http)):
        lines.append(
            f"{name:<32} {row['tasks_per_s']:>8.1f} {row['events_per_s']:>9.1f} {row['cpu_ms_per_task']:>20.3f} "
            f"{row['client_cpu_ms_per_task']:>7.3f} {row.get('broker_cpu_ms_per_task', float('nan')):>7.3f}"
        )
    for mode in ("select", "chain"):
        run = runs["modes"].get(mode)
        if isinstance(run, dict) and "tasks_per_s" in run:
            lines.append(f"{'    ' + mode + ', 1 worker, inproc 0 ms':<32} {run['tasks_per_s']:>8.1f} {'':>9} "
                         f"{run['cpu_ms_per_task']:>20.3f} {run['client_cpu_ms_per_task']:>7.3f} "
                         f"{run.get('broker_cpu_ms_per_task', float('nan')):>7.3f}")
        else:
            lines.append(f"    {mode}: {'not wired' if run is None else run.get('error', run)}")
    lines += [
        f"(b) raw aiokafka consume->produce->commit {raw['events_per_s']:>9.1f} events/s "
        f"({raw['cpu_us_per_event']} CPU-us/event); ours/raw = {result['ratio']:.3f}",
        f"    worker peak RSS {result['peak_rss_mb']} MB; main-thread share of worker CPU "
        f"{one['worker_main_thread_cpu_share']}; CPU/task over HTTP, worker + client + fleet: "
        f"{result['cpu_ms_per_task_http']} ms",
        "",
        "(c) latency, inproc models of 100 ms, open loop (ms)",
        f"{'load':>6} {'rate/s':>8} {'e2e p50':>8} {'p95':>7} {'p99':>7} {'overhead p50':>13} {'p95':>7} {'p99':>7}",
    ]
    for load, row in runs["latency_100ms"].items():
        e, o = row["e2e_ms"], row["overhead_ms"]
        lines.append(f"{load:>6} {row['rate_per_s']:>8.1f} {e['p50']:>8.1f} {e['p95']:>7.1f} {e['p99']:>7.1f} "
                     f"{o['p50']:>13.1f} {o['p95']:>7.1f} {o['p99']:>7.1f}")
    slow = runs["concurrency_500ms"]
    s1, s2 = runs["scaling_1_worker"], runs["scaling_2_workers"]
    lines += [
        "",
        f"(d) 500 ms models: {slow['tasks_per_s']} tasks/s one worker (~{slow['mean_calls_in_flight']} calls in flight)",
        f"(e) 100 ms models capped at {result['scaling_in_flight_cap']} in flight/model/worker "
        f"(ceiling {result['scaling_ceiling_tasks_per_s_per_worker']} tasks/s/worker): "
        f"1 worker {s1['tasks_per_s']}, 2 workers {s2['tasks_per_s']} tasks/s -> x{result['scaling_2_workers']}",
        f"    CPU ms/task at 0 ms: 1 worker {one['cpu_ms_per_task']}, 2 workers {two['cpu_ms_per_task']}",
    ]
    if result["tasks_missing"] or result["tasks_lost_when_a_worker_joins"]:
        lines.append(f"    LOST: {result['tasks_missing']} results missing in measured runs, "
                     f"{result['tasks_lost_when_a_worker_joins']} in the warm-ups right after a worker joined")
    profile = result["profile"]
    if profile.get("written"):
        lines += ["", f"(f) profile: {profile['path']} (profiled run {profile['tasks_per_s_profiled']} tasks/s)",
                  "    worker CPU by area: " + ", ".join(
                      f"{area} {share * 100:.0f}%" for area, share in profile["cpu_share_by_area"].items() if share >= 0.01),
                  "    top own CPU time:"]
        for row in profile["top_own"][:6]:
            lines.append(f"    {row['own_share'] * 100:5.1f}%  {row['function']}")
    else:
        lines += ["", "(f) profile: NOT written (see the JSON)"]
    lines.append(f"wall {result['wall_s']} s")
    return "\n".join(lines)
