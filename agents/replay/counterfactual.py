"""Counterfactual evaluation: how would another selection policy have done on the recorded traffic?

Every select-mode task logs a ``SelectionEvent``: the candidates, each with the
probability the live policy had of picking it (its propensity, ``mu``), and the
model it picked. With a label per task the pick's reward is known (1 when the
task's answer equals the label, else 0), but only for the model that was picked.
A target policy ``pi`` may have picked another model, whose reward was never
seen. Inverse propensity scoring (Horvitz and Thompson 1952; for bandits see
Dudik, Langford and Li 2011, "Doubly robust policy evaluation and learning")
corrects for that by reweighting the logged rewards::

    w_i      = pi(a_i | x_i) / mu(a_i | x_i)          a_i: the logged pick of event i
    IPS      = (1/n) sum_i w_i r_i
    SNIPS    = sum_i w_i r_i / sum_i w_i
    DR       = (1/n) sum_i [ sum_a pi(a | x_i) rhat(a, x_i) + w_i (r_i - rhat(a_i, x_i)) ]

* **IPS** is unbiased whenever ``mu > 0`` wherever ``pi > 0`` (the logger could
  have made every choice the target makes), but its variance grows with the
  weights: a target that often picks what the logger rarely picked is noisy.
* **SNIPS** (self-normalised, Swaminathan and Joachims 2015) divides by the sum
  of the weights instead of ``n``: slightly biased, much lower variance, and
  always within the range of the rewards.
* **DR** (doubly robust) adds a direct model of the reward, ``rhat(model,
  category)`` = the smoothed mean logged reward of that model in that category,
  ``(sum r + 1) / (count + 2)``, fitted by 2-fold cross-fitting (events of even
  index are scored with the model fitted on the odd ones, and vice versa, so no
  event grades itself). Unbiased if either the propensities or ``rhat`` are right;
  lower variance than IPS when ``rhat`` is good.

``pi(a | x_i)`` is the target's own propensity on the event's candidates: 1/0
for a deterministic target (``always(model)``, ``weighted``, ``ucb``, ...), its
sampling probabilities for a randomised one (``random``: uniform; ``thompson``:
its Monte-Carlo estimate, see ``ThompsonPolicy``). Using the probabilities
rather than one sampled pick is the usual, lower-variance form of the estimator.

**Learning targets.** A policy from ``selection.policies`` needs per-model
stats (quality posterior, latency, calls). :class:`PolicyTarget` keeps its own
:class:`stats.book.ModelBook`, folded, event by event in time order, from what
the log shows: after an event is scored, the logged pick's reward becomes a
quality event and its latency and cost a call record, as feedback and the call
log teach the live selectors. So the estimate is of "this policy, learning from
this traffic's feedback"; it sees feedback only for the logged picks (the
logger's exploration), not for its own, which is the usual caveat of evaluating
a learner offline. Candidates' cost forecasts are the logged ones.

**Intervals** (95% by default, ``z`` = 1.96), from the central limit theorem:
IPS and DR are means of per-event terms, so ``mean +- z * sd / sqrt(n)``;
SNIPS is a ratio, so its standard error is the delta method's
``sqrt(sum w_i^2 (r_i - SNIPS)^2) / sum w_i``. Bounds are clipped to [0, 1],
where a mean reward lies. With a few hundred events and weights of a few units
the coverage is close to nominal (tests/agents/replay checks it on synthetic
logs with a known truth).

Diagnostics: ``effective_sample_size`` = ``(sum w)^2 / sum w^2`` (how many
events the estimate is really worth); ``unsupported`` counts events where the
target puts probability on a model the logger could not pick (``mu = 0``: those
choices are invisible to IPS, which then underestimates); events whose logged
pick has no positive propensity are left out and counted in ``invalid``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from swarmstream.agents.replay.recording import Recording
from swarmstream.agents.selection.policies import (
    POLICIES,
    Candidate,
    Policy,
    SelectionError,
)
from swarmstream.agents.stats.book import ModelBook
from swarmstream.schemas.models import CallRecord, Feedback, QualityEvent

Z_95 = 1.959963984540054
"""The standard normal's 97.5% quantile: two-sided 95% intervals."""
Z_99 = 2.5758293035489004
"""The 99.5% quantile: two-sided 99% intervals."""


@dataclass(frozen=True, slots=True)
class LoggedChoice:
    """One logged selection with its outcome: what the counterfactual estimators read."""

    task_id: str
    category: str
    at_ms: int
    candidates: tuple[str, ...]
    cost_micros_est: tuple[int, ...]  # per candidate, as logged
    propensities: Mapping[str, float]  # the logging policy's, per candidate
    chosen: str
    reward: float
    latency_ms: int = 0
    cost_micros: int = 0
    policy: str = ""


def logged_choices(recording: Recording, *, logging_policies: Collection[str] | None = None) -> list[LoggedChoice]:
    """The recording's selections that picked a model and whose reward is known, in time order
    (only those logged by ``logging_policies`` when given, e.g. ``{"random"}``).

    Reward: with a label, 1.0 when the task's result answer (else the picked model's
    recorded answer) equals it, else 0.0 (a failed call, or no answer, is 0);
    without one, the latest feedback score on the task's result (feedback judges the
    result, which in select mode is the picked model's answer). A selection whose
    task has neither a label nor feedback, or neither a result nor an outcome of the
    picked model, is left out (its reward is unknown).
    """
    out: list[tuple[int, int, LoggedChoice]] = []
    for index, event in enumerate(recording.selections):
        if event.status != "selected" or event.chosen is None or not event.candidates:
            continue
        if logging_policies is not None and event.policy not in logging_policies:
            continue
        label = recording.labels.get(event.task_id)
        judgements = recording.feedback.get(event.task_id)
        if label is None and not judgements:
            continue
        result = recording.results.get(event.task_id)
        responses = [r for r in recording.responses.get(event.task_id, ()) if r.model_id == event.chosen]
        failures = [f for f in recording.failures.get(event.task_id, ()) if f.model_id == event.chosen]
        if result is not None:
            answer = result.answer
        elif responses:
            answer = responses[0].answer
        elif failures:
            answer = None
        else:
            continue
        latency = responses[0].latency_ms if responses else (failures[0].latency_ms if failures else 0)
        cost = result.cost_micros if result is not None else (responses[0].cost_micros if responses else 0)
        choice = LoggedChoice(
            task_id=event.task_id,
            category=event.category,
            at_ms=event.at_ms,
            candidates=tuple(c.model_id for c in event.candidates),
            cost_micros_est=tuple(c.cost_micros_est for c in event.candidates),
            propensities={c.model_id: c.propensity for c in event.candidates},
            chosen=event.chosen,
            reward=(1.0 if answer is not None and answer == label else 0.0) if label is not None
            else _feedback_reward(judgements or []),
            latency_ms=latency,
            cost_micros=cost,
            policy=event.policy,
        )
        out.append((event.at_ms, index, choice))
    out.sort(key=lambda item: (item[0], item[1]))
    return [choice for _, _, choice in out]


def _feedback_reward(judgements: Sequence[Feedback]) -> float:
    latest = max(f.created_ms for f in judgements)
    return float([f for f in judgements if f.created_ms == latest][-1].score)


# --------------------------------------------------------------------------- target policies


class TargetPolicy(Protocol):
    """A policy to evaluate: its propensities on a logged event, and what it learns after it."""

    @property
    def name(self) -> str: ...

    def propensities(self, choice: LoggedChoice) -> Mapping[str, float]: ...

    def observe(self, choice: LoggedChoice) -> None: ...


@dataclass(frozen=True)
class Always:
    """Always the same model (propensity 1 when it is a candidate)."""

    model_id: str

    @property
    def name(self) -> str:
        return f"always:{self.model_id}"

    def propensities(self, choice: LoggedChoice) -> Mapping[str, float]:
        return {self.model_id: 1.0}

    def observe(self, choice: LoggedChoice) -> None:
        return None


def always(model_id: str) -> Always:
    return Always(model_id)


@dataclass
class PolicyTarget:
    """A ``selection.policies`` policy, learning from the log as it goes (module docstring).

    ``feedback_batch``: what it learns from an event reaches its stats only once that
    many events have been observed, all at once, as a live learner whose feedback
    comes in batches (``demo --mode select`` judges every 20 tasks) sees it; 1 (the
    default) learns after every event, the most optimistic learner.
    """

    policy: Policy
    seed: int = 0
    book: ModelBook = field(default_factory=ModelBook)
    feedback_batch: int = 1

    def __post_init__(self) -> None:
        if self.feedback_batch < 1:
            raise ValueError(f"feedback_batch must be >= 1, got {self.feedback_batch}")
        self._rng = np.random.default_rng(self.seed)
        self._pending: list[LoggedChoice] = []

    @property
    def name(self) -> str:
        return self.policy.name

    def candidates(self, choice: LoggedChoice) -> list[Candidate]:
        """The event's candidates with this target's stats, as ``Selector.candidates`` builds them."""
        out = []
        for model_id, cost in zip(choice.candidates, choice.cost_micros_est, strict=True):
            stats = self.book.get(model_id, choice.category)
            out.append(Candidate(model_id=model_id, quality=stats.quality, latency_ms=stats.latency_ewma_ms,
                                 cost_micros_est=cost, calls=stats.quality_events))
        return out

    def propensities(self, choice: LoggedChoice) -> Mapping[str, float]:
        return self.policy.choose(self.candidates(choice), self._rng).propensities

    def observe(self, choice: LoggedChoice) -> None:
        self._pending.append(choice)
        if len(self._pending) >= self.feedback_batch:
            for pending in self._pending:
                self._learn(pending)
            self._pending.clear()

    def _learn(self, choice: LoggedChoice) -> None:
        # model_construct: the book reads a few fields; these are the logged values, already validated.
        self.book.add_call(CallRecord.model_construct(
            model_id=choice.chosen, ok=True, failure_class=None, at_ms=choice.at_ms, probe=False,
            latency_ms=choice.latency_ms, cost_micros=choice.cost_micros, category=choice.category,
            tenant="default", input_tokens=0, output_tokens=0))
        self.book.add_quality(QualityEvent.model_construct(
            model_id=choice.chosen, category=choice.category, reward=choice.reward, source="replay",
            task_id=choice.task_id, at_ms=choice.at_ms))


def policy_target(policy: str | Policy, *, seed: int = 0, feedback_batch: int = 1) -> PolicyTarget:
    """A registered policy by name (``selection.policies.POLICIES``), or any Policy."""
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise SelectionError(f"unknown selection policy {policy!r} (known: {', '.join(sorted(POLICIES))})")
        policy = POLICIES[policy]
    return PolicyTarget(policy, seed=seed, feedback_batch=feedback_batch)


def parse_target(spec: str, *, seed: int = 0) -> TargetPolicy:
    """``always:<model>`` or a registered policy name."""
    if spec.startswith("always:"):
        model = spec.removeprefix("always:").strip()
        if not model:
            raise SelectionError("target 'always:' needs a model id, e.g. always:fast-a")
        return always(model)
    return policy_target(spec, seed=seed)


# --------------------------------------------------------------------------- estimators


@dataclass(frozen=True)
class Estimate:
    """A target policy's estimated mean reward on the logged traffic (module docstring)."""

    policy: str
    n: int
    ips: float | None
    ips_interval: tuple[float, float] | None
    snips: float | None
    snips_interval: tuple[float, float] | None
    dr: float | None
    dr_interval: tuple[float, float] | None
    logged_value: float | None  # the logging policy's own mean reward
    effective_sample_size: float
    unsupported: int
    invalid: int
    cost_micros_per_task: float | None = None  # expected forecast cost of the target's picks (direct: known per candidate)

    def to_dict(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        def ri(interval: tuple[float, float] | None) -> list[float] | None:
            return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]

        return {
            "n": self.n, "ips": r(self.ips), "ips_interval": ri(self.ips_interval), "snips": r(self.snips),
            "snips_interval": ri(self.snips_interval), "dr": r(self.dr), "dr_interval": ri(self.dr_interval),
            "logged_value": r(self.logged_value), "effective_sample_size": round(self.effective_sample_size, 1),
            "unsupported": self.unsupported, "invalid": self.invalid,
            "cost_usd_per_task": None if self.cost_micros_per_task is None else round(self.cost_micros_per_task / 1e6, 8),
            "calls_per_task": 1.0 if self.n else None,
        }


def _clip(low: float, high: float) -> tuple[float, float]:
    return max(0.0, low), min(1.0, high)


def _mean_interval(terms: np.ndarray, z: float) -> tuple[float | None, tuple[float, float] | None]:
    if terms.size == 0:
        return None, None
    mean = float(terms.mean())
    if terms.size < 2:
        return mean, None
    half = z * float(terms.std(ddof=1)) / math.sqrt(terms.size)
    return mean, _clip(mean - half, mean + half)


def _reward_model(choices: Sequence[LoggedChoice]) -> list[dict[tuple[str, str], float]]:
    """Per event, rhat(model, category) fitted on the other fold (module docstring, DR)."""
    sums: list[dict[tuple[str, str], list[float]]] = [{}, {}]
    for i, c in enumerate(choices):
        cell = sums[i % 2].setdefault((c.chosen, c.category), [0.0, 0.0])
        cell[0] += c.reward
        cell[1] += 1.0
    fitted = [{key: (s + 1.0) / (n + 2.0) for key, (s, n) in fold.items()} for fold in sums]
    return [fitted[1 - i % 2] for i in range(len(choices))]


def evaluate(choices: Sequence[LoggedChoice], target: TargetPolicy, *, z: float = Z_95) -> Estimate:
    """IPS, SNIPS and DR estimates of ``target`` on ``choices`` (in time order), with intervals."""
    rhat_of = _reward_model(choices)
    weights: list[float] = []
    rewards: list[float] = []
    dr_terms: list[float] = []
    unsupported = invalid = 0
    costs: list[float] = []
    for choice, rhat in zip(choices, rhat_of, strict=True):
        pi = target.propensities(choice)
        forecast = dict(zip(choice.candidates, choice.cost_micros_est, strict=True))
        costs.append(sum(p * forecast.get(model, 0) for model, p in pi.items()))
        mu = choice.propensities.get(choice.chosen, 0.0)
        if not mu > 0.0:
            invalid += 1
            target.observe(choice)
            continue
        if any(p > 0.0 and not choice.propensities.get(model, 0.0) > 0.0 for model, p in pi.items()):
            unsupported += 1
        w = pi.get(choice.chosen, 0.0) / mu
        direct = sum(p * rhat.get((model, choice.category), 0.5) for model, p in pi.items())
        weights.append(w)
        rewards.append(choice.reward)
        dr_terms.append(direct + w * (choice.reward - rhat.get((choice.chosen, choice.category), 0.5)))
        target.observe(choice)

    w_arr, r_arr = np.array(weights), np.array(rewards)
    ips, ips_interval = _mean_interval(w_arr * r_arr, z)
    dr, dr_interval = _mean_interval(np.array(dr_terms), z)
    w_sum = float(w_arr.sum())
    snips: float | None = None
    snips_interval: tuple[float, float] | None = None
    if w_sum > 0.0:
        snips = float((w_arr * r_arr).sum()) / w_sum
        half = z * math.sqrt(float(((w_arr * (r_arr - snips)) ** 2).sum())) / w_sum
        snips_interval = _clip(snips - half, snips + half)
    w_sq = float((w_arr**2).sum())
    return Estimate(
        policy=target.name,
        n=len(weights),
        ips=ips,
        ips_interval=ips_interval,
        snips=snips,
        snips_interval=snips_interval,
        dr=dr,
        dr_interval=dr_interval,
        logged_value=float(r_arr.mean()) if r_arr.size else None,
        effective_sample_size=w_sum * w_sum / w_sq if w_sq > 0.0 else 0.0,
        unsupported=unsupported,
        invalid=invalid,
        cost_micros_per_task=sum(costs) / len(costs) if costs else None,
    )


def default_targets(choices: Sequence[LoggedChoice]) -> list[str]:
    """``always:<model>`` for every model ever a candidate, then every registered policy."""
    models = sorted({m for c in choices for m in c.candidates})
    return [*(f"always:{m}" for m in models), *sorted(POLICIES)]


def counterfactual_summary(
    recording: Recording, targets: Sequence[str] | None = None, *, seed: int = 0, z: float = Z_95,
    logging_policies: Collection[str] | None = None,
) -> dict[str, Any]:
    """Every target's estimates on the recording's logged selections, as JSON-ready dicts:
    ``{"events": n, "logged_policies": {...}, "targets": {spec: Estimate.to_dict()}}``."""
    choices = logged_choices(recording, logging_policies=logging_policies)
    specs = list(targets) if targets is not None else default_targets(choices)
    logged: dict[str, int] = {}
    for c in choices:
        logged[c.policy] = logged.get(c.policy, 0) + 1
    return {
        "events": len(choices),
        "logged_policies": logged,
        "targets": {spec: evaluate(choices, parse_target(spec, seed=seed), z=z).to_dict() for spec in specs},
    }
