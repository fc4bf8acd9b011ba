"""The catalog: the shipped demo fleet loads, and every mistake names file, path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from swarmstream.agents.models.catalog import (
    DEFAULT_CATALOG_PATH,
    Catalog,
    CatalogError,
    ModelSpec,
    SimProfile,
    load_catalog,
)

SIM_URL = "http://127.0.0.1:8700/v1"


def test_shipped_demo_fleet() -> None:
    catalog = load_catalog(DEFAULT_CATALOG_PATH, sim_url=SIM_URL + "/")
    assert list(catalog.models) == ["sim-alpha", "sim-beta", "sim-gamma", "sim-delta", "sim-epsilon"]
    assert catalog.default_consensus == ["sim-alpha", "sim-beta", "sim-gamma"]
    specs = catalog.models.values()
    assert all(s.provider == "simulated" and s.endpoint == SIM_URL and s.api_key_env is None for s in specs)
    assert [s.simulated.accuracy for s in specs if s.simulated] == [0.70, 0.70, 0.70, 0.65, 0.80]
    assert len({s.family for s in specs}) == 5
    assert len({(s.input_usd_per_mtok, s.output_usd_per_mtok) for s in specs}) == 5
    assert all(s.upstream == s.id for s in specs)


def test_shipped_real_provider_examples_are_valid_when_uncommented() -> None:
    lines = DEFAULT_CATALOG_PATH.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#  - id: gpt-"))
    block = "\n".join(line[1:] for line in lines[start:] if line.startswith("#"))
    entries = yaml.safe_load("models:\n" + block)["models"]
    specs = [ModelSpec.model_validate(entry) for entry in entries]
    assert [s.provider for s in specs] == ["openai", "anthropic"]
    assert all(s.api_key_env for s in specs)


def test_simulated_endpoint_stays_empty_without_sim_url() -> None:
    assert load_catalog(DEFAULT_CATALOG_PATH).get("sim-alpha").endpoint is None


def test_defaults() -> None:
    spec = ModelSpec(id="gpt-x", provider="openai", family="gpt")
    assert (spec.upstream, spec.endpoint, spec.context_window, spec.max_in_flight, spec.timeout_s) == (
        "gpt-x",
        "https://api.openai.com/v1",
        8192,
        64,
        30,
    )
    assert ModelSpec(id="c", provider="anthropic", family="claude").endpoint == "https://api.anthropic.com/v1"
    assert ModelSpec(id="s", provider="simulated", family="sim").simulated == SimProfile()


def test_get_unknown_lists_known_ids() -> None:
    catalog = load_catalog(DEFAULT_CATALOG_PATH)
    with pytest.raises(KeyError) as caught:
        catalog.get("gpt-5o")
    assert str(caught.value) == (
        "unknown model 'gpt-5o' (known: sim-alpha, sim-beta, sim-delta, sim-epsilon, sim-gamma)"
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


GOOD_MODEL = "  - {id: a, provider: simulated, family: f}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n"
            "  - {id: a, provider: simulated, family: f}\n"
            "  - {id: b, provider: simulated, family: f}\n"
            "  - {id: c, provider: azure, family: f}\n",
            "models.yaml: models[2].provider: Input should be 'openai', 'anthropic', 'simulated' or 'inproc'",
        ),
        (
            "models:\n" + GOOD_MODEL + "default_consensus: [a, zeta, omega]\n",
            "models.yaml: default_consensus: unknown model(s) 'zeta', 'omega' (known: a)",
        ),
        ("models:\n" + GOOD_MODEL + GOOD_MODEL, "models.yaml: models: duplicate id 'a' at models[0] and models[1]"),
        (
            "models:\n  - {id: a, provider: openai, family: f, input_usd_per_mtoks: 1}\n",
            "models.yaml: models[0].input_usd_per_mtoks: Extra inputs are not permitted",
        ),
        (
            "models:\n  - {id: a, provider: openai, family: f, input_usd_per_mtok: -1}\n",
            "models.yaml: models[0].input_usd_per_mtok: Input should be greater than or equal to 0",
        ),
        ("models:\n  - {id: a, provider: openai}\n", "models.yaml: models[0].family: Field required"),
        (
            "models:\n  - {id: a, provider: openai, family: f, endpoint: api.openai.com}\n",
            "models.yaml: models[0].endpoint: must start with http:// or https://",
        ),
        (
            "models:\n  - {id: a, provider: openai, family: f, api_key_env: sk-abc123}\n",
            "models.yaml: models[0].api_key_env: must be the NAME of an environment variable",
        ),
        (
            "models:\n  - {id: a, provider: openai, family: f, simulated: {accuracy: 0.5}}\n",
            "models.yaml: models[0]: 'simulated' applies only to provider 'simulated', not 'openai'",
        ),
        (
            "models:\n  - {id: a, provider: simulated, family: f, simulated: {accuracy: 1.5}}\n",
            "models.yaml: models[0].simulated.accuracy: Input should be less than or equal to 1",
        ),
        (
            "models:\n  - {id: a, provider: simulated, family: f, simulated: {failures: {boom: 0.1}}}\n",
            "models.yaml: models[0].simulated.failures: unknown failure class 'boom'",
        ),
        (
            "models:\n  - {id: a, provider: simulated, family: f, simulated: {script: [ok, explode]}}\n",
            "models.yaml: models[0].simulated.script: unknown outcome(s) ['explode']",
        ),
        (
            "models:\n  - {id: a, provider: simulated, family: f,"
            " simulated: {latency_median_ms: 100, latency_p99_ms: 50}}\n",
            "models.yaml: models[0].simulated: latency_p99_ms (50.0) is below latency_median_ms (100.0)",
        ),
        ("models: [\n", "models.yaml: not valid YAML"),
        ("- a\n- b\n", "models.yaml: expected a mapping with 'models' at the top, got list"),
        ("default_consensus: []\n", "models.yaml: models: Field required"),
    ],
)
def test_invalid_catalog_names_file_path_and_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(_write(tmp_path, text))
    assert message in str(caught.value)


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = "models:\n  - {id: a, provider: x, family: f}\n  - {id: b, provider: openai}\n"
    with pytest.raises(CatalogError) as caught:
        load_catalog(_write(tmp_path, text))
    assert str(caught.value).splitlines() == [
        "models.yaml: models[0].provider: Input should be 'openai', 'anthropic', 'simulated' or 'inproc'",
        "models.yaml: models[1].family: Field required",
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="nope.yaml: cannot read catalog"):
        load_catalog(tmp_path / "nope.yaml")


def test_sim_url_fills_only_simulated_models_without_endpoint(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "models:\n"
        "  - {id: s1, provider: simulated, family: f}\n"
        "  - {id: s2, provider: simulated, family: f, endpoint: 'http://elsewhere:1/v1'}\n"
        "  - {id: o, provider: openai, family: f, api_key_env: OPENAI_API_KEY}\n",
    )
    catalog = load_catalog(path, sim_url=SIM_URL)
    assert [s.endpoint for s in catalog.models.values()] == [SIM_URL, "http://elsewhere:1/v1", "https://api.openai.com/v1"]


def test_catalog_built_in_code_is_validated_too() -> None:
    spec = ModelSpec(id="a", provider="simulated", family="f")
    with pytest.raises(ValueError, match="unknown model"):
        Catalog(models={"a": spec}, default_consensus=["b"])
    with pytest.raises(ValueError, match="differs from its model's id"):
        Catalog(models={"x": spec})
