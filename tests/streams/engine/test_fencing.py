"""Ownership rules of the engine (``streams/engine/engine.py``, ``streams/engine/fencing.py``) with a fake consumer.

A partition is *kept* across a rebalance only when this worker held it without a gap in
one membership (the same member id); otherwise it is *gained*: its tables restored, its
hooks run (the published results re-read), its position from the committed offset. What a
handler produced while the worker did not know whether it still owned the partition waits,
and is dropped if it does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from swarmstream.streams.engine import InputMessage
from swarmstream.streams.engine.batching import Batcher
from swarmstream.streams.engine.engine import Engine, _Outbox, _Partition, _Slot
from swarmstream.streams.engine.fencing import Fenced, Lease

TOPIC = "tasks"


@dataclass
class FakeCoordinator:
    member_id: str = "member-1"
    generation: int = 1


@dataclass
class FakeConsumer:
    _coordinator: FakeCoordinator = field(default_factory=FakeCoordinator)
    seeks: dict[TopicPartition, int] = field(default_factory=dict)
    paused: set[TopicPartition] = field(default_factory=set)
    committed: list[dict[TopicPartition, int]] = field(default_factory=list)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def assignment(self) -> set[TopicPartition]:
        return set()

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(dict(offsets))


def tps(*numbers: int) -> set[TopicPartition]:
    return {TopicPartition(TOPIC, n) for n in numbers}


class Harness:
    """An engine with one agent on ``TOPIC``, a fake consumer, and what its hooks saw."""

    def __init__(self) -> None:
        self.engine = Engine(app_id="fencing", bootstrap="127.0.0.1:1", partitions=4)
        self.handled: list[int] = []
        self.engine.agent("intake", [TOPIC], self._handle, 8)
        self.consumer = FakeConsumer()
        self.engine.consumer = self.consumer  # type: ignore[assignment]
        self.gained: list[set[TopicPartition]] = []
        self.produced: list[tuple[str, bytes | None]] = []

        async def on_assigned(gained: set[TopicPartition]) -> None:
            self.gained.append(set(gained))

        self.engine.on_assigned(on_assigned)

        async def produce(topic: str, key: bytes | None, *rest: Any) -> asyncio.Future[None]:
            self.produced.append((topic, key))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        self.engine._produce = produce  # type: ignore[method-assign]

    async def _handle(self, message: InputMessage) -> None:
        self.handled.append(message.offset)

    async def rebalance(self, assigned: Iterable[int], *, member: str | None = None) -> None:
        await self.engine._revoked(set(self.engine._parts))
        if member is not None:
            self.consumer._coordinator.member_id = member
        self.consumer._coordinator.generation += 1
        await self.engine._assigned(tps(*assigned))

    def part(self, number: int) -> _Partition:
        return self.engine._parts[TopicPartition(TOPIC, number)]


@pytest.fixture
async def harness() -> Harness:
    h = Harness()
    await h.engine._assigned(tps(0, 1))
    return h


async def test_the_first_assignment_gains_everything(harness: Harness) -> None:
    assert harness.gained == [tps(0, 1)]
    assert harness.engine._owned == {0, 1}


async def test_partitions_held_in_one_membership_are_kept_at_their_position(harness: Harness) -> None:
    kept = harness.part(0)
    kept.next_offset = 17

    await harness.rebalance([0, 1, 2])

    assert harness.gained[-1] == tps(2)
    assert harness.part(0) is kept
    assert harness.consumer.seeks[TopicPartition(TOPIC, 0)] == 17


async def test_the_same_numbers_under_a_new_member_id_are_gained_anew(harness: Harness) -> None:
    old = harness.part(0)
    old.next_offset = 17
    slot_task = asyncio.ensure_future(asyncio.sleep(3600))
    old.slots.append(_Slot(16, task=slot_task))

    await harness.rebalance([0, 1], member="member-2")  # the group dropped it meanwhile (a stall)

    assert harness.gained[-1] == tps(0, 1)
    assert harness.part(0) is not old
    assert TopicPartition(TOPIC, 0) not in harness.consumer.seeks  # from the committed offset, not its own
    await asyncio.sleep(0)
    assert slot_task.cancelled()


async def test_a_lost_membership_fences_at_once_and_the_next_assignment_gains_all(harness: Harness) -> None:
    old = harness.part(1)
    harness.engine._lease.renew(0.0)

    harness.engine._fence()  # what the heartbeat watcher calls on "unknown member"

    assert harness.engine._parts == {}
    assert harness.engine._owned == set()
    assert harness.engine._lease.lost
    await harness.rebalance([0, 1], member="member-2")
    assert harness.gained[-1] == tps(0, 1)
    assert harness.part(1) is not old
    assert harness.engine._lease.valid()


async def test_revoked_after_the_membership_lapsed_commits_nothing(harness: Harness) -> None:
    harness.part(0).commit_at = 5
    harness.consumer._coordinator.member_id = ""  # aiokafka's reset_generation

    await harness.engine._revoked(tps(0, 1))

    assert harness.consumer.committed == []
    assert harness.engine._parts == {}


async def test_a_normal_revocation_commits_what_finished(harness: Harness) -> None:
    harness.part(0).commit_at = 5

    await harness.engine._revoked(tps(0, 1))

    assert harness.consumer.committed == [{TopicPartition(TOPIC, 0): 5}]


@pytest.mark.parametrize(("assigned", "sent"), [([0, 1], True), ([1], False)])
async def test_outputs_wait_out_a_rebalance_then_go_only_if_kept(harness: Harness, assigned: list[int],
                                                                  sent: bool) -> None:
    box = _Outbox(harness.engine, harness.part(0))
    box.outputs.append(("results", b"task-1", b"value", None, None, None))
    await harness.engine._revoked(tps(0, 1))

    sending = asyncio.ensure_future(box.send())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not sending.done() and harness.produced == []  # neither sent nor dropped yet

    await harness.engine._assigned(tps(*assigned))

    if sent:
        await sending
        assert harness.produced == [("results", b"task-1")]
    else:
        with pytest.raises(Fenced):
            await sending
        assert harness.produced == []


async def test_hand_over_stops_during_a_rebalance(harness: Harness) -> None:
    tp = TopicPartition(TOPIC, 0)
    harness.part(0).next_offset = 3
    acked = harness.engine._hand_over(tp, b"k", b"v", None, None)
    await harness.engine._revoked(tps(0, 1))

    acked(3)

    assert harness.part(0).slots == type(harness.part(0).slots)()  # not dispatched: the fetcher brings it


async def test_stopping_with_a_lapsed_lease_drops_what_it_holds_instead_of_waiting_for_good(harness: Harness) -> None:
    stopped: list[bool] = []

    async def stop() -> None:
        stopped.append(True)

    harness.consumer.stop = stop  # type: ignore[attr-defined]
    lease = harness.engine._lease = Lease(1.0, clock=lambda: 1_000.0)
    lease.renew(0.0)  # lapsed long ago: a stall, or a broker gone, before SIGTERM
    held = asyncio.ensure_future(lease.confirmed())
    await asyncio.sleep(0)

    await harness.engine.stop()

    assert stopped == [True]
    assert await held is False  # a produce request held at the lease fails; the producer can stop


# -- the lease -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_lease_is_valid_for_its_term_from_the_confirmation() -> None:
    clock = Clock()
    lease = Lease(1.5, clock)
    assert lease.valid()  # never joined: nothing to fence
    lease.renew(100.0)
    clock.now = 101.4
    assert lease.valid()
    clock.now = 101.6
    assert not lease.valid()


async def test_a_lapsed_lease_holds_until_confirmed_or_lost() -> None:
    clock = Clock()
    lease = Lease(1.0, clock)
    lease.renew(90.0)  # lapsed at 91

    confirmed = asyncio.ensure_future(lease.confirmed())
    await asyncio.sleep(0)
    assert not confirmed.done()
    lease.renew(clock.now)  # a heartbeat the coordinator accepted
    assert await confirmed is True

    clock.now = 200.0
    refused = asyncio.ensure_future(lease.confirmed())
    await asyncio.sleep(0)
    epoch = lease.epoch
    lease.lose()
    assert await refused is False
    assert lease.epoch == epoch + 1
    assert not lease.valid()


# -- batches of a lost membership ------------------------------------------------------------


class FakeBuilder:
    def __init__(self) -> None:
        self.records = 0
        self.closed = False

    def append(self, **_: Any) -> Any:
        self.records += 1
        return type("Meta", (), {"offset": self.records - 1})()

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[FakeBuilder] = []
        self.gate = asyncio.Event()

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder()

    async def send_batch(self, builder: FakeBuilder, topic: str, partition: int) -> asyncio.Future[Any]:
        await self.gate.wait()
        self.sent.append(builder)
        return asyncio.get_running_loop().create_future()


async def test_a_batch_made_before_the_membership_was_lost_is_never_handed_to_the_producer() -> None:
    producer = FakeProducer()
    lease = Lease(1.0)
    batcher = Batcher(producer, lease)  # type: ignore[arg-type]
    tp = TopicPartition("results", 0)
    first = batcher.append(tp, b"a", b"1", None, None)
    assert batcher.append(tp, b"b", b"2", None, None) is first  # the same open batch
    other_lane = batcher.append(TopicPartition("results", 1), b"c", b"3", None, None)

    lease.lose()
    fresh = batcher.append(tp, b"d", b"4", None, None)  # after the loss: a batch of its own
    producer.gate.set()
    await batcher.drain()

    assert fresh is not first
    assert producer.sent == [fresh.builder]
    for stale in (first, other_lane):
        assert isinstance(stale.acked.exception(), Fenced)
