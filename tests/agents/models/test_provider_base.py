"""Protocol-independent provider pieces: cost, deadline budget, the client pool, the registry."""

from __future__ import annotations

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.http import ClientPool, PoolSettings
from swarmstream.agents.models.providers import (
    PROVIDERS,
    AnthropicProvider,
    MissingApiKeyError,
    OpenAIProvider,
    build_provider,
)
from swarmstream.agents.models.providers.base import call_budget_s, cost_micros
from swarmstream.agents.models.providers.openai import confidence_from_logprobs


def _spec(**fields: object) -> ModelSpec:
    return ModelSpec.model_validate({"id": "m", "provider": "openai", "family": "f", **fields})


@pytest.mark.parametrize(
    ("input_price", "output_price", "input_tokens", "output_tokens", "expected"),
    [
        (0, 0, 1000, 1000, 0),
        (1, 1, 0, 0, 0),
        (1, 2, 10, 10, 30),  # 1 USD/Mtok is 1 micro-dollar per token
        (0.15, 0.6, 10, 0, 2),  # 1.5 -> 2: half up, exact in Decimal (0.15 is 0.1499.. as a float)
        (0.15, 0.6, 1, 0, 0),  # 0.15 -> 0
        (0.25, 0, 2, 0, 1),  # 0.5 -> 1
        (0.15, 0.6, 19, 3, 5),  # 2.85 + 1.8 = 4.65 -> 5: rounded once, on the total
        (3, 15, 1_000_000, 1_000_000, 18_000_000),  # 18 USD
    ],
)
def test_cost_micros(
    input_price: float, output_price: float, input_tokens: int, output_tokens: int, expected: int
) -> None:
    spec = _spec(input_usd_per_mtok=input_price, output_usd_per_mtok=output_price)
    assert cost_micros(spec, input_tokens, output_tokens) == expected


NOW = 1_700_000_000_000


@pytest.mark.parametrize(
    ("timeout_s", "deadline_ms", "expected_s"),
    [
        (30, None, 30),
        (30, NOW + 5_000, 5),
        (2, NOW + 5_000, 2),
        (30, NOW + 1, 0.001),
    ],
)
def test_call_budget(timeout_s: float, deadline_ms: int | None, expected_s: float) -> None:
    assert call_budget_s(_spec(timeout_s=timeout_s), deadline_ms, NOW) == pytest.approx(expected_s)


@pytest.mark.parametrize("deadline_ms", [NOW, NOW - 1, 0])
def test_call_budget_past_deadline_is_timeout(deadline_ms: int) -> None:
    with pytest.raises(ProviderError) as caught:
        call_budget_s(_spec(), deadline_ms, NOW)
    assert caught.value.failure_class is FailureClass.TIMEOUT


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [
        (None, None),
        ({"content": None, "refusal": None}, None),
        ({"content": []}, None),
        ({"content": [{"token": "a", "logprob": 0.0}]}, 1.0),
        ({"content": [{"token": "a", "logprob": -1.0}, {"token": "b", "logprob": -3.0}]}, 0.1353352832366127),
        ({"content": [{"token": "a", "logprob": float("-inf")}]}, 0.0),
    ],
)
def test_confidence_from_logprobs(logprobs: dict | None, expected: float | None) -> None:
    assert confidence_from_logprobs(logprobs) == (pytest.approx(expected) if expected is not None else None)


async def test_pool_one_client_per_endpoint() -> None:
    async with ClientPool(PoolSettings(max_connections=8, connect_timeout_s=1, read_timeout_s=2)) as pool:
        a = pool.get("http://127.0.0.1:1/v1")
        assert pool.get("http://127.0.0.1:1/v1/") is a
        assert pool.get("http://127.0.0.1:2/v1") is not a
        assert isinstance(a, httpx.AsyncClient)
        assert isinstance(a._transport, AiohttpTransport)
        assert a._transport.limits.max_connections == 8
        assert a.timeout == httpx.Timeout(connect=1, read=2, write=2, pool=2)
        assert a.follow_redirects is False
    assert a.is_closed


def test_registry_covers_the_real_protocols() -> None:
    assert PROVIDERS == {"openai": OpenAIProvider, "anthropic": AnthropicProvider}


async def test_missing_key_names_the_variable_not_a_value() -> None:
    spec = _spec(api_key_env="SWARM_TEST_ABSENT_KEY")
    async with ClientPool() as pool:
        with pytest.raises(MissingApiKeyError) as caught:
            build_provider(spec, pool, env={"OTHER_KEY": "sk-should-not-appear"})
        with pytest.raises(MissingApiKeyError):
            build_provider(spec, pool, env={"SWARM_TEST_ABSENT_KEY": "  "})
    assert "SWARM_TEST_ABSENT_KEY" in str(caught.value)
    assert "sk-should-not-appear" not in str(caught.value)


async def test_simulated_without_endpoint_says_to_pass_sim_url() -> None:
    spec = ModelSpec(id="sim", provider="simulated", family="f")
    async with ClientPool() as pool:
        with pytest.raises(ValueError, match="pass sim_url"):
            build_provider(spec, pool)


async def test_provider_repr_shows_no_key() -> None:
    async with ClientPool() as pool:
        provider = build_provider(_spec(api_key_env="K"), pool, env={"K": "sk-secret-repr-0001"})
    assert "sk-secret-repr-0001" not in repr(provider)
    assert "sk-secret-repr-0001" not in repr(vars(provider).get("spec"))
