"""Every long-running command stops cleanly on SIGTERM and SIGINT (streams/cli/signals.py).

Each command runs as a real subprocess (``python -m swarmstream.streams.cli ...``, what the
``swarmstream`` script runs) with ``--port 0`` where it listens, against the session broker
when it needs one. The test waits for its ready line (deadline, no fixed sleeps), records its
child processes, signals it and checks: it exits within ``EXIT_TIMEOUT_S`` with status 0, none
of its children is left (they run in their own sessions, so a dead parent would orphan them),
and nothing listens on the ports it announced.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from swarmstream.agents.models.catalog import load_catalog
from swarmstream.streams.cli.runtime import unique_settings
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import ensure_topics

from tests.conftest import TEST_CHAINS, TEST_FLEET

READY_TIMEOUT_S = 90.0
"""Until a command says it is ready. The demo starts a broker, the fleet, a worker child and
answers a probe task first: ~5 s alone, several times that on a 2-core machine running others."""

EXIT_TIMEOUT_S = 20.0
"""From the signal to the exit. A clean stop takes well under a second; the bound is the longest
grace a command may use on a loaded machine (a worker child: 8 s, then the broker: 5 s)."""

CHILD_WATCH_INTERVAL_S = 0.05
"""How often a command's process tree is read (a few /proc files: cheap)."""

REPO = Path(__file__).resolve().parents[2]


# --- a command under test ---------------------------------------------------------------------


@dataclass
class Command:
    """A running ``swarmstream`` subprocess whose output lines are collected as they come."""

    proc: subprocess.Popen[str]
    lines: list[tuple[str, str]] = field(default_factory=list)  # (stream, line)
    children: set[tuple[int, int]] = field(default_factory=set)  # (pid, start time) of every descendant seen
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def start(cls, args: list[str], env: dict[str, str]) -> Command:
        proc = subprocess.Popen([sys.executable, "-m", "swarmstream.streams.cli", *args], env=env, cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        command = cls(proc)
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            threading.Thread(target=command._pump, args=(name, pipe), daemon=True).start()
        threading.Thread(target=command._watch_children, daemon=True).start()
        return command

    def _watch_children(self) -> None:
        """Every descendant the command has while it runs, including any started after the signal
        (all of them live far longer than the interval: a broker, a worker)."""
        while self.proc.poll() is None:
            found = descendants(self.proc.pid)
            with self._changed:
                self.children |= found
            time.sleep(CHILD_WATCH_INTERVAL_S)

    def _pump(self, name: str, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append((name, line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "\n".join(f"[{name}] {line}" for name, line in self.lines)

    def wait_for_line(self, pattern: str, *, stream: str, timeout_s: float = READY_TIMEOUT_S) -> re.Match[str]:
        """The first line of ``stream`` matching ``pattern``; fails if the command exits or the deadline passes."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for name, line in self.lines:
                    if name == stream and (m := regex.search(line)):
                        return m
                if self.proc.poll() is not None:
                    raise AssertionError(f"exited with {self.proc.returncode} before {pattern!r}:\n{self.output()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} on {stream} within {timeout_s} s:\n{self.output()}")
                self._changed.wait(min(left, 0.5))  # also wakes to see an exit that printed nothing

    def stop(self) -> None:
        """Cleanup for a failed test: the command and every descendant, SIGKILL."""
        for pid, start in self.children | descendants(self.proc.pid):
            if alive(pid, start):
                with_pid(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# --- processes and ports, from /proc ------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time in clock ticks) of a process, None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ", which may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``: the kernel's per-thread lists (cheap), else a scan of /proc."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        files = [t / "children" for t in tasks.iterdir()]
        if files and files[0].exists():
            return [int(c) for f in files for c in (f.read_text() if f.exists() else "").split()]
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [int(e.name) for e in Path("/proc").iterdir()
            if e.name.isdigit() and (stat := _stat(int(e.name))) is not None and stat[1] == pid]


def descendants(root: int) -> set[tuple[int, int]]:
    """(pid, start time) of every live descendant of ``root``, whatever session it runs in."""
    found: set[tuple[int, int]] = set()
    todo = _children(root)
    while todo:
        pid = todo.pop()
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z":
            found.add((pid, stat[2]))
            todo += _children(pid)
    return found


def alive(pid: int, start_ticks: int) -> bool:
    """The same process (pid and start time) still exists and is not a zombie (a zombie holds no
    port and no memory: only its exit status, for a parent that is gone)."""
    stat = _stat(pid)
    return stat is not None and stat[2] == start_ticks and stat[0] != "Z"


def with_pid(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def stops_cleanly(command: Command, signum: int, ports: list[int]) -> None:
    """Signal ``command``; it exits 0 in time, with no child left and none of ``ports`` listening."""
    command.proc.send_signal(signum)
    try:
        code = command.proc.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {EXIT_TIMEOUT_S} s after {signal.Signals(signum).name}:\n"
                             f"{command.output()}") from None
    assert code == 0, f"exit status {code} after {signal.Signals(signum).name}:\n{command.output()}"
    with command._changed:
        children = set(command.children)
    left = {pid for pid, start in children if alive(pid, start)}
    assert not left, f"children left behind: {left}:\n{command.output()}"
    still = [port for port in ports if listening(port)]
    assert not still, f"still listening on {still}:\n{command.output()}"


# --- fixtures ------------------------------------------------------------------------------


def clean_env(**swarm: str) -> dict[str, str]:
    """This environment without any SWARM_* setting of the caller's, plus ``swarm``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    env.update({f"SWARM_{k.upper()}": v for k, v in swarm.items()})
    return env


@pytest.fixture(scope="module")
async def deployment(broker_url: str) -> dict[str, str]:
    """Topics of a fresh prefix on the session broker, and the environment that points at them."""
    settings = unique_settings(Settings(models=TEST_FLEET, chains=TEST_CHAINS, broker=broker_url))
    catalog = load_catalog(settings.models, sim_url="http://127.0.0.1:1/v1")
    await ensure_topics(broker_url, settings.topics.all(list(catalog.models)), settings.partitions)
    return clean_env(broker=broker_url, topic_prefix=settings.topic_prefix, app_id=settings.app_id,
                     models=str(TEST_FLEET), chains=str(TEST_CHAINS), sim_url="http://127.0.0.1:1/v1")


@pytest.fixture
def run() -> Iterator[Callable[[list[str], dict[str, str]], Command]]:
    started: list[Command] = []

    def start(args: list[str], env: dict[str, str]) -> Command:
        started.append(Command.start(args, env))
        return started[-1]

    yield start
    for command in started:
        command.stop()


# --- the commands ----------------------------------------------------------------------------

BROKER_LINE = r"SWARM_BROKER=kafka://127\.0\.0\.1:(\d+)$"
FLEET_LINE = r"SWARM_SIM_URL=http://127\.0\.0\.1:(\d+)/v1$"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_broker_on_port_0_prints_its_port_and_stops_tansu(run, signum: int) -> None:
    command = run(["broker", "--port", "0"], clean_env())
    port = int(command.wait_for_line(BROKER_LINE, stream="stdout")[1])
    assert port != 0 and listening(port)
    assert descendants(command.proc.pid), "Tansu runs as a child"
    stops_cleanly(command, signum, [port])


def test_broker_signalled_while_tansu_starts_leaves_no_tansu(run) -> None:
    """SIGTERM as soon as the Tansu child exists, before the broker said it is ready."""
    command = run(["broker", "--port", "0"], clean_env())
    wait_until(lambda: bool(descendants(command.proc.pid)) or command.proc.poll() is not None,
               timeout_s=READY_TIMEOUT_S, what="the Tansu child")
    stops_cleanly(command, signal.SIGTERM, [])
    ports = [int(m[1]) for name, line in command.lines if name == "stdout" and (m := re.search(BROKER_LINE, line))]
    assert not any(listening(port) for port in ports)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sim_fleet_on_port_0_prints_its_port_and_stops(run, signum: int) -> None:
    command = run(["sim-fleet", "--port", "0"], clean_env(models=str(TEST_FLEET)))
    port = int(command.wait_for_line(FLEET_LINE, stream="stdout")[1])
    assert port != 0 and listening(port)
    stops_cleanly(command, signum, [port])


@pytest.mark.parametrize(
    ("args", "ready", "signum"),
    [
        (["worker"], r"^swarmstream worker: starting", signal.SIGINT),  # at once: before its loop runs
        (["worker", "--loglevel", "info"], r"engine: assigned \d+ partitions", signal.SIGTERM),  # running
        (["top"], r"^swarmstream top: following", signal.SIGTERM),
        (["tail"], r"^swarmstream tail: following", signal.SIGINT),
        (["results", "--follow"], r"^swarmstream results: reading", signal.SIGTERM),
    ],
    ids=["worker-starting", "worker-running", "top", "tail", "results"],
)
def test_clients_of_a_broker_stop(run, deployment: dict[str, str], args: list[str], ready: str, signum: int) -> None:
    command = run(args, deployment)
    command.wait_for_line(ready, stream="stderr")
    stops_cleanly(command, signum, [])


DEMO_TASKS = 20_000
"""Enough that the demo is still submitting and answering when signalled (its best rate is
~1,500 tasks/s), few enough that making the task list is quick (~0.2 s; 100,000 take ~6 s)."""

DEMO_LINE = r"broker kafka://127\.0\.0\.1:(\d+) \(embedded\).*simulated fleet http://127\.0\.0\.1:(\d+)/v1"


def test_demo_stops_its_broker_fleet_and_worker(run) -> None:
    command = run(["demo", "--tasks", str(DEMO_TASKS), "--json"], clean_env())
    m = command.wait_for_line(DEMO_LINE, stream="stderr")
    ports = [int(m[1]), int(m[2])]
    assert len(descendants(command.proc.pid)) >= 2, "Tansu and a worker run as children"
    stops_cleanly(command, signal.SIGTERM, ports)
    assert command.wait_for_line(r"stopped by SIGTERM", stream="stderr", timeout_s=1)


def test_demo_signalled_while_starting_leaves_nothing(run) -> None:
    """Ctrl-C as soon as the demo's first child (Tansu) exists, long before it is ready."""
    command = run(["demo", "--tasks", str(DEMO_TASKS)], clean_env())
    wait_until(lambda: bool(descendants(command.proc.pid)) or command.proc.poll() is not None,
               timeout_s=READY_TIMEOUT_S, what="the demo's first child")
    stops_cleanly(command, signal.SIGINT, [])
