"""The stream engine (``streams/engine/engine.py``) against the real embedded broker, over TCP.

What it proves, each claim of the engine's docstring by a test that fails if it breaks:

- a partition's commit point never passes an unfinished event, however many later
  events are done (the in-order commit that makes a crash re-read, never lose);
- table writes reach the changelog and a fresh worker of the same app is handed
  them, newest value winning, before it handles any record;
- a record the engine produced for a partition it consumes is handled once, in offset
  order, whether it was handed over on its ack or brought by the fetcher;
- an agent never runs more than its ``max_in_flight`` handlers, pauses its partitions
  once its backlog is full, and starts every partition's events in offset order;
- two workers of one app get the same partition numbers of every source topic
  (co-partitioning: the task-keyed join stays local), covering all with no overlap;
- a handler that raises is logged, reported (``on_error``: the app's dead letter, sent as
  the event's output) and its event committed, so its partition goes on; a record over
  the size limit is refused where it is emitted;
- a table is written only while handling an event (anything else has no partition);
- a record the producer refused or gave up on (an output or a table write) stops the
  worker with nothing committed past its event, and so does a failure while taking partitions (otherwise left paused for good).

Every test has its own topics and group (uuid), short group timings, and waits on
conditions with deadlines (the 2-core CI machine may be busy), never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from swarmstream.streams.engine import InputMessage
from swarmstream.streams.engine.broker import bootstrap_servers, ensure_topics
from swarmstream.streams.engine.engine import Agent, Engine, RecordTooLarge, _Partition
from swarmstream.streams.engine.fencing import membership

from tests.conftest import read_raw, wait_for

DEADLINE_S = 30.0


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def make_engine(broker_url: str, app_id: str, partitions: int) -> Engine:
    return Engine(app_id=app_id, bootstrap=bootstrap_servers(broker_url), partitions=partitions,
                  session_timeout_s=2.0, heartbeat_interval_s=0.3, commit_interval_s=0.1)


@contextlib.asynccontextmanager
async def running(*engines: Engine) -> AsyncIterator[None]:
    """Run the engines in-process until every one is ready (assigned); always stop them."""
    stops = [asyncio.Event() for _ in engines]
    runners = [asyncio.ensure_future(e.run(s)) for e, s in zip(engines, stops, strict=True)]
    try:
        await wait_for(lambda: all(e.ready.is_set() or r.done() for e, r in zip(engines, runners, strict=True)),
                       timeout_s=DEADLINE_S, what="every engine ready")
        for runner in runners:
            if runner.done():
                runner.result()  # an engine that crashed before its assignment
        yield
    finally:
        for stop in stops:
            stop.set()
        results = await asyncio.gather(*runners, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result


@contextlib.asynccontextmanager
async def offsets_of(broker_url: str, group: str) -> AsyncIterator[Callable[[TopicPartition], Awaitable[int | None]]]:
    """The group's committed offset of a partition, read by a consumer that never joins it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        yield consumer.committed
    finally:
        await consumer.stop()


async def produce(broker_url: str, records: list[tuple[str, bytes | None, bytes, int | None]]) -> None:
    """(topic, key, value, partition) records, acknowledged in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all")
    await producer.start()
    try:
        futures = [await producer.send(t, v, key=k, partition=p) for t, k, v, p in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_commits_never_pass_an_unfinished_event(broker_url: str) -> None:
    app, main, witness = f"eng-{_uid()}", f"eng-{_uid()}-main", f"eng-{_uid()}-witness"
    engine = make_engine(broker_url, app, partitions=1)
    release = asyncio.Event()
    handled: list[int] = []
    witnessed: list[int] = []

    async def slow_head(msg: InputMessage) -> None:
        if msg.offset == 0:
            await release.wait()
        handled.append(msg.offset)

    async def witness_handler(msg: InputMessage) -> None:
        witnessed.append(msg.offset)

    engine.agent("main", [main], slow_head, max_in_flight=8)
    engine.agent("witness", [witness], witness_handler, max_in_flight=1)
    tp, wtp = TopicPartition(main, 0), TopicPartition(witness, 0)
    async with running(engine), offsets_of(broker_url, app) as committed:
        await produce(broker_url, [(main, None, b"x%d" % i, 0) for i in range(10)])
        await wait_for(lambda: set(handled) == set(range(1, 10)), timeout_s=DEADLINE_S, what="offsets 1..9 handled")
        # A record handled after 1..9 and committed proves a commit ran with them done.
        await produce(broker_url, [(witness, None, b"w", 0)])
        await wait_for(lambda: _equals(committed(wtp), 1), timeout_s=DEADLINE_S,
                       what="the witness partition committed")
        assert await committed(tp) in (None, 0), "committed past offset 0 while it was in flight"
        assert engine._parts[tp].commit_at is None
        release.set()
        await wait_for(lambda: _equals(committed(tp), 10), timeout_s=DEADLINE_S,
                       what="offset 10 committed after the head finished")
    assert handled == [*range(1, 10), 0]


async def _equals(value: Awaitable[int | None], expected: int) -> bool:
    return await value == expected


async def test_table_writes_are_restored_newest_first_before_any_record(broker_url: str) -> None:
    app, topic = f"eng-{_uid()}", f"eng-{_uid()}-in"
    keys = [f"k{i}" for i in range(6)]
    first = make_engine(broker_url, app, partitions=2)
    table = first.table("t")
    handled: list[str] = []

    async def write(msg: InputMessage) -> None:
        assert msg.key is not None and msg.value is not None
        table[msg.key.decode()] = msg.value.decode()
        handled.append(msg.value.decode())

    first.agent("writer", [topic], write, max_in_flight=4)
    async with running(first):
        for round_ in (1, 2):  # the second round acknowledged after the first: newer in every partition
            await produce(broker_url, [(topic, k.encode(), f"{k}:{round_}".encode(), None) for k in keys])
        await wait_for(lambda: len(handled) == 2 * len(keys), timeout_s=DEADLINE_S, what="every record handled")
    expected = {k: f"{k}:2" for k in keys}
    assert dict(table.items()) == expected

    second = make_engine(broker_url, app, partitions=2)
    restored = second.table("t")
    at_assignment: list[tuple[dict[str, str], int]] = []
    seen: list[tuple[str, str | None]] = []

    async def on_assigned(gained: set[TopicPartition]) -> None:
        at_assignment.append((dict(restored.items()), len(seen)))

    async def read(msg: InputMessage) -> None:
        assert msg.key is not None
        seen.append((msg.key.decode(), restored.get(msg.key.decode())))

    second.on_assigned(on_assigned)
    second.agent("reader", [topic], read, max_in_flight=4)
    async with running(second):
        assert at_assignment == [(expected, 0)], "the tables were not whole before the first record"
        assert dict(restored.items()) == expected
        await produce(broker_url, [(topic, b"k0", b"k0:3", None)])
        await wait_for(lambda: len(seen) >= 1, timeout_s=DEADLINE_S, what="the new record handled")
    assert seen == [("k0", "k0:2")], "committed records were handled again, or the state was not there"


async def test_in_flight_limit_pauses_and_keeps_offset_order(broker_url: str) -> None:
    app, topic = f"eng-{_uid()}", f"eng-{_uid()}-in"
    engine = make_engine(broker_url, app, partitions=2)
    release = asyncio.Event()
    starts: list[tuple[int, int]] = []
    done: list[tuple[int, int]] = []
    now = peak = 0

    async def blocking(msg: InputMessage) -> None:
        nonlocal now, peak
        starts.append((msg.partition, msg.offset))
        now += 1
        peak = max(peak, now)
        try:
            await release.wait()
            await asyncio.sleep(0)  # a yield, not a wait: released handlers overlap, so the limit still binds
        finally:
            now -= 1
        done.append((msg.partition, msg.offset))

    agent = engine.agent("blocking", [topic], blocking, max_in_flight=2)
    async with running(engine):
        await produce(broker_url, [(topic, None, b"v", i % 2) for i in range(20)])
        await wait_for(lambda: len(starts) == 2 and agent.paused, timeout_s=DEADLINE_S,
                       what="two handlers running and the agent paused on its full backlog")
        assert peak == 2 and len(starts) == 2 and len(agent.backlog) >= 2 * agent.limit
        release.set()
        await wait_for(lambda: len(done) == 20, timeout_s=DEADLINE_S, what="all 20 records handled")
        assert not agent.paused
    assert peak == 2
    for partition in (0, 1):
        assert [o for p, o in starts if p == partition] == list(range(10)), f"partition {partition} start order"


async def test_records_it_produced_for_its_own_partitions_are_handled_once_in_order(broker_url: str) -> None:
    """What the engine produces for a partition it consumes is handed to the agent when acked
    (below ``HAND_OVER_BELOW`` in flight) and read again by the fetcher: each must be handled
    exactly once, in offset order, the handed-over ones and the fetched ones alike, and all of it
    committed."""
    app, first, second = f"eng-{_uid()}", f"eng-{_uid()}-first", f"eng-{_uid()}-second"
    engine = make_engine(broker_url, app, partitions=2)
    handled: list[tuple[int, int]] = []
    open_sink = asyncio.Event()
    open_sink.set()
    dispatched = {"fetched": 0, "handed over": 0}
    dispatch = engine._dispatch

    def counted(agent: Agent, part: _Partition, message: InputMessage) -> None:
        if message.topic == second:  # the fetch loop's task, or an ack's callback (no task)
            task = asyncio.current_task()
            fetched = task is not None and task.get_coro().__qualname__ == "Engine._fetch_loop"  # type: ignore[union-attr]
            dispatched["fetched" if fetched else "handed over"] += 1
        dispatch(agent, part, message)

    engine._dispatch = counted  # type: ignore[method-assign]

    async def relay(msg: InputMessage) -> None:
        await engine.send(second, msg.key, msg.value, {"from": b"relay"})

    async def sink(msg: InputMessage) -> None:
        assert msg.headers == {"from": b"relay"}
        await open_sink.wait()
        handled.append((msg.partition, msg.offset))

    engine.agent("relay", [first], relay, max_in_flight=64)
    engine.agent("sink", [second], sink, max_in_flight=64)
    async with running(engine), offsets_of(broker_url, app) as committed:
        # a trickle (handed over), then a burst while the sink waits (past the bound: fetched)
        for i in range(10):
            await produce(broker_url, [(first, b"k%d" % (i % 4), b"v%d" % i, None)])
            await wait_for(lambda i=i: len(handled) == i + 1, timeout_s=DEADLINE_S, what=f"relay {i} handled")
        open_sink.clear()
        await produce(broker_url, [(first, b"k%d" % (i % 4), b"v%d" % i, None) for i in range(10, 400)])
        await wait_for(lambda: dispatched["fetched"] > 0, timeout_s=DEADLINE_S, what="records fetched past the bound")
        open_sink.set()
        await wait_for(lambda: len(handled) >= 400, timeout_s=DEADLINE_S, what="400 records handled")
        for partition in (0, 1):
            tp = TopicPartition(second, partition)
            count = sum(1 for p, _ in handled if p == partition)
            await wait_for(lambda tp=tp, count=count: _equals(committed(tp), count), timeout_s=DEADLINE_S,
                           what=f"{tp} committed")
    assert len(handled) == len(set(handled)) == 400
    assert dispatched["fetched"] > 0 and dispatched["handed over"] >= 10, dispatched
    for partition in (0, 1):
        assert [o for p, o in handled if p == partition] == list(range(sum(1 for p, _ in handled if p == partition)))


async def test_two_engines_own_the_same_numbers_of_every_topic(broker_url: str) -> None:
    app, a, b = f"eng-{_uid()}", f"eng-{_uid()}-a", f"eng-{_uid()}-b"
    engines = [make_engine(broker_url, app, partitions=4) for _ in range(2)]
    handled_by: dict[tuple[str, int], int] = {}
    for i, engine in enumerate(engines):
        async def handler(msg: InputMessage, i: int = i) -> None:
            handled_by[(msg.topic, msg.partition)] = i

        engine.agent("a", [a], handler, max_in_flight=4)
        engine.agent("b", [b], handler, max_in_flight=4)

    def owned(engine: Engine, topic: str) -> set[int]:
        return {tp.partition for tp in list(engine._parts) if tp.topic == topic}

    def stable() -> bool:
        if not all(e.ready.is_set() and owned(e, a) and owned(e, a) == owned(e, b) for e in engines):
            return False
        first, second = (owned(e, a) for e in engines)
        return not first & second and first | second == {0, 1, 2, 3}

    async with running(*engines):
        await wait_for(stable, timeout_s=DEADLINE_S, what="a co-partitioned split of 0..3 between both engines")
        owner = {p: i for i, e in enumerate(engines) for p in owned(e, a)}
        await produce(broker_url, [(t, None, b"v", p) for t in (a, b) for p in range(4)])
        await wait_for(lambda: len(handled_by) == 8, timeout_s=DEADLINE_S, what="one record per partition handled")
    for p in range(4):
        assert handled_by[(a, p)] == handled_by[(b, p)] == owner[p], f"partition {p} of A and B apart"


async def test_a_failing_handler_is_logged_and_committed(broker_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="swarmstream.streams.engine")
    app, topic = f"eng-{_uid()}", f"eng-{_uid()}-in"
    engine = make_engine(broker_url, app, partitions=1)
    handled: list[int] = []

    async def flaky(msg: InputMessage) -> None:
        if msg.offset == 1:
            raise ValueError("boom")
        handled.append(msg.offset)

    engine.agent("flaky", [topic], flaky, max_in_flight=1)
    tp = TopicPartition(topic, 0)
    async with running(engine), offsets_of(broker_url, app) as committed:
        await produce(broker_url, [(topic, None, b"v", 0) for _ in range(3)])
        await wait_for(lambda: handled == [0, 2], timeout_s=DEADLINE_S, what="the record after the failure handled")
        await wait_for(lambda: _equals(committed(tp), 3), timeout_s=DEADLINE_S,
                       what="the commit past the failed record")
    failures = [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert len(failures) == 1 and getattr(failures[0], "offset", None) == 1 and failures[0].exc_info


async def test_a_failing_handler_is_reported_and_what_the_report_sends_is_its_output(broker_url: str) -> None:
    app, topic, dead = f"eng-{_uid()}", f"eng-{_uid()}-in", f"eng-{_uid()}-dead"
    engine = make_engine(broker_url, app, partitions=1)
    reported: list[tuple[int, str]] = []

    async def failing(msg: InputMessage) -> None:
        raise ValueError(f"bad record {msg.offset}")

    async def report(msg: InputMessage, error: BaseException) -> None:
        reported.append((msg.offset, str(error)))
        await engine.send(dead, None, str(error).encode())  # queued: part of the failed event's output
        with pytest.raises(RecordTooLarge):
            await engine.send(dead, None, b"x" * (engine.produce_limit_bytes + 1))

    engine.agent("failing", [topic], failing, max_in_flight=4)
    engine.on_error(report)
    tp = TopicPartition(topic, 0)
    async with running(engine), offsets_of(broker_url, app) as committed:
        await produce(broker_url, [(topic, None, b"v", 0) for _ in range(3)])
        await wait_for(lambda: _equals(committed(tp), 3), timeout_s=DEADLINE_S,
                       what="the commit past the failed records")
    assert sorted(reported) == [(n, f"bad record {n}") for n in range(3)]
    letters = await read_raw(broker_url, dead, until=lambda records: len(records) >= 3, timeout_s=DEADLINE_S)
    assert sorted(r.value for r in letters) == [f"bad record {n}".encode() for n in range(3)]


async def test_a_table_is_written_only_while_handling_an_event(broker_url: str) -> None:
    app, topic = f"eng-{_uid()}", f"eng-{_uid()}-in"
    engine = make_engine(broker_url, app, partitions=1)
    table = engine.table("t")

    async def noop(msg: InputMessage) -> None:
        return None

    engine.agent("noop", [topic], noop, max_in_flight=1)
    with pytest.raises(RuntimeError, match="only while handling an event"):
        table["k"] = 1  # before start: no producer, no partition
    async with running(engine):
        with pytest.raises(RuntimeError, match="only while handling an event"):
            table["k"] = 2  # a running engine, but outside any handler
        with pytest.raises(RuntimeError, match="only while handling an event"):
            del table["k"]
    assert "k" not in table and len(table) == 0


async def test_a_refused_record_stops_the_worker_uncommitted(broker_url: str) -> None:
    app, topic = f"eng-{_uid()}", f"eng-{_uid()}-in"
    engine = make_engine(broker_url, app, partitions=1)
    handled: list[int] = []

    async def writer(msg: InputMessage) -> None:
        if msg.offset == 1:
            await engine.send(topic, None, b"lost", partition=99)  # queued; the producer refuses it at the end
        handled.append(msg.offset)

    engine.agent("writer", [topic], writer, max_in_flight=1)
    runner = asyncio.ensure_future(engine.run(asyncio.Event()))
    await wait_for(lambda: engine.ready.is_set() or runner.done(), timeout_s=DEADLINE_S, what="the engine ready")
    await produce(broker_url, [(topic, None, b"v", 0) for _ in range(3)])
    with pytest.raises(RuntimeError, match=r"a record produced for .*@1 failed"):
        await asyncio.wait_for(runner, DEADLINE_S)
    assert 1 in handled
    async with offsets_of(broker_url, app) as committed:
        assert await committed(TopicPartition(topic, 0)) in (None, 1)  # never past the event whose record was lost


async def test_heartbeats_go_on_while_partitions_are_taken(broker_url: str) -> None:
    """Taking partitions (restoring tables, reading published results) may outlast the session
    timeout; aiokafka heartbeats only once it is over, so the engine heartbeats meanwhile, and
    the coordinator keeps the member. Without them this hook waits in vain (none is sent), and
    on Kafka the member is dropped and fenced right after its assignment."""
    engine = make_engine(broker_url, f"eng-{_uid()}", partitions=1)
    session_beats = int(2.0 / 0.3) + 2  # make_engine's session over its heartbeat interval, and more
    members: list[tuple[str, int]] = []

    async def noop(msg: InputMessage) -> None:
        return None

    async def long_restore(gained: set[TopicPartition]) -> None:
        assert engine.consumer is not None
        coordinator = engine.consumer._coordinator
        members.append(membership(engine.consumer))
        beat, accepted = coordinator._do_heartbeat, []

        async def counted() -> bool:
            ok: bool = await beat()
            accepted.append(ok)
            return ok

        coordinator._do_heartbeat = counted
        try:
            await wait_for(lambda: sum(accepted) >= session_beats, timeout_s=DEADLINE_S,
                           what="heartbeats accepted while the partitions are taken")
        finally:
            coordinator._do_heartbeat = beat

    engine.agent("noop", [f"eng-{_uid()}-in"], noop, max_in_flight=1)
    engine.on_assigned(long_restore)
    async with running(engine):
        assert engine.consumer is not None
        assert membership(engine.consumer) == members[0]  # the same member: not dropped, not rejoined
        assert engine._fenced_from is None and len(members) == 1


async def test_a_failed_assignment_stops_the_worker(broker_url: str) -> None:
    engine = make_engine(broker_url, f"eng-{_uid()}", partitions=1)

    async def noop(msg: InputMessage) -> None:
        return None

    async def broken_hook(gained: set[TopicPartition]) -> None:
        raise OSError("results topic unreadable")

    engine.agent("noop", [f"eng-{_uid()}-in"], noop, max_in_flight=1)
    engine.on_assigned(broken_hook)
    with pytest.raises(RuntimeError, match="taking partitions failed.*results topic unreadable"):
        await asyncio.wait_for(engine.run(asyncio.Event()), DEADLINE_S)


async def test_a_topic_with_another_partition_count_is_refused_at_start(broker_url: str) -> None:
    topic = f"eng-{_uid()}-in"
    await ensure_topics(broker_url, [topic], 3)
    engine = make_engine(broker_url, f"eng-{_uid()}", partitions=2)  # a task's home would be 0-1 of 0-2

    async def noop(msg: InputMessage) -> None:
        return None

    engine.agent("noop", [topic], noop, max_in_flight=1)
    with pytest.raises(ValueError, match=f"{topic} has 3"):
        await asyncio.wait_for(engine.run(asyncio.Event()), DEADLINE_S)
