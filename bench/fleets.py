"""The fleets the decision benchmarks run on, side by side: each benchmark's own independent
fleet (mistakes drawn independently, ``behaviour.decide_answer``) and ``helm-mmlu``, eight real
models that err alike as published (``agents/models/simulated/helm_mmlu.yaml``, fitted by
``correlated.py``). Answers are exactly what the live simulated fleet would serve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from swarmstream.agents.models.catalog import ModelSpec, SimProfile
from swarmstream.agents.models.simulated.behaviour import (
    AnswerDecision,
    accuracy_for,
    decide_answer,
)
from swarmstream.agents.models.simulated.correlated import (
    CorrelatedErrors,
    fit_profiles,
)
from swarmstream.agents.models.simulated.presets import load_preset
from swarmstream.agents.models.simulated.taskset import Truth

REALISTIC = "helm-mmlu"


@dataclass
class BenchFleet:
    name: str
    specs: tuple[ModelSpec, ...]
    _fitted: CorrelatedErrors | None = field(default=None, init=False, repr=False)
    _fit_done: bool = field(default=False, init=False, repr=False)
    _by_id: dict[str, ModelSpec] = field(default_factory=dict, init=False, repr=False)

    @property
    def ids(self) -> list[str]:
        return [spec.id for spec in self.specs]

    def spec(self, model: str) -> ModelSpec:
        if not self._by_id:
            self._by_id.update({s.id: s for s in self.specs})
        return self._by_id[model]

    def profile(self, model: str) -> SimProfile:
        profile = self.spec(model).simulated
        assert profile is not None
        return profile

    def answers(self, seed: int, prompt: str, truth: Truth, accuracy: dict[str, float] | None = None) -> dict[str, AnswerDecision]:
        """Every model's answer to one prompt; ``accuracy`` overrides a model's (drift)."""
        if not self._fit_done:
            self._fitted = fit_profiles({s.id: self.profile(s.id) for s in self.specs})
            self._fit_done = True
        acc = {m: accuracy_for(self.profile(m), truth.category) for m in self.ids}
        acc.update(accuracy or {})
        if self._fitted is None:
            return {m: decide_answer(seed, m, prompt, truth, acc[m]) for m in self.ids}
        return self._fitted.answers(seed, prompt, truth, acc)


def realistic_fleet() -> BenchFleet:
    catalog = load_preset(REALISTIC)
    return BenchFleet(REALISTIC, tuple(catalog.models.values()))


def independent_fleet(specs: Sequence[ModelSpec]) -> BenchFleet:
    return BenchFleet("independent", tuple(specs))
