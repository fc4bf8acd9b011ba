"""Outcome agent: swarm.responses + swarm.failures -> swarm.results (+ swarm.review).

Moves events only: consensus decisions are :mod:`.join`'s, chain-mode tasks
go to the chain runner, and :class:`~swarmstream.agents.taskstate.Finisher`
ends every task exactly once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from swarmstream.agents.consensus.join import apply, quality_labels
from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.taskstate import Finisher, State, TaskStore
from swarmstream.schemas.models import (
    Failure,
    ModelRequest,
    ModelResponse,
    QualityEvent,
    TaskRequest,
    TaskResult,
    now_ms,
)

Reliability = Callable[[list[str], str | None], Mapping[str, float]]
"""(models, category) -> each model's measured reliability, for weighted votes."""

ChainHandler = Callable[[ModelResponse | Failure, int], Awaitable[None]]


class ConsensusJoiner:
    def __init__(
        self,
        *,
        store: TaskStore,
        emit: Emit,
        finisher: Finisher,
        model_topic: Callable[[str], str],
        dead_letter_topic: str,
        review_threshold: float,
        stop_threshold: float,
        reliability: Reliability = lambda models, category: {},
        quality_topic: str | None = None,
        chains: ChainHandler | None = None,
    ) -> None:
        self._store = store
        self._emit = emit
        self._finisher = finisher
        self._model_topic = model_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._review_threshold = review_threshold
        self._stop_threshold = stop_threshold
        self._reliability = reliability
        self._quality = quality_topic
        self._chains = chains

    async def handle(self, message: InputMessage) -> None:
        outcome = await self._dead.decode(message, ModelResponse, Failure)
        if outcome is None:
            return
        step = outcome.step
        if self._finisher.busy(step.task_id):
            return
        if step.mode == "chain" and self._chains is not None:
            await self._chains(outcome, message.partition)
            return
        state = self._store.get(step.task_id, step.created_ms)
        if state is not None and state["done"]:
            return  # a late or repeated outcome: a finished task's state is its DoneRecord, no votes left
        asked = state["asked"] if state else step.expected_models
        decided = apply(
            state,
            outcome,
            review_threshold=self._review_threshold,
            stop_threshold=self._stop_threshold,
            reliability=self._reliability(list(asked), step.category),
        )
        if decided.duplicate:
            return
        if decided.result is None:
            self._store.set(step.task_id, step.created_ms, decided.state)  # before any await: events interleave
            if decided.ask:
                await self._ask(decided.state, decided.ask)
            return
        await self._finisher.finish(decided.state, decided.result)
        await self._teach(decided.state, decided.result)

    async def _teach(self, state: State, result: TaskResult) -> None:
        """Free quality labels for the selectors: see :func:`.join.quality_labels`."""
        if self._quality is None:
            return
        category = state["task"].get("category")
        for model, reward in quality_labels(result):
            await self._emit(self._quality, model, QualityEvent(model_id=model, category=category, reward=reward,
                                                                source="consensus", task_id=result.task_id,
                                                                at_ms=now_ms()))

    async def _ask(self, state: State, models: list[str]) -> None:
        task = TaskRequest.model_validate(state["task"])
        for model in models:
            await self._emit(self._model_topic(model), task.task_id,
                             ModelRequest(task=task, model_id=model, deadline_ms=state["deadline_ms"],
                                          expected_models=state["asked"]))
