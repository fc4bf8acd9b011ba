"""Selection policies: candidates with their live stats in, one model and its propensities out.

Every policy returns a :class:`Selection` that records the score of each
candidate and the probability each had of being chosen (its propensity), so a
later replay can evaluate a different policy on logged traffic by inverse
propensity weighting. Deterministic policies log exact propensities (1 for the
winner, 0 for the rest); Thompson sampling's are estimated (see
:class:`ThompsonPolicy`).

Policies (registry :data:`POLICIES`, one entry each):

    weighted              w_q * mean quality - w_c * cost - w_l * latency (normalised)
    cheapest_above_floor  cheapest model whose mean quality >= floor, else the best
    thompson              discounted Thompson sampling on quality, minus cost/latency penalties
    ucb                   UCB1 on quality, minus the same penalties
    random                uniform
    always_best           the highest *known* quality (benchmarks pass the truth in)

**Normalisation.** Cost and latency enter scores divided by the largest value
among the candidates (so in [0, 1], the most expensive / slowest at 1). Not
min-max: with min-max two models at 100 and 101 micros would score 0 and 1, a
full penalty for a 1% difference; dividing by the max keeps the penalty
proportional to money and time actually spent. A candidate with no latency
measurement yet gets the mean of the known ones (neither favoured nor punished).

``cost_weight_multiplier`` (default 1) scales every cost penalty; budget.py
raises it as a tenant's budget runs low, so the same policy drifts to cheaper
models instead of running out (the cheapest-above-floor policy already is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from .posterior import BetaPosterior


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model a task may go to, with what is known about it for this task's category."""

    model_id: str
    quality: BetaPosterior
    latency_ms: float | None  # typical latency (EWMA or p50); None before the first call
    cost_micros_est: int  # forecast cost of this task on this model (budget.estimate_cost_micros)
    calls: int = 0  # calls with a quality outcome in this category (UCB's n_i)


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen model and the evidence for it; logged with the task's result."""

    model_id: str
    scores: dict[str, float]
    propensities: dict[str, float]  # P(policy picks model), over every candidate; sums to 1
    policy: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Policy(Protocol):
    """A named selection rule. ``choose`` never receives an empty candidate list."""

    name: str

    def choose(
        self, candidates: Sequence[Candidate], rng: np.random.Generator, *, cost_weight_multiplier: float = 1.0
    ) -> Selection: ...


class SelectionError(ValueError):
    """Selection cannot proceed: no candidates, or an unknown policy name."""


# --- shared arithmetic ----------------------------------------------------------------------


def normalised_costs(candidates: Sequence[Candidate]) -> list[float]:
    """Each forecast cost divided by the largest (0..1); all 0 when every cost is 0."""
    top = max(c.cost_micros_est for c in candidates)
    return [c.cost_micros_est / top if top > 0 else 0.0 for c in candidates]


def normalised_latencies(candidates: Sequence[Candidate]) -> list[float]:
    """Each latency divided by the largest known (0..1); unknown ones get the mean of the known."""
    known = [c.latency_ms for c in candidates if c.latency_ms is not None]
    top = max(known, default=0.0)
    if top <= 0:
        return [0.0] * len(candidates)
    values = [c.latency_ms / top if c.latency_ms is not None else None for c in candidates]
    fill = sum(v for v in values if v is not None) / len(known)
    return [v if v is not None else fill for v in values]


def _penalties(
    candidates: Sequence[Candidate], cost_weight: float, latency_weight: float, multiplier: float
) -> list[float]:
    costs, latencies = normalised_costs(candidates), normalised_latencies(candidates)
    return [cost_weight * multiplier * c + latency_weight * lat for c, lat in zip(costs, latencies, strict=True)]


def _argmax(scores: Sequence[float], candidates: Sequence[Candidate]) -> int:
    """Index of the best score; ties go to the cheaper forecast, then the lower model id,
    so a deterministic policy is reproducible from its logged inputs."""
    return min(
        range(len(candidates)), key=lambda i: (-scores[i], candidates[i].cost_micros_est, candidates[i].model_id)
    )


def _deterministic(
    candidates: Sequence[Candidate], winner: int, scores: Sequence[float], policy: str, reason: str
) -> Selection:
    return Selection(
        model_id=candidates[winner].model_id,
        scores={c.model_id: round(float(s), 6) for c, s in zip(candidates, scores, strict=True)},
        propensities={c.model_id: 1.0 if i == winner else 0.0 for i, c in enumerate(candidates)},
        policy=policy,
        reason=reason,
    )


def _check(candidates: Sequence[Candidate]) -> None:
    if not candidates:
        raise SelectionError("no candidate models to choose from")
    ids = [c.model_id for c in candidates]
    if len(set(ids)) != len(ids):
        raise SelectionError(f"duplicate candidate model ids: {sorted(ids)}")


# --- policies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightedPolicy:
    """``quality_weight * mean - cost_weight * cost - latency_weight * latency`` (normalised).

    The defaults value a 20-point quality gain as worth the most expensive model's
    whole price (0.2 / 1.0): a routing service that should not pay 10x for +1%.
    """

    quality_weight: float = 1.0
    cost_weight: float = 0.2
    latency_weight: float = 0.05
    name: str = "weighted"

    def choose(
        self, candidates: Sequence[Candidate], rng: np.random.Generator, *, cost_weight_multiplier: float = 1.0
    ) -> Selection:
        _check(candidates)
        penalties = _penalties(candidates, self.cost_weight, self.latency_weight, cost_weight_multiplier)
        scores = [self.quality_weight * c.quality.mean - p for c, p in zip(candidates, penalties, strict=True)]
        winner = _argmax(scores, candidates)
        best = candidates[winner]
        reason = (
            f"highest weighted score {scores[winner]:.3f} (quality {best.quality.mean:.3f} x {self.quality_weight}, "
            f"cost/latency penalty {penalties[winner]:.3f}) among {len(candidates)}"
        )
        return _deterministic(candidates, winner, scores, self.name, reason)


@dataclass(frozen=True)
class CheapestAboveFloorPolicy:
    """The cheapest model whose posterior mean quality is at least ``floor``; when none
    reaches it, the one with the best mean (quality first when the floor cannot be met)."""

    floor: float = 0.8
    name: str = "cheapest_above_floor"

    def choose(
        self, candidates: Sequence[Candidate], rng: np.random.Generator, *, cost_weight_multiplier: float = 1.0
    ) -> Selection:
        _check(candidates)
        means = [c.quality.mean for c in candidates]
        eligible = [i for i, m in enumerate(means) if m >= self.floor]
        if eligible:
            winner = min(eligible, key=lambda i: (candidates[i].cost_micros_est, -means[i], candidates[i].model_id))
            best = candidates[winner]
            reason = (
                f"cheapest ({best.cost_micros_est} micros) of {len(eligible)} model(s) with mean quality "
                f">= {self.floor} ({means[winner]:.3f})"
            )
        else:
            winner = _argmax(means, candidates)
            reason = f"no model reaches quality {self.floor}; best mean quality {means[winner]:.3f}"
        return _deterministic(candidates, winner, means, self.name, reason)


@dataclass(frozen=True)
class ThompsonPolicy:
    """Thompson sampling on each candidate's (discounted) Beta quality posterior, with
    ``score = sample - cost_weight * cost - latency_weight * latency`` (normalised).

    Exploration comes from the posterior: a new model (Beta(1, 1)) samples anywhere
    in [0, 1] and so gets tried, a well-known one samples near its mean. Discounting
    happens where the posterior is updated (posterior.update's ``discount``), which
    is what lets this follow a model whose quality drifts.

    Propensities are estimated by Monte Carlo: ``propensity_draws`` (200) further
    joint draws from the same posteriors, plus the draw that made the decision (an
    i.i.d. draw too, so the estimate stays unbiased and the chosen model's
    propensity is never 0, which inverse propensity weighting divides by). The
    standard error is at most sqrt(0.25 / 201) ~ 0.035 per model; raise the draws
    where replay needs tighter weights (cost: ~10 us per 100 draws x 5 models).
    """

    cost_weight: float = 0.15
    latency_weight: float = 0.02
    propensity_draws: int = 200
    name: str = "thompson"

    def choose(
        self, candidates: Sequence[Candidate], rng: np.random.Generator, *, cost_weight_multiplier: float = 1.0
    ) -> Selection:
        _check(candidates)
        alphas = np.array([c.quality.alpha for c in candidates])
        betas = np.array([c.quality.beta for c in candidates])
        penalty = np.array(_penalties(candidates, self.cost_weight, self.latency_weight, cost_weight_multiplier))
        draws = rng.beta(alphas, betas, size=(self.propensity_draws + 1, len(candidates))) - penalty
        decision = draws[0]
        winner = int(np.argmax(decision))
        picks = np.bincount(np.argmax(draws, axis=1), minlength=len(candidates))
        total = int(picks.sum())
        propensities = {c.model_id: float(picks[i]) / total for i, c in enumerate(candidates)}
        best = candidates[winner]
        reason = (
            f"highest Thompson score {decision[winner]:.3f} (quality sample {decision[winner] + penalty[winner]:.3f}, "
            f"posterior mean {best.quality.mean:.3f}, cost/latency penalty {penalty[winner]:.3f}); "
            f"P(pick) ~ {propensities[best.model_id]:.2f}"
        )
        return Selection(
            model_id=best.model_id,
            scores={c.model_id: round(float(decision[i]), 6) for i, c in enumerate(candidates)},
            propensities=propensities,
            policy=self.name,
            reason=reason,
        )


UNTRIED_BONUS = 1e6
"""UCB's score for a model never tried in this category: larger than any real score
(so each is tried once, cheapest first) yet finite, so the logged scores stay JSON."""


@dataclass(frozen=True)
class UcbPolicy:
    """UCB1 (Auer et al. 2002): ``mean + exploration * sqrt(2 ln N / n_i)`` minus the
    cost/latency penalties, where n_i is the model's calls and N their sum; a model
    with no calls is tried first. Deterministic given the stats."""

    exploration: float = 1.0
    cost_weight: float = 0.15
    latency_weight: float = 0.02
    name: str = "ucb"

    def choose(
        self, candidates: Sequence[Candidate], rng: np.random.Generator, *, cost_weight_multiplier: float = 1.0
    ) -> Selection:
        _check(candidates)
        penalties = _penalties(candidates, self.cost_weight, self.latency_weight, cost_weight_multiplier)
        total_calls = sum(max(0, c.calls) for c in candidates)
        log_total = math.log(max(total_calls, 1))
        scores = []
        for c, p in zip(candidates, penalties, strict=True):
            if c.calls <= 0:
                scores.append(UNTRIED_BONUS - p)
            else:
                scores.append(c.quality.mean + self.exploration * math.sqrt(2.0 * log_total / c.calls) - p)
        winner = _argmax(scores, candidates)
        best = candidates[winner]
        if best.calls <= 0:
            reason = "not yet tried in this category (UCB tries every model once, cheapest first)"
        else:
            reason = (
                f"highest upper confidence bound {scores[winner]:.3f} (mean {best.quality.mean:.3f}, "
                f"{best.calls} of {total_calls} calls, penalty {penalties[winner]:.3f})"
            )
        return _deterministic(candidates, winner, scores, self.name, reason)


@dataclass(frozen=True)
class RandomPolicy:
    """Uniform over the candidates: the exploration baseline, and a safe logging policy."""

    name: str = "random"

    def choose(
        self, candidates: Sequence[Candidate], rng: np.random.Generator, *, cost_weight_multiplier: float = 1.0
    ) -> Selection:
        _check(candidates)
        winner = int(rng.integers(len(candidates)))
        share = 1.0 / len(candidates)
        return Selection(
            model_id=candidates[winner].model_id,
            scores={c.model_id: share for c in candidates},
            propensities={c.model_id: share for c in candidates},
            policy=self.name,
            reason=f"uniform draw among {len(candidates)}",
        )


@dataclass(frozen=True)
class AlwaysBestPolicy:
    """The candidate with the highest known quality: ``true_quality[model_id]`` where
    given (a benchmark's ground truth), else the posterior mean (greedy). Ignores cost."""

    true_quality: Mapping[str, float] = field(default_factory=dict)
    name: str = "always_best"

    def choose(
        self, candidates: Sequence[Candidate], rng: np.random.Generator, *, cost_weight_multiplier: float = 1.0
    ) -> Selection:
        _check(candidates)
        scores = [self.true_quality.get(c.model_id, c.quality.mean) for c in candidates]
        winner = _argmax(scores, candidates)
        source = "known" if candidates[winner].model_id in self.true_quality else "posterior mean"
        reason = f"highest {source} quality {scores[winner]:.3f}"
        return _deterministic(candidates, winner, scores, self.name, reason)


# --- registry and entry point ---------------------------------------------------------------

POLICIES: dict[str, Policy] = {}
"""Policy name -> a default-configured instance; :func:`register_policy` adds one."""

DEFAULT_POLICY = "thompson"
OVERRIDE_POLICY = "override"
"""The ``policy`` a Selection records when the task named its model."""


def register_policy(policy: Policy) -> Policy:
    """Add (or replace) ``policy`` under its ``name``; returns it, so it works as a decorator
    on an instance factory or inline."""
    if not getattr(policy, "name", None):
        raise SelectionError(f"a policy needs a non-empty 'name', got {policy!r}")
    POLICIES[policy.name] = policy
    return policy


for _policy in (
    WeightedPolicy(),
    CheapestAboveFloorPolicy(),
    ThompsonPolicy(),
    UcbPolicy(),
    RandomPolicy(),
    AlwaysBestPolicy(),
):
    register_policy(_policy)


def get_policy(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise SelectionError(f"unknown selection policy {name!r} (known: {', '.join(sorted(POLICIES))})") from None


def select(
    candidates: Sequence[Candidate],
    *,
    rng: np.random.Generator,
    policy: str | Policy = DEFAULT_POLICY,
    task_model: str | None = None,
    cost_weight_multiplier: float = 1.0,
) -> Selection:
    """Pick one model for a task.

    A task that names a model (``task_model``) gets it, with propensity 1, whatever
    the stats say (manual override; the candidates are still logged with 0). Else
    ``policy`` (a registered name or a Policy) chooses among ``candidates``.
    """
    if task_model:
        propensities = {c.model_id: 0.0 for c in candidates}
        propensities[task_model] = 1.0
        return Selection(
            model_id=task_model,
            scores={},
            propensities=propensities,
            policy=OVERRIDE_POLICY,
            reason=f"the task named model {task_model!r} (manual override)",
        )
    chosen = get_policy(policy) if isinstance(policy, str) else policy
    return chosen.choose(candidates, rng, cost_weight_multiplier=cost_weight_multiplier)
