"""Fallback chain configuration: ``chains.yaml``, validated with errors that say where.

Shape of the file (every key but ``chains`` optional)::

    default: standard                 # the chain of a task that names none
    circuit: {consecutive_failures: 5, cooldown_ms: 10000}   # every model's breaker
    circuits:                         # per-model overrides, merged onto `circuit`
      sim-epsilon: {cooldown_ms: 20000}
    retry:                            # per-class overrides, merged onto retry.DEFAULT_POLICIES
      server_error: {max_attempts: 2}
    chains:
      standard:
        order: static                 # or adaptive: reordered by measured reliability
        max_attempts: 6               # ONE budget per task: retries and fallbacks together
        links:
          - model: sim-alpha
            on: {content_policy: sim-epsilon, context_length: longest_context}
            quality: {min_chars: 1, regex: '\\w', json_schema: {...}}
          - model: sim-delta
            transform: {truncate_prompt_chars: 24000, max_tokens: 128, prefix: '...', system: '...'}

Routing (``Link.on``): for a failure class that moves the chain on, the target is

* ``next``: the next link in order (also what an unlisted class does);
* ``fail``: end the task now (e.g. content_policy when no other model may see it);
* ``longest_context``: the untried link whose model has the largest context window;
* a model id: that link of the same chain; links between are passed over.

Rules checked at load: every model is in the catalog, a chain has at least one
link and no model twice (routing names links by model), routing targets exist in
their chain and are not the link itself (retrying the same link is the retry
policy's job), the default names a chain, a regex compiles and a JSON Schema is
valid. Errors read ``<file>: <path in file>: <what is wrong>``, one per line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from swarmstream.agents.configfile import format_validation_error, read_yaml_mapping
from swarmstream.agents.fallback.circuit import CircuitConfig
from swarmstream.agents.fallback.retry import DEFAULT_POLICIES, RetryPolicy
from swarmstream.agents.models.failures import FailureClass

DEFAULT_CHAINS_PATH = Path(__file__).with_name("chains.yaml")
"""The example chains over the demo fleet, shipped with the package."""

NEXT = "next"
FAIL = "fail"
LONGEST_CONTEXT = "longest_context"
ROUTE_KEYWORDS: frozenset[str] = frozenset({NEXT, FAIL, LONGEST_CONTEXT})

_CLASS_NAMES: frozenset[str] = frozenset(c.value for c in FailureClass)

_KNOWN_MODELS = "known_models"
"""Validation-context key: the catalog's model ids; absent, model ids are not checked."""


def _config_error(subpath: str, message: str) -> PydanticCustomError:
    """An error whose location is ``subpath`` below the validated object (pydantic has no
    way to point a model validator's error deeper, so the formatter appends it)."""
    return PydanticCustomError("chains_config", "{message}", {"message": message, "subpath": subpath})


def _check_failure_classes(mapping: dict[Any, Any]) -> None:
    for key in mapping:
        if key not in _CLASS_NAMES:
            raise _config_error(str(key), f"unknown failure class {key!r} (known: {', '.join(sorted(_CLASS_NAMES))})")


class Transform(BaseModel):
    """How the request changes before it is sent to this link.

    ``truncate_prompt_chars`` keeps the prompt's head and tail (instructions come
    first, the question last) and drops the middle; ``max_tokens`` lowers (never
    raises) the answer's token limit; ``prefix`` is prepended to the prompt as is;
    ``system`` replaces the system prompt. Applied by ``planner.apply_transform``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    truncate_prompt_chars: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    prefix: str | None = None
    system: str | None = None


class Quality(BaseModel):
    """What a link's answer must satisfy, beyond parsing for the task's answer type.

    ``regex`` must be found (``re.search``) in the text; ``json_schema`` must
    validate the JSON in the text; ``min_chars`` counts the stripped text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    regex: str | None = None
    json_schema: dict[str, Any] | None = None
    min_chars: int | None = Field(default=None, ge=1)

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, regex: str | None) -> str | None:
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {regex!r}: {exc}") from None
        return regex

    @field_validator("json_schema")
    @classmethod
    def _schema_is_valid(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            try:
                validator_class.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema


class Link(BaseModel):
    """One model of a chain, with its routing, request transform and answer check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    on: dict[FailureClass, str] = {}
    transform: Transform | None = None
    quality: Quality | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        # YAML 1.1 (PyYAML) reads an unquoted `on:` key as the boolean True.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = dict(data)
            data["on"] = data.pop(True)
        return data

    @field_validator("on", mode="before")
    @classmethod
    def _on_keys_are_classes(cls, on: Any) -> Any:
        if isinstance(on, dict):
            _check_failure_classes(on)
        return on

    @field_validator("model")
    @classmethod
    def _model_is_known(cls, model: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get(_KNOWN_MODELS)
        if known is not None and model not in known:
            raise ValueError(f"unknown model {model!r} (known: {', '.join(sorted(known)) or 'none'})")
        return model


class Chain(BaseModel):
    """An ordered list of links and one attempt budget shared by retries and fallbacks.

    ``max_attempts`` bounds the calls one task may cause through this chain, so a
    chain of 3 links whose policies allow 3 calls each cannot become 9 calls per
    task during an outage (no retry storm).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    links: list[Link] = Field(min_length=1)
    order: Literal["static", "adaptive"] = "static"
    max_attempts: int = Field(default=6, ge=1)

    @model_validator(mode="after")
    def _links_and_routes_consistent(self) -> Chain:
        first_index: dict[str, int] = {}
        for index, link in enumerate(self.links):
            if link.model in first_index:
                raise _config_error(
                    f"links[{index}].model",
                    f"model {link.model!r} is already links[{first_index[link.model]}]; "
                    "a chain names each model once (routing targets links by model)",
                )
            first_index[link.model] = index
        for index, link in enumerate(self.links):
            for failure_class, target in link.on.items():
                where = f"links[{index}].on.{failure_class.value}"
                if target == link.model:
                    raise _config_error(
                        where, f"routes to its own link {target!r}; retries of a link are set by the retry policy"
                    )
                if target not in ROUTE_KEYWORDS and target not in first_index:
                    choices = ", ".join([*sorted(ROUTE_KEYWORDS), *(f"{m!r}" for m in first_index)])
                    raise _config_error(where, f"target {target!r} is not a link of this chain (use one of: {choices})")
        return self

    def link(self, model: str) -> Link:
        """The link of ``model``; a model that is not (or no longer) in the chain gets a bare link."""
        for link in self.links:
            if link.model == model:
                return link
        return Link(model=model)


class UnknownChainError(KeyError):
    """A chain name the configuration does not have; the message lists those it has."""

    def __str__(self) -> str:
        return str(self.args[0])


class ChainsConfig(BaseModel):
    """Every named chain, the default one, and breaker and retry settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chains: dict[str, Chain] = Field(min_length=1)
    default: str | None = None
    circuit: CircuitConfig = CircuitConfig()
    circuits: dict[str, CircuitConfig] = {}
    retry: dict[FailureClass, RetryPolicy] = {}

    @model_validator(mode="before")
    @classmethod
    def _merge_overrides(cls, data: Any) -> Any:
        """Per-model breaker entries (and per-class retry entries, below) are partial: each is
        merged onto its default, so ``sim-x: {cooldown_ms: 20000}`` keeps every other threshold."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        circuit = data.get("circuit")
        if isinstance(circuit, CircuitConfig):
            base_circuit: dict[str, Any] = circuit.model_dump()
        else:
            base_circuit = circuit if isinstance(circuit, dict) else {}
        circuits = data.get("circuits")
        if isinstance(circuits, dict):
            data["circuits"] = {
                model: {**base_circuit, **override} if isinstance(override, dict) else override
                for model, override in circuits.items()
            }
        return data

    @field_validator("retry", mode="before")
    @classmethod
    def _merge_retry_defaults(cls, retry: Any) -> Any:
        if not isinstance(retry, dict):
            return retry
        _check_failure_classes(retry)
        return {
            name: {**DEFAULT_POLICIES[FailureClass(name)].model_dump(), **override}
            if isinstance(override, dict)
            else override
            for name, override in retry.items()
        }

    @field_validator("circuits")
    @classmethod
    def _circuit_models_known(
        cls, circuits: dict[str, CircuitConfig], info: ValidationInfo
    ) -> dict[str, CircuitConfig]:
        known = (info.context or {}).get(_KNOWN_MODELS)
        if known is not None:
            for model in circuits:
                if model not in known:
                    raise _config_error(model, f"unknown model {model!r} (known: {', '.join(sorted(known)) or 'none'})")
        return circuits

    @model_validator(mode="after")
    def _default_names_a_chain(self) -> ChainsConfig:
        if self.default is not None and self.default not in self.chains:
            raise _config_error("default", f"unknown chain {self.default!r} (chains: {', '.join(sorted(self.chains))})")
        return self

    def resolve(self, name: str | None) -> tuple[str, Chain]:
        """The chain a task asked for by ``name``, else the default; UnknownChainError otherwise."""
        chosen = name or self.default
        if chosen is None:
            raise UnknownChainError(
                f"task names no chain and there is no default (chains: {', '.join(sorted(self.chains))})"
            )
        try:
            return chosen, self.chains[chosen]
        except KeyError:
            raise UnknownChainError(f"unknown chain {chosen!r} (chains: {', '.join(sorted(self.chains))})") from None

    def circuit_for(self, model: str) -> CircuitConfig:
        """The breaker thresholds of ``model``: its override, else the shared ``circuit``."""
        return self.circuits.get(model, self.circuit)

    def retry_policies(self) -> dict[FailureClass, RetryPolicy]:
        """Every class's retry policy: the defaults with this file's overrides applied."""
        return {**DEFAULT_POLICIES, **self.retry}


class ChainsError(ValueError):
    """The chains file is missing, not YAML, or invalid; the message says where and what."""


def load_chains(path: Path | str = DEFAULT_CHAINS_PATH, *, known_models: Mapping[str, int]) -> ChainsConfig:
    """Read and validate a chains file against the catalog's models (id -> context window).

    Raises ChainsError with one line per problem, each ``<file>: <path>: <what is wrong>``.
    """
    path = Path(path)
    raw = read_yaml_mapping(path, what="chains", top="chains", error=ChainsError)
    try:
        return ChainsConfig.model_validate(raw, context={_KNOWN_MODELS: frozenset(known_models)})
    except ValidationError as exc:
        raise ChainsError(format_validation_error(path.name, exc)) from None
