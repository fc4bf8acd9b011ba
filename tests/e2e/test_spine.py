"""A task published to Kafka comes back as exactly one result, through real workers."""

from __future__ import annotations

import orjson
from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import DeadLetter, TaskRequest
from swarmstream.streams.cli.demo import to_request

from tests.conftest import wait_for


async def test_hundred_tasks_in_hundred_results_out(stack) -> None:
    items = {}
    for item in demo_tasks(100):
        request = to_request(item, mode="consensus")
        items[request.task_id] = item
        await stack.client.submit(request, wait_ack=False)
    await stack.client.flush()

    await wait_for(lambda: len(stack.client.received) >= 100, timeout_s=60, stack=stack, what="100 results")

    results = stack.client.received
    assert set(results) == set(items)
    assert stack.client.duplicates == 0
    for task_id, result in results.items():
        assert result.status == "ok", result
        assert result.answer == items[task_id].answer  # the test fleet is always right
        assert sorted(v.model_id for v in result.votes) == ["fast-a", "fast-b", "fast-c"]
        assert result.agreement == 1.0
        assert result.cost_micros > 0
        assert result.completed_ms >= result.created_ms


async def test_models_too_slow_for_the_deadline_end_in_timeout(stack) -> None:
    slow = TaskRequest(prompt="What is 2 + 3? Answer with a number.", answer_type="number",
                       models=["slow"], timeout_ms=400)
    mixed = TaskRequest(prompt="What is 4 + 4? Answer with a number.", answer_type="number",
                        models=["fast-a", "fast-b", "slow"], timeout_ms=400)
    for task in (slow, mixed):
        await stack.client.submit(task)

    timed_out = await stack.client.result(slow.task_id, timeout_s=30)
    partial = await stack.client.result(mixed.task_id, timeout_s=30)

    assert timed_out.status == "timeout"
    assert timed_out.answer is None
    assert [a.failure_class for a in timed_out.attempts] == ["timeout"]
    assert partial.status == "partial"
    assert partial.answer == "8"
    assert {a.model_id: a.failure_class for a in partial.attempts}["slow"] == "timeout"


async def test_bad_input_goes_to_dead_letters_and_valid_tasks_still_run(stack, topic_reader) -> None:
    garbage = b"\x00\xffnot an event at all"
    invalid_json = orjson.dumps({"prompt": "", "answer_type": "poem"})
    before = TaskRequest(prompt="What is 1 + 1? Answer with a number.", answer_type="number")
    after = TaskRequest(prompt="What is 2 + 2? Answer with a number.", answer_type="number")
    unknown_model = TaskRequest(prompt="hi", models=["gpt-5o"])

    await stack.client.submit(before)
    await stack.client.submit_raw(garbage, key=b"garbage")
    await stack.client.submit_raw(invalid_json, key=b"invalid", headers=[("content-type", b"application/json")])
    await stack.client.submit(unknown_model)
    await stack.client.submit(after)

    assert (await stack.client.result(before.task_id, timeout_s=30)).answer == "2"
    assert (await stack.client.result(after.task_id, timeout_s=30)).answer == "4"

    letters = await topic_reader(stack.settings.topics.dead_letters, count=3)
    by_key = {letter.key: letter for letter in letters if isinstance(letter, DeadLetter)}
    assert set(by_key) == {b"garbage", b"invalid", unknown_model.task_id.encode()}
    assert by_key[b"garbage"].value == garbage
    assert "C3 01" in by_key[b"garbage"].reason
    assert by_key[b"invalid"].value == invalid_json
    assert "prompt" in by_key[b"invalid"].reason and "answer_type" in by_key[b"invalid"].reason
    assert "unknown model" in by_key[unknown_model.task_id.encode()].reason
    assert codec().decode(by_key[unknown_model.task_id.encode()].value) == unknown_model
    assert all(letter.topic == stack.settings.topics.tasks for letter in by_key.values())


async def test_a_json_task_from_any_kafka_client_is_answered(stack) -> None:
    body = {"task_id": "json-1", "prompt": "What is 6 + 7? Answer with a number.", "answer_type": "number"}
    await stack.client.submit_raw(orjson.dumps(body), key=b"json-1", headers=[("content-type", b"application/json")])

    result = await stack.client.result("json-1", timeout_s=30)

    assert result.status == "ok"
    assert result.answer == "13"


async def test_a_duplicated_task_event_still_gives_one_result(stack) -> None:
    task = TaskRequest(prompt="What is 9 + 9? Answer with a number.", answer_type="number")
    marker = TaskRequest(prompt="What is 1 + 2? Answer with a number.", answer_type="number")
    await stack.client.submit(task)
    await stack.client.submit(task)  # at-least-once producers do this
    await stack.client.result(task.task_id, timeout_s=30)
    await stack.client.submit(marker)  # same partition order is not guaranteed; wait for it and a margin
    await stack.client.result(marker.task_id, timeout_s=30)
    await wait_for(lambda: stack.fleet.counters["fast-a"]["calls"] >= 3, timeout_s=10, what="second fan-out")
    await wait_for(lambda: True, timeout_s=0.0)

    assert stack.client.duplicates == 0
