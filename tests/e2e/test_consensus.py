"""Consensus end to end: every answer type, review of weak agreement, early stopping."""

from __future__ import annotations

import pytest
from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.schemas.models import ReviewItem, TaskRequest
from swarmstream.streams.cli.demo import to_request

from tests.conftest import wait_for


@pytest.mark.parametrize("kind", ["label", "number", "text", "json"])
async def test_each_answer_type_gets_the_right_aggregate(stack, kind: str) -> None:
    items = {}
    for item in demo_tasks(8, kinds=(kind,)):
        request = to_request(item, mode="consensus")
        items[request.task_id] = item
        await stack.client.submit(request, wait_ack=False)
    await stack.client.flush()

    await wait_for(lambda: all(t in stack.client.received for t in items), timeout_s=30, stack=stack,
                   what=f"{kind} results")

    for task_id, item in items.items():
        result = stack.client.received[task_id]
        assert result.status == "ok", result
        assert result.answer == item.answer
        assert result.strategy == {"label": "majority", "number": "median", "text": "cluster", "json": "json_fields"}[kind]


async def test_weak_agreement_goes_to_review_and_to_results(make_stack, topic_reader) -> None:
    async with make_stack(review_threshold=0.9) as stack:
        task = TaskRequest(prompt="What is 12 + 30? Answer with a number.", answer_type="number",
                           models=["fast-a", "fast-b", "coin"], strategy="majority")
        await stack.client.submit(task)

        result = await stack.client.result(task.task_id, timeout_s=30)
        flagged = await topic_reader(stack.settings.topics.review, count=2)  # the warm-up probe is flagged too
        [item] = [r for r in flagged if isinstance(r, ReviewItem) and r.task.task_id == task.task_id]

    assert result.status == "low_consensus"
    assert result.answer == "42"
    assert result.agreement == pytest.approx(2 / 3)
    assert result.confidence < 0.9
    assert isinstance(item, ReviewItem)
    assert item.task == task.model_copy(update={"category": "math"})  # intake classifies an unstated category
    assert item.result == result
    assert {v.model_id: v.answer for v in item.result.votes}["coin"] != "42"
    assert "below the review threshold" in item.reason


async def test_early_stopping_skips_models_once_the_vote_is_settled(stack) -> None:
    five = ["fast-a", "fast-b", "fast-c", "steady", "coin"]
    easy = TaskRequest(prompt="What is 3 + 4? Answer with a number.", answer_type="number", models=five,
                       early_stop=True)
    await stack.client.submit(easy)

    result = await stack.client.result(easy.task_id, timeout_s=30)

    assert result.answer == "7"
    assert result.models_asked == 3
    assert sorted(v.model_id for v in result.votes) == ["fast-a", "fast-b", "fast-c"]
    assert stack.fleet.counters["steady"]["calls"] == 0
    assert stack.fleet.counters["coin"]["calls"] == 0


async def test_early_stopping_asks_more_when_the_first_answers_split(make_stack) -> None:
    split = TaskRequest(prompt="What is 5 + 6? Answer with a number.", answer_type="number",
                        models=["fast-a", "coin", "fast-b", "fast-c", "steady"], early_stop=True)
    async with make_stack(early_stop_threshold=0.95) as stack:  # a 2-1 split (P = 0.69) is not settled
        await stack.client.submit(split)
        result = await stack.client.result(split.task_id, timeout_s=30)

    assert result.answer == "11"
    assert result.models_asked > 3
    assert "fast-c" in {v.model_id for v in result.votes}


async def test_a_task_can_name_the_weighted_strategy(stack) -> None:
    task = TaskRequest(prompt="What is 8 + 8? Answer with a number.", answer_type="number",
                       models=["fast-a", "fast-b", "coin"], strategy="weighted")
    await stack.client.submit(task)

    result = await stack.client.result(task.task_id, timeout_s=30)

    assert result.strategy == "weighted"
    assert result.answer == "16"


async def test_a_custom_strategy_registered_by_dotted_path_in_config(make_stack) -> None:
    async with make_stack(strategies={"longest": "tests.e2e.custom_strategy:longest_answer"}) as stack:
        task = TaskRequest(prompt="What is 50 + 50? Answer with a number.", answer_type="number",
                           models=["fast-a", "fast-b", "coin"], strategy="longest")
        await stack.client.submit(task)
        result = await stack.client.result(task.task_id, timeout_s=30)

    assert result.strategy == "longest"
    coin = {v.model_id: v.answer for v in result.votes}["coin"]
    assert result.answer == max(["100", coin], key=lambda a: (len(a), a))
