"""Intake agent: swarm.tasks -> swarm.model.<id>, bad input -> swarm.dead-letters.

A task is handled on its home partition, the one the engine's own hash gives its
task id, where every later event of the task lands (they are keyed by task id).
A task another client's partitioner put elsewhere (librdkafka's CRC32, a random
or explicit partition, a key that is not the task id) is forwarded there first,
before any state is opened: otherwise its state and its outcomes live on two
workers.

It opens the task's state before sending any request, so the outcome agent
knows the task (its prompt, for review and for asking more models) and an
intake retried after a crash re-sends the same requests. Chain-mode tasks
are planned by the chain runner; select-mode tasks go on to the selector,
re-keyed by tenant. A task without a category gets one here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from swarmstream.agents.consensus.agent import Reliability
from swarmstream.agents.consensus.join import open_task
from swarmstream.agents.consensus.slots import parse_slot
from swarmstream.agents.dispatch.intake import InvalidTask, Plan, plan_task, same_task
from swarmstream.agents.dispatch.shedding import Action, Admission
from swarmstream.agents.fallback.agent import ChainRunner
from swarmstream.agents.fallback.chains import UnknownChainError
from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.selection.features import classify_category
from swarmstream.agents.taskstate import Finisher, TaskStore
from swarmstream.agents.workflows.dsl import UnknownWorkflowError
from swarmstream.schemas.codec import DecodeError, decode_task
from swarmstream.schemas.models import ModelRequest, TaskRequest, TaskResult, now_ms


class Dispatcher:
    def __init__(
        self,
        *,
        emit: Emit,
        store: TaskStore,
        model_topic: Callable[[str], str],
        dead_letter_topic: str,
        families: Mapping[str, str],
        default_models: Sequence[str],
        chains: ChainRunner | None = None,
        select_topic: str | None = None,
        reliability: Reliability = lambda models, category: {},
        shedding: Callable[[TaskRequest, list[str], int], Admission] | None = None,
        finisher: Finisher | None = None,
        home: Callable[[str], int] | None = None,
        forward: Callable[[TaskRequest, int], Awaitable[None]] | None = None,
    ) -> None:
        """``shedding`` (task, models, partition) -> what to do with a new task when this worker
        is overloaded (``shedding.py``: its queueing against the task's timeout, its models'
        backlogs); a rejected task ends through ``finisher``. ``home``: a
        task id's partition; ``forward`` sends a task to that partition of the task topic."""
        self._emit = emit
        self._store = store
        self._model_topic = model_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._families = dict(families)
        self._default = list(default_models)
        self._chains = chains
        self._select_topic = select_topic
        self._reliability = reliability
        self._shedding = shedding
        self._finisher = finisher
        self._home = home
        self._forward = forward
        self._workflows: Callable[[TaskRequest], Awaitable[None]] | None = None

    def route_workflows(self, open_workflow: Callable[[TaskRequest], Awaitable[None]]) -> None:
        """Tasks with ``workflow`` set go to ``open_workflow`` (the workflow runner) instead of the models;
        it raises ValueError for a workflow it does not know (the task is dead-lettered)."""
        self._workflows = open_workflow

    async def handle(self, message: InputMessage) -> None:
        try:
            task = decode_task(message.value, message.headers, key=message.key)
            if self._home is not None and self._forward is not None:
                home = self._home(task.task_id)
                if home != message.partition:
                    await self._forward(task, home)
                    return
            if task.category is None:  # every record downstream (stats, labels, budgets) is per category
                task = task.model_copy(update={"category": classify_category(task.prompt, task.answer_type)})
            if not self._fresh_or_same(task):
                raise InvalidTask(f"task id {task.task_id!r} is already taken by another task; a repeated "
                                  f"task id must repeat the task (mode, prompt, models, ...): send it with a new id")
            if task.workflow is not None:
                if self._workflows is None:
                    raise InvalidTask(f"workflow {task.workflow!r}: workflows are not configured on this worker")
                await self._workflows(task)
                return
            if task.mode == "select":
                await self._open_select(task)
                return
            if task.mode == "chain":
                await self._open_chain(task, message.partition)
                return
            plan = plan_task(
                task,
                families=self._families,
                default_models=self._default,
                reliability=lambda: self._reliability(list(self._families), task.category),
            )
        except (DecodeError, InvalidTask, UnknownChainError, UnknownWorkflowError) as exc:
            await self._dead.send(message, str(exc), exc)
            return
        state = self._store.get(task.task_id, task.created_ms)
        if state is None:
            if await self._shed(task, plan, message.partition):
                return
            state = open_task(task, order=plan.order, asked=plan.ask, deadline_ms=plan.deadline_ms)
            self._store.set(task.task_id, task.created_ms, state)
        elif state["done"]:
            return  # a redelivered task that already has its result
        for key in state["asked"]:
            if key not in state["answers"] and key not in state["failures"]:
                slot = parse_slot(key)  # a model's sample k > 0 is its own step (consensus/slots.py)
                await self._emit(self._model_topic(slot.model_id), task.task_id,
                                 ModelRequest(task=task, model_id=slot.model_id, sample=slot.sample,
                                              deadline_ms=state["deadline_ms"], expected_models=state["asked"]))

    def _fresh_or_same(self, task: TaskRequest) -> bool:
        """Whether the task is new here, or a redelivery of the task its id already names (then
        each mode's own path answers it once); not a different task under a taken id."""
        state = self._store.get(task.task_id, task.created_ms)
        return state is None or same_task(state, task)

    async def _shed(self, task: TaskRequest, plan: Plan, partition: int) -> bool:
        """Slow down or refuse a new task the worker cannot serve in time; True when refused
        (its one result, ``rejected`` with the reason, is published and the task done, no
        model called). Only new tasks come here: a redelivered one has its state already."""
        if self._shedding is None:
            return False
        models = list(dict.fromkeys(parse_slot(key).model_id for key in plan.ask))  # a model's samples: one backlog
        decision = self._shedding(task, models, partition)
        if decision.action is Action.SLOW:
            await asyncio.sleep(decision.delay_ms / 1000)
        elif decision.action is Action.REJECT and self._finisher is not None:
            state = open_task(task, order=plan.order, asked=[], deadline_ms=plan.deadline_ms)
            await self._finisher.finish(state, TaskResult(
                task_id=task.task_id, status="rejected", mode=task.mode, reason=decision.reason,
                created_ms=task.created_ms, completed_ms=now_ms()))
            return True
        return False

    async def _open_select(self, task: TaskRequest) -> None:
        """Open the task here (keyed by task), then hand it to the selector (keyed by tenant)."""
        if self._select_topic is None:
            raise InvalidTask("select mode is not configured on this worker")
        state = self._store.get(task.task_id, task.created_ms)
        if state is not None and (state["done"] or state["asked"]):
            return  # redelivered after the selector already chose
        if state is None:
            self._store.set(task.task_id, task.created_ms,
                            open_task(task, order=[], asked=[], deadline_ms=task.created_ms + task.timeout_ms))
        await self._emit(self._select_topic, task.tenant, task)

    async def _open_chain(self, task: TaskRequest, partition: int) -> None:
        if self._chains is None:
            raise InvalidTask("chain mode is not configured on this worker")
        state = self._store.get(task.task_id, task.created_ms)
        if state is not None:
            await self._chains.resend(state)  # redelivered after a crash
            return
        state, decision = self._chains.open(task)
        await self._chains.start(state, decision, partition)
