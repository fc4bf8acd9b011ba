"""A result already on the results topic is not published again.

The window this closes: a worker publishes a task's result, the broker has it, and the
worker dies before the task's done mark reaches the changelog; its successor finishes
the task again. Here that state is made on purpose: a worker dies while the task is open,
its result is put on the results topic as the dead worker would have left it, and a new
assignment (a worker restart) reads the newest results' keys
(``streams/engine/published.py``) and keeps those of the tasks still open. The task then runs
again (its model is called) and ends with a done mark, and the topic still holds exactly the
one result.
"""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaConsumer
from swarmstream.agents.donecodec import is_done_entry
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import TaskRequest, TaskResult, now_ms
from swarmstream.streams.engine.broker import (
    bootstrap_servers,
    topic_partitions,
    true_end_offsets,
)
from swarmstream.streams.engine.published import PublishedResults

from tests.conftest import read_raw, wait_for


async def records_to_end(broker_url: str, topic: str, task_id: str) -> list[bytes]:
    """Values of ``topic``'s records keyed by ``task_id``, from its start to its true end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        ends = await true_end_offsets(bootstrap_servers(broker_url), await consumer.end_offsets(tps))
        await consumer.seek_to_beginning(*tps)
        values: list[bytes] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                values += [r.value or b"" for r in records if r.key == task_id.encode()]
        return values
    finally:
        await consumer.stop()


def done(value: bytes | None) -> bool:
    """A task-table changelog value (``streams/app/stores.WindowedStore``) marks the task done: a
    compact done record (``agents/donecodec.py``), or JSON ``[created_ms, state]`` with ``done``."""
    return bool(value) and (is_done_entry(value) or bool(orjson.loads(value)[1].get("done")))


async def test_a_result_left_on_the_topic_by_a_dead_worker_is_not_published_twice(make_stack) -> None:
    async with make_stack() as stack:
        # a 5 s model: the task is surely open when its worker dies
        task = TaskRequest(prompt="What is 2 + 2? Answer with a number.", answer_type="number", models=["slow"],
                           timeout_ms=120_000)
        changelog = f"{stack.settings.app_id}-tasks-changelog"
        await stack.client.submit(task)
        await read_raw(stack.broker_url, changelog, keep=lambda r: task.task_id.encode() in (r.key or b""),
                       until=lambda rs: bool(rs), timeout_s=30)  # its open state is in the changelog
        stack.workers[0].kill()
        # what the dead worker would have left: the result published, the done mark not written
        left_behind = TaskResult(task_id=task.task_id, mode="consensus", status="ok", answer="left behind",
                                 created_ms=task.created_ms, completed_ms=now_ms())
        results_topic = stack.settings.topics.results
        await stack.client.submit_raw(codec().encode(left_behind), key=task.task_id.encode(), topic=results_topic)

        calls_before = stack.fleet.counters["slow"]["calls"]
        stack.start_worker()
        await stack.wait_ready()  # the new worker's assignment has read the results' keys and kept the open task's
        states = await read_raw(stack.broker_url, changelog, keep=lambda r: task.task_id.encode() in (r.key or b""),
                                until=lambda rs: any(done(r.value) for r in rs), timeout_s=60)
        assert any(done(r.value) for r in states), "the task ended with its done mark"
        assert stack.fleet.counters["slow"]["calls"] > calls_before, "the task really ran again"

        # the done mark is written only after a result is acknowledged: a second result, had
        # there been one, is on the topic by now
        results = await records_to_end(stack.broker_url, results_topic, task.task_id)
        assert [codec().decode_as(v, TaskResult).answer for v in results] == ["left behind"]
        await wait_for(lambda: task.task_id in stack.client.received, timeout_s=5, stack=stack, what="the result")
        assert stack.client.received[task.task_id].answer == "left behind"


def test_a_restarted_worker_keeps_only_the_published_ids_of_tasks_still_open() -> None:
    """The scan reads the last ~20 s of results; only a task the crash left open can be finished
    again, so the rest are forgotten once the tables are restored (``topology.trim_published``)."""
    published = PublishedResults("unused:9092", "results")
    published._by_partition = {0: {"open", "done-a", "done-b"}, 1: {"other"}}
    assert published.keep_only([0], lambda task_id: task_id == "open") == 1
    assert "open" in published and "done-a" not in published
    assert "other" in published  # a partition not gained is left as it was
