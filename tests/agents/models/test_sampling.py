"""Sampling parameters reach each provider's body as the task states them, and only when set."""

from __future__ import annotations

from swarmstream.agents.models.providers.anthropic import build_messages_body
from swarmstream.agents.models.providers.base import ChatRequest
from swarmstream.agents.models.providers.openai import build_chat_body

SAMPLED = ChatRequest(prompt="q", max_tokens=64, temperature=0.7, top_p=0.9, seed=12, stop=("\n\n", "END"))
PLAIN = ChatRequest(prompt="q")


def test_openai_compatible_bodies_carry_every_sampling_parameter() -> None:
    body = build_chat_body("m", [], SAMPLED)

    assert (body["temperature"], body["top_p"], body["seed"], body["stop"], body["max_tokens"]) == (
        0.7, 0.9, 12, ["\n\n", "END"], 64)
    assert not {"temperature", "top_p", "seed", "stop"} & set(build_chat_body("m", [], PLAIN))


def test_anthropic_bodies_carry_what_the_messages_api_takes() -> None:
    body = build_messages_body("m", SAMPLED)

    assert (body["temperature"], body["top_p"], body["stop_sequences"], body["max_tokens"]) == (
        0.7, 0.9, ["\n\n", "END"], 64)
    assert "seed" not in body  # the Messages API has none
    assert not {"temperature", "top_p", "stop_sequences"} & set(build_messages_body("m", PLAIN))


async def test_each_sample_of_a_model_sends_its_own_seed() -> None:
    from swarmstream.agents.models.agent import ModelCaller
    from swarmstream.agents.models.providers.base import ChatResponse
    from swarmstream.schemas.models import ModelRequest, TaskRequest, now_ms

    seen: list[ChatRequest] = []

    class Recorder:
        async def complete(self, request: ChatRequest) -> ChatResponse:
            seen.append(request)
            return ChatResponse(text="Answer: 4", finish_reason="stop", input_tokens=1, output_tokens=1,
                                cost_micros=0, latency_ms=1, upstream_model="m")

    async def emit(topic: str, key: str, record: object) -> None: ...

    caller = ModelCaller(provider=Recorder(), emit=emit, responses_topic="r", failures_topic="f",
                         dead_letter_topic="d")
    task = TaskRequest(prompt="2 + 2?", answer_type="number", samples=3, temperature=0.8, top_p=0.5, seed=100,
                       stop=["."])
    for sample in range(3):
        await caller.call(ModelRequest(task=task, model_id="m", sample=sample, deadline_ms=now_ms() + 10_000))

    assert [r.seed for r in seen] == [100, 101, 102]
    assert {(r.temperature, r.top_p, r.stop) for r in seen} == {(0.8, 0.5, (".",))}
