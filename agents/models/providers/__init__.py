"""Providers by protocol, and the one function that builds the right one for a catalog entry.

Adding a protocol is one module with an ``HttpProvider`` subclass and one entry in
``PROVIDERS``. The simulated fleet needs no entry of its own: it speaks a real
protocol (``spec.simulated.protocol``) on loopback, so the code path a simulated
model exercises is the one a real model takes.

Providers that answer without HTTP are in ``LOCAL_PROVIDERS``, by catalog provider
name: ``inproc`` (``inproc.py``) gives a simulated model's answers inside the worker,
for benchmarks of the orchestration's own cost.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.providers.anthropic import AnthropicProvider
from swarmstream.agents.models.providers.base import (
    ChatRequest,
    ChatResponse,
    Clock,
    HttpProvider,
    Provider,
    cost_micros,
    now_ms,
)
from swarmstream.agents.models.providers.inproc import InprocProvider
from swarmstream.agents.models.providers.openai import OpenAIProvider

__all__ = [
    "PROVIDERS",
    "AnthropicProvider",
    "ChatRequest",
    "InprocProvider",
    "LOCAL_PROVIDERS",
    "ChatResponse",
    "MissingApiKeyError",
    "OpenAIProvider",
    "Provider",
    "build_provider",
    "cost_micros",
]

PROVIDERS: dict[str, type[HttpProvider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
}
"""Protocol name -> provider class. Catalog providers "openai"/"anthropic" map directly;
"simulated" maps through its profile's protocol."""

LOCAL_PROVIDERS: dict[str, type[InprocProvider]] = {
    "inproc": InprocProvider,
}
"""Catalog provider name -> a provider that needs no endpoint, client or key.
Kept apart from PROVIDERS, which names wire protocols only."""


class MissingApiKeyError(LookupError):
    """A model's key variable is unset or empty. The message names the variable, never a value."""


def build_provider(
    spec: ModelSpec,
    pool: ClientPool,
    env: Mapping[str, str] = os.environ,
    *,
    clock: Clock = now_ms,
) -> Provider:
    """The provider for ``spec``, using the pooled client of its endpoint.

    Reads the key from ``env[spec.api_key_env]`` now, so a missing key fails at
    start-up rather than on the first task. Simulated models never send a key;
    local providers (``LOCAL_PROVIDERS``) use neither the pool nor a key.
    """
    local = LOCAL_PROVIDERS.get(spec.provider)
    if local is not None:
        return local(spec, clock=clock)
    if spec.endpoint is None:
        raise ValueError(
            f"model {spec.id!r} has no endpoint; for simulated models pass sim_url to load_catalog"
        )
    if spec.provider == "simulated":
        assert spec.simulated is not None  # ModelSpec fills a default profile for simulated models
        protocol = spec.simulated.protocol
        api_key = None
    else:
        protocol = spec.provider
        api_key = _read_key(spec, env)
    provider_class = PROVIDERS[protocol]
    return provider_class(spec, pool, api_key=api_key, clock=clock)


def _read_key(spec: ModelSpec, env: Mapping[str, str]) -> str | None:
    if spec.api_key_env is None:  # e.g. a local OpenAI-compatible server without auth
        return None
    key = env.get(spec.api_key_env, "").strip()
    if not key:
        raise MissingApiKeyError(
            f"model {spec.id!r} needs an API key: set the environment variable {spec.api_key_env}"
        )
    return key
