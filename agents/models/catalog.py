"""The model catalog: which models exist, where they are served, what they cost.

``models.yaml`` is read once at start-up and validated strictly (unknown keys are
errors), because a typo in a price or a provider name must stop the worker with
a message that names the file and the line's path, not surface as a wrong bill
or a 404 hours later. Keys are never stored here: a model names the environment
variable that holds its key (``api_key_env``), and providers read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from swarmstream.agents.configfile import format_validation_error, read_yaml_mapping
from swarmstream.agents.models.failures import FailureClass

DEFAULT_CATALOG_PATH = Path(__file__).with_name("models.yaml")
"""The demo fleet shipped with the package (five simulated models)."""

DEFAULT_ENDPOINTS: Mapping[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
}
"""Used when a real provider's entry omits ``endpoint``."""

SIM_PROVIDERS: frozenset[str] = frozenset({"simulated", "inproc"})
"""Providers whose behaviour a ``simulated`` profile describes: the fleet over loopback HTTP
("simulated") or the same decisions answered inside the worker, with no HTTP ("inproc",
``providers/inproc.py``: benchmarks of the orchestration's own cost)."""

SIM_OUTCOMES: frozenset[str] = frozenset({"ok", *FailureClass})
"""What a simulated model's ``script`` may list: a success or one failure class."""


class CorrelatedErrorsProfile(BaseModel):
    """Targets for the correlated-error model (``agents/models/simulated/correlated.py``): a
    simulated model that has one errs like real models, alike with every other such model of
    the fleet, and the fleet fits its latent parameters to these numbers.

    ``both_correct`` and ``both_wrong_agreement`` map another model's id to the pair's share of
    prompts both answer right, and the chance that they give the same wrong answer when both
    are wrong (a pair may be stated on either model, once). ``confidence_auroc``: how well the
    model's confidence tells its right answers from its wrong ones; ``overconfidence``: logit
    shift of the reported confidence (> 0: overconfident, wrong answers included);
    ``sample_correlation``: how alike two samples at temperature 1 are (latent correlation).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    both_correct: dict[str, float] = {}
    both_wrong_agreement: dict[str, float] = {}
    confidence_auroc: float = Field(default=0.75, ge=0.5, le=1)
    overconfidence: float = Field(default=0.0, ge=-5, le=5)
    sample_correlation: float = Field(default=0.8, ge=0, le=1)


class SimProfile(BaseModel):
    """How the simulated fleet (agents/models/simulated) behaves when serving this model.

    ``failures`` adds per-class rates on top of ``error_rate`` (which is served as
    server_error); ``script`` overrides randomness with a fixed cycle of outcomes,
    so a test can say "fail twice with 429, then succeed". ``accuracy_by_category``
    (task category -> accuracy, e.g. ``{"math": 0.95}``) overrides ``accuracy`` for
    prompts of that category, so a fleet can have specialists for routing to find.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    accuracy: float = Field(default=0.7, ge=0, le=1)
    latency_median_ms: float = Field(default=50, ge=0)
    latency_p99_ms: float = Field(default=200, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    protocol: Literal["openai", "anthropic"] = "openai"
    failures: dict[str, float] = {}
    script: list[str] = []
    accuracy_by_category: dict[str, float] = {}
    correlated: CorrelatedErrorsProfile | None = None  # err like real models (the class above)

    @field_validator("accuracy_by_category")
    @classmethod
    def _category_accuracies_in_range(cls, accuracies: dict[str, float]) -> dict[str, float]:
        for category, accuracy in accuracies.items():
            if not 0 <= accuracy <= 1:
                raise ValueError(f"accuracy for category {category!r} must be between 0 and 1, got {accuracy}")
        return accuracies

    @field_validator("failures")
    @classmethod
    def _failures_are_known_classes(cls, failures: dict[str, float]) -> dict[str, float]:
        for name, rate in failures.items():
            if name not in SIM_OUTCOMES - {"ok"}:
                raise ValueError(f"unknown failure class {name!r} (known: {', '.join(sorted(FailureClass))})")
            if not 0 <= rate <= 1:
                raise ValueError(f"rate for {name!r} must be between 0 and 1, got {rate}")
        return failures

    @field_validator("script")
    @classmethod
    def _script_outcomes_are_known(cls, script: list[str]) -> list[str]:
        unknown = [outcome for outcome in script if outcome not in SIM_OUTCOMES]
        if unknown:
            raise ValueError(f"unknown outcome(s) {unknown} (known: {', '.join(sorted(SIM_OUTCOMES))})")
        return script

    @model_validator(mode="after")
    def _p99_not_below_median(self) -> SimProfile:
        if self.latency_p99_ms < self.latency_median_ms:
            raise ValueError(
                f"latency_p99_ms ({self.latency_p99_ms}) is below latency_median_ms ({self.latency_median_ms})"
            )
        return self


class ModelSpec(BaseModel):
    """One model as the rest of swarmstream sees it: identity, route, price, limits.

    Prices are USD per million tokens, as providers publish them; cost in
    micro-dollars is computed by ``providers.base.cost_micros``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    provider: Literal["openai", "anthropic", "simulated", "inproc"]
    endpoint: str | None = None
    upstream: str = Field(min_length=1)
    api_key_env: str | None = None
    input_usd_per_mtok: float = Field(default=0, ge=0)
    output_usd_per_mtok: float = Field(default=0, ge=0)
    family: str = Field(min_length=1)
    context_window: int = Field(default=8192, gt=0)
    capabilities: list[str] = []
    max_in_flight: int = Field(default=64, ge=1)
    timeout_s: float = Field(default=30, gt=0)
    simulated: SimProfile | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        """``upstream`` defaults to ``id``; real providers default to their public endpoint."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("upstream") is None and isinstance(data.get("id"), str):
            data["upstream"] = data["id"]
        provider = data.get("provider")
        if data.get("endpoint") is None and isinstance(provider, str) and provider in DEFAULT_ENDPOINTS:
            data["endpoint"] = DEFAULT_ENDPOINTS[provider]
        if isinstance(provider, str) and provider in SIM_PROVIDERS and data.get("simulated") is None:
            data["simulated"] = {}
        return data

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http(cls, endpoint: str | None) -> str | None:
        if endpoint is None:
            return None
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {endpoint!r}")
        return endpoint.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _api_key_env_is_a_name(cls, name: str | None) -> str | None:
        # Guards against pasting the key itself here, which would put it in the repo.
        if name is not None and not name.replace("_", "").isalnum():
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not a key")
        return name

    @model_validator(mode="after")
    def _sim_profile_only_for_simulated(self) -> ModelSpec:
        if self.simulated is not None and self.provider not in SIM_PROVIDERS:
            raise ValueError(
                f"'simulated' applies only to provider 'simulated', not {self.provider!r} ('inproc' takes one too)"
            )
        return self


class UnknownModelError(KeyError):
    """A model id the catalog does not have; the message lists the ones it has."""

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return str(self.args[0])


class Catalog(BaseModel):
    """All known models by id, and the set that answers a consensus task naming none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelSpec]
    default_consensus: list[str] = []

    @field_validator("models")
    @classmethod
    def _keys_match_ids(cls, models: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        for key, spec in models.items():
            if key != spec.id:
                raise ValueError(f"key {key!r} differs from its model's id {spec.id!r}")
        return models

    @field_validator("default_consensus")
    @classmethod
    def _consensus_ids_known(cls, ids: list[str], info: ValidationInfo) -> list[str]:
        models = info.data.get("models")
        if models is None:  # models itself failed; its error is reported instead
            return ids
        _check_known(ids, models)
        return ids

    def get(self, model_id: str) -> ModelSpec:
        """The spec of ``model_id``; UnknownModelError (a KeyError) lists the known ids."""
        try:
            return self.models[model_id]
        except KeyError:
            raise UnknownModelError(
                f"unknown model {model_id!r} (known: {', '.join(sorted(self.models)) or 'none'})"
            ) from None


def _check_known(ids: list[str], models: Mapping[str, object]) -> None:
    unknown = [model_id for model_id in ids if model_id not in models]
    if unknown:
        names = ", ".join(repr(model_id) for model_id in unknown)
        raise ValueError(f"unknown model(s) {names} (known: {', '.join(sorted(models)) or 'none'})")


class _CatalogFile(BaseModel):
    """The YAML's shape: models as a list, so errors point at ``models[2]`` like the file reads."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec]
    default_consensus: list[str] = []

    @field_validator("models")
    @classmethod
    def _ids_unique(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        first_index: dict[str, int] = {}
        for index, spec in enumerate(models):
            if spec.id in first_index:
                raise ValueError(f"duplicate id {spec.id!r} at models[{first_index[spec.id]}] and models[{index}]")
            first_index[spec.id] = index
        return models

    @field_validator("default_consensus")
    @classmethod
    def _consensus_ids_known(cls, ids: list[str], info: ValidationInfo) -> list[str]:
        models = info.data.get("models")
        if models is not None:
            _check_known(ids, {spec.id: spec for spec in models})
        return ids


class CatalogError(ValueError):
    """The catalog file is missing, not YAML, or invalid; the message says where and what."""


def load_catalog(path: Path | str = DEFAULT_CATALOG_PATH, *, sim_url: str | None = None) -> Catalog:
    """Read and validate a catalog file.

    ``sim_url`` is the base URL of the simulated fleet (known only at runtime, it
    picks a free port); it becomes the ``endpoint`` of every simulated model that
    has none. Raises CatalogError with one line per problem, each as
    ``<file>: <path in file>: <what is wrong>``.
    """
    path = Path(path)
    raw = read_yaml_mapping(path, what="catalog", top="models", error=CatalogError)
    try:
        parsed = _CatalogFile.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(format_validation_error(path.name, exc)) from None
    specs = parsed.models
    if sim_url is not None:
        sim_url = sim_url.rstrip("/")
        specs = [
            spec.model_copy(update={"endpoint": sim_url})
            if spec.provider == "simulated" and spec.endpoint is None
            else spec
            for spec in specs
        ]
    return Catalog(models={spec.id: spec for spec in specs}, default_consensus=parsed.default_consensus)
