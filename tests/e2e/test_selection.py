"""Select mode end to end: budgets hold under concurrency; learned stats survive a restart."""

from __future__ import annotations

from swarmstream.agents.selection.agent import input_bound
from swarmstream.agents.selection.budget import estimate_cost_micros
from swarmstream.agents.selection.features import extract_features
from swarmstream.schemas.models import SelectionEvent, TaskRequest

from tests.conftest import TEST_FLEET, wait_for

PROMPT = "What is 17 + 25? Answer with a number."


def select_task(**extra: object) -> TaskRequest:
    return TaskRequest(prompt=PROMPT, answer_type="number", mode="select", **extra)  # type: ignore[arg-type]


async def test_two_hundred_concurrent_tasks_never_overspend_a_budget_for_one_hundred(make_stack) -> None:
    from swarmstream.agents.models.catalog import load_catalog

    spec = load_catalog(TEST_FLEET, sim_url="http://127.0.0.1:1/v1").get("fast-a")
    forecast = estimate_cost_micros(spec, input_bound(extract_features(PROMPT, "number").input_tokens), 256)
    budget = 100 * forecast
    async with make_stack(budgets={"acme": {"per_day_micros": budget}}) as stack:
        tasks = [select_task(models=["fast-a"], tenant="acme") for _ in range(200)]
        for task in tasks:
            await stack.client.submit(task, wait_ack=False)
        await stack.client.flush()
        await wait_for(lambda: all(t.task_id in stack.client.received for t in tasks), timeout_s=60, stack=stack,
                       what="200 select results")

    results = [stack.client.received[t.task_id] for t in tasks]
    statuses = [r.status for r in results]
    assert statuses.count("ok") == 100
    assert statuses.count("budget_exceeded") == 100
    assert sum(r.cost_micros for r in results) <= budget
    assert all(r.answered_by is None and r.cost_micros == 0 for r in results if r.status == "budget_exceeded")


async def test_learned_quality_survives_a_restart_and_the_choice_with_it(make_stack, topic_reader) -> None:
    async with make_stack(policy="weighted") as stack:
        for _ in range(20):  # fast-b is shown to be right, by feedback
            task = select_task(models=["fast-b"])
            result = await stack.client.result(await stack.client.submit(task), timeout_s=30)
            await stack.client.feedback(result, 1.0)

        async def chosen() -> str | None:
            probe = select_task()
            await stack.client.result(await stack.client.submit(probe), timeout_s=30)
            events = await topic_reader(stack.settings.topics.selections, count=10_000, timeout_s=2)
            return next(e.chosen for e in events if isinstance(e, SelectionEvent) and e.task_id == probe.task_id)

        before = await chosen()
        for _ in range(20):  # the feedback may still be on its way to the quality log
            if before == "fast-b":
                break
            before = await chosen()
        stack.workers[0].kill()
        stack.start_worker()
        await stack.wait_ready()
        after = await chosen()

    assert before == "fast-b"
    assert after == before
