"""Chain runner: moves a chain-mode task along its fallback chain.

Intake calls :meth:`ChainRunner.open` for a new chain task; the outcome agent
hands it every ModelResponse and Failure of a chain task. Every decision is
:mod:`.planner`'s; this class only reads the task state, emits the next
request (now, or through the delay topic for a backoff or a cooling breaker)
and ends the task through the Finisher. Failures of chain tasks are never
final at the model-call agent: the planner decides.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from typing import Any

from swarmstream.agents.fallback import planner
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.chains import ChainsConfig
from swarmstream.agents.fallback.planner import (
    Call,
    ChainProgress,
    Decision,
    Exhausted,
    Wait,
)
from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.taskstate import ChainState, Finisher, TaskStore
from swarmstream.schemas.models import (
    CastVote,
    Failure,
    ModelRequest,
    ModelResponse,
    TaskRequest,
    TaskResult,
    now_ms,
)

ChainMetrics = Callable[[str, str, int, int], None]
"""(chain, metric, amount, partition) -> None: counts attempts by class, fallbacks, exhausted chains."""


class ChainRunner:
    def __init__(
        self,
        *,
        chains: ChainsConfig,
        context_windows: Mapping[str, int],
        board: CircuitBoard,
        store: TaskStore,
        emit: Emit,
        finisher: Finisher,
        model_topic: Callable[[str], str],
        delay_topic: str,
        metrics: ChainMetrics = lambda chain, metric, amount, partition: None,
        model_stats: Callable[[str], Mapping[str, Any]] = lambda model: {},
        clock: Callable[[], int] = now_ms,
        rng: random.Random | None = None,
    ) -> None:
        self._chains = chains
        self._windows = dict(context_windows)
        self._board = board
        self._store = store
        self._emit = emit
        self._finisher = finisher
        self._model_topic = model_topic
        self._delay_topic = delay_topic
        self._metrics = metrics
        self._model_stats = model_stats
        self._clock = clock
        self._rng = rng or random.Random()

    # -- intake -------------------------------------------------------------------

    def open(self, task: TaskRequest) -> tuple[ChainState, Decision]:
        """The state of a new chain task and its first decision (raises KeyError for an unknown chain)."""
        name, chain = self._chains.resolve(task.chain)
        deadline_ms = task.created_ms + task.timeout_ms
        reliability = None
        if chain.order == "adaptive":
            reliability = planner.reliability_from_stats({link.model: self._model_stats(link.model)
                                                          for link in chain.links})
        decision = planner.start(
            chain, name=name, now_ms=self._clock(), deadline_ms=deadline_ms, admit=self._board.admit,
            reliability=reliability, **self._sizes(task),
        )
        state = {"task": task.model_dump(), "deadline_ms": deadline_ms, "done": False, "cost_micros": 0,
                 "chain": decision.progress.to_dict()}
        return state, decision

    async def start(self, state: ChainState, decision: Decision, partition: int) -> None:
        await self._act(state, decision, partition)

    # -- outcomes -----------------------------------------------------------------

    async def handle(self, outcome: ModelResponse | Failure, partition: int) -> None:
        step = outcome.step
        state = self._store.get(step.task_id, step.created_ms)
        if state is None or state["done"] or "chain" not in state:
            return
        progress = ChainProgress.from_dict(state["chain"])
        if not progress.is_awaiting(step.model_id, step.attempt):
            return  # a duplicate, or an attempt the chain already moved past
        task = TaskRequest.model_validate(state["task"])
        name, chain = self._chains.resolve(progress.chain)
        common: dict[str, Any] = {
            "chain": chain, "now_ms": self._clock(), "deadline_ms": state["deadline_ms"], "admit": self._board.admit,
            **self._sizes(task),
        }
        if isinstance(outcome, ModelResponse):
            state = {**state, "cost_micros": state["cost_micros"] + outcome.cost_micros,
                     "input_tokens": state.get("input_tokens", 0) + outcome.input_tokens,
                     "output_tokens": state.get("output_tokens", 0) + outcome.output_tokens}
            reason = planner.quality_ok(outcome.text, chain.link(step.model_id).quality)
            if reason is None:
                await self._succeed(state, planner.on_success(progress, latency_ms=outcome.latency_ms), outcome,
                                    partition)
                return
            decision = planner.on_bad_answer(progress, rng_uniform=self._rng.random(), latency_ms=outcome.latency_ms,
                                             policies=self._chains.retry_policies(), **common)
            self._metrics(name, "attempts.invalid_output", 1, partition)
        else:
            decision = planner.on_failure(
                progress, outcome.failure_class, rng_uniform=self._rng.random(), latency_ms=outcome.latency_ms,
                retry_after_ms=outcome.retry_after_ms, retryable=outcome.retryable,
                policies=self._chains.retry_policies(), **common,
            )
            self._metrics(name, f"attempts.{outcome.failure_class}", 1, partition)
        await self._act(state, decision, partition)

    async def _act(self, state: ChainState, decision: Decision, partition: int) -> None:
        task = TaskRequest.model_validate(state["task"])
        if isinstance(decision, Wait):
            # Every link is cooling down: plan the call for when the first breaker probes.
            until = decision.until_ms
            decision = planner.resume(
                decision.progress, chain=self._chains.resolve(decision.progress.chain)[1], now_ms=decision.until_ms,
                deadline_ms=state["deadline_ms"], admit=lambda model: self._board.admit(model, at_ms=until),
                **self._sizes(task),
            )
            if isinstance(decision, Wait):
                decision = Exhausted("cooling_past_deadline", "every link is cooling down", decision.progress)
        state = {**state, "chain": decision.progress.to_dict()}
        if isinstance(decision, Exhausted):
            self._metrics(decision.progress.chain, "exhausted", 1, partition)
            await self._finisher.finish(state, self._result(state, decision.progress, status="failed",
                                                            reason=decision.reason))
            return
        assert isinstance(decision, Call)
        self._store.set(task.task_id, task.created_ms, state)  # before any await: events interleave
        if decision.probe:
            self._board.begin_probe(decision.model)
        if decision.progress.attempts and decision.model != decision.progress.attempts[-1].model:
            self._metrics(decision.progress.chain, "fallbacks", 1, partition)
        await self._send(state, task, decision.model, decision.attempt, decision.at_ms, decision.probe)

    async def resend(self, state: ChainState) -> None:
        """After a redelivered intake: send the attempt in flight again (a duplicate
        outcome is dropped by ``is_awaiting``), so a crash between the state write and
        the send cannot stall the chain."""
        if state["done"]:
            return  # finished: its state is a DoneRecord now
        progress = ChainProgress.from_dict(state["chain"])
        if progress.awaiting_attempt is None:
            return
        task = TaskRequest.model_validate(state["task"])
        await self._send(state, task, progress.current_model, progress.awaiting_attempt, self._clock(), False)

    async def _send(self, state: ChainState, task: TaskRequest, model: str, attempt: int, at_ms: int, probe: bool) -> None:
        link = self._chains.resolve(state["chain"]["chain"])[1].link(model)
        prepared = planner.apply_transform(link.transform, prompt=task.prompt, system=task.system,
                                           max_tokens=task.max_tokens)
        sent = task.model_copy(update={"prompt": prepared.prompt, "system": prepared.system,
                                       "max_tokens": prepared.max_tokens})
        request = ModelRequest(task=sent, model_id=model, attempt=attempt, deadline_ms=state["deadline_ms"],
                               expected_models=[model], not_before_ms=at_ms, probe=probe)
        delayed = at_ms > self._clock()
        await self._emit(self._delay_topic if delayed else self._model_topic(model), task.task_id, request)

    async def _succeed(self, state: ChainState, progress: ChainProgress, response: ModelResponse, partition: int) -> None:
        state = {**state, "chain": progress.to_dict()}
        result = self._result(state, progress, status="ok", reason="", response=response)
        await self._finisher.finish(state, result)

    def _result(self, state: ChainState, progress: ChainProgress, *, status: str, reason: str,
                response: ModelResponse | None = None) -> TaskResult:
        task = state["task"]
        votes = []
        if response is not None:
            votes = [CastVote(model_id=response.step.model_id, answer=response.answer, latency_ms=response.latency_ms)]
        return TaskResult(
            task_id=task["task_id"],
            status=status,  # type: ignore[arg-type]
            mode="chain",
            answer=response.answer if response else None,
            agreement=1.0 if response else 0.0,
            confidence=(response.confidence or 1.0) if response else 0.0,
            strategy=f"chain:{progress.chain}",
            answered_by=response.step.model_id if response else None,
            votes=votes,
            attempts=planner.to_attempt_records(progress),
            models_asked=len({a.model for a in progress.attempts}),
            cost_micros=state["cost_micros"],
            input_tokens=state.get("input_tokens", 0),
            output_tokens=state.get("output_tokens", 0),
            created_ms=task["created_ms"],
            completed_ms=self._clock(),
            reason=reason,
        )

    def _sizes(self, task: TaskRequest) -> dict[str, Any]:
        return {
            "prompt_tokens": planner.estimate_tokens(task.prompt + (task.system or "")),
            "context_windows": self._windows,
            "max_tokens": task.max_tokens,
        }


class DelayLine:
    """swarm.delays -> swarm.model.<id> once a request's ``not_before_ms`` has come.

    Each delayed request waits in its own task (the in-flight runner's), so a
    backoff never blocks the partition; only that partition's commits wait
    behind it, which is what keeps a delayed retry from being lost in a crash.
    """

    def __init__(self, *, emit: Emit, model_topic: Callable[[str], str], dead_letter_topic: str,
                 clock: Callable[[], int] = now_ms) -> None:
        self._emit = emit
        self._model_topic = model_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._clock = clock

    async def handle(self, message: InputMessage) -> None:
        request = await self._dead.decode(message, ModelRequest)
        if request is None:
            return
        wait_ms = min(request.not_before_ms, request.deadline_ms) - self._clock()
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)
        await self._emit(self._model_topic(request.model_id), request.task.task_id, request)
