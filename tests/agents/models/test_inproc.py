"""The inproc provider answers as the simulated fleet does over HTTP, without HTTP.

Each case runs the same prompts through an inproc model and through the same catalog
entry as a ``simulated`` model served by SimFleet on loopback, and compares what a
caller sees: text, tokens, cost, confidence, or the ProviderError's class.
"""

from __future__ import annotations

import time

import pytest
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.providers import (
    ChatRequest,
    ChatResponse,
    InprocProvider,
    build_provider,
)
from swarmstream.agents.models.simulated import SimFleet, demo_tasks


def _spec(provider: str, profile: dict[str, object], **fields: object) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "id": "sim-a",
            "provider": provider,
            "family": "sim",
            "input_usd_per_mtok": 0.15,
            "output_usd_per_mtok": 0.6,
            "simulated": profile,
            **fields,
        }
    )


async def _outcome(provider: object, request: ChatRequest) -> ChatResponse | FailureClass:
    try:
        return await provider.complete(request)  # type: ignore[attr-defined,no-any-return]
    except ProviderError as exc:
        return exc.failure_class


def _comparable(outcome: ChatResponse | FailureClass) -> object:
    if isinstance(outcome, ChatResponse):  # latency differs by the HTTP round trip
        return (outcome.text, outcome.input_tokens, outcome.output_tokens, outcome.cost_micros,
                outcome.confidence, outcome.finish_reason)
    return outcome


@pytest.mark.parametrize(
    ("protocol", "capabilities", "system"),
    [("openai", ["logprobs"], None), ("openai", [], "Be brief."), ("anthropic", [], "Be brief.")],
)
async def test_answers_tokens_cost_and_confidence_match_the_fleet(
    protocol: str, capabilities: list[str], system: str | None
) -> None:
    profile = {"accuracy": 0.6, "latency_median_ms": 0, "latency_p99_ms": 0, "protocol": protocol,
               "script": ["ok", "rate_limited", "content_policy", "invalid_output", "server_error", "bad_request"]}
    inproc = build_provider(_spec("inproc", profile, capabilities=capabilities), ClientPool())
    assert isinstance(inproc, InprocProvider)
    prompts = [item.prompt for item in demo_tasks(30)] + ["Something the task set cannot solve."]
    requests = [ChatRequest(prompt=prompt, system=system) for prompt in prompts]
    async with SimFleet({"sim-a": _spec("simulated", profile).simulated}) as fleet, ClientPool() as pool:  # type: ignore[dict-item]
        http = build_provider(_spec("simulated", profile, capabilities=capabilities, endpoint=fleet.base_url), pool)
        over_http = [_comparable(await _outcome(http, r)) for r in requests]
    in_process = [_comparable(await _outcome(inproc, r)) for r in requests]
    assert in_process == over_http
    # the script's failures, in order; invalid_output is a reply the caller's parser rejects
    assert in_process[1:3] == [FailureClass.RATE_LIMITED, FailureClass.CONTENT_POLICY]
    assert in_process[3][0] == "I am not sure."  # type: ignore[index]
    assert in_process[4:6] == [FailureClass.SERVER_ERROR, FailureClass.BAD_REQUEST]
    assert sum(isinstance(o, tuple) for o in in_process) >= 25


async def test_latency_is_waited_and_zero_latency_is_not() -> None:
    slow = InprocProvider(_spec("inproc", {"latency_median_ms": 50, "latency_p99_ms": 50}))
    fast = InprocProvider(_spec("inproc", {"latency_median_ms": 0, "latency_p99_ms": 0}))
    request = ChatRequest(prompt="What is 2 + 2? Answer with a number.")
    started = time.perf_counter()
    reply = await slow.complete(request)
    assert time.perf_counter() - started >= 0.045
    assert reply.latency_ms >= 45
    assert (await fast.complete(request)).latency_ms == 0


async def test_a_latency_past_the_deadline_is_a_timeout() -> None:
    provider = InprocProvider(_spec("inproc", {"latency_median_ms": 5_000, "latency_p99_ms": 5_000}))
    deadline_ms = time.time_ns() // 1_000_000 + 50
    with pytest.raises(ProviderError) as caught:
        await provider.complete(ChatRequest(prompt="What is 2 + 2?", deadline_ms=deadline_ms))
    assert caught.value.failure_class is FailureClass.TIMEOUT


def test_a_simulated_profile_is_allowed_on_inproc_models_only() -> None:
    assert _spec("inproc", {"accuracy": 0.9}).simulated.accuracy == 0.9  # type: ignore[union-attr]
    assert ModelSpec(id="b", provider="inproc", family="f").simulated is not None
    with pytest.raises(ValueError, match="applies only to provider 'simulated'"):
        _spec("openai", {"accuracy": 0.9})
