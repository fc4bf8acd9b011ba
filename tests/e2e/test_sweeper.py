"""The deadline sweeper ends a task whose outcome never comes, through the running worker.

The lost outcome is made on purpose: one model's answer is published for a task that
expected two, its deadline already past, as if the other model's outcome had gone missing
on the way. The outcome agent adopts the task from the answer, the sweeper finds it past
its deadline in the task table's index (``streams/tables.WindowedStore.past_deadline``) and
sends the missing model's timeout, and the task ends with one result."""

from __future__ import annotations

from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import ModelResponse, StepContext, now_ms

from tests.conftest import wait_for


async def test_a_task_missing_an_outcome_past_its_deadline_ends_through_the_sweeper(stack) -> None:
    created_ms = now_ms() - 10_000
    step = StepContext(task_id="swept-1", model_id="fast-a", created_ms=created_ms, deadline_ms=created_ms + 5_000,
                       answer_type="number", expected_models=["fast-a", "never-answers"])
    answer = ModelResponse(step=step, text="4", answer="4", latency_ms=3, responded_ms=created_ms + 3)
    await stack.client.submit_raw(codec().encode(answer), key=b"swept-1", topic=stack.settings.topics.responses)

    await wait_for(lambda: "swept-1" in stack.client.received, timeout_s=20, stack=stack, what="the swept task's result")
    result = stack.client.received["swept-1"]
    assert [v.model_id for v in result.votes] == ["fast-a"]
    assert [(a.model_id, a.failure_class) for a in result.attempts if a.failure_class] == [("never-answers", "timeout")]
