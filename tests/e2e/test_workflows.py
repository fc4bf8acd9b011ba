"""Workflows end to end: steps over topics, branches, calls, cycles, middleware and the cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from swarmstream.schemas.models import TaskRequest, TaskResult
from swarmstream.streams.app.worker import WorkerDied

WORKFLOWS = Path(__file__).parent.parent / "agents" / "workflows" / "e2e_workflows.yaml"
QUESTION = "What is 20 + 22? Answer with a number."


def workflow_task(workflow: str, prompt: str = QUESTION, **extra: object) -> TaskRequest:
    return TaskRequest(prompt=prompt, answer_type="number", workflow=workflow, **extra)  # type: ignore[arg-type]


def calls(stack, model: str) -> int:  # type: ignore[no-untyped-def]
    return stack.fleet.counters[model]["calls"]


async def run(stack, task: TaskRequest, timeout_s: float = 30) -> TaskResult:  # type: ignore[no-untyped-def]
    await stack.client.submit(task)
    return await stack.client.result(task.task_id, timeout_s=timeout_s)


async def test_steps_branches_calls_and_the_hop_limit(make_stack) -> None:
    async with make_stack(workflows=WORKFLOWS) as stack:
        three = workflow_task("arithmetic")
        split = workflow_task("escalate", metadata={"pair": "split"})
        agreed = workflow_task("escalate")
        nested = workflow_task("outer")
        results = await asyncio.gather(*(run(stack, t) for t in (three, split, agreed, nested)))
        by_id = {r.task_id: r for r in results}

        r = by_id[three.task_id]  # each prompt is rendered from the answer before it
        assert (r.status, r.mode, r.answer, r.path) == ("ok", "workflow", "100", ["first", "second", "third"])
        assert [s.answer for s in r.steps] == ["42", "50", "100"]
        assert r.steps[2].answered_by == "fast-a"  # the chain step fell back from flaky
        assert r.cost_micros == sum(s.cost_micros for s in r.steps) > 0

        r = by_id[split.task_id]  # fast-a and coin disagree: the branch escalates to three models
        assert r.path == ["quick", "check", "wide"]
        assert r.steps[0].agreement < 1
        assert r.steps[1].detail.startswith("-> wide")
        assert (r.status, r.answer, r.steps[2].agreement) == ("ok", "42", 1.0)

        r = by_id[agreed.task_id]  # the default pair agrees: no escalation
        assert (r.status, r.answer, r.path) == ("ok", "42", ["quick", "check"])

        r = by_id[nested.task_id]  # the called workflow's result came back as the step's output
        assert (r.status, r.path, r.answer) == ("ok", ["sub", "loud"], "42")
        assert r.steps[0].kind == "workflow" and r.steps[0].answer == "42"
        assert r.steps[0].child_task_id == f"{nested.task_id}/1/sub"

        assert set(stack.client.received) == {three.task_id, split.task_id, agreed.task_id, nested.task_id}

        before = calls(stack, "fast-c")
        r = await run(stack, workflow_task("loop"))
        assert r.status == "cycle_detected"
        assert r.path == ["again"] * 5  # five hops ran; the sixth was over the limit
        assert "hop limit 5" in r.reason
        assert calls(stack, "fast-c") - before == 5  # and no model call after it


async def test_middleware_order_short_circuit_and_cache_hits_without_a_model_call(make_stack) -> None:
    async with make_stack(workflows=WORKFLOWS) as stack:
        before = calls(stack, "steady")
        first = await run(stack, workflow_task("cached"))
        assert first.status == "ok" and first.answer == "42"
        assert calls(stack, "steady") == before + 1
        assert not first.steps[0].cached
        assert first.steps[0].detail == "before:outer>before:inner>after:inner>after:outer"

        second = await run(stack, workflow_task("cached"))
        assert (second.status, second.answer) == ("ok", "42")
        assert second.steps[0].cached and second.steps[0].cost_micros == 0
        assert calls(stack, "steady") == before + 1  # answered from the cache: no model call
        assert second.steps[0].detail == "before:outer>after:outer"  # the cache answered; inner never ran

        other = await run(stack, workflow_task("cached", prompt="What is 2 + 3? Answer with a number."))
        assert (other.answer, other.steps[0].cached) == ("5", False)  # another prompt is another key
        assert calls(stack, "steady") == before + 2


async def test_an_unknown_workflow_is_dead_lettered(make_stack, topic_reader) -> None:
    async with make_stack(workflows=WORKFLOWS) as stack:
        await stack.client.submit(workflow_task("nope"))
        letters = await topic_reader(stack.settings.topics.dead_letters, count=1)
        assert "unknown workflow 'nope'" in letters[0].reason
        assert "arithmetic" in letters[0].reason  # the known ones are named


async def test_a_cyclic_workflow_stops_the_worker_at_load_naming_the_cycle(make_stack, tmp_path) -> None:
    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text(
        "workflows:\n"
        "  spin:\n"
        "    steps:\n"
        "      - {name: a, kind: consensus, models: [fast-a]}\n"
        "      - {name: b, kind: branch, branches: [{when: 'steps.a.confidence < 2', goto: a}]}\n"
    )
    with pytest.raises(WorkerDied) as died:
        async with make_stack(workflows=cyclic):
            pass
    log = Path(str(died.value).rsplit("log: ", 1)[1].rstrip(")")).read_text()
    assert ("cyclic.yaml: workflows.spin.steps[1].branches[0].goto: cycle without an iteration bound: "
            "spin.a -> spin.b -> spin.a") in log
