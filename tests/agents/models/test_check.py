"""`swarmstream models check` against a real SimFleet on loopback: one row per model, never a raise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from swarmstream.agents.models.catalog import Catalog, ModelSpec
from swarmstream.agents.models.check import (
    CheckRow,
    check_models,
    main_check,
    render_rows,
)
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.simulated import SimFleet, SimProfile

FAST = {"latency_median_ms": 5, "latency_p99_ms": 5}
KEY_VALUE = "sk-check-test-0123456789abcdef"


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    profiles = {
        "sim-ok": SimProfile(**FAST),
        "sim-broken": SimProfile(script=["server_error"], **FAST),
        "sim-hangs": SimProfile(script=["timeout"], **FAST),
    }
    async with SimFleet(profiles, timeout_sleep_s=5) as fleet:
        yield fleet


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    async with ClientPool() as pool:
        yield pool


def sim(model_id: str, url: str | None, **profile: object) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="simulated",
        family="sim",
        endpoint=url,
        input_usd_per_mtok=1,
        output_usd_per_mtok=2,
        simulated=SimProfile(**{**FAST, **profile}),
    )


def remote(model_id: str, url: str, key_env: str) -> ModelSpec:
    """A real-provider entry (OpenAI protocol, key from the environment) routed to the fleet."""
    return ModelSpec(id=model_id, provider="openai", family="sim", endpoint=url, upstream="sim-ok", api_key_env=key_env)


async def test_one_row_per_model_with_its_outcome(fleet: SimFleet, pool: ClientPool) -> None:
    url = fleet.base_url
    assert url is not None
    specs = [
        sim("sim-ok", url),
        sim("sim-broken", url),
        remote("keyed", url, "CHECK_KEY"),
        remote("keyless", url, "MISSING_VAR"),
        sim("no-endpoint", None),
    ]
    catalog = Catalog(models={spec.id: spec for spec in specs})
    env = {"CHECK_KEY": KEY_VALUE, "OTHER": "unrelated-value"}

    rows = {row.model_id: row for row in await check_models(catalog, pool=pool, env=env, timeout_s=5)}

    assert list(rows) == [spec.id for spec in specs]  # catalog order
    ok = rows["sim-ok"]
    assert ok.reachable and ok.failure_class is None and ok.provider == "simulated"
    assert ok.latency_ms is not None and ok.latency_ms >= 5
    assert ok.input_tokens > 0 and ok.output_tokens > 0
    assert ok.cost_micros == ok.input_tokens * 1 + ok.output_tokens * 2  # 1 and 2 USD/Mtok = micros/token
    assert ok.message

    broken = rows["sim-broken"]
    assert not broken.reachable and broken.failure_class == "server_error"
    assert broken.latency_ms is not None and broken.cost_micros == 0
    assert "500" in broken.message

    keyed = rows["keyed"]
    assert keyed.reachable and keyed.provider == "openai"

    keyless = rows["keyless"]
    assert not keyless.reachable and keyless.failure_class == "auth" and keyless.latency_ms is None
    assert "MISSING_VAR" in keyless.message

    no_endpoint = rows["no-endpoint"]
    assert not no_endpoint.reachable and no_endpoint.failure_class == "bad_request"
    assert "endpoint" in no_endpoint.message

    texts = [repr(row) for row in rows.values()] + [render_rows(list(rows.values()))]
    assert not any(KEY_VALUE in text or "unrelated-value" in text for text in texts)


async def test_calls_run_concurrently_and_a_hung_model_times_out(fleet: SimFleet, pool: ClientPool) -> None:
    url = fleet.base_url
    assert url is not None
    slow = {"latency_median_ms": 300, "latency_p99_ms": 300}
    # three catalog entries served by the fleet's one "sim-ok" model (upstream stays "sim-ok")
    specs = [sim("sim-hangs", url), *(sim("sim-ok", url).model_copy(update={"id": f"ok-{i}"}) for i in range(3))]
    fleet.set_profile("sim-ok", SimProfile(**slow))
    catalog = Catalog(models={spec.id: spec for spec in specs})

    rows = await check_models(catalog, pool=pool, env={}, timeout_s=0.8)

    hung = rows[0]
    assert hung.failure_class == "timeout" and not hung.reachable
    assert hung.latency_ms is not None and 700 <= hung.latency_ms < 2000
    assert all(row.reachable for row in rows[1:])
    # three 300 ms calls and a 800 ms timeout in about 800 ms: they ran at once
    assert all(row.latency_ms is not None and row.latency_ms < 700 for row in rows[1:])


def test_render_rows_aligns_columns() -> None:
    rows = [
        CheckRow("a-very-long-model-id", "simulated", True, 12, 20, 3, 26, None, "ok"),
        CheckRow("m", "openai", False, None, 0, 0, 0, "auth", "model 'm' needs an API key: set X"),
    ]
    lines = render_rows(rows).splitlines()
    header, first, second, summary = lines
    assert header.split()[:3] == ["model", "provider", "status"]
    assert first.split()[:3] == ["a-very-long-model-id", "simulated", "ok"]
    assert second.split()[:3] == ["m", "openai", "auth"]
    for column in ("provider", "status", "message"):  # left-aligned columns start at one offset
        start = header.index(column)
        assert first[start - 1] == " " and second[start - 1] == " " and first[start] != " " and second[start] != " "
    latency_end = header.index("latency_ms") + len("latency_ms")
    assert first[latency_end - 2 : latency_end] == "12" and second[latency_end - 1] == "-"  # right-aligned numbers
    assert summary == "1/2 models reachable"


CATALOG_YAML = """
models:
  - id: sim-good
    provider: simulated
    family: a
    simulated: {latency_median_ms: 5, latency_p99_ms: 5}
  - id: sim-bad
    provider: simulated
    family: b
    simulated: {latency_median_ms: 5, latency_p99_ms: 5, script: [rate_limited]}
"""


def test_main_check_starts_its_own_fleet_and_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(CATALOG_YAML)

    code = main_check(path, sim_url=None, json_out=True)

    last = capsys.readouterr().out.strip().splitlines()[-1]
    models = {row["model_id"]: row for row in json.loads(last)["models"]}
    assert code == 1
    assert models["sim-good"]["reachable"] is True and models["sim-good"]["failure_class"] is None
    assert models["sim-bad"]["failure_class"] == "rate_limited"


def test_main_check_exits_zero_when_all_reachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(CATALOG_YAML.split("  - id: sim-bad")[0])

    code = main_check(path, sim_url=None, json_out=False)

    out = capsys.readouterr().out
    assert code == 0
    assert "sim-good" in out and "1/1 models reachable" in out
