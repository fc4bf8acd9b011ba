"""Running a worker: in this process (``swarmstream worker``) or as a child process.

Demo, tests and benchmarks run workers as child processes: a worker owns its
event loop, signals and logging, must be killable with SIGKILL for the crash
tests, and two workers must not share a process.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping

from pydantic import SecretStr
from swarmstream.agents.models.catalog import load_catalog
from swarmstream.streams.app.settings import Settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings, broker_url: str, *, loglevel: str = "warning") -> None:
    """Block running a worker until SIGTERM/SIGINT, then finish what is in flight, commit, leave the group."""
    from swarmstream.streams.app.topology import build

    if settings.log_format == "json":  # before build(): its warnings are log lines too
        from swarmstream.streams.observe.jsonlog import use_json_logs

        use_json_logs(loglevel)
    else:
        logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    catalog = load_catalog(settings.models, sim_url=settings.sim_url)
    topo = build(settings, broker_url, catalog)
    trim = malloc_trim()
    if trim is not None:
        mmap_large_blocks()
        async def give_back_free_memory(*_: object) -> None:
            trim(0)

        topo.engine.timer(MEMORY_TRIM_INTERVAL_S, give_back_free_memory)
        topo.engine.on_assigned(give_back_free_memory)  # a restore's buffers are freed by then

    async def main() -> None:
        tune_gc()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await topo.engine.run(stop)

    asyncio.run(main())


GC_GEN0_THRESHOLD = 20_000
"""Net allocations between young-generation collections (CPython's default: 700). Every
event allocates dozens of short-lived containers, and at the default a worker spent about a
quarter of its CPU in the cycle collector walking the live task states over and over
(3,000-task burst: 490 -> 666 tasks/s). A young collection walks every young object still
alive, and after a burst those are the events in flight (a dozen or more each): at 50,000
the longest pauses were 63-92 ms (a worker kept 3,000 consensus tasks in flight, 30,000
tasks, three runs), at 20,000 36-44 ms, for ~1 s more in the collector per 30,000 tasks
(~33 us a task, ~3% of its CPU; at 10,000 still 61 ms, and 2.7 s)."""

GC_GEN1_THRESHOLD = 100
"""Young collections between middle-generation ones (CPython's default: 10). What a young
collection finds alive is mostly events still in flight, which end (and are freed) within
moments; collected 20 times less often than the young, the middle generation still held
them, and its collections paused 54 ms; at 100 they took at most 2 ms in the same runs."""


def tune_gc() -> None:
    """Start-up objects (modules, schemas, the topology) move to a generation the collector
    never walks, and collections come less often (``GC_GEN0_THRESHOLD``, ``GC_GEN1_THRESHOLD``)."""
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, GC_GEN1_THRESHOLD, 50)


MEMORY_TRIM_INTERVAL_S = 10.0
"""How often the worker hands the C allocator's free memory back to the system (``malloc_trim``).
glibc keeps what Python freed in its heap, so a worker's RSS only ever rose: after 60,000 tasks
a trim took it from 144 to 128 MB (the task states and fetch buffers that came and went). It
takes ~3 ms of a 100 MB heap. Once a minute left a restarted worker 30 MB above what a trim
gave back (100,000 tasks: 166 -> 137 MB), freed as it caught up after its restore; every 10 s
the cost is still noise (0.03% of a core)."""

MMAP_THRESHOLD_BYTES = 128 * 1024
"""Blocks this large or larger are mapped on their own and unmapped when freed, never kept in the
heap: glibc's default threshold rises to the largest block freed (up to 32 MB), after which
fetch responses and producer batches (256 KB) stay in the heap once freed. Fixing it costs an
mmap and munmap per such block (a few microseconds, a few hundred times a second)."""

M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter number (glibc's malloc.h)."""


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None under another C library (musl has none)."""
    return getattr(_libc(), "malloc_trim", None)


def mmap_large_blocks() -> None:
    """glibc's large blocks mapped on their own (``MMAP_THRESHOLD_BYTES``)."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def settings_env(settings: Settings, broker_url: str) -> dict[str, str]:
    """The environment that makes a child worker see exactly these settings."""
    env = {
        f"SWARM_{name.upper()}": json.dumps(value) if isinstance(value, (dict, list))
        else value.get_secret_value() if isinstance(value, SecretStr)  # str() would give '**********'
        else str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }
    env["SWARM_BROKER"] = broker_url
    return env


class WorkerProcess:
    """A ``swarmstream worker`` child; :meth:`stop` always leaves no process behind."""

    def __init__(self, settings: Settings, broker_url: str, *, extra_env: Mapping[str, str] | None = None,
                 log_path: str | None = None) -> None:
        env = {**os.environ, **settings_env(settings, broker_url), **(extra_env or {})}
        loglevel = env.get("SWARM_WORKER_LOGLEVEL", "warning")
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.killed = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "swarmstream.streams.cli", "worker", "--loglevel", loglevel],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log_path(self) -> str | None:
        return self._log.name if self._log is not subprocess.DEVNULL else None  # type: ignore[union-attr]

    def check_alive(self) -> None:
        if not self.killed and self.proc.poll() is not None:
            raise WorkerDied(f"worker {self.proc.pid} exited with code {self.proc.returncode}"
                             + (f" (log: {self._log.name})" if self._log is not subprocess.DEVNULL else ""))

    def kill(self) -> None:
        """SIGKILL: the crash the no-loss guarantee is about."""
        self.killed = True
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace_s: float = 8.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not subprocess.DEVNULL:
            self._log.close()


class WorkerDied(RuntimeError):
    """A worker child exited while work was still expected of it."""
