"""Workflow runner agent: step topics + step results -> the next step, child tasks, one result.

    intake (task with `workflow`) ──► open ──► swarm.step.<workflow>.<first step>
    swarm.step.<workflow>.<step> ──► run the step inside the middleware:
         branch / transform / a middleware's answer ──► swarm.step.<workflow>.<next> | the result
         model step / workflow call ──► child task ──► swarm.tasks (the normal pipeline)
    swarm.step-results (children's results, keyed by the parent) ──► swarm.step.<workflow>.<next>
                                                                  | swarm.results (one, via the Finisher)

Moves events only: every decision is :mod:`.runner`'s. The workflow state is
written before any await (events of one task interleave on this worker), and
the task ends through a :class:`~swarmstream.agents.taskstate.Finisher` over
the workflow table: the result is published, then the done mark written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.taskstate import Finisher, TaskStore
from swarmstream.agents.workflows import runner
from swarmstream.agents.workflows.dsl import UnknownWorkflowError, WorkflowsFile
from swarmstream.agents.workflows.middleware import MiddlewareChain
from swarmstream.agents.workflows.runner import AskChild, Finish, Outcome, Publish
from swarmstream.schemas.models import TaskRequest, TaskResult, now_ms

log = logging.getLogger(__name__)


class WorkflowRunner:
    def __init__(
        self,
        *,
        workflows: WorkflowsFile,
        chains: Mapping[str, MiddlewareChain],
        store: TaskStore,
        emit: Emit,
        finisher: Finisher,
        tasks_topic: str,
        step_topic: Callable[[str, str], str],
        step_results_topic: str,
        dead_letter_topic: str,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._workflows = workflows
        self._chains = chains
        self._store = store
        self._emit = emit
        self._finisher = finisher
        self._tasks = tasks_topic
        self._step_topic = step_topic
        self._step_results = step_results_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._clock = clock

    # -- intake -------------------------------------------------------------------

    async def open(self, task: TaskRequest) -> None:
        """Called by intake for a task with ``workflow`` set (raises UnknownWorkflowError: dead-lettered)."""
        wf = self._workflows.get(task.workflow or "")
        if wf is None:
            known = ", ".join(sorted(self._workflows.workflows)) or "none configured"
            raise UnknownWorkflowError(f"unknown workflow {task.workflow!r} (known: {known})")
        state = self._store.get(task.task_id, task.created_ms)
        if state is not None:
            if not state["done"] and state["running"] is None and not state["path"]:
                await self._act(Outcome(actions=[Publish(state["workflow"], wf.first, runner.step_event(state))]))
            return  # redelivered: the workflow already moved on from its first step
        await self._act(runner.open_workflow(task, wf, now_ms=self._clock()))

    # -- step events and children's results ---------------------------------------------

    async def handle(self, message: InputMessage) -> None:
        record = await self._dead.decode(message, TaskRequest, TaskResult)
        if record is None:
            return
        if isinstance(record, TaskRequest):
            await self._on_step(record, message)
        else:
            await self._on_child_result(record, message)

    async def _on_step(self, event: TaskRequest, message: InputMessage) -> None:
        wf = self._workflows.get(event.workflow or "")
        if wf is None or not event.hops:
            await self._dead.send(message, f"a step event for unknown workflow {event.workflow!r} or without hops")
            return
        if self._finisher.busy(event.task_id):
            return
        state = self._store.get(event.task_id, event.created_ms)
        outcome = runner.on_step_event(state, event, wf, self._chains[event.workflow or ""], now_ms=self._clock())
        await self._act(outcome)

    async def _on_child_result(self, result: TaskResult, message: InputMessage) -> None:
        parent = (message.key or b"").decode("utf-8", "replace")
        if self._finisher.busy(parent):
            return
        state = self._store.get(parent, result.created_ms)
        if state is None:
            log.warning("a step result for workflow task %s, whose state this worker does not hold", parent)
            return
        if state["done"]:
            return  # a late child's result: the workflow's state is its DoneRecord now
        wf = self._workflows.get(state["workflow"])
        if wf is None:
            return  # the workflows file changed under a running task: nothing can continue it
        outcome = runner.on_child_result(state, result, wf, self._chains[state["workflow"]], now_ms=self._clock())
        await self._act(outcome)

    async def _act(self, outcome: Outcome) -> None:
        state = outcome.state
        finish = next((a for a in outcome.actions if isinstance(a, Finish)), None)
        if state is not None and finish is None:
            task = state["task"]
            self._store.set(task["task_id"], task["created_ms"], state)  # before any await
        for action in outcome.actions:
            if isinstance(action, Publish):
                await self._emit(self._step_topic(action.workflow, action.step), action.event.task_id, action.event)
            elif isinstance(action, AskChild):
                await self._emit(self._tasks, action.task.task_id, action.task)
        if finish is not None:
            assert state is not None
            await self._finisher.finish(state, finish.result)

    # -- the deadline sweeper -------------------------------------------------------------

    def overdue(self, items: list[tuple[str, runner.WorkflowState]], now: int, grace_ms: int
                ) -> list[tuple[str, str, TaskResult | TaskRequest]]:
        """(topic, key, record) to send for every workflow stuck past its deadline in this worker."""
        out: list[tuple[str, str, TaskResult | TaskRequest]] = []
        for task_id, state in items:
            record = runner.overdue(state, now, grace_ms)
            if isinstance(record, TaskResult):
                out.append((self._step_results, task_id, record))
            elif isinstance(record, TaskRequest):
                step = record.hops[-1].removeprefix(f"{state['workflow']}.")
                out.append((self._step_topic(state["workflow"], step), task_id, record))
        return out
