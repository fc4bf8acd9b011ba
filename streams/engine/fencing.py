"""Fencing: a worker publishes only while it knows it is still a member of its group.

A worker that stalls past its session (a long pause, a throttled container, a
network partition) is dropped from the group and its partitions go to another
member; when it wakes it does not know that yet. Whatever it then sends for
those partitions duplicates the new owner's work: a second result for a task,
a repeated paid call. Without broker transactions (Tansu has none) the worker
fences itself:

- its membership is a :class:`Lease`, renewed by every heartbeat the
  coordinator accepts (from the moment the heartbeat was *sent*: the broker's
  session clock starts later, so ours runs out first) and by every assignment;
- a produce request is handed to the broker only while the lease is valid
  (:func:`guard_produce_requests`): one built while the lease has run out waits
  until a heartbeat says whether the worker is still a member (sent) or not
  (failed with :class:`Fenced`); nothing is sent in between, whatever the
  order in which the event loop resumes its tasks after a stall;
- once the coordinator says the membership is gone (a heartbeat answered
  "unknown member" or "illegal generation", :func:`watch_heartbeats`), the
  lease is lost: the engine drops its partitions, tables and handlers
  (``Engine._fence``) and every record not yet on the wire fails; the next
  assignment is a new membership, every partition in it gained.

What this cannot fence: a produce request already on the wire when the stall
began lands after the wake (the broker has it; Kafka's answer is a
transactional producer's epoch). The engine keeps the one point where that
would slot in: every record goes out through ``Engine._produce`` and one
producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import JoinGroupRequest

log = logging.getLogger(__name__)


class Fenced(KafkaError):  # type: ignore[misc]
    """A record was not sent: this worker's group membership had lapsed (or was never confirmed)."""


class Lease:
    """The worker's group membership as it can prove it: valid until ``term_s`` after the last
    confirmation, then unknown (sends wait) until confirmed again or lost (sends fail).

    Before the first confirmation nothing is fenced: a worker that has not joined yet owns no
    partition whose records could duplicate anyone's (``Engine.send`` before ``start``)."""

    def __init__(self, term_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.term_s = term_s
        self._clock = clock
        self._until = math.inf
        self.lost = False
        self.epoch = 0  # memberships lost so far: what was built in an older epoch is never sent
        self._changed: asyncio.Event | None = None

    def renew(self, confirmed_at: float) -> None:
        """The coordinator confirmed the membership as of ``confirmed_at`` (a heartbeat's send time)."""
        until = confirmed_at + self.term_s
        self._until = until if self.lost or self._until == math.inf else max(self._until, until)
        self.lost = False
        self._wake()

    def lose(self) -> None:
        """The membership is gone: nothing built until the next :meth:`renew` may be sent."""
        self.lost = True
        self.epoch += 1
        self._until = -math.inf
        self._wake()

    def valid(self) -> bool:
        return not self.lost and self._clock() < self._until

    async def confirmed(self) -> bool:
        """True once the membership is confirmed (at once while valid), False if it is lost
        first. While a stalled worker waits for its next heartbeat, this is the wait."""
        while not self.valid():
            if self.lost:
                return False
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()
        return True

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


def guard_produce_requests(producer: AIOKafkaProducer, lease: Lease) -> None:
    """Every produce request waits for :meth:`Lease.confirmed`; a lost lease fails its batches.

    The hook is aiokafka's per-node request (``Sender._send_produce_req``, 0.12-0.14): the last
    point before the wire, after its accumulator drained the batches, so a batch that sat in the
    producer through a stall is held here like one built after it."""
    sender = producer._sender
    send = sender._send_produce_req

    async def guarded(node_id: int, batches: dict[Any, Any]) -> None:
        if lease.valid() or await lease.confirmed():
            await send(node_id, batches)
            return
        for batch in batches.values():
            batch.failure(exception=Fenced("the group membership lapsed before this batch was sent"))
        sender._in_flight.discard(node_id)
        for tp in batches:
            sender._muted_partitions.discard(tp)

    sender._send_produce_req = guarded


def purge_unsent(producer: AIOKafkaProducer) -> int:
    """Fail every batch still in the producer's accumulator (a lost lease: they were built
    for partitions this worker no longer owns); returns how many."""
    accumulator = producer._message_accumulator
    purged = 0
    for tp in list(accumulator._batches):
        while accumulator._batches.get(tp):
            accumulator._pop_batch(tp).failure(exception=Fenced("dropped: the group membership was lost"))
            purged += 1
    return purged


def watch_heartbeats(consumer: AIOKafkaConsumer, lease: Lease, on_lost: Callable[[], Awaitable[None] | None]) -> None:
    """Renew ``lease`` on every heartbeat the coordinator accepts in the same membership;
    lose it (and call ``on_lost``) when an answer shows the membership gone. aiokafka keeps
    its last good heartbeat's time to itself, so its heartbeat call is wrapped
    (``GroupCoordinator._do_heartbeat``, 0.12-0.14)."""
    coordinator = consumer._coordinator
    beat = coordinator._do_heartbeat

    async def watched() -> bool:
        sent = time.monotonic()
        member, generation = coordinator.member_id, coordinator.generation
        ok: bool = await beat()
        if (coordinator.member_id, coordinator.generation) != (member, generation):
            log.warning("group membership lost (member %s, generation %s): fencing", member, generation)
            lease.lose()
            on_lost()
        elif ok:
            lease.renew(sent)
        return ok

    coordinator._do_heartbeat = watched


@contextlib.asynccontextmanager
async def heartbeating(consumer: AIOKafkaConsumer, interval_s: float) -> AsyncIterator[None]:
    """Heartbeats while the body runs. aiokafka starts its heartbeat task only once the
    assignment callback returned, so a callback that restores tables for longer than the
    session timeout has its member dropped by the coordinator: on Apache Kafka, 2 s sessions
    and a restore of ~1.8 s or more after ``kill -9`` got the new worker dropped 0.3 s after
    its assignment, and each rejoin restored again and was dropped again (a reproduction:
    126 times in 5.5 minutes, first result 330 s after the spawn). The Java
    client heartbeats from its own thread throughout a callback (KIP-62); these go through
    :func:`watch_heartbeats`' wrapper, so they renew the lease and notice a lost membership too."""
    coordinator = consumer._coordinator

    async def beat() -> None:
        while coordinator.member_id != JoinGroupRequest.UNKNOWN_MEMBER_ID:
            await asyncio.sleep(interval_s)
            try:
                await coordinator._do_heartbeat()
            except KafkaError as exc:  # aiokafka's own task will say it once it runs
                log.debug("heartbeat during the assignment failed: %r", exc)

    task = asyncio.ensure_future(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def membership(consumer: AIOKafkaConsumer) -> tuple[str, int]:
    """(member id, generation) as the coordinator last told them."""
    coordinator = consumer._coordinator
    return coordinator.member_id, coordinator.generation
