"""Consensus agent: swarm.responses + swarm.failures -> swarm.results (+ swarm.review).

Moves events only; the decisions are :mod:`.join`'s. The done mark is written
to the table after the result is acknowledged, never before, and the input
is acked only once the mark is flushed to the changelog: a crash in between
can repeat a result (the window is one changelog write; consumers dedupe by
task_id) but never lose one. Until then the task id sits in ``_publishing``
so a redelivered outcome cannot decide the same task twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from swarmstream.agents.consensus.join import State, apply, review_reason
from swarmstream.agents.ports import Emit, InputMessage, dead_letter
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import (
    Failure,
    ModelRequest,
    ModelResponse,
    ReviewItem,
    TaskRequest,
    TaskResult,
    now_ms,
)


class ConsensusStore(Protocol):
    """The consensus table, addressed by task and the task's creation time (its window)."""

    def get(self, task_id: str, created_ms: int) -> State | None: ...
    def set(self, task_id: str, created_ms: int, state: State) -> None: ...
    async def flush(self) -> None:
        """Until every write so far is in the changelog."""


Reliability = Callable[[list[str], str | None], Mapping[str, float]]
"""(models, category) -> each model's measured reliability, for weighted votes."""


class ConsensusJoiner:
    def __init__(
        self,
        *,
        store: ConsensusStore,
        emit: Emit,
        model_topic: Callable[[str], str],
        results_topic: str,
        review_topic: str,
        dead_letter_topic: str,
        review_threshold: float,
        stop_threshold: float,
        reliability: Reliability = lambda models, category: {},
        on_decided: Callable[[State, TaskResult], None] = lambda state, result: None,
    ) -> None:
        self._store = store
        self._emit = emit
        self._model_topic = model_topic
        self._results = results_topic
        self._review = review_topic
        self._dead_letters = dead_letter_topic
        self._review_threshold = review_threshold
        self._stop_threshold = stop_threshold
        self._reliability = reliability
        self._on_decided = on_decided
        self._publishing: set[str] = set()

    async def handle(self, message: InputMessage) -> None:
        try:
            outcome = codec().decode(message.value or b"")
            if not isinstance(outcome, (ModelResponse, Failure)):
                raise DecodeError(f"expected ModelResponse or Failure, got {outcome.avro_name}")
        except DecodeError as exc:
            key = (message.key or b"").decode("utf-8", "replace")
            await self._emit(self._dead_letters, key, dead_letter(message, str(exc), exc))
            return
        step = outcome.step
        if step.task_id in self._publishing:
            return
        state = self._store.get(step.task_id, step.created_ms)
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
        self._publishing.add(step.task_id)
        try:
            await self._publish(decided.state, decided.result)
            self._store.set(step.task_id, step.created_ms, decided.state)
            await self._store.flush()
        finally:
            self._publishing.discard(step.task_id)
        self._on_decided(decided.state, decided.result)

    async def _ask(self, state: State, models: list[str]) -> None:
        task = TaskRequest.model_validate(state["task"])
        await asyncio.gather(
            *(
                self._emit(
                    self._model_topic(model),
                    task.task_id,
                    ModelRequest(task=task, model_id=model, deadline_ms=state["deadline_ms"],
                                 expected_models=state["asked"]),
                )
                for model in models
            )
        )

    async def _publish(self, state: State, result: TaskResult) -> None:
        if result.status == "low_consensus" and "prompt" in state["task"]:
            item = ReviewItem(
                task=TaskRequest.model_validate(state["task"]),
                result=result,
                reason=review_reason(result, self._review_threshold),
                flagged_ms=now_ms(),
            )
            await self._emit(self._review, result.task_id, item)
        await self._emit(self._results, result.task_id, result)
