"""Sustained load: ``swarmstream bench soak [--quick] [--json]`` (issue 21).

Minutes of load at a fixed rate, not a burst: what a worker does over time (memory,
GC pauses, overhead minute by minute), what it does when offered more than it can
serve (admission, ``agents/dispatch/shedding.py``), and how fast it comes back after
``kill -9`` with a long history behind it.

One embedded broker (or ``SWARM_BROKER``) for the run; each scenario its own stack
(``streams.cli.runtime.running_stack``: fresh topics and group) and one worker, a
``swarmstream worker`` child process started through a small hook (``_WORKER_HOOK``:
``gc.callbacks`` timing every collection, a line a second to a file; the worker is
otherwise untouched, and the file survives a SIGKILL). Its RSS is read from
``/proc/<pid>/status`` (VmRSS) every few seconds.

Load is open loop: tasks are sent on a fixed schedule (task i at start + i / rate),
whatever the results do, each stamped ``created_ms`` just before it is sent; a
client that falls behind sends what is due at once and the achieved rate is
reported. Every task is a 3-model consensus (early stopping off, as in
``bench pipeline``) with the default 30 s timeout (``SOAK_TIMEOUT_MS``). Latency is
``completed_ms - created_ms``; overhead is that minus the slowest vote's
``latency_ms`` (the model time the task had to wait for), ``bench pipeline``'s (c)
definition, over every task not rejected (a timed-out task's overhead is its wait).

Scenarios, each reported with ``rate_per_s``, ``duration_s``, ``statuses`` (results
per status), ``rss_mb_first``/``rss_mb_last`` (the worker's RSS at the end of the
first and of the last minute), ``overhead_p99_ms_by_minute`` (by the minute the
tasks were created in), ``gc_pause_max_ms`` (the worker's longest collection; by minute in
``gc_pause_max_ms_by_minute``):

- ``steady``: inproc 0 ms models (``provider: inproc``, no HTTP), a fixed rate of
  ``STEADY_LOAD`` (60%) of the burst maximum measured first in the same run
  (``bench.pipeline.burst``: ``BURST_REPEATS`` bursts of ``BURST_TASKS``, the best),
  30 minutes (quick: 3).
- ``http``: the demo catalog's simulated models (~20 ms) over HTTP, served by a
  ``swarmstream sim-fleet`` child process, 300 tasks/s (the rate issue 21 measured
  collapsing), 10 minutes (quick: 2).
- ``overload``: inproc 0 ms, ``OVERLOAD`` (2x) the burst maximum for 2 minutes, then
  ``AFTER_OVERLOAD`` (50%) for 2 more (quick: 1 + 1). Reports ``rejected`` (and the
  ``reasons``, by kind), ``accepted_timeouts`` (status ``timeout`` among admitted
  tasks) and ``accepted_late`` (admitted tasks that ended after their deadline),
  ``served_per_s`` during the overload, ``missing_*`` (tasks with no result by the end
  of the drain), and ``recovered_s``: from the load's fall to the start of the first
  10 s window (1 s steps, by send time) in which every task sent was served (none
  rejected, none without a result); null when no window was.
- ``restart``: inproc 0 ms; tasks are kept coming (at most ``RESTART_WINDOW`` without
  a result, so as fast as the worker goes) until ``RESTART_TASKS`` (500,000; quick
  100,000) have finished (``tasks_before``); then the worker gets SIGKILL and a new
  one starts on the same topics and group: ``restart_to_result_s`` is from the new
  worker's spawn to the first result of a task sent after the kill (probes are sent
  every ``PROBE_EVERY_S`` from the spawn on), ``rss_mb_after_restart`` its RSS then
  and ``SETTLE_S`` later, beside ``rss_mb_fresh`` (the first worker, started, before
  any load), ``rss_mb_fresh_loaded`` (the first worker ``SETTLE_S`` into its load: a fresh
  worker at work, holding what any working worker holds, fetch buffers, producer batches,
  tasks in flight) and ``rss_mb_before_kill``; ``rss_ratio_after_restart`` divides the
  RSS at the first result by each of the two.

On the embedded broker the soak measures the broker as much as the worker: Tansu lists every
batch a partition ever received on each fetch, and stops listing (returning nothing) once the
fetch wait is spent, so hops slow down minute by minute and then stall (``bench broker``;
DESIGN.md, "Brokers"). ``worker_cpu_ms_per_task_by_minute`` (flat: the worker is not what
slowed) and ``broker_cores_by_minute`` tell the two apart; the flatness targets of issue 21
need ``SWARM_BROKER`` pointing at a real Kafka.

Choosing scenarios: the CLI's ``bench`` command takes no options but ``--quick``,
``--json`` and ``--out``, so ``SWARM_SOAK_SCENARIOS=overload,restart`` (comma list;
default all four, in the order above) picks some. The burst maximum is measured on
the first stack that needs it (steady or overload) and reused.

Wall time: quick ~11 minutes (all four; measured 10.3), full ~70.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.bench.pipeline import (
    BATCH_IN_FLIGHT,
    MODELS,
    CpuMeter,
    burst,
    chains_path,
    proc_cpu_s,
    sim_models,
    write_catalog,
)
from swarmstream.schemas.models import TaskRequest, TaskResult, now_ms
from swarmstream.streams.app.settings import DEFAULT_CATALOG, Settings
from swarmstream.streams.app.worker import settings_env
from swarmstream.streams.cli.demo import to_request
from swarmstream.streams.cli.runtime import Stack, running_stack, unique_settings
from swarmstream.streams.engine.broker import EmbeddedBroker

SCENARIOS = ("steady", "http", "overload", "restart")

SOAK_TIMEOUT_MS = 30_000
"""The default task timeout (``SWARM_DEFAULT_TIMEOUT_MS``): the deadline issue 21's tasks missed."""
STEADY_LOAD = 0.6
"""Of the burst maximum: a load a worker should carry for hours, with room for GC, compaction
and the sweepers (a burst is the best case: one long fetch-and-produce streak)."""
OVERLOAD = 2.0
"""Of the burst maximum: twice what the worker serves, so half or more of the tasks cannot be
served in time whatever it does; what it does with them is the measure."""
AFTER_OVERLOAD = 0.5
"""Of the burst maximum, after the overload: well under what the worker serves, so how long
refusals go on after the fall measures admission's recovery, not a second overload."""
HTTP_RATE = 300.0
"""Issue 21's measurement: one worker, the HTTP fleet, 300 consensus tasks/s on 2 cores."""
BURST_TASKS = 1000
"""``bench pipeline --quick``'s burst: a few seconds of work, long enough to pass start-up effects."""
BURST_WARM = 200
BURST_REPEATS = 2
"""The best of two bursts: on a shared 2-core machine one burst swings +-25% with the host
(``bench pipeline``, THROUGHPUT_REPEATS), and the soak wants the worker's ceiling, not a dip."""
RESTART_WINDOW = 500
"""Tasks without a result while the restart scenario fills the worker's history: ~1 s of work
at ~500 tasks/s, far inside the 30 s timeout, and enough that the worker never waits for work
(a window, not a rate: the worker sets the pace)."""
PROBE_EVERY_S = 0.1
"""Probes after a restart: ``restart_to_result_s`` is then at most this much later than the
moment the new worker could first have answered."""
PROBE_TIMEOUT_MS = 600_000
"""Probes after a restart must not expire while the new worker restores (a long restore is
what is measured): ten minutes, so admission's allowance is 2.5 minutes."""
SETTLE_S = 10.0
"""The new worker's RSS is read again this long after its first result, once it has gone back
to work on new tasks: whether what the restore built stays."""
SAMPLE_S = 5.0
"""RSS (and liveness) sampled this often: a minute holds 12 samples."""
DRAIN_S = SOAK_TIMEOUT_MS / 1000 + 30
"""After the last send, results are waited for this long at least: every task ends by its
deadline, plus the sweeper's 2 s grace, plus slack for a busy host."""
DRAIN_IDLE_S = 15.0
DRAIN_MAX_S = 300.0
"""Then for as long as results keep coming, up to this: a worker that fell behind answers its
backlog (as ``expired`` refusals) after the load stops; those still missing are reported."""
SEND_BATCH = 200
"""At most this many due tasks are sent between two yields to the loop, so a client that fell
behind still reads results (and the sampler still samples) while it catches up."""
RECOVERY_WINDOW_S = 10
"""``recovered_s`` is the start of the first window this long in which every task was served: issue 21 asks for
recovery within ~10 s, and a window that long tells a stray refusal from a continuing one."""


@dataclass(frozen=True)
class Durations:
    steady_s: float
    http_s: float
    overload_s: float
    after_overload_s: float
    restart_tasks: int


FULL = Durations(steady_s=1800, http_s=600, overload_s=120, after_overload_s=120, restart_tasks=500_000)
QUICK = Durations(steady_s=180, http_s=120, overload_s=60, after_overload_s=60, restart_tasks=100_000)


def selected_scenarios(value: str | None) -> list[str]:
    """``SWARM_SOAK_SCENARIOS`` (comma list) in the canonical order; all when unset or empty."""
    if not value or not value.strip():
        return list(SCENARIOS)
    names = {name.strip() for name in value.split(",") if name.strip()}
    unknown = names - set(SCENARIOS)
    if unknown:
        raise ValueError(f"SWARM_SOAK_SCENARIOS: unknown scenario(s) {', '.join(sorted(unknown))} "
                         f"(choose from {', '.join(SCENARIOS)})")
    return [name for name in SCENARIOS if name in names]


# --- the worker, with its GC pauses written down ---------------------------------------------

_WORKER_HOOK = r"""
import gc, json, os, runpy, sys, threading, time
path = os.environ["SWARM_SOAK_GC_LOG"]
window = [0.0, 0, 0.0]  # longest pause (ms), collections, total (ms) since the last line
started = [0.0]

def on_gc(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - started[0]) * 1000
    window[0] = max(window[0], ms)
    window[1] += 1
    window[2] += ms

def report():
    with open(path, "a") as out:
        while True:
            time.sleep(1.0)
            longest, count, total = window
            window[:] = [0.0, 0, 0.0]
            out.write(json.dumps({"t": time.time(), "max_ms": round(longest, 3), "n": count, "ms": round(total, 3)}))
            out.write("\n")
            out.flush()

gc.callbacks.append(on_gc)
threading.Thread(target=report, name="soak-gc-log", daemon=True).start()
sys.argv = ["swarmstream", "worker", "--loglevel", os.environ.get("SWARM_WORKER_LOGLEVEL", "warning")]
runpy.run_module("swarmstream.streams.cli", run_name="__main__")
"""
"""``swarmstream worker`` with ``gc.callbacks`` timing each collection (start to stop, in the thread
that triggered it, which holds the GIL meanwhile: the loop is stopped that long) and a line a
second to ``SWARM_SOAK_GC_LOG``. The callback costs two clock reads per collection, and the
worker collects a few times a second at most (``streams.app.worker.GC_GEN0_THRESHOLD``)."""


class SoakWorker:
    """A ``swarmstream worker`` child run through ``_WORKER_HOOK``; :meth:`stop` leaves no process."""

    def __init__(self, settings: Settings, broker_url: str, workdir: Path, name: str, *,
                 loglevel: str = "warning") -> None:
        self.gc_log = workdir / f"{name}.gc.jsonl"
        self.log_path = workdir / f"{name}.log"
        env = {**os.environ, **settings_env(settings, broker_url), "SWARM_SOAK_GC_LOG": str(self.gc_log),
               "SWARM_WORKER_LOGLEVEL": loglevel}
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.spawned_s = time.time()
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER_HOOK], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, start_new_session=True)
        self.killed = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if not self.killed and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"worker {self.pid} exited with code {self.proc.returncode}; log tail:\n{tail}")

    def rss_mb(self) -> float | None:
        with contextlib.suppress(OSError), open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return None

    def gc_pauses(self, since_s: float = 0.0, until_s: float = float("inf")) -> dict[str, Any]:
        """The longest pause, collections and total pause time in the lines written within the span."""
        longest, count, total = 0.0, 0, 0.0
        with contextlib.suppress(OSError):
            for line in self.gc_log.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    row = orjson.loads(line)
                    if since_s <= row["t"] <= until_s:
                        longest, count, total = max(longest, row["max_ms"]), count + row["n"], total + row["ms"]
        return {"gc_pause_max_ms": round(longest, 1), "gc_collections": count, "gc_pause_total_ms": round(total, 1)}

    def kill(self) -> None:
        self.killed = True
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


# --- results, as they come -------------------------------------------------------------------

NO_RESULT, SERVED, REJECTED = 0, 1, 2


@dataclass
class Tally:
    """Every result of one scenario's tasks (ids ``<prefix><index>``), compactly: a soak's
    hundreds of thousands of results must not grow the bench process by gigabytes."""

    prefix: str
    created_ms: array.array = field(default_factory=lambda: array.array("q"))
    completed_ms: array.array = field(default_factory=lambda: array.array("q"))
    model_ms: array.array = field(default_factory=lambda: array.array("q"))
    timeout_ms: array.array = field(default_factory=lambda: array.array("q"))
    status: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    reason_examples: dict[str, str] = field(default_factory=dict)
    sent_ms: array.array = field(default_factory=lambda: array.array("q"))
    """By task index: when it was sent (its created_ms)."""
    outcome: bytearray = field(default_factory=bytearray)
    """By task index: ``NO_RESULT``, ``SERVED`` or ``REJECTED``."""
    duplicates: int = 0
    first_at_s: float | None = None
    """Wall clock (time.time) when the first result arrived."""
    last_at_s: float | None = None

    @property
    def sent(self) -> int:
        return len(self.sent_ms)

    def next_task(self, templates: Templates) -> TaskRequest:
        task = templates.task(f"{self.prefix}{self.sent}", self.sent)
        self.sent_ms.append(task.created_ms)
        self.outcome.append(NO_RESULT)
        return task

    def add(self, result: TaskResult, timeout_ms: int) -> None:
        index = int(result.task_id[len(self.prefix):])
        if index < len(self.outcome) and self.outcome[index] != NO_RESULT:
            self.duplicates += 1
            return
        if index < len(self.outcome):  # else a task this run did not send (never: ids are per run)
            self.outcome[index] = REJECTED if result.status == "rejected" else SERVED
        self.last_at_s = time.time()
        if self.first_at_s is None:
            self.first_at_s = self.last_at_s
        self.created_ms.append(result.created_ms)
        self.completed_ms.append(result.completed_ms)
        self.model_ms.append(max((v.latency_ms for v in result.votes), default=0))
        self.timeout_ms.append(timeout_ms)
        self.status.append(sys.intern(result.status))
        if result.status == "rejected":
            kind = (result.reason or "").split(":", 1)[0] or "(none)"
            self.reasons[kind] += 1
            self.reason_examples.setdefault(kind, result.reason or "")

    @property
    def results(self) -> int:
        return len(self.status)


class Collector:
    """Reads the client's results for the tallies registered, then forgets them (the client
    keeps every result it saw otherwise). Results of other tasks (the bursts, probes) are left."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._tallies: dict[str, tuple[Tally, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def track(self, tally: Tally, timeout_ms: int) -> Tally:
        self._tallies[tally.prefix] = (tally, timeout_ms)
        return tally

    async def __aenter__(self) -> Collector:
        self._task = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        client = self._stack.client
        async for result in client.results():
            prefix = result.task_id[:result.task_id.rfind("-") + 1]
            entry = self._tallies.get(prefix)
            if entry is not None:
                entry[0].add(result, entry[1])
                client.forget(result.task_id)


class Templates:
    """Demo consensus tasks, cycled: a soak sends hundreds of thousands, built one at a time."""

    def __init__(self, models: Sequence[str], timeout_ms: int, n: int = 1000) -> None:
        self._items = [to_request(item, mode="consensus", models=models, timeout_ms=timeout_ms)
                       for item in demo_tasks(n)]

    def task(self, task_id: str, i: int) -> TaskRequest:
        return self._items[i % len(self._items)].model_copy(update={"task_id": task_id, "created_ms": now_ms()})


# --- load --------------------------------------------------------------------------------------


@dataclass
class Phase:
    rate_per_s: float
    duration_s: float
    started_ms: int = 0
    sent: int = 0
    send_s: float = 0.0

    def achieved(self) -> float:
        return round(self.sent / self.send_s, 1) if self.send_s else 0.0


async def open_loop(stack: Stack, tally: Tally, templates: Templates, phases: Sequence[Phase]) -> None:
    """Send on the schedule: in each phase task k at its start + k / rate, whatever the results do."""
    client = stack.client
    for phase in phases:
        started = time.perf_counter()
        phase.started_ms = now_ms()
        end = started + phase.duration_s
        while (now := time.perf_counter()) < end:
            due = min(int((now - started) * phase.rate_per_s) + 1 - phase.sent, SEND_BATCH)
            for _ in range(due):
                await client.submit(tally.next_task(templates), wait_ack=False)
                phase.sent += 1
            wait = started + phase.sent / phase.rate_per_s - time.perf_counter()
            await asyncio.sleep(max(wait, 0))
        phase.send_s = time.perf_counter() - started
    await client.flush()


async def drain(tally: Tally, worker: SoakWorker) -> float:
    """Wait for the results of everything sent: until all came, or results stopped coming for
    ``DRAIN_IDLE_S`` once ``DRAIN_S`` has passed, or ``DRAIN_MAX_S``; the seconds it took. A worker
    that fell behind answers its backlog (as refusals) long after the load stops."""
    started = time.monotonic()
    while tally.results < tally.sent:
        worker.check_alive()
        waited = time.monotonic() - started
        idle = time.time() - (tally.last_at_s or 0)
        if waited > DRAIN_MAX_S or (waited > DRAIN_S and idle > DRAIN_IDLE_S):
            break
        await asyncio.sleep(0.2)
    return round(time.monotonic() - started, 1)


@dataclass
class Sampler:
    """The worker's RSS, and the CPU the worker and the embedded broker have used, every
    ``SAMPLE_S`` (and that the worker still runs)."""

    worker: SoakWorker
    broker_pid: int | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)  # (s since start, MB)
    cpu: list[tuple[float, float, float]] = field(default_factory=list)  # (s since start, worker s, broker s)
    started_s: float = field(default_factory=time.time)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sampler:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._sample()

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(SAMPLE_S)

    def _sample(self) -> None:
        rss = self.worker.rss_mb()
        if rss is not None:
            at = time.time() - self.started_s
            self.samples.append((at, rss))
            with contextlib.suppress(OSError):
                broker = proc_cpu_s(self.broker_pid) if self.broker_pid else 0.0
                self.cpu.append((at, proc_cpu_s(self.worker.pid), broker))

    def first_after(self, seconds: float) -> float | None:
        """The first RSS sampled at least ``seconds`` after the start."""
        return next((rss for t, rss in self.samples if t >= seconds), None)

    def by_minute(self) -> list[float]:
        """The last sample of each minute (the RSS at its end)."""
        minutes: dict[int, float] = {}
        for t, rss in self.samples:
            minutes[int(t // 60)] = rss
        return [minutes[m] for m in sorted(minutes)]

    def cpu_by_minute(self) -> list[tuple[float, float]]:
        """CPU seconds the worker and the broker used in each minute (from the last sample of
        the minute before to the last of this one)."""
        ends: dict[int, tuple[float, float]] = {}
        for t, worker, broker in self.cpu:
            ends[int(t // 60)] = (worker, broker)
        out, before = [], self.cpu[0][1:] if self.cpu else (0.0, 0.0)
        for m in sorted(ends):
            out.append((ends[m][0] - before[0], ends[m][1] - before[1]))
            before = ends[m]
        return out


# --- figures ----------------------------------------------------------------------------------


def _p(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def figures(tally: Tally, started_ms: int, sampler: Sampler, worker: SoakWorker) -> dict[str, Any]:
    """What every scenario reports (module docstring)."""
    created = np.frombuffer(tally.created_ms, dtype=np.int64)
    completed = np.frombuffer(tally.completed_ms, dtype=np.int64)
    e2e = (completed - created).astype(float)
    overhead = e2e - np.frombuffer(tally.model_ms, dtype=np.int64)
    status = np.array(tally.status)
    served = status != "rejected"
    minute = (created - started_ms) // 60_000
    by_minute: dict[str, list[Any]] = {"overhead_p99_ms_by_minute": [], "e2e_p50_ms_by_minute": [],
                                       "e2e_p99_ms_by_minute": [], "rejected_by_minute": [], "results_by_minute": []}
    for m in range(int(minute.max()) + 1 if len(minute) else 0):
        in_minute = minute == m
        kept = in_minute & served
        by_minute["overhead_p99_ms_by_minute"].append(_p(overhead[kept], 99))
        by_minute["e2e_p50_ms_by_minute"].append(_p(e2e[kept], 50))
        by_minute["e2e_p99_ms_by_minute"].append(_p(e2e[kept], 99))
        by_minute["rejected_by_minute"].append(int((in_minute & ~served).sum()))
        by_minute["results_by_minute"].append(int(in_minute.sum()))
    rss = sampler.by_minute()
    done_minute = (completed - round(sampler.started_s * 1000)) // 60_000  # by when the results came, as the CPU
    cpu = sampler.cpu_by_minute()
    return {
        "statuses": dict(Counter(tally.status)),
        "sent": tally.sent,
        "results": tally.results,
        "missing": tally.sent - tally.results,
        "duplicate_results": tally.duplicates,
        "rss_mb_first": rss[0] if rss else None,
        "rss_mb_last": rss[-1] if rss else None,
        "rss_mb_by_minute": rss,
        **by_minute,
        # the worker's CPU per result in each minute: flat while latency grows means the time goes
        # elsewhere (the embedded broker's fetches grow with each partition's history: bench broker)
        "worker_cpu_ms_per_task_by_minute": [round(w * 1000 / n, 2) if (n := int((done_minute == m).sum())) else None
                                             for m, (w, _) in enumerate(cpu)],
        "broker_cores_by_minute": [round(b / 60, 2) for _, b in cpu] if sampler.broker_pid else None,
        "overhead_p99_ms": _p(overhead[served], 99),
        "e2e_p50_ms": _p(e2e[served], 50),
        "e2e_p99_ms": _p(e2e[served], 99),
        **worker.gc_pauses(sampler.started_s),
        # when the long pauses were: a ramp's first minute, or a backlog, or throughout
        "gc_pause_max_ms_by_minute": [worker.gc_pauses(sampler.started_s + 60 * m,
                                                       sampler.started_s + 60 * (m + 1))["gc_pause_max_ms"]
                                      for m in range(len(cpu))],
        "worker_warnings": worker_warnings(worker.log_path),
    }


def worker_warnings(log_path: Path, keep: int = 8) -> list[str]:
    """The worker's last warnings and errors (its log is gone with the run's temporary folder):
    a stalled or rebalancing worker says so there."""
    with contextlib.suppress(OSError):
        lines = [line.strip()[:300] for line in log_path.read_text(errors="replace").splitlines()
                 if " WARNING " in line or " ERROR " in line or "Traceback" in line]
        return lines[-keep:]
    return []


def recovered_s(tally: Tally, fall_ms: int, end_ms: int) -> float | None:
    """From the load's fall to the start of the first ``RECOVERY_WINDOW_S`` window (1 s steps, by
    when tasks were sent) in which every task sent was served: none refused, none without a
    result. None when no window after the fall was clean."""
    sent = np.frombuffer(tally.sent_ms, dtype=np.int64)
    outcome = np.frombuffer(bytes(tally.outcome), dtype=np.uint8)
    unserved = np.sort(sent[(outcome != SERVED) & (sent >= fall_ms)])
    window_ms = RECOVERY_WINDOW_S * 1000
    for start in range(fall_ms, end_ms - window_ms + 1, 1000):
        lo = np.searchsorted(unserved, start)
        if lo == len(unserved) or unserved[lo] >= start + window_ms:
            return round((start - fall_ms) / 1000, 1)
    return None


# --- stacks -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def soak_stack(broker_url: str, catalog: Path, **overrides: Any) -> AsyncIterator[Stack]:
    """A fresh pipeline (topics, group) with no worker: the scenario starts its own."""
    if catalog != DEFAULT_CATALOG:
        overrides.setdefault("chains", chains_path(catalog))  # write_catalog's one chain over its models
    settings = unique_settings(Settings(models=catalog, **overrides), broker=broker_url)
    async with running_stack(settings, broker_url=broker_url, workers=0, fleet=False) as stack:
        yield stack


@contextlib.asynccontextmanager
async def started_worker(stack: Stack, workdir: Path, name: str) -> AsyncIterator[SoakWorker]:
    worker = SoakWorker(stack.settings, stack.broker_url, workdir, name)
    try:
        ready = asyncio.ensure_future(stack.wait_ready(timeout_s=120))
        while not ready.done():
            worker.check_alive()
            await asyncio.wait([ready], timeout=0.2)
        await ready
        yield worker
    finally:
        worker.stop()


@contextlib.contextmanager
def sim_fleet(catalog: Path, workdir: Path) -> Any:
    """``swarmstream sim-fleet`` as a child process: the fleet's HTTP serving off the client's CPU."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(workdir / "sim-fleet.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "swarmstream.streams.cli", "sim-fleet", "--port", str(port)],
                            env={**os.environ, "SWARM_MODELS": str(catalog)}, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while b"SWARM_SIM_URL=" not in (text := (workdir / "sim-fleet.log").read_bytes()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sim-fleet did not start: {text[-1000:].decode(errors='replace')}")
            time.sleep(0.1)
        yield text.split(b"SWARM_SIM_URL=", 1)[1].split()[0].decode(), proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


# --- scenarios --------------------------------------------------------------------------------


@dataclass
class Run:
    broker_url: str
    workdir: Path
    sizes: Durations
    inproc: Path
    burst_max: float | None = None
    burst: dict[str, Any] | None = None
    broker_pid: int | None = None
    """The embedded broker's process, whose CPU is reported beside the worker's (None: an external one)."""

    def pids(self, worker: SoakWorker) -> dict[str, int]:
        return {"worker": worker.pid, **({"broker": self.broker_pid} if self.broker_pid else {})}

    async def burst_max_on(self, stack: Stack) -> float:
        """Measured once, on the first stack that needs it (a warm-up burst first)."""
        if self.burst_max is None:
            await burst(stack, "soak-warm", BURST_WARM, MODELS, {})
            runs = [await burst(stack, f"soak-burst{i}", BURST_TASKS, MODELS, {}) for i in range(BURST_REPEATS)]
            for task_id in [t for t in stack.client.received if t.startswith("soak-")]:
                stack.client.forget(task_id)
            self.burst_max = max(r["tasks_per_s"] for r in runs)
            self.burst = {"tasks_per_s": [r["tasks_per_s"] for r in runs], "tasks": BURST_TASKS,
                          "statuses": [r["statuses"] for r in runs]}
        return self.burst_max


async def fixed_rate(run: Run, stack: Stack, worker: SoakWorker, name: str, phases: list[Phase],
                     models: Sequence[str]) -> tuple[Tally, dict[str, Any]]:
    """Open-loop phases on one worker, then the drain; the tally and the common figures."""
    tally = Tally(prefix=f"soak-{name}-{uuid.uuid4().hex[:6]}-")
    templates = Templates(models, SOAK_TIMEOUT_MS)
    meter = CpuMeter(run.pids(worker)).start()
    dropped = stack.client.stream_dropped
    async with Collector(stack) as collector, Sampler(worker, run.broker_pid) as sampler:
        collector.track(tally, SOAK_TIMEOUT_MS)
        started_ms = now_ms()
        sending = asyncio.ensure_future(open_loop(stack, tally, templates, phases))
        try:
            while not sending.done():
                worker.check_alive()
                await asyncio.wait([sending], timeout=1.0)
        finally:  # a worker that died ends the scenario: its sends stop before the client closes
            if not sending.done():
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
        await sending
        drain_s = await drain(tally, worker)
    meter.stop()
    metered_s = (now_ms() - started_ms) / 1000
    out = {
        "rate_per_s": round(phases[0].rate_per_s, 1),
        "duration_s": round(sum(p.duration_s for p in phases), 1),
        "achieved_send_rate_per_s": [p.achieved() for p in phases],
        "drain_s": drain_s,
        # results the client dropped because this bench read them too slowly (counted as missing)
        "client_results_dropped": stack.client.stream_dropped - dropped,
        # cores used, on average, from the first send to the last result: on 2 cores the client and
        # the broker share the machine with the worker, and at high rates they take most of it
        "cpu_utilisation": {name: round(used / metered_s, 3) for name, used in meter.used_s.items()},
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **figures(tally, started_ms, sampler, worker),
    }
    return tally, out


async def steady(run: Run) -> dict[str, Any]:
    async with soak_stack(run.broker_url, run.inproc) as stack, started_worker(stack, run.workdir, "steady") as worker:
        rate = STEADY_LOAD * await run.burst_max_on(stack)
        _, out = await fixed_rate(run, stack, worker, "steady", [Phase(rate, run.sizes.steady_s)], MODELS)
    return out


async def http(run: Run) -> dict[str, Any]:
    catalog = DEFAULT_CATALOG  # the demo fleet: sim-alpha, -beta, -gamma, ~20 ms median
    with sim_fleet(catalog, run.workdir) as (sim_url, fleet_pid):
        async with soak_stack(run.broker_url, catalog, sim_url=sim_url) as stack, \
                started_worker(stack, run.workdir, "http") as worker:
            fleet_cpu = CpuMeter({"fleet": fleet_pid}).start()
            _, out = await fixed_rate(run, stack, worker, "http", [Phase(HTTP_RATE, run.sizes.http_s)],
                                      stack.catalog.default_consensus)
            fleet_cpu.stop()
    out["models"] = list(stack.catalog.default_consensus)
    out["fleet_cpu_utilisation"] = round(fleet_cpu.used_s["fleet"] / out["duration_s"], 3)
    return out


async def overload(run: Run) -> dict[str, Any]:
    async with soak_stack(run.broker_url, run.inproc) as stack, \
            started_worker(stack, run.workdir, "overload") as worker:
        top = await run.burst_max_on(stack)
        phases = [Phase(OVERLOAD * top, run.sizes.overload_s), Phase(AFTER_OVERLOAD * top, run.sizes.after_overload_s)]
        tally, out = await fixed_rate(run, stack, worker, "overload", phases, MODELS)
    created = np.frombuffer(tally.created_ms, dtype=np.int64)
    completed = np.frombuffer(tally.completed_ms, dtype=np.int64)
    deadline = created + np.frombuffer(tally.timeout_ms, dtype=np.int64)
    status = np.array(tally.status)
    accepted = status != "rejected"
    fall_ms = phases[1].started_ms
    during = created < fall_ms
    sent = np.frombuffer(tally.sent_ms, dtype=np.int64)
    outcome_by_sent = np.frombuffer(bytes(tally.outcome), dtype=np.uint8)
    unserved_after = (outcome_by_sent != SERVED) & (sent >= fall_ms)  # refused, or no result at all
    served_ok = accepted & during & (status != "timeout")
    out.update({
        "rates_per_s": [round(p.rate_per_s, 1) for p in phases],
        "phase_s": [p.duration_s for p in phases],
        "rejected": int((~accepted).sum()),
        "rejected_during_overload": int((~accepted & during).sum()),
        "rejected_after_fall": int((~accepted & ~during).sum()),
        "reasons": dict(tally.reasons),
        "reason_examples": tally.reason_examples,
        "accepted": int(accepted.sum()),
        "accepted_timeouts": int((status == "timeout").sum()),
        "accepted_late": int((accepted & (completed > deadline)).sum()),
        "served_per_s": round(int(served_ok.sum()) / phases[0].duration_s, 1),
        "accepted_e2e_p99_ms_during_overload": _p((completed - created)[accepted & during].astype(float), 99),
        "missing_during_overload": int((outcome_by_sent[sent < fall_ms] == NO_RESULT).sum()),
        "missing_after_fall": int((outcome_by_sent[sent >= fall_ms] == NO_RESULT).sum()),
        "recovered_s": recovered_s(tally, fall_ms, fall_ms + int(phases[1].duration_s * 1000)),
        "last_unserved_after_fall_s": (round((int(sent[unserved_after].max()) - fall_ms) / 1000, 1)
                                       if unserved_after.any() else None),
    })
    return out


async def restart(run: Run) -> dict[str, Any]:
    """Fill a worker's history, SIGKILL it, time its replacement (module docstring)."""
    n = run.sizes.restart_tasks
    tally = Tally(prefix=f"soak-restart-{uuid.uuid4().hex[:6]}-")
    probes = Tally(prefix=f"soak-probe-{uuid.uuid4().hex[:6]}-")
    templates = Templates(MODELS, SOAK_TIMEOUT_MS)
    probe_templates = Templates(MODELS, PROBE_TIMEOUT_MS, n=50)
    out: dict[str, Any] = {}
    async with soak_stack(run.broker_url, run.inproc) as stack, Collector(stack) as collector:
        collector.track(tally, SOAK_TIMEOUT_MS)
        collector.track(probes, PROBE_TIMEOUT_MS)
        first = SoakWorker(stack.settings, stack.broker_url, run.workdir, "restart-first")
        second: SoakWorker | None = None
        try:
            await stack.wait_ready(timeout_s=120)
            out["rss_mb_fresh"] = first.rss_mb()
            started_ms = now_ms()
            meter = CpuMeter(run.pids(first)).start()
            async with Sampler(first, run.broker_pid) as sampler:
                while tally.results < n:  # as fast as the worker goes, at most RESTART_WINDOW waiting
                    first.check_alive()
                    room = min(RESTART_WINDOW - (tally.sent - tally.results), SEND_BATCH)
                    for _ in range(max(room, 0)):
                        await stack.client.submit(tally.next_task(templates), wait_ack=False)
                    await asyncio.sleep(0.01)
            fill_s = (now_ms() - started_ms) / 1000
            meter.stop()
            out.update({
                "rate_per_s": round(tally.results / fill_s, 1),
                "duration_s": round(fill_s, 1),
                "tasks_before": tally.results,
                "cpu_utilisation": {name: round(used / fill_s, 3) for name, used in meter.used_s.items()},
                **figures(tally, started_ms, sampler, first),
                "rss_mb_fresh_loaded": sampler.first_after(SETTLE_S),
                "rss_mb_before_kill": first.rss_mb(),
            })
            first.kill()  # with up to RESTART_WINDOW tasks in flight, as a crash would find them
            killed_s = time.time()
            results_at_kill, sent_at_kill = tally.results, tally.sent

            # info: the engine logs how long taking the partitions (restoring the tables) took
            second = SoakWorker(stack.settings, stack.broker_url, run.workdir, "restart-second", loglevel="info")
            spawned_ms = round(second.spawned_s * 1000)
            while probes.first_at_s is None:
                second.check_alive()
                if time.time() - second.spawned_s > PROBE_TIMEOUT_MS / 1000:
                    raise RuntimeError("no probe answered within the probes' timeout after the restart")
                await stack.client.submit(probes.next_task(probe_templates))
                await asyncio.sleep(PROBE_EVERY_S)
            first_ms = min(c for c, s in zip(probes.completed_ms, probes.status, strict=True) if s != "rejected") \
                if any(s != "rejected" for s in probes.status) else None
            rss_at_result = second.rss_mb()
            await asyncio.sleep(SETTLE_S)
            await drain(tally, second)
            out.update({
                "restart_to_result_s": round((first_ms - spawned_ms) / 1000, 2) if first_ms else None,
                "first_probe_status": probes.status[0],
                "kill_to_spawn_s": round(second.spawned_s - killed_s, 3),
                "rss_mb_after_restart": rss_at_result,
                "rss_mb_after_restart_settled": second.rss_mb(),
                "rss_ratio_after_restart": {
                    baseline: round(rss_at_result / out[key], 2) if rss_at_result and out.get(key) else None
                    for baseline, key in (("fresh", "rss_mb_fresh"), ("fresh_loaded", "rss_mb_fresh_loaded"))},
                "in_flight_at_kill": sent_at_kill - results_at_kill,
                "in_flight_at_kill_ended": dict(Counter(tally.status[results_at_kill:])),
                "missing": tally.sent - tally.results,  # every task sent before and after the kill
                "restore_log": _restore_lines(second.log_path),
                **{f"{k}_after_restart": v for k, v in second.gc_pauses(second.spawned_s).items()},
            })
        finally:
            first.stop()
            if second is not None:
                second.stop()
    return out


RESTORE_LOG_MARKS = ("Joined group", "restored", "published results of", "logs folded", "assigned")
"""The new worker's log lines that time its start: the group joined (the dead member's session
gone), the tables restored (records read, checkpoints loaded), the published results scanned, the
calls and quality logs folded from their checkpoint, the partitions taken."""


def _restore_lines(log_path: Path) -> list[str]:
    """The new worker's own account of taking its partitions, each line with its time."""
    with contextlib.suppress(OSError):
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()
                 if any(mark in line for mark in RESTORE_LOG_MARKS)][:7]
        return [line if len(line) <= 260 else f"{line[:27]} ... {line[-220:]}" for line in lines]
    return []


RUNNERS: dict[str, Callable[[Run], Any]] = {"steady": steady, "http": http, "overload": overload, "restart": restart}


async def _run(quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    names = selected_scenarios(os.environ.get("SWARM_SOAK_SCENARIOS"))
    started = time.monotonic()
    base = Settings()
    broker: EmbeddedBroker | None = None if base.broker else EmbeddedBroker().start()
    broker_url = base.broker or broker.url  # type: ignore[union-attr]
    result: dict[str, Any] = {
        "quick": quick,
        "broker": "embedded (Tansu)" if broker else broker_url,
        "cpus": os.cpu_count(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "task_timeout_ms": SOAK_TIMEOUT_MS,
        "admit_queue_share": base.admit_queue_share,
        "scenarios_run": names,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="swarm-bench-soak-") as tmp:
            workdir = Path(tmp)
            inproc = write_catalog(workdir, "inproc-0ms",
                                   sim_models(MODELS, provider="inproc", latency_ms=0, max_in_flight=BATCH_IN_FLIGHT),
                                   MODELS)
            run = Run(broker_url, workdir, sizes, inproc,
                      broker_pid=broker._proc.pid if broker is not None and broker._proc is not None else None)
            for name in names:
                t = time.monotonic()
                try:
                    result[name] = await RUNNERS[name](run)
                except Exception as exc:  # one scenario failing must not cost the others' numbers
                    result[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                result[name]["wall_s"] = round(time.monotonic() - t, 1)
            result["burst_max_tasks_per_s"] = run.burst_max
            result["burst"] = run.burst
    finally:
        if broker is not None:
            broker.stop()
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def run(*, quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick))


def render(result: dict[str, Any]) -> str:
    lines = [f"swarmstream soak ({'quick' if result['quick'] else 'full'}), broker: {result['broker']}; "
             f"burst maximum {result.get('burst_max_tasks_per_s')} tasks/s; load avg at start "
             f"{result['load_avg_1m_at_start']} on {result['cpus']} CPUs", ""]
    for name in result["scenarios_run"]:
        row = result[name]
        if "error" in row:
            lines.append(f"{name}: FAILED {row['error']}")
            continue
        lines.append(f"{name}: {row['rate_per_s']} tasks/s for {row['duration_s']} s: {row['statuses']}; "
                     f"missing {row.get('missing')}; RSS {row['rss_mb_first']} -> {row['rss_mb_last']} MB; "
                     f"GC pause max {row['gc_pause_max_ms']} ms")
        lines.append(f"    overhead p99 by minute (ms): {row['overhead_p99_ms_by_minute']}")
        if name == "overload":
            lines.append(f"    rejected {row['rejected']} ({row['reasons']}), accepted {row['accepted']}: "
                         f"{row['accepted_timeouts']} timeouts, {row['accepted_late']} late; served "
                         f"{row['served_per_s']}/s in overload; recovered {row['recovered_s']} s after the fall; "
                         f"no result: {row['missing_during_overload']} sent in overload, "
                         f"{row['missing_after_fall']} after")
        if name == "restart":
            lines.append(f"    after {row['tasks_before']} tasks: first new result {row['restart_to_result_s']} s "
                         f"after the new worker's spawn; RSS fresh {row['rss_mb_fresh']}, before kill "
                         f"{row['rss_mb_before_kill']}, fresh at work {row['rss_mb_fresh_loaded']}, after restart "
                         f"{row['rss_mb_after_restart']} "
                         f"({row['rss_mb_after_restart_settled']} {SETTLE_S:.0f} s later) MB")
    lines.append(f"wall {result['wall_s']} s")
    return "\n".join(lines)
