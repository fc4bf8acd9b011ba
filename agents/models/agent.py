"""Model-call agent: swarm.model.<id> -> the provider -> swarm.responses | swarm.failures.

Every request ends in exactly one outcome event. The task's deadline bounds
the call, so a consensus join always hears from every model it expects, at
the latest shortly after the deadline.
"""

from __future__ import annotations

import asyncio
import time

from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.parsing import parse_answer
from swarmstream.agents.models.providers.base import ChatRequest, Provider
from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.schemas.models import CallRecord, Failure, ModelRequest, ModelResponse, StepContext, now_ms


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
    ) -> None:
        self._provider = provider
        self._emit = emit
        self._responses = responses_topic
        self._failures = failures_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._calls = calls_topic

    async def handle(self, message: InputMessage) -> None:
        request = await self._dead.decode(message, ModelRequest)
        if request is None:
            return
        outcome = await self.call(request)
        topic = self._responses if isinstance(outcome, ModelResponse) else self._failures
        sends = [self._emit(topic, request.task.task_id, outcome)]
        if self._calls is not None:
            sends.append(self._emit(self._calls, request.model_id, call_record(request, outcome)))
        await asyncio.gather(*sends)

    async def call(self, request: ModelRequest) -> ModelResponse | Failure:
        task = request.task
        step = StepContext.of(request)
        started = time.monotonic()
        try:
            remaining_s = (request.deadline_ms - now_ms()) / 1000
            if remaining_s <= 0:
                raise ProviderError(FailureClass.TIMEOUT, "the task's deadline passed before the call")
            async with asyncio.timeout(remaining_s):  # a guard: providers honour the deadline themselves
                reply = await self._provider.complete(
                    ChatRequest(
                        prompt=task.prompt, system=task.system, max_tokens=task.max_tokens, deadline_ms=request.deadline_ms
                    )
                )
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
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cost_micros=reply.cost_micros,
            latency_ms=reply.latency_ms,
            upstream_model=reply.upstream_model,
            confidence=reply.confidence,
            responded_ms=now_ms(),
        )


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
