"""`swarmstream stats` reads what the workers wrote."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.circuit import CircuitConfig
from swarmstream.agents.stats.book import ModelBook
from swarmstream.agents.stats.folded import FoldedViews
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import CallRecord, TaskRequest
from swarmstream.streams.app.logs import (
    CHECKPOINT_KEY,
    LogsCheckpoint,
    logs_checkpoints_topic,
)
from swarmstream.streams.cli.stats_view import collect, render
from swarmstream.streams.engine.broker import (
    bootstrap_servers,
    topic_partitions,
    true_end_offsets,
)

from tests.conftest import read_raw


async def flaky_failures_logged(stack, count: int) -> None:
    """Wait until ``count`` failed calls of ``flaky`` are in the calls log: call records go out
    beside the replies, to other partitions than the result, so a result says nothing of them."""
    decode = codec().decode
    failures = await read_raw(stack.broker_url, stack.settings.topics.calls, timeout_s=30,
                              keep=lambda r: (c := decode(r.value)).model_id == "flaky" and not c.ok,
                              until=lambda kept: len(kept) >= count)
    assert len(failures) >= count, f"{len(failures)} of {count} failed flaky calls logged"


async def test_stats_show_models_chains_and_breakers(stack) -> None:
    for chain in ("two", "two", "breaker", "breaker", "breaker"):
        task = TaskRequest(prompt="What is 1 + 5? Answer with a number.", answer_type="number", mode="chain",
                           chain=chain)
        await stack.client.result(await stack.client.submit(task), timeout_s=30)
    await flaky_failures_logged(stack, 2)

    view = await collect(stack.settings.model_copy(update={"broker": stack.broker_url}))

    assert view["models"]["flaky|*"]["failures"] == {"server_error": 2}
    assert view["models"]["fast-a|*"]["successes"] >= 5
    assert view["models"]["fast-a|math"]["latency_p50_ms"] is not None
    assert view["chains"]["two"]["attempts.server_error"] == 2
    assert view["chains"]["two"]["fallbacks"] == 2
    assert view["breakers"]["breaker"] == "open"
    assert {"model": "breaker", "from": "closed", "to": "open", "count": 1} in view["breaker_transitions"]
    assert "breaker" in render(view)


async def test_stats_start_from_the_workers_logs_checkpoint(stack) -> None:
    """A checkpoint at the logs' current end whose views hold only a model no task used: the
    view shows it and nothing folded before the checkpoint; a task after it is folded on."""
    settings = stack.settings.model_copy(update={"broker": stack.broker_url})
    task = TaskRequest(prompt="What is 1 + 5? Answer with a number.", answer_type="number", mode="chain", chain="two")
    await stack.client.result(await stack.client.submit(task), timeout_s=30)
    await flaky_failures_logged(stack, 1)
    names = settings.topics
    bootstrap = bootstrap_servers(stack.broker_url)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [tp for topic in (names.calls, names.quality) for tp in await topic_partitions(consumer, topic)]
        ends = await true_end_offsets(bootstrap, await consumer.end_offsets(tps))
    finally:
        await consumer.stop()
    before = await collect(settings)
    assert before["models"]["flaky|*"]["failures"] == {"server_error": 1}

    ghost = FoldedViews(ModelBook(), CircuitBoard(lambda _m: CircuitConfig(), lambda: 0))
    for i in range(7):
        ghost.fold_call(CallRecord(model_id="ghost", ok=True, at_ms=i, latency_ms=10))
    checkpoint = LogsCheckpoint(positions=[(tp.topic, tp.partition, ends[tp]) for tp in tps], views=ghost.dump(),
                                written_ms=0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(logs_checkpoints_topic(settings.app_id), checkpoint.model_dump_json().encode(),
                                     key=CHECKPOINT_KEY, partition=0)
    finally:
        await producer.stop()
    view = await collect(settings)
    assert view["models"]["ghost|*"]["calls"] == 7
    assert "flaky|*" not in view["models"]  # folded before the checkpoint: not read again

    await stack.client.result(await stack.client.submit(task.model_copy(update={"task_id": "after"})), timeout_s=30)
    await flaky_failures_logged(stack, 2)
    after = await collect(settings)
    assert after["models"]["ghost|*"]["calls"] == 7
    assert after["models"]["flaky|*"]["failures"] == {"server_error": 1}  # the task after the checkpoint, only
