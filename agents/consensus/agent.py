"""Outcome agent: swarm.responses + swarm.failures -> swarm.results (+ swarm.review).

Moves events only: consensus decisions are :mod:`.join`'s, chain-mode tasks
go to the chain runner, and :class:`~swarmstream.agents.taskstate.Finisher`
ends every task exactly once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from swarmstream.agents.consensus.clustering import Embedder
from swarmstream.agents.consensus.embeddings import TextEmbeddings
from swarmstream.agents.consensus.join import apply, completes, quality_labels
from swarmstream.agents.consensus.judge_phase import JudgeAsk, Judging
from swarmstream.agents.consensus.judging import VERDICT_SCHEMA
from swarmstream.agents.consensus.slots import parse_slot, slot_of
from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.taskstate import ConsensusState, Finisher, TaskStore
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
        judging: Judging | None = None,
        embeddings: TextEmbeddings | None = None,
    ) -> None:
        """``judging``: the judge phase's configuration (judge strategies, ``judge_phase.py``);
        ``embeddings``: a meaning-aware embedder for free-text clustering (None: lexical)."""
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
        self._judging = judging or Judging()
        self._embeddings = embeddings

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
        embedder: Embedder | None = None
        if self._embeddings is not None and step.answer_type == "text" and completes(state, outcome):
            embedder = await self._embeddings.embedder_for(
                lambda: self._texts(step.task_id, step.created_ms, outcome))  # re-reads the state: it awaits
            state = self._store.get(step.task_id, step.created_ms)
            if state is not None and state["done"]:
                return
        asked = state["asked"] if state else step.expected_models
        decided = apply(
            state,
            outcome,
            review_threshold=self._review_threshold,
            stop_threshold=self._stop_threshold,
            reliability=self._reliability([parse_slot(m).model_id for m in asked], step.category),
            judging=self._judging,
            embedder=embedder,
        )
        if decided.duplicate:
            return
        if decided.result is None:
            self._store.set(step.task_id, step.created_ms, decided.state)  # before any await: events interleave
            if decided.ask:
                await self._ask(decided.state, decided.ask)
            if decided.judge is not None:
                await self._ask_judge(decided.state, decided.judge)
            return
        await self._finisher.finish(decided.state, decided.result)
        await self._teach(decided.state, decided.result)

    async def _teach(self, state: ConsensusState, result: TaskResult) -> None:
        """Free quality labels for the selectors: see :func:`.join.quality_labels`."""
        if self._quality is None:
            return
        category = state["task"].get("category")
        for model, reward in quality_labels(result):
            await self._emit(self._quality, model, QualityEvent(model_id=model, category=category, reward=reward,
                                                                source="consensus", task_id=result.task_id,
                                                                at_ms=now_ms()))

    def _texts(self, task_id: str, created_ms: int, outcome: ModelResponse | Failure) -> list[str]:
        """Every candidate answer of the task now, with ``outcome``'s: what one embeddings batch holds."""
        state = self._store.get(task_id, created_ms) or {}
        texts = [a["answer"] for a in state.get("answers", {}).values()]
        candidate = isinstance(outcome, ModelResponse) and slot_of(outcome.step).role == "candidate"
        return texts + [outcome.answer] if candidate else texts

    async def _ask(self, state: ConsensusState, slots: list[str]) -> None:
        task = TaskRequest.model_validate(state["task"])
        for key in slots:
            slot = parse_slot(key)
            await self._emit(self._model_topic(slot.model_id), task.task_id,
                             ModelRequest(task=task, model_id=slot.model_id, sample=slot.sample,
                                          deadline_ms=state["deadline_ms"], expected_models=state["asked"]))

    async def _ask_judge(self, state: ConsensusState, ask: JudgeAsk) -> None:
        """The judge phase's call: a model request like a candidate's, of role judge or fuse, for a
        task whose prompt is the judge's. Tools are off (a judge reads, it does not act), one sample."""
        await self._emit(self._model_topic(ask.model_id), state["task"]["task_id"], ModelRequest(
            task=judge_task(state["task"], ask), model_id=ask.model_id, role=ask.role,  # type: ignore[arg-type]
            deadline_ms=state["deadline_ms"], expected_models=state["asked"]))


JUDGE_TEMPERATURE = 0.0
"""A judge's verdict should not depend on a draw: the same candidates, the same pick."""


def judge_task(task: dict[str, object], ask: JudgeAsk) -> TaskRequest:
    """The task a judge or fuser call answers: the original's identity (id, tenant, category,
    deadline) with the judge's prompt. A judge answers JSON in :data:`VERDICT_SCHEMA`; a fuser answers
    in the task's own answer type."""
    update: dict[str, object] = {
        "prompt": ask.prompt, "system": ask.system, "max_tokens": ask.max_tokens, "tools": [], "tool_policy": None,
        "samples": 1, "models": [], "messages": [], "client_tools": [], "stop": [],
    }
    if ask.role == "judge":
        update.update(answer_type="json", json_schema=VERDICT_SCHEMA, labels=[], temperature=JUDGE_TEMPERATURE)
    known = TaskRequest.model_fields
    return TaskRequest.model_validate({**task, **{k: v for k, v in update.items() if k in known}})
