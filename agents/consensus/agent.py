"""Consensus agent: swarm.responses + swarm.failures -> swarm.results (+ swarm.review).

Moves events only; the decision is :mod:`.join`. The done mark is written to
the table after the result is acknowledged, never before, and the input is
acked only once the mark is in the changelog: a crash in between can repeat
a result (the window is one changelog write; consumers dedupe by task_id)
but never lose one. Until then the task id sits in ``_publishing`` so a
redelivered outcome cannot decide the same task twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from swarmstream.agents.consensus.join import State, apply
from swarmstream.agents.ports import Emit, InputMessage, dead_letter
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import Failure, ModelResponse


class ConsensusStore(Protocol):
    """The consensus table, addressed by task and the task's creation time (its window)."""

    def get(self, task_id: str, created_ms: int) -> State | None: ...
    def set(self, task_id: str, created_ms: int, state: State) -> None: ...
    async def flush(self) -> None:
        """Until every write so far is in the changelog."""


class ConsensusJoiner:
    def __init__(
        self,
        *,
        store: ConsensusStore,
        emit: Emit,
        results_topic: str,
        review_topic: str,
        dead_letter_topic: str,
        review_threshold: float,
        reliability: Callable[[str | None], Mapping[str, float]] = lambda category: {},
    ) -> None:
        self._store = store
        self._emit = emit
        self._results = results_topic
        self._review = review_topic
        self._dead_letters = dead_letter_topic
        self._threshold = review_threshold
        self._reliability = reliability
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
        decided = apply(
            state, outcome, review_threshold=self._threshold, reliability=self._reliability(step.category)
        )
        if decided.duplicate:
            return
        if decided.result is None:
            self._store.set(step.task_id, step.created_ms, decided.state)
            return
        self._publishing.add(step.task_id)
        try:
            if decided.result.status == "low_consensus":
                await self._emit(self._review, step.task_id, decided.result)
            await self._emit(self._results, step.task_id, decided.result)
            self._store.set(step.task_id, step.created_ms, decided.state)
            await self._store.flush()
        finally:
            self._publishing.discard(step.task_id)
