"""The workflow runner's decisions: a step event or a child's result in, the next actions out.

Pure: the workflow's state (a JSON dict, kept in the workflow table keyed by
the workflow's task id), the event, the clock and the workflow definition in;
the new state and what to publish out. ``agent.py`` does the I/O.

How a workflow task travels (every event keyed by the workflow's task id, so
its state has one writer):

1. intake hands a task with ``workflow: <name>`` to :func:`open_workflow`: the
   state opens and the task goes to its first step's topic,
   ``swarm.step.<workflow>.<step>``, with that step appended to ``hops``;
2. a step event (:func:`on_step_event`) is checked against the hop limit and
   the step's iteration bound (``cycle_detected`` when over), then runs its
   step inside the middleware: a ``branch`` or ``transform`` step at once; a
   model or ``workflow`` step by publishing a child task to ``swarm.tasks``
   (``parent_task_id`` set) and waiting; middleware may answer instead;
3. the child's result comes back keyed by the workflow's id
   (:func:`on_child_result`), runs through the middleware's after hooks,
   joins the outputs, and the next step is published, or the workflow ends
   with one TaskResult carrying every step's output and the path taken.

Idempotence: a step event is the task with its whole trail, and only the event
whose trail is the state's current trail runs (a redelivered one re-sends the
child it started); a child result counts only while its step awaits exactly
that child.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmstream.agents.taskstate import WorkflowState
from swarmstream.agents.workflows.conditions import parse_condition
from swarmstream.agents.workflows.dsl import CHILD_MODES, Step, Workflow
from swarmstream.agents.workflows.middleware import MiddlewareChain, StepCall
from swarmstream.agents.workflows.templates import render
from swarmstream.agents.workflows.transforms import (
    TransformError,
    normalise,
    resolve_transform,
)
from swarmstream.schemas.models import StepOutput, TaskRequest, TaskResult

DEPTH_KEY = "workflow_depth"
"""Child workflow tasks carry their depth in ``metadata`` (a user's workflow is depth 0)."""

FAILED_STATUSES = frozenset({"failed", "timeout", "budget_exceeded", "cycle_detected"})
"""A child ending so fails its step (``on_failure: fail`` ends the workflow with that status)."""


@dataclass(frozen=True)
class Publish:
    """The workflow task to its next step's topic (the trail in ``event.hops``)."""

    workflow: str
    step: str
    event: TaskRequest


@dataclass(frozen=True)
class AskChild:
    """A child task to ``swarm.tasks``: its result comes back keyed by the parent."""

    task: TaskRequest


@dataclass(frozen=True)
class Finish:
    """The workflow's one result (through the Finisher: publish, then the done mark)."""

    result: TaskResult


Action = Publish | AskChild | Finish


@dataclass
class Outcome:
    state: WorkflowState | None = None  # write this state (None: unchanged)
    actions: list[Action] = field(default_factory=list)
    duplicate: bool = False


def hop(workflow: str, step: str) -> str:
    return f"{workflow}.{step}"


def open_workflow(task: TaskRequest, wf: Workflow, *, now_ms: int) -> Outcome:
    """The state of a new workflow task and its first step event."""
    trail = [*task.hops, hop(task.workflow or "", wf.first)]
    state: WorkflowState = {
        "task": task.model_dump(),
        "workflow": task.workflow,
        "deadline_ms": task.created_ms + task.timeout_ms,
        "depth": int(task.metadata.get(DEPTH_KEY, "0") or 0),
        "trail": trail,
        "path": [],
        "outputs": {},
        "steps": [],
        "spent_micros": 0,
        "running": None,
        "done": False,
        "opened_ms": now_ms,
    }
    return Outcome(state, [Publish(task.workflow or "", wf.first, step_event(state))])


def step_event(state: WorkflowState) -> TaskRequest:
    return TaskRequest.model_validate({**state["task"], "hops": state["trail"]})


def scope_of(state: WorkflowState, wf: Workflow, step_name: str | None) -> dict[str, Any]:
    """The Reactor view a step sees: the task, earlier outputs, depth, budget and iteration."""
    spent = state["spent_micros"]
    here = hop(state["workflow"], step_name) if step_name else None
    return {
        "task": state["task"],
        "steps": state["outputs"],
        "depth": state["depth"],
        "spent_micros": spent,
        "budget_left_micros": None if wf.budget_micros is None else wf.budget_micros - spent,
        "iteration": state["trail"][:-1].count(here) if here else 0,
    }


def on_step_event(state: WorkflowState | None, event: TaskRequest, wf: Workflow, chain: MiddlewareChain, *,
                  now_ms: int, transforms: Callable[[str], Callable[..., Any]] = resolve_transform) -> Outcome:
    if state is None or state["done"] or event.hops != state["trail"]:
        return Outcome(duplicate=True)  # stale, repeated, or for a task this worker never opened
    name = event.hops[-1].removeprefix(f"{state['workflow']}.")
    step = wf.step(name)
    number = len(state["trail"])
    running = state["running"]
    if running is not None and running["hop"] == number:
        # redelivered after the child went out (or the crash came before it did): send it again;
        # intake and the task table make a repeated child task harmless
        return Outcome(actions=[AskChild(TaskRequest.model_validate(running["child"]))], duplicate=True)
    if now_ms > state["deadline_ms"]:
        return finish(state, wf, "timeout", f"deadline passed before step {name!r} (hop {number})", now_ms=now_ms)
    if number > wf.max_hops:
        return finish(state, wf, "cycle_detected",
                      f"hop limit {wf.max_hops} reached at step {name!r}: {' > '.join(state['trail'][-6:])}",
                      now_ms=now_ms)
    runs = state["trail"].count(hop(state["workflow"], name))
    if step.max_iterations is not None and runs > step.max_iterations:
        return finish(state, wf, "cycle_detected",
                      f"step {name!r} would run {runs} times, over its bound of {step.max_iterations}",
                      now_ms=now_ms)
    if step.kind in CHILD_MODES and wf.budget_micros is not None and state["spent_micros"] >= wf.budget_micros:
        return finish(state, wf, "budget_exceeded",
                      f"step {name!r}: spent {state['spent_micros']} of {wf.budget_micros} micros", now_ms=now_ms)

    scope = scope_of(state, wf, name)
    call = StepCall(workflow=state["workflow"], step=name, kind=step.kind, hop=number,
                    prompt=render(step.prompt, scope),
                    system=render(step.system, scope) if step.system is not None else state["task"].get("system"),
                    params=params_for(step, scope, state["task"]), scope=scope, now_ms=now_ms)
    ran, shortcut = chain.before(call)
    if shortcut is not None:
        output = new_output(step, number, **shortcut)
        return _completed(state, wf, step, chain.after(call, output, ran), now_ms=now_ms)
    if step.kind == "branch":
        target, why = choose_branch(step, scope, wf)
        output = new_output(step, number, detail=f"-> {target} ({why})")
        state = {**state, "next_override": target}
        return _completed(state, wf, step, chain.after(call, output, ran), now_ms=now_ms)
    if step.kind == "transform":
        try:
            fields = normalise(transforms(step.function or "")(scope, **step.args))
        except (TransformError, TypeError, ValueError, KeyError) as exc:
            return finish(state, wf, "failed", f"step {name!r}: transform {step.function!r} failed: "
                          f"{type(exc).__name__}: {exc}", now_ms=now_ms)
        output = new_output(step, number, **fields)
        return _completed(state, wf, step, chain.after(call, output, ran), now_ms=now_ms)
    if not call.prompt.strip():
        return finish(state, wf, "failed", f"step {name!r}: its prompt rendered empty", now_ms=now_ms)
    child = child_task(state, step, call, number)
    running = {"step": name, "hop": number, "child_id": child.task_id, "child": child.model_dump(),
               "ran": ran, "started_ms": now_ms,
               "call": {"prompt": call.prompt, "system": call.system, "params": call.params, "notes": call.notes}}
    return Outcome({**state, "running": running}, [AskChild(child)])


def on_child_result(state: WorkflowState | None, result: TaskResult, wf: Workflow, chain: MiddlewareChain, *,
                    now_ms: int) -> Outcome:
    if state is None or state["done"]:
        return Outcome(duplicate=True)
    running = state["running"]
    if running is None or running["child_id"] != result.task_id:
        return Outcome(duplicate=True)
    step = wf.step(running["step"])
    saved = running["call"]
    call = StepCall(workflow=state["workflow"], step=step.name, kind=step.kind, hop=running["hop"],
                    prompt=saved["prompt"], system=saved["system"], params=saved["params"],
                    scope=scope_of(state, wf, step.name), now_ms=now_ms, notes=dict(saved["notes"]))
    votes = [[v.model_id, v.answer] for v in result.votes]
    output = new_output(step, running["hop"], status=result.status, answer=result.answer,
                        confidence=result.confidence, agreement=result.agreement, answered_by=result.answered_by,
                        cost_micros=result.cost_micros, latency_ms=max(0, now_ms - running["started_ms"]),
                        child_task_id=result.task_id, votes=votes,
                        detail=result.reason[:500] if result.status != "ok" else "")
    output = chain.after(call, output, running["ran"])
    return _completed(state, wf, step, output, now_ms=now_ms)


def _completed(state: WorkflowState, wf: Workflow, step: Step, output: dict[str, Any], *, now_ms: int) -> Outcome:
    """Join ``output`` into the state, then move on: the next step, or the end."""
    target = state.get("next_override") or wf.next_of(step.name)
    state = {k: v for k, v in state.items() if k != "next_override"}
    state = {
        **state,
        "running": None,
        "path": [*state["path"], step.name],
        "outputs": {**state["outputs"], step.name: output},
        "steps": [*state["steps"], output],
        "spent_micros": state["spent_micros"] + int(output.get("cost_micros") or 0),
    }
    if output.get("status") in FAILED_STATUSES and step.on_failure == "fail":
        return finish(state, wf, output["status"], f"step {step.name!r} ended {output['status']}"
                      + (f": {output['detail']}" if output.get("detail") else ""), now_ms=now_ms)
    if target == "end":
        return finish(state, wf, "ok", "", now_ms=now_ms)
    if target == "review":
        return finish(state, wf, "low_consensus", f"step {step.name!r} sent the task to human review",
                      now_ms=now_ms)
    state = {**state, "trail": [*state["trail"], hop(state["workflow"], target)]}
    return Outcome(state, [Publish(state["workflow"], target, step_event(state))])


def finish(state: WorkflowState, wf: Workflow, status: str, reason: str, *, now_ms: int) -> Outcome:
    answer_step = answer_output(state, wf)
    task = state["task"]
    result = TaskResult(
        task_id=task["task_id"],
        status=status,  # type: ignore[arg-type]
        mode="workflow",
        answer=answer_step.get("answer") if answer_step and status in ("ok", "low_consensus") else None,
        agreement=float(answer_step.get("agreement") or 0.0) if answer_step else 0.0,
        confidence=float(answer_step.get("confidence") or 0.0) if answer_step else 0.0,
        strategy=f"workflow:{state['workflow']}",
        answered_by=answer_step.get("answered_by") if answer_step else None,
        models_asked=sum(len(o.get("votes") or []) or (1 if o.get("child_task_id") else 0) for o in state["steps"]),
        cost_micros=state["spent_micros"],
        created_ms=task["created_ms"],
        completed_ms=now_ms,
        reason=reason,
        path=list(state["path"]),
        steps=[StepOutput.model_validate({k: v for k, v in o.items() if k in StepOutput.model_fields})
               for o in state["steps"]],
    )
    return Outcome({**state, "running": None}, [Finish(result)])


def answer_output(state: WorkflowState, wf: Workflow) -> dict[str, Any] | None:
    """The output whose answer is the workflow's: ``answer_from``'s, else the last with an answer."""
    if wf.answer_from is not None:
        return state["outputs"].get(wf.answer_from)
    for output in reversed(state["steps"]):
        if output.get("answer") is not None:
            return output  # type: ignore[no-any-return]
    return None


def new_output(step: Step, number: int, **fields: Any) -> dict[str, Any]:
    return {"step": step.name, "kind": step.kind, "status": "ok", "answer": None, "confidence": 0.0,
            "agreement": 0.0, "answered_by": None, "cost_micros": 0, "latency_ms": 0, "cached": False,
            "hop": number, "child_task_id": None, "detail": "", "votes": [], **fields}


def choose_branch(step: Step, scope: Mapping[str, Any], wf: Workflow) -> tuple[str, str]:
    for branch in step.branches:
        if parse_condition(branch.when).holds(scope):
            return branch.goto, branch.when
    return step.otherwise or step.next or wf.following(wf.index(step.name)), "otherwise"


def params_for(step: Step, scope: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
    """The child's parameters: the step's, with the first conditional choice that holds applied."""
    params: dict[str, Any] = {
        "models": list(step.models),
        "strategy": step.strategy,
        "policy": step.policy,
        "chain": step.chain,
        "min_models": step.min_models,
        "max_models": step.max_models,
        "early_stop": step.early_stop,
        "max_tokens": step.max_tokens or task.get("max_tokens") or 256,
        "answer_type": step.answer_type or task.get("answer_type") or "label",
        "labels": list(step.labels if step.labels is not None else task.get("labels") or []),
        "timeout_ms": step.timeout_ms,
    }
    if step.tools:
        params["tools"] = list(step.tools)
    for i, choice in enumerate(step.choose):
        if parse_condition(choice.when).holds(scope):
            params.update({k: v for k, v in choice.model_dump(exclude={"when"}).items() if v is not None})
            params["choice"] = i
            break
    return params


def child_id(parent: str, number: int, step: str) -> str:
    """``<parent>/<hop>/<step>``, or a hash of the parent when that would pass the id's 200 characters."""
    plain = f"{parent}/{number}/{step}"
    if len(plain) <= 200:
        return plain
    return f"wf-{hashlib.sha256(parent.encode()).hexdigest()[:32]}/{number}/{step}"


def child_task(state: WorkflowState, step: Step, call: StepCall, number: int) -> TaskRequest:
    task = state["task"]
    params = call.params
    deadline_ms = state["deadline_ms"]
    if params.get("timeout_ms"):
        deadline_ms = min(deadline_ms, call.now_ms + int(params["timeout_ms"]))
    metadata = {**task.get("metadata", {}), "workflow": state["workflow"], "workflow_step": step.name}
    fields: dict[str, Any] = {
        "task_id": child_id(task["task_id"], number, step.name),
        # the parent's creation time: the child's deadline is measured from it, and its result
        # carries it, so the workflow table (windowed by creation time) finds the parent's state
        "created_ms": task["created_ms"],
        "prompt": call.prompt,
        "system": call.system,
        "answer_type": params["answer_type"],
        "labels": params["labels"],
        "timeout_ms": max(1, deadline_ms - task["created_ms"]),
        "max_tokens": params["max_tokens"],
        "tenant": task.get("tenant", "default"),
        "category": task.get("category"),
        "metadata": metadata,
        "parent_task_id": task["task_id"],
        "hops": state["trail"],
    }
    if step.kind == "workflow":
        fields.update(workflow=step.workflow, metadata={**metadata, DEPTH_KEY: str(state["depth"] + 1)})
    else:
        mode = CHILD_MODES[step.kind]
        if step.kind == "tools":
            mode = "consensus" if len(params["models"]) > 1 else "single"
            fields.update(tools=list(step.tools), tool_policy=step.tool_policy, max_turns=step.max_turns)
        fields.update(mode=mode, models=params["models"], strategy=params["strategy"],
                      policy=params["policy"], chain=params["chain"], min_models=params["min_models"],
                      max_models=params["max_models"], early_stop=params["early_stop"])
    return TaskRequest.model_validate(fields)


def overdue(state: WorkflowState, now_ms: int, grace_ms: int) -> TaskResult | TaskRequest | None:
    """What the sweeper sends for a workflow stuck past its deadline: a timeout result for
    the child it awaits (lost on the way), or its pending step event again (the step
    then ends the workflow ``timeout``). None while it is on time or done."""
    if state.get("done") or state["deadline_ms"] + grace_ms > now_ms:
        return None
    running = state["running"]
    if running is not None:
        return TaskResult(task_id=running["child_id"], status="timeout", mode="workflow",
                          created_ms=state["task"]["created_ms"], completed_ms=now_ms,
                          reason="no result arrived by the deadline (swept)")
    return step_event(state)
