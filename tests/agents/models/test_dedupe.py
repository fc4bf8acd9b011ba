"""Dedupe by task and step id: a model request whose outcome the task state already
counts is not called again; the same request read twice while its call runs is called once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from swarmstream.agents.consensus.join import open_task
from swarmstream.agents.models.agent import ModelCaller
from swarmstream.agents.models.dedupe import outcome_counted
from swarmstream.agents.models.providers.base import ChatRequest, ChatResponse
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import ModelRequest, ModelResponse, TaskRequest, now_ms
from swarmstream.streams.engine import InputMessage

from tests.conftest import wait_for

TASK = TaskRequest(task_id="t1", prompt="2 + 2?", answer_type="number")
OPEN = open_task(TASK, order=["a", "b"], asked=["a", "b"], deadline_ms=TASK.created_ms + 30_000)
ANSWERED_A = {**OPEN, "answers": {"a": {"answer": "4", "confidence": None, "latency_ms": 1, "cost_micros": 0}}}
FAILED_B = {**OPEN, "failures": {"b": {"class": "server_error", "latency_ms": 1}}}
CHAIN = {**OPEN, "chain": {"chain": "default", "links": ["a", "b"], "index": 1, "awaiting_attempt": 2,
                           "attempts": [], "skipped": []}}


@pytest.mark.parametrize(
    ("state", "model", "attempt", "counted"),
    [
        (None, "a", 0, False),  # unknown here: call
        (OPEN, "a", 0, False),
        ({**OPEN, "done": True}, "a", 0, True),
        (ANSWERED_A, "a", 0, True),
        (ANSWERED_A, "b", 0, False),
        (FAILED_B, "b", 0, True),
        (CHAIN, "b", 2, False),  # the attempt the chain waits for
        (CHAIN, "b", 1, True),  # an attempt the chain moved past
        (CHAIN, "a", 2, True),  # a link the chain moved past
        ({**CHAIN, "chain": {**CHAIN["chain"], "awaiting_attempt": None}}, "b", 2, True),
    ],
)
def test_outcome_counted(state: dict[str, Any] | None, model: str, attempt: int, counted: bool) -> None:
    assert outcome_counted(state, model, attempt) is counted


class SlowProvider:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        await self.release.wait()
        return ChatResponse(text="4", finish_reason="stop", input_tokens=1, output_tokens=1, cost_micros=1,
                            latency_ms=1, upstream_model="a")


def message(request: ModelRequest, offset: int) -> InputMessage:
    return InputMessage(topic="m", partition=0, offset=offset, key=b"t1", value=codec().encode(request))


async def test_a_request_read_again_while_its_call_runs_waits_for_that_call() -> None:
    provider = SlowProvider()
    emitted: list[Any] = []

    async def emit(topic: str, key: str, record: Any, headers: Any = None) -> None:
        emitted.append(record)

    caller = ModelCaller(provider=provider, emit=emit, responses_topic="r", failures_topic="f",  # type: ignore[arg-type]
                         dead_letter_topic="d")
    request = ModelRequest(task=TASK, model_id="a", deadline_ms=now_ms() + 30_000)
    first = asyncio.create_task(caller.handle(message(request, 7)))
    await asyncio.sleep(0)
    again = asyncio.create_task(caller.handle(message(request, 7)))
    await wait_for(lambda: provider.calls == 1, timeout_s=5, what="the first call to start")
    assert provider.calls == 1 and not again.done(), "the re-read must not call, nor finish before the call"
    provider.release.set()
    await asyncio.wait_for(asyncio.gather(first, again), 5)
    assert provider.calls == 1
    assert [type(r) for r in emitted] == [ModelResponse]

    later_turn = request.model_copy(update={"turn": 1})  # another step of the same task: its own call
    await asyncio.wait_for(caller.handle(message(later_turn, 8)), 5)
    assert provider.calls == 2


async def test_a_request_whose_outcome_the_state_counts_is_not_called() -> None:
    provider = SlowProvider()
    provider.release.set()
    emitted: list[Any] = []

    async def emit(topic: str, key: str, record: Any, headers: Any = None) -> None:
        emitted.append(record)

    states = {"t1": ANSWERED_A}
    caller = ModelCaller(provider=provider, emit=emit, responses_topic="r", failures_topic="f",  # type: ignore[arg-type]
                         dead_letter_topic="d",
                         outcome_counted=lambda r: outcome_counted(states.get(r.task.task_id), r.model_id, r.attempt))
    await caller.handle(message(ModelRequest(task=TASK, model_id="a", deadline_ms=now_ms() + 30_000), 1))
    assert provider.calls == 0 and emitted == []
    await caller.handle(message(ModelRequest(task=TASK, model_id="b", deadline_ms=now_ms() + 30_000), 2))
    assert provider.calls == 1 and len(emitted) == 1
