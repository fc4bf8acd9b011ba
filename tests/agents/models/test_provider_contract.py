"""One contract, both protocols: the same cases against the loopback upstream (conftest.py).

Each case names a scenario the upstream plays and what a caller must observe:
the normalised ChatResponse fields, or the ProviderError's class, status and hints.
Real HTTP over the aiohttp transport; nothing is patched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest
from fake_upstream import ANTHROPIC_MODEL, OPENAI_MODEL, FakeUpstream
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.providers import (
    AnthropicProvider,
    ChatRequest,
    OpenAIProvider,
    Provider,
    build_provider,
)

KEY_ENV = "SWARM_TEST_PROVIDER_KEY"
FAKE_KEY = "sk-test-contract-0123456789abcdef"
PROTOCOLS = ["openai", "anthropic"]
SHORT_TIMEOUT_S = 0.25
"""Budget for timeout cases: well under the upstream's stall (conftest.SLOW_S), well over loopback latency."""


def make_spec(protocol: str, upstream: FakeUpstream, **overrides: object) -> ModelSpec:
    fields: dict[str, object] = {
        "id": f"test-{protocol}",
        "provider": protocol,
        "endpoint": upstream.url + "/v1",
        "upstream": f"{protocol}-upstream-name",
        "api_key_env": KEY_ENV,
        "family": protocol,
        "input_usd_per_mtok": 0.15,
        "output_usd_per_mtok": 0.6,
        "capabilities": ["logprobs"],
        "timeout_s": 5,
    }
    fields.update(overrides)
    return ModelSpec.model_validate(fields)


@pytest.fixture
def provider_for(
    upstream: FakeUpstream, pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Provider]:
    """Builds a provider of either protocol against the upstream, key set in the environment."""
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)

    def build(protocol: str, **overrides: object) -> Provider:
        return build_provider(make_spec(protocol, upstream, **overrides), pool)

    return build


# --- success ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_success_is_normalised(protocol: str, provider_for, upstream: FakeUpstream) -> None:
    provider = provider_for(protocol)
    response = await provider.complete(ChatRequest(prompt="ok", system="Answer with one label.", max_tokens=32))

    assert response.text == "B) cat"
    assert response.finish_reason == "stop"
    assert (response.input_tokens, response.output_tokens) == (19, 3)
    assert response.cost_micros == 5  # 19 x 0.15 + 3 x 0.6 = 4.65 -> 5 (half up)
    assert response.upstream_model == {"openai": OPENAI_MODEL, "anthropic": ANTHROPIC_MODEL}[protocol]
    assert 0 <= response.latency_ms < 1000
    if protocol == "openai":
        assert response.confidence == pytest.approx(math.exp(-0.2))
    else:
        assert response.confidence is None  # the Messages API has no logprobs


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_length_finish_reason(protocol: str, provider_for) -> None:
    response = await provider_for(protocol).complete(ChatRequest(prompt="length"))
    assert (response.finish_reason, response.text, response.output_tokens) == ("length", "The answer is", 256)


async def test_openai_request_shape(provider_for, upstream: FakeUpstream) -> None:
    await provider_for("openai").complete(ChatRequest(prompt="ok", system="sys", max_tokens=32, temperature=0.0))
    sent = upstream.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert sent.body == {
        "model": "openai-upstream-name",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "ok"}],
        "max_tokens": 32,
        "temperature": 0.0,
        "logprobs": True,
    }


async def test_openai_asks_logprobs_only_when_capable(provider_for, upstream: FakeUpstream) -> None:
    response = await provider_for("openai", capabilities=[]).complete(ChatRequest(prompt="ok"))
    assert "logprobs" not in upstream.received[-1].body
    assert "temperature" not in upstream.received[-1].body
    assert response.confidence is None


async def test_anthropic_request_shape(provider_for, upstream: FakeUpstream) -> None:
    await provider_for("anthropic").complete(ChatRequest(prompt="ok", system="sys", max_tokens=32))
    sent = upstream.received[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == FAKE_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in sent.headers
    assert sent.body == {
        "model": "anthropic-upstream-name",
        "max_tokens": 32,
        "system": "sys",
        "messages": [{"role": "user", "content": "ok"}],
    }


# --- failures -----------------------------------------------------------------

# scenario -> (failure class, HTTP status, retryable, retry_after_ms)
SHARED_FAILURES = {
    "refusal": (FailureClass.CONTENT_POLICY, None, False, None),
    "rate_limited": (FailureClass.RATE_LIMITED, 429, True, 2000),
    "server_error": (FailureClass.SERVER_ERROR, 500, True, None),
    "auth": (FailureClass.AUTH, 401, False, None),
    "forbidden": (FailureClass.AUTH, 403, False, None),
    "bad_request": (FailureClass.BAD_REQUEST, 400, False, None),
    "not_found": (FailureClass.BAD_REQUEST, 404, False, None),
    "context_length": (FailureClass.CONTEXT_LENGTH, 400, False, None),
    "request_timeout": (FailureClass.TIMEOUT, 408, True, None),
    "html_502": (FailureClass.SERVER_ERROR, 502, True, None),
    "not_json_200": (FailureClass.SERVER_ERROR, None, True, None),
}
PROTOCOL_FAILURES = {
    ("openai", "overloaded"): (FailureClass.SERVER_ERROR, 503, True, None),
    ("anthropic", "overloaded"): (FailureClass.SERVER_ERROR, 529, True, None),
    ("openai", "content_filter"): (FailureClass.CONTENT_POLICY, None, False, None),
    ("openai", "quota"): (FailureClass.RATE_LIMITED, 429, False, None),
}
FAILURE_CASES = [
    pytest.param(protocol, scenario, expected, id=f"{protocol}-{scenario}")
    for scenario, expected in SHARED_FAILURES.items()
    for protocol in PROTOCOLS
] + [
    pytest.param(protocol, scenario, expected, id=f"{protocol}-{scenario}")
    for (protocol, scenario), expected in PROTOCOL_FAILURES.items()
]


@pytest.mark.parametrize(("protocol", "scenario", "expected"), FAILURE_CASES)
async def test_failure_is_classified(protocol: str, scenario: str, expected: tuple, provider_for) -> None:
    failure_class, status_code, retryable, retry_after_ms = expected
    with pytest.raises(ProviderError) as caught:
        await provider_for(protocol).complete(ChatRequest(prompt=scenario))
    error = caught.value
    assert (error.failure_class, error.status_code, error.retryable, error.retry_after_ms) == (
        failure_class,
        status_code,
        retryable,
        retry_after_ms,
    )
    assert error.message  # says something a person can act on


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("scenario", ["slow", "trickle"])
async def test_slow_upstream_times_out_within_budget(protocol: str, scenario: str, provider_for) -> None:
    """'slow' stalls before headers (read timeout); 'trickle' never stalls a read, so only the total stops it."""
    provider = provider_for(protocol, timeout_s=SHORT_TIMEOUT_S)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        await provider.complete(ChatRequest(prompt=scenario))
    assert caught.value.failure_class is FailureClass.TIMEOUT
    assert caught.value.retryable
    assert time.monotonic() - started < SHORT_TIMEOUT_S + 0.5


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_deadline_shortens_the_call(protocol: str, provider_for) -> None:
    provider = provider_for(protocol, timeout_s=30)
    started = time.monotonic()
    deadline_ms = time.time_ns() // 1_000_000 + round(SHORT_TIMEOUT_S * 1000)
    with pytest.raises(ProviderError) as caught:
        await provider.complete(ChatRequest(prompt="slow", deadline_ms=deadline_ms))
    assert caught.value.failure_class is FailureClass.TIMEOUT
    assert time.monotonic() - started < SHORT_TIMEOUT_S + 0.5


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_past_deadline_makes_no_call(protocol: str, provider_for, upstream: FakeUpstream) -> None:
    before = len(upstream.received)
    with pytest.raises(ProviderError) as caught:
        await provider_for(protocol).complete(ChatRequest(prompt="ok", deadline_ms=time.time_ns() // 1_000_000 - 1))
    assert caught.value.failure_class is FailureClass.TIMEOUT
    assert len(upstream.received) == before


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_no_hidden_retries(protocol: str, provider_for, upstream: FakeUpstream) -> None:
    before = len(upstream.received)
    for scenario in ("server_error", "rate_limited"):
        with pytest.raises(ProviderError):
            await provider_for(protocol).complete(ChatRequest(prompt=scenario))
    assert len(upstream.received) == before + 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("where", ["closed_port", "hangup"])
async def test_unreachable_upstream_is_network(
    protocol: str, where: str, provider_for, closed_port_url: str, hangup_url: str
) -> None:
    endpoint = {"closed_port": closed_port_url, "hangup": hangup_url}[where]
    with pytest.raises(ProviderError) as caught:
        await provider_for(protocol, endpoint=endpoint).complete(ChatRequest(prompt="ok"))
    assert caught.value.failure_class is FailureClass.NETWORK
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("protocol", "provider_class"), [("openai", OpenAIProvider), ("anthropic", AnthropicProvider)]
)
async def test_simulated_speaks_its_profile_protocol(
    protocol: str, provider_class: type, upstream: FakeUpstream, pool: ClientPool
) -> None:
    spec = ModelSpec(
        id="sim-x",
        provider="simulated",
        endpoint=upstream.url + "/v1",
        family="sim",
        simulated={"protocol": protocol},
    )
    provider = build_provider(spec, pool, env={})
    assert isinstance(provider, provider_class)
    response = await provider.complete(ChatRequest(prompt="ok"))
    assert response.text == "B) cat"
    sent = upstream.received[-1].headers
    assert "Authorization" not in sent and "x-api-key" not in sent  # simulated models send no key
