"""One pipeline (broker, simulated fleet, one worker) and one gateway for the module's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.cli.runtime import Stack, running_stack, unique_settings
from swarmstream.streams.gateway.app import Gateway, running_gateway
from swarmstream.streams.gateway.keys import hash_key
from swarmstream.streams.gateway.settings import GatewaySettings

from tests.conftest import TEST_CHAINS, TEST_FLEET

KEY = "sk-test-main-0123456789"
SLOW_KEY = "sk-test-rate-limited"
BROKE_KEY = "sk-test-no-budget"


@dataclass
class Served:
    stack: Stack
    gateway: Gateway
    url: str
    tmp: Path


def keys_file(tmp: Path) -> Path:
    path = tmp / "keys.yaml"
    path.write_text(
        "keys:\n"
        f"  - {{sha256: {hash_key(KEY)}, tenant: acme}}\n"
        f"  - {{sha256: {hash_key(SLOW_KEY)}, tenant: slowpoke, rate_per_s: 0.001, burst: 1}}\n"
        f"  - {{sha256: {hash_key(BROKE_KEY)}, tenant: broke, budget_usd_per_day: 0}}\n"
    )
    return path


@pytest.fixture(scope="module")
async def served(broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    tmp = tmp_path_factory.mktemp("gateway")
    routes = tmp / "routes.yaml"
    routes.write_text("routes:\n  math-vote: {mode: consensus, answer_type: number, models: [fast-a, fast-b, fast-c]}\n")
    settings = unique_settings(Settings(models=TEST_FLEET, chains=TEST_CHAINS))
    async with running_stack(settings, broker_url=broker_url, log_dir=tmp) as stack:
        config = GatewaySettings(port=0, instance="gw-test", keys=keys_file(tmp), routes=routes, keepalive_s=0.05)
        async with running_gateway(stack.settings, config, broker_url) as (gateway, url):
            yield Served(stack, gateway, url, tmp)
