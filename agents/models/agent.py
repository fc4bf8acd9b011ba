"""Model-call agent: swarm.model.<id> -> the provider -> swarm.responses | swarm.failures
(| swarm.tool-calls).

Every request ends in exactly one outcome event. The task's deadline bounds
the call, so a consensus join always hears from every model it expects, at
the latest shortly after the deadline.

A task with ``tools`` (and a caller given ``tools``, see ``agents/tools/turns.py``)
offers them to the model; a reply that calls tools becomes one ToolCall event per
call instead of an outcome (the tool loop's next turn comes back on this topic),
or a Failure with the loop's stop status. The answer that ends a tool loop is an
ordinary ModelResponse, its cost and tokens summed over every turn and tool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from swarmstream.agents.models import client_tools
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.parsing import parse_answer
from swarmstream.agents.models.providers.base import ChatRequest, ChatResponse, Provider
from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.tools.conversation import Conversation, failure_class_for
from swarmstream.agents.tools.turns import RawCall, ToolTurns, UnknownToolsError
from swarmstream.schemas.models import (
    CallRecord,
    Failure,
    ModelRequest,
    ModelResponse,
    StepContext,
    TaskRequest,
    ToolCall,
    now_ms,
)


@dataclass(frozen=True)
class ToolTurn:
    """A reply that called tools: the events to publish, and the call that produced them."""

    calls: list[ToolCall]
    latency_ms: int
    cost_micros: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class ToolStop:
    """A reply whose calls ended the tool loop (a stop, ``agents/tools/conversation.py``): the
    task hears a Failure with the stop's class, while the breakers and stats hear a successful
    call, because the model itself answered fine."""

    failure: Failure
    record: CallRecord


class ModelCaller:
    def __init__(
        self,
        *,
        provider: Provider,
        emit: Emit,
        responses_topic: str,
        failures_topic: str,
        dead_letter_topic: str,
        calls_topic: str | None = None,
        tools: ToolTurns | None = None,
        outcome_counted: Callable[[ModelRequest], bool] | None = None,
    ) -> None:
        """``outcome_counted``: whether the task state already counts this request's step
        (``agents/models/dedupe.py``); such a request, redelivered after a crash, is
        acked without a call."""
        self._provider = provider
        self._emit = emit
        self._responses = responses_topic
        self._failures = failures_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._calls = calls_topic
        self._tools = tools
        self._counted = outcome_counted
        self._calling: dict[tuple[str, str, int, int, int, str], asyncio.Future[None]] = {}

    async def handle(self, message: InputMessage) -> None:
        request = await self._dead.decode(message, ModelRequest)
        if request is None:
            return
        if self._counted is not None and self._counted(request):
            return  # redelivered after a crash: the task state already has this step's outcome
        step = (request.task.task_id, request.model_id, request.attempt, request.turn, request.sample, request.role)
        running = self._calling.get(step)
        if running is not None:
            # The same request read again (a re-read after a rebalance) while its call runs:
            # wait for that call's outcome, so this event is not acked before it.
            await asyncio.shield(running)
            return
        self._calling[step] = running = asyncio.get_running_loop().create_future()
        try:
            await self._call_and_emit(request)
        finally:
            del self._calling[step]
            running.set_result(None)

    async def _call_and_emit(self, request: ModelRequest) -> None:
        outcome = await self.call(request)
        if isinstance(outcome, ToolStop):
            sends = [self._emit(self._failures, request.task.task_id, outcome.failure)]
            record = outcome.record
        elif isinstance(outcome, ToolTurn):
            assert self._tools is not None
            sends = [self._emit(self._tools.tool_calls_topic, request.task.task_id, call) for call in outcome.calls]
            record = turn_record(request, outcome.latency_ms, outcome.cost_micros, outcome.input_tokens,
                                 outcome.output_tokens)
        else:
            topic = self._responses if isinstance(outcome, ModelResponse) else self._failures
            sends = [self._emit(topic, request.task.task_id, outcome)]
            record = call_record(request, outcome)
        if self._calls is not None:
            sends.append(self._emit(self._calls, request.model_id, record))
        for send in sends:
            await send

    async def call(self, request: ModelRequest) -> ModelResponse | Failure | ToolTurn | ToolStop:
        task = request.task
        step = StepContext.of(request)
        started = time.monotonic()
        tools = self._tools if task.tools else None
        conversation = Conversation.from_json(request.conversation) if tools is not None else Conversation()
        try:
            remaining_s = (request.deadline_ms - now_ms()) / 1000
            if remaining_s <= 0:
                raise ProviderError(FailureClass.TIMEOUT, "the task's deadline passed before the call")
            offered: tuple[dict[str, object], ...] = ()
            if task.tools and tools is None:
                raise ProviderError(FailureClass.BAD_REQUEST, "the task names tools, but tool use is not enabled on "
                                    "this worker (streams/app/tools.py)", retryable=False)
            if tools is not None:
                await tools.ready()
                try:
                    offered = tuple(tools.offer(task))
                except UnknownToolsError as exc:
                    raise ProviderError(FailureClass.BAD_REQUEST, str(exc), retryable=False) from None
            async with asyncio.timeout(remaining_s):  # a guard: providers honour the deadline themselves
                reply = await self._provider.complete(
                    ChatRequest(
                        prompt=task.prompt, system=task.system, max_tokens=task.max_tokens, deadline_ms=request.deadline_ms,
                        tools=offered + client_tools.offered(task.client_tools), conversation=conversation.messages,
                        messages=tuple(task.messages), temperature=task.temperature, top_p=task.top_p,
                        seed=None if task.seed is None else task.seed + request.sample, stop=tuple(task.stop),
                    )
                )
            if task.client_tools and reply.tool_calls and _all_client_calls(task, reply):
                # the caller runs these: the calls are the answer (agents/models/client_tools.py)
                answer = client_tools.answer_of([(c.name, c.arguments) for c in reply.tool_calls])
            elif tools is not None and reply.tool_calls:
                return self._tool_turn(request, step, reply, started)
            else:
                answer = parse_answer(reply.text, task.answer_type, labels=task.labels, json_schema=task.json_schema)
        except ProviderError as exc:
            return _failure(step, exc, started)
        except TimeoutError:
            return _failure(step, ProviderError(FailureClass.TIMEOUT, "deadline reached during the call"), started)
        return ModelResponse(
            step=step,
            text=reply.text,
            answer=answer,
            finish_reason=reply.finish_reason,
            input_tokens=reply.input_tokens + conversation.input_tokens,
            output_tokens=reply.output_tokens + conversation.output_tokens,
            cost_micros=reply.cost_micros + conversation.cost_micros,
            latency_ms=reply.latency_ms,
            upstream_model=reply.upstream_model,
            confidence=reply.confidence,
            responded_ms=now_ms(),
            turns=request.turn + 1,
            tool_calls=conversation.calls,
        )

    def _tool_turn(self, request: ModelRequest, step: StepContext, reply: ChatResponse,
                   started: float) -> ToolTurn | ToolStop:
        assert self._tools is not None
        planned = self._tools.calls_of(
            request, text=reply.text,
            calls=[RawCall(c.call_id, c.name, c.arguments) for c in reply.tool_calls],
            cost_micros=reply.cost_micros, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
        )
        if isinstance(planned, list):
            return ToolTurn(planned, reply.latency_ms, reply.cost_micros, reply.input_tokens, reply.output_tokens)
        failure = Failure(
            step=step, failure_class=failure_class_for(planned.stop, step.mode), retryable=False,
            message=planned.message, latency_ms=int((time.monotonic() - started) * 1000),
            final=step.mode != "chain", failed_ms=now_ms(),
        )
        return ToolStop(failure, turn_record(request, reply.latency_ms, reply.cost_micros, reply.input_tokens,
                                             reply.output_tokens))


def _all_client_calls(task: TaskRequest, reply: ChatResponse) -> bool:
    """Whether every call of the reply is of a tool the caller runs (then the caller gets them)."""
    names = {tool.name for tool in task.client_tools}
    return all(call.name in names for call in reply.tool_calls)


def _failure(step: StepContext, exc: ProviderError, started: float) -> Failure:
    return Failure(
        step=step,
        failure_class=str(exc.failure_class),
        retryable=exc.retryable,
        retry_after_ms=exc.retry_after_ms,
        status_code=exc.status_code,
        message=str(exc)[:1000],
        latency_ms=int((time.monotonic() - started) * 1000),
        final=step.mode != "chain",  # a chain's planner decides what follows
        failed_ms=now_ms(),
    )


def call_record(request: ModelRequest, outcome: ModelResponse | Failure) -> CallRecord:
    """What the breakers and the model stats learn from one call."""
    ok = isinstance(outcome, ModelResponse)
    return CallRecord(
        model_id=request.model_id,
        ok=ok,
        failure_class=None if ok else outcome.failure_class,  # type: ignore[union-attr]
        at_ms=now_ms(),
        probe=request.probe,
        latency_ms=outcome.latency_ms,
        cost_micros=outcome.cost_micros if ok else 0,  # type: ignore[union-attr]
        category=request.task.category,
        tenant=request.task.tenant,
        input_tokens=outcome.input_tokens if ok else 0,  # type: ignore[union-attr]
        output_tokens=outcome.output_tokens if ok else 0,  # type: ignore[union-attr]
    )


def turn_record(request: ModelRequest, latency_ms: int, cost_micros: int, input_tokens: int,
                output_tokens: int) -> CallRecord:
    """The call record of a reply that called tools: a successful call of the model."""
    return CallRecord(
        model_id=request.model_id, ok=True, at_ms=now_ms(), probe=request.probe, latency_ms=latency_ms,
        cost_micros=cost_micros, category=request.task.category, tenant=request.task.tenant,
        input_tokens=input_tokens, output_tokens=output_tokens,
    )
