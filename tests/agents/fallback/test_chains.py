"""Chain configuration: the shipped example loads, and every mistake names file, path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from swarmstream.agents.fallback.chains import (
    DEFAULT_CHAINS_PATH,
    Chain,
    ChainsConfig,
    ChainsError,
    Link,
    UnknownChainError,
    load_chains,
)
from swarmstream.agents.fallback.circuit import CircuitConfig
from swarmstream.agents.fallback.retry import DEFAULT_POLICIES
from swarmstream.agents.models.catalog import DEFAULT_CATALOG_PATH, load_catalog
from swarmstream.agents.models.failures import FailureClass as FC

KNOWN = {"sim-alpha": 16_384, "sim-beta": 16_384, "sim-delta": 8_192}
CLASSES = (
    "auth, bad_request, content_policy, context_length, invalid_output, network, rate_limited, server_error, timeout"
)
ONE_LINK = "chains:\n  c: {links: [{model: sim-alpha}]}\n"


def _load(tmp_path: Path, text: str) -> ChainsConfig:
    path = tmp_path / "chains.yaml"
    path.write_text(text)
    return load_chains(path, known_models=KNOWN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the file itself
        ("- a\n", "chains.yaml: expected a mapping with 'chains' at the top, got list"),
        ("default: c\n", "chains.yaml: chains: Field required"),
        ("chains: {}\n", "chains.yaml: chains: Dictionary should have at least 1 item after validation, not 0"),
        ("surprise: 1\n" + ONE_LINK, "chains.yaml: surprise: Extra inputs are not permitted"),
        # links
        (
            "default: c\nchains:\n  c:\n    links: [{model: sim-alpha}, {model: sim-beta}, {model: gpt-5o}]\n",
            "chains.yaml: chains.c.links[2].model: unknown model 'gpt-5o' (known: sim-alpha, sim-beta, sim-delta)",
        ),
        (
            "chains:\n  c: {links: []}\n",
            "chains.yaml: chains.c.links: List should have at least 1 item after validation, not 0",
        ),
        (
            "chains:\n  c:\n    links: [{modle: sim-alpha}]\n",
            "chains.yaml: chains.c.links[0].model: Field required\n"
            "chains.yaml: chains.c.links[0].modle: Extra inputs are not permitted",
        ),
        (
            "chains:\n  c:\n    links: [{model: sim-alpha}, {model: sim-beta}, {model: sim-alpha}]\n",
            "chains.yaml: chains.c.links[2].model: model 'sim-alpha' is already links[0]; "
            "a chain names each model once (routing targets links by model)",
        ),
        (
            "chains:\n  c: {order: random, links: [{model: sim-alpha}]}\n",
            "chains.yaml: chains.c.order: Input should be 'static' or 'adaptive'",
        ),
        (
            "chains:\n  c: {max_attempts: 0, links: [{model: sim-alpha}]}\n",
            "chains.yaml: chains.c.max_attempts: Input should be greater than or equal to 1",
        ),
        # routing
        (
            "chains:\n  c:\n    links:\n      - model: sim-alpha\n        on: {content_policy: sim-delta}\n"
            "      - model: sim-beta\n",
            "chains.yaml: chains.c.links[0].on.content_policy: target 'sim-delta' is not a link of this chain "
            "(use one of: fail, longest_context, next, 'sim-alpha', 'sim-beta')",
        ),
        (
            "chains:\n  c:\n    links:\n      - model: sim-alpha\n        on: {timeout: sim-alpha}\n",
            "chains.yaml: chains.c.links[0].on.timeout: routes to its own link 'sim-alpha'; "
            "retries of a link are set by the retry policy",
        ),
        (
            "chains:\n  c:\n    links:\n      - model: sim-alpha\n        on: {overloaded: next}\n",
            f"chains.yaml: chains.c.links[0].on.overloaded: unknown failure class 'overloaded' (known: {CLASSES})",
        ),
        # transforms and quality checks
        (
            "chains:\n  c: {links: [{model: sim-alpha, transform: {truncate_prompt_chars: 0}}]}\n",
            "chains.yaml: chains.c.links[0].transform.truncate_prompt_chars: Input should be greater than 0",
        ),
        (
            "chains:\n  c: {links: [{model: sim-alpha, quality: {regex: '(a'}}]}\n",
            "chains.yaml: chains.c.links[0].quality.regex: "
            "invalid regex '(a': missing ), unterminated subpattern at position 0",
        ),
        (
            "chains:\n  c: {links: [{model: sim-alpha, quality: {json_schema: {type: 12}}}]}\n",
            "chains.yaml: chains.c.links[0].quality.json_schema: "
            "not a valid JSON Schema: 12 is not valid under any of the given schemas",
        ),
        # default, breakers, retries
        ("default: main\n" + ONE_LINK, "chains.yaml: default: unknown chain 'main' (chains: c)"),
        (
            "circuits: {gpt-5o: {cooldown_ms: 5}}\n" + ONE_LINK,
            "chains.yaml: circuits.gpt-5o: unknown model 'gpt-5o' (known: sim-alpha, sim-beta, sim-delta)",
        ),
        (
            "circuits: {sim-alpha: {cooldown_ms: -5}}\n" + ONE_LINK,
            "chains.yaml: circuits.sim-alpha.cooldown_ms: Input should be greater than or equal to 0",
        ),
        (
            "retry: {slow: {max_attempts: 2}}\n" + ONE_LINK,
            f"chains.yaml: retry.slow: unknown failure class 'slow' (known: {CLASSES})",
        ),
        (
            "retry: {timeout: {max_attempts: 0}}\n" + ONE_LINK,
            "chains.yaml: retry.timeout.max_attempts: Input should be greater than or equal to 1",
        ),
    ],
)
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ChainsError) as caught:
        _load(tmp_path, text)
    assert str(caught.value) == message


def test_missing_and_unparseable_files(tmp_path: Path) -> None:
    with pytest.raises(ChainsError, match=r"nope\.yaml: cannot read chains: No such file or directory"):
        load_chains(tmp_path / "nope.yaml", known_models=KNOWN)
    with pytest.raises(ChainsError, match=r"^chains\.yaml: not valid YAML: "):
        _load(tmp_path, "chains: [\n")


def test_shipped_example_loads_against_the_demo_catalog() -> None:
    catalog = load_catalog(DEFAULT_CATALOG_PATH)
    config = load_chains(DEFAULT_CHAINS_PATH, known_models={m.id: m.context_window for m in catalog.models.values()})
    name, chain = config.resolve(None)
    assert name == "standard"
    assert [link.model for link in chain.links] == ["sim-alpha", "sim-beta", "sim-delta", "sim-epsilon"]
    assert chain.links[0].on == {FC.CONTENT_POLICY: "sim-epsilon", FC.CONTEXT_LENGTH: "longest_context"}
    assert config.chains["adaptive"].order == "adaptive"
    used = {link.model for chain in config.chains.values() for link in chain.links}
    assert used == {"sim-alpha", "sim-beta", "sim-gamma", "sim-delta", "sim-epsilon"}


def test_unquoted_yaml_on_key_is_the_routing_not_a_boolean(tmp_path: Path) -> None:
    config = _load(tmp_path, "chains:\n  c:\n    links:\n      - model: sim-alpha\n        on:\n          auth: fail\n")
    assert config.chains["c"].links[0].on == {FC.AUTH: "fail"}


def test_overrides_merge_onto_defaults(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "circuit: {cooldown_ms: 2000, min_calls: 4}\n"
        "circuits: {sim-beta: {cooldown_ms: 9000}}\n"
        "retry: {server_error: {max_attempts: 2}}\n" + ONE_LINK,
    )
    assert config.circuit_for("sim-alpha") == CircuitConfig(cooldown_ms=2000, min_calls=4)
    assert config.circuit_for("sim-beta") == CircuitConfig(cooldown_ms=9000, min_calls=4)
    policies = config.retry_policies()
    assert policies[FC.SERVER_ERROR] == DEFAULT_POLICIES[FC.SERVER_ERROR].model_copy(update={"max_attempts": 2})
    assert policies[FC.TIMEOUT] == DEFAULT_POLICIES[FC.TIMEOUT]


@pytest.mark.parametrize(
    ("default", "asked", "expected"),
    [
        ("a", None, "a"),
        ("a", "b", "b"),
        (None, "b", "b"),
        (None, None, "task names no chain and there is no default (chains: a, b)"),
        ("a", "zzz", "unknown chain 'zzz' (chains: a, b)"),
    ],
)
def test_resolve(default: str | None, asked: str | None, expected: str) -> None:
    chain = Chain(links=[Link(model="m")])
    config = ChainsConfig(chains={"a": chain, "b": chain}, default=default)
    if expected in ("a", "b"):
        assert config.resolve(asked) == (expected, chain)
    else:
        with pytest.raises(UnknownChainError) as caught:
            config.resolve(asked)
        assert str(caught.value) == expected


def test_chains_built_in_code_skip_the_catalog_check_but_not_the_routing_check() -> None:
    assert Chain(links=[Link(model="anything")]).links[0].model == "anything"
    with pytest.raises(ValueError, match="target 'x' is not a link of this chain"):
        Chain(links=[Link(model="a", on={FC.AUTH: "x"})])


def test_overrides_merge_in_code_too() -> None:
    config = ChainsConfig(
        chains={"c": Chain(links=[Link(model="m")])},
        circuit=CircuitConfig(min_calls=4),
        circuits={"m": {"cooldown_ms": 5}},  # type: ignore[dict-item]
    )
    assert config.circuit_for("m") == CircuitConfig(min_calls=4, cooldown_ms=5)
