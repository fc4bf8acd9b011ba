"""The pure runner: step events and children's results in, the next actions out (no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from swarmstream.agents.workflows import runner
from swarmstream.agents.workflows.dsl import Workflow, parse_workflows
from swarmstream.agents.workflows.middleware import (
    MiddlewareChain,
    MiddlewareEnv,
    ResponseCache,
)
from swarmstream.agents.workflows.runner import AskChild, Finish, Outcome, Publish
from swarmstream.schemas.models import CastVote, TaskRequest, TaskResult

T0 = 1_700_000_000_000


def workflow(*steps: dict[str, Any], **extra: Any) -> Workflow:
    return parse_workflows({"workflows": {"w": {"steps": list(steps), **extra}}}, source="t").workflows["w"]


def task(**extra: Any) -> TaskRequest:
    return TaskRequest(task_id="t1", created_ms=T0, prompt="What is 20 + 22? Answer with a number.",
                       answer_type="number", workflow="w", timeout_ms=60_000, **extra)


class Run:
    """Drives the runner the way the agent does, keeping the state between events."""

    def __init__(self, wf: Workflow, chain: MiddlewareChain | None = None, **task_extra: Any) -> None:
        self.wf, self.chain, self.now = wf, chain or MiddlewareChain(), T0 + 10
        outcome = runner.open_workflow(task(**task_extra), wf, now_ms=self.now)
        self.state = outcome.state
        self.pending = outcome.actions

    def apply(self, outcome: Outcome) -> list[Any]:
        if outcome.state is not None:
            self.state = outcome.state
        self.pending = outcome.actions
        return outcome.actions

    def step(self) -> list[Any]:
        (publish,) = self.pending
        assert isinstance(publish, Publish)
        self.now += 5
        return self.apply(runner.on_step_event(self.state, publish.event, self.wf, self.chain, now_ms=self.now))

    def answer(self, answer: str | None, status: str = "ok", votes: tuple[str, ...] = (), cost: int = 10) -> list[Any]:
        (ask,) = self.pending
        assert isinstance(ask, AskChild)
        self.now += 5
        result = TaskResult(task_id=ask.task.task_id, status=status, answer=answer, agreement=1.0, confidence=0.9,
                            votes=[CastVote(model_id=f"m{i}", answer=v) for i, v in enumerate(votes)],
                            cost_micros=cost, created_ms=ask.task.created_ms)
        return self.apply(runner.on_child_result(self.state, result, self.wf, self.chain, now_ms=self.now))

    def result(self) -> TaskResult:
        (finish,) = self.pending
        assert isinstance(finish, Finish)
        return finish.result


def test_a_model_step_asks_a_child_keyed_to_come_back_to_its_parent() -> None:
    run = Run(workflow({"name": "first", "kind": "consensus", "models": ["a"]},
                       {"name": "second", "kind": "consensus", "prompt": "What is {{ steps.first.answer }} + 8?"}))
    (first,) = run.pending
    assert (first.step, first.event.hops) == ("first", ["w.first"])
    (ask,) = run.step()
    child = ask.task
    assert (child.task_id, child.parent_task_id, child.created_ms) == ("t1/1/first", "t1", T0)
    assert (child.mode, child.models, child.prompt, child.workflow) == ("consensus", ["a"], task().prompt, None)
    assert child.metadata["workflow_step"] == "first"
    (nxt,) = run.answer("42")
    assert (nxt.step, nxt.event.hops) == ("second", ["w.first", "w.second"])
    (ask,) = run.step()
    assert ask.task.prompt == "What is 42 + 8?"
    run.answer("50")
    result = run.result()
    assert (result.status, result.answer, result.path, result.cost_micros) == ("ok", "50", ["first", "second"], 20)
    assert [s.answer for s in result.steps] == ["42", "50"] and result.mode == "workflow"


def test_branch_and_transform_steps_run_without_a_child() -> None:
    run = Run(workflow(
        {"name": "quick", "kind": "consensus"},
        {"name": "check", "kind": "branch", "branches": [{"when": "steps.quick.answer == '4'", "goto": "sum"}],
         "otherwise": "review"},
        {"name": "sum", "kind": "transform", "function": "vote", "args": {"steps": ["quick"]}},
    ))
    run.step()
    (publish,) = run.answer("4", votes=("4", "4", "5"))
    assert publish.step == "check"
    (publish,) = run.step()
    assert publish.step == "sum"
    run.step()
    result = run.result()
    assert result.path == ["quick", "check", "sum"]
    assert (result.answer, round(result.confidence, 3)) == ("4", 0.667)
    assert result.steps[1].detail == "-> sum (steps.quick.answer == '4')"


def test_a_branch_to_review_ends_low_consensus() -> None:
    run = Run(workflow({"name": "quick", "kind": "consensus"},
                       {"name": "check", "kind": "branch", "branches": [{"when": "steps.quick.answer != '4'",
                                                                         "goto": "review"}]}))
    run.step()
    run.answer("5")
    run.step()
    result = run.result()
    assert (result.status, result.answer, result.path) == ("low_consensus", "5", ["quick", "check"])
    assert "human review" in result.reason


@pytest.mark.parametrize(
    ("extra", "runs", "reason"),
    [
        ({"max_hops": 3}, 3, "hop limit 3 reached"),
        ({"max_hops": 50}, 4, "over its bound of 4"),
    ],
)
def test_a_self_loop_ends_cycle_detected(extra: dict[str, Any], runs: int, reason: str) -> None:
    run = Run(workflow({"name": "again", "kind": "consensus", "next": "again", "max_iterations": 4}, **extra))
    children = 0
    while True:
        actions = run.step()
        if isinstance(actions[0], Finish):
            break
        children += 1
        run.answer("42")
    result = run.result()
    assert (result.status, children, result.path) == ("cycle_detected", runs, ["again"] * runs)
    assert reason in result.reason


def test_the_inherited_trail_counts_towards_the_hop_limit() -> None:
    run = Run(workflow({"name": "a", "kind": "consensus"}, max_hops=3), hops=["x.one", "x.two", "x.call"])
    run.step()
    assert run.result().status == "cycle_detected"


def test_stale_and_repeated_events_change_nothing_and_a_redelivered_step_resends_its_child() -> None:
    run = Run(workflow({"name": "a", "kind": "consensus"}, {"name": "b", "kind": "consensus"}))
    (publish,) = run.pending
    (ask,) = run.step()
    again = runner.on_step_event(run.state, publish.event, run.wf, run.chain, now_ms=run.now)
    assert again.duplicate and again.state is None and again.actions == [AskChild(ask.task)]
    stranger = TaskResult(task_id="t1/9/zz", status="ok", answer="1", created_ms=T0)
    assert runner.on_child_result(run.state, stranger, run.wf, run.chain, now_ms=run.now).duplicate
    run.answer("42")
    stale = runner.on_step_event(run.state, publish.event, run.wf, run.chain, now_ms=run.now)
    assert stale.duplicate and stale.actions == []  # the trail moved on


def test_a_failed_child_ends_the_workflow_unless_the_step_continues() -> None:
    run = Run(workflow({"name": "a", "kind": "chain"}, {"name": "b", "kind": "consensus"}))
    run.step()
    run.answer(None, status="failed")
    result = run.result()
    assert (result.status, result.path) == ("failed", ["a"]) and "step 'a' ended failed" in result.reason

    run = Run(workflow({"name": "a", "kind": "chain", "on_failure": "continue"}, {"name": "b", "kind": "consensus"}))
    run.step()
    (publish,) = run.answer(None, status="timeout")
    assert publish.step == "b"


def test_a_transform_that_raises_fails_the_workflow_naming_the_step() -> None:
    run = Run(workflow({"name": "x", "kind": "transform", "function": "tests.agents.workflows.fixtures:explode"}))
    run.step()
    result = run.result()
    assert result.status == "failed" and "step 'x': transform" in result.reason and "boom" in result.reason


def test_past_the_deadline_or_the_budget_the_workflow_ends() -> None:
    run = Run(workflow({"name": "a", "kind": "consensus"}))
    (publish,) = run.pending
    late = runner.on_step_event(run.state, publish.event, run.wf, run.chain, now_ms=T0 + 61_000)
    assert late.actions[0].result.status == "timeout"

    run = Run(workflow({"name": "a", "kind": "consensus", "next": "a", "max_iterations": 9}, budget_micros=25))
    statuses = []
    while not isinstance(run.step()[0], Finish):
        run.answer("42", cost=10)
        statuses.append("ran")
    result = run.result()
    assert (result.status, len(statuses), result.cost_micros) == ("budget_exceeded", 3, 30)


def test_conditional_choice_sees_depth_and_budget() -> None:
    wf = workflow({"name": "a", "kind": "consensus", "models": ["big", "bigger"],
                   "choose": [{"when": "depth > 0", "models": ["cheap"]},
                              {"when": "budget_left_micros < 5", "models": ["cheapest"]}]}, budget_micros=100)
    (ask,) = Run(wf).step()
    assert ask.task.models == ["big", "bigger"]
    (ask,) = Run(wf, metadata={"workflow_depth": "2"}).step()
    assert ask.task.models == ["cheap"]


def test_a_workflow_step_calls_its_workflow_one_level_deeper() -> None:
    run = Run(workflow({"name": "sub", "kind": "workflow", "workflow": "w", "max_iterations": 2},
                       {"name": "z", "kind": "consensus"}))
    (ask,) = run.step()
    child = ask.task
    assert (child.workflow, child.parent_task_id, child.hops) == ("w", "t1", ["w.sub"])
    assert child.metadata["workflow_depth"] == "1"


def test_a_cache_hit_answers_the_step_without_a_child() -> None:
    env = MiddlewareEnv(cache={})
    chain = MiddlewareChain([ResponseCache(env, ttl_s=60)])
    wf = workflow({"name": "a", "kind": "consensus", "models": ["m"]})
    first = Run(wf, chain)
    first.step()
    first.answer("42")
    assert not first.result().steps[0].cached
    second = Run(wf, chain)
    actions = second.step()
    assert isinstance(actions[0], Finish)  # no AskChild: no model call
    step = second.result().steps[0]
    assert (step.answer, step.cached, step.cost_micros) == ("42", True, 0)


def test_the_sweeper_ends_a_stuck_workflow() -> None:
    run = Run(workflow({"name": "a", "kind": "consensus"}))
    assert runner.overdue(run.state, T0 + 1_000, 2_000) is None
    pending = runner.overdue(run.state, T0 + 63_000, 2_000)
    assert isinstance(pending, TaskRequest) and pending.hops == ["w.a"]  # the step event again
    (ask,) = run.step()
    swept = runner.overdue(run.state, T0 + 63_000, 2_000)
    assert isinstance(swept, TaskResult) and (swept.task_id, swept.status) == (ask.task.task_id, "timeout")
    run.apply(runner.on_child_result(run.state, swept, run.wf, run.chain, now_ms=T0 + 63_000))
    assert run.result().status == "timeout"
