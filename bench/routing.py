"""Adaptive routing on a simulated fleet: ``swarmstream bench routing [--quick] [--json]``.

Question: does the learning policy (discounted Thompson sampling, the default of
``agents/selection``), starting with no knowledge, reach at least 95% of the
quality of always calling the best model at no more than half its cost, and
does it move away from a model whose quality drops?

The fleet (:data:`FLEET`): four simulated models whose accuracy differs by
category and whose prices differ 30-37x: a math specialist, a factual
specialist, a cheap mediocre model, and an expensive all-rounder that is the
best model overall (the ``always_best`` baseline calls it every time). It is a
fleet built so that routing *can* win, as real fleets often allow (a cheaper
model that is as good on one kind of task); the benchmark measures whether the
policy finds that out from rewards alone, how fast, and at what cost.

Tasks: ``taskset.demo_tasks`` with all four kinds (label, number, text, json),
so 50% factual, 25% math, 25% extraction; 2,000 tasks (quick: 600). Each task's
category comes from the rule-based classifier (``features.extract_features``,
no category stated), so the run exercises it too (``classifier_accuracy``).

Outcomes, without HTTP or a broker: a model's answer to task ``i`` is
``behaviour.decide_answer(seed_i, model, prompt, truth, accuracy)`` with the
model's per-category accuracy (``behaviour.accuracy_for``), exactly what the
simulated fleet serves. ``seed_i`` differs per task, so a repeated prompt is a
fresh draw (like sampling at temperature > 0), and it is the same for every
policy (common random numbers: policies differ only by their choices).
Cost: input tokens as the simulated fleet counts them, output tokens of the
reply as ``behaviour.answer_text`` words it, priced by ``budget.estimate_cost_micros``
(the bill's formula). Latency: drawn per call from the model's lognormal.

The same run on ``helm-mmlu`` (``fleets``; the independent fleet's keys stay at the top):
eight real models at their list prices, the best (claude-3.5-sonnet, 0.872) barely ahead of
cheaper ones and no specialists (HELM publishes one MMLU accuracy per model), erring alike
as published (``correlated.py``). There routing can only trade quality for price. A
``cheapest`` policy (the cheapest forecast, every time) runs on both.

The learning loop is what the stats agent does live: after each call the
chosen model's (model, category) posterior is updated with the reward (1 if
its answer was right, else 0; live, that label comes free from a confident
consensus, see ``selection.learning``) with discount ``DISCOUNT``; latency
feeds an EWMA; the forecast uses the mean output size seen so far.

Policies in the same run, on the same tasks: ``learning`` (thompson), ``ucb``,
``random`` and ``always_best``. The drift run repeats the learning policy on
the same tasks; halfway through, the model it has picked most so far (its
"best model") drops to accuracy ``DRIFT_ACCURACY`` in every category;
``drift_curve`` shows the share of picks it still gets per 200 tasks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from swarmstream.agents.models.catalog import ModelSpec, SimProfile
from swarmstream.agents.models.simulated.behaviour import (
    AnswerDecision,
    accuracy_for,
    answer_text,
    draw_latency_s,
)
from swarmstream.agents.models.simulated.behaviour import estimate_tokens as sim_tokens
from swarmstream.agents.models.simulated.taskset import demo_tasks, solve
from swarmstream.agents.selection.budget import estimate_cost_micros
from swarmstream.agents.selection.features import extract_features, tokenizer_name
from swarmstream.agents.selection.policies import (
    AlwaysBestPolicy,
    Candidate,
    CheapestAboveFloorPolicy,
    Policy,
    RandomPolicy,
    ThompsonPolicy,
    UcbPolicy,
)
from swarmstream.agents.selection.posterior import BetaPosterior, update
from swarmstream.agents.stats.book import EWMA_ALPHA
from swarmstream.bench.fleets import (
    BenchFleet,
    independent_fleet,
    realistic_fleet,
)


def _sim(median_ms: float, p99_ms: float, **by_category: float) -> SimProfile:
    return SimProfile(
        accuracy=sum(by_category.values()) / len(by_category),
        latency_median_ms=median_ms,
        latency_p99_ms=p99_ms,
        accuracy_by_category=by_category,
    )


FLEET: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="sim-budget",
            provider="simulated",
            family="budget",
            input_usd_per_mtok=0.10,
            output_usd_per_mtok=0.40,
            simulated=_sim(150, 400, factual=0.72, math=0.55, extraction=0.85),
        ),
        ModelSpec(
            id="sim-mathlete",
            provider="simulated",
            family="mathlete",
            input_usd_per_mtok=0.50,
            output_usd_per_mtok=2.00,
            simulated=_sim(400, 1200, factual=0.70, math=0.96, extraction=0.80),
        ),
        ModelSpec(
            id="sim-scholar",
            provider="simulated",
            family="scholar",
            input_usd_per_mtok=0.40,
            output_usd_per_mtok=1.60,
            simulated=_sim(300, 900, factual=0.95, math=0.60, extraction=0.82),
        ),
        ModelSpec(
            id="sim-frontier",
            provider="simulated",
            family="frontier",
            input_usd_per_mtok=3.00,
            output_usd_per_mtok=15.00,
            simulated=_sim(900, 2500, factual=0.93, math=0.93, extraction=0.94),
        ),
    )
}
"""The routing fleet: prices in USD per million tokens (30x input, 37.5x output from
the cheapest to the dearest), accuracy per category, latency median / p99 in ms."""

INDEPENDENT = independent_fleet(list(FLEET.values()))

TASK_KINDS = ("label", "number", "text", "json")
TASKS_FULL, TASKS_QUICK = 2_000, 600
TASK_SEED = 11
OUTCOME_SEED = 3
"""Seeds the per-task answer draws (``seed_i = outcome_seed * 1_000_000 + i``) and latencies."""
POLICY_SEED = 5
REPEAT_SEEDS = (1, 2, 3, 4, 5)
"""Further (outcome, policy) seeds whose ratios are reported as a spread (``repeats``):
one run's ratios move by ~1 point (quality) and ~3 points (cost) between seeds."""
WINDOW = 200
"""Tasks per point of the learning and drift curves."""

DISCOUNT = 0.97
"""Discounted Thompson sampling's gamma: each (model, category) posterior holds at
most ~1 / (1 - 0.97) = 33 observations' worth of evidence. Enough to tell 0.95 from
0.80 (the posterior sd at n=33, p=0.9 is ~0.05), short enough that a model whose
quality drops loses its lead after ~20 of its own calls. Measured on this fleet
(one seed): gamma 0.99 / 0.98 / 0.97 / 0.95 moved away from the degraded model in
203 / 273 / 133 / 135 tasks at quality ratios 0.979 / 0.976 / 0.973 / 0.973 and
cost ratios 0.11 / 0.12 / 0.13 / 0.23 (a short memory re-explores the dear model)."""

DRIFT_ACCURACY = 0.55
"""Accuracy of the degraded model in every category after the drift point."""
MOVED_AWAY_WINDOW = 100
"""``tasks_to_move_away``: tasks after the drift until the degraded model's share of the
last ``MOVED_AWAY_WINDOW`` picks is below half its share in the ``WINDOW`` tasks before."""
MOVED_AWAY_LIMIT = 400
""""Within a few hundred tasks": the drift check passes at or below this."""
DEFAULT_OUTPUT_TOKENS = 16
"""The forecast's output size before any reply has been seen (the demo's replies are 1-15 tokens)."""


@dataclass(frozen=True, slots=True)
class _Task:
    prompt: str
    category: str  # as classified
    true_category: str  # as demo_tasks recorded it
    input_tokens: int
    seed: int


@dataclass(frozen=True, slots=True)
class _Outcome:
    correct: bool
    output_tokens: int
    cost_micros: int
    latency_ms: float


class _World:
    """Tasks and every model's outcome on each, computed once and shared by all runs."""

    def __init__(self, n: int, outcome_seed: int = OUTCOME_SEED, fleet: BenchFleet | None = None) -> None:
        self.fleet = fleet or INDEPENDENT
        self.models = self.fleet.ids
        self.tasks: list[_Task] = []
        for i, task in enumerate(demo_tasks(n, seed=TASK_SEED, kinds=TASK_KINDS)):
            features = extract_features(task.prompt, task.answer_type)
            # the simulated fleet counts input tokens this way (plus 4 per message)
            input_tokens = sim_tokens(len(task.prompt)) + 4
            self.tasks.append(
                _Task(task.prompt, features.category, task.category, input_tokens, outcome_seed * 1_000_000 + i)
            )
        self.truths = [solve(t.prompt) for t in self.tasks]
        latency_rng = {m: random.Random(f"routing-latency:{outcome_seed}:{m}") for m in self.models}
        self.outcomes: list[dict[str, _Outcome]] = []
        for i in range(n):
            truth = self.truths[i]
            assert truth is not None
            decisions = self.fleet.answers(self.tasks[i].seed, self.tasks[i].prompt, truth)  # one draw for all
            row = {}
            for m in self.models:
                latency_ms = draw_latency_s(latency_rng[m], self.fleet.profile(m)) * 1000.0
                row[m] = self._outcome_of(i, m, decisions[m], latency_ms)
            self.outcomes.append(row)

    def outcome(self, i: int, model: str, accuracy: float, latency_ms: float) -> _Outcome:
        task, truth = self.tasks[i], self.truths[i]
        assert truth is not None
        return self._outcome_of(i, model, self.fleet.answers(task.seed, task.prompt, truth, {model: accuracy})[model],
                                latency_ms)

    def _outcome_of(self, i: int, model: str, decision: AnswerDecision, latency_ms: float) -> _Outcome:
        task, truth = self.tasks[i], self.truths[i]
        assert truth is not None
        output_tokens = sim_tokens(len(answer_text(truth.answer_type, decision.answer)))
        cost = estimate_cost_micros(self.fleet.spec(model), task.input_tokens, output_tokens)
        return _Outcome(decision.correct, output_tokens, cost, latency_ms)

    def true_quality(self) -> dict[str, float]:
        """Each model's expected accuracy over this task mix (what always_best is told)."""
        quality = {}
        for m in self.models:
            profile = self.fleet.profile(m)
            quality[m] = float(np.mean([accuracy_for(profile, t.true_category) for t in self.tasks]))
        return quality


@dataclass
class _Run:
    picks: list[str]
    correct: list[bool]
    cost_micros: list[int]
    drift_model: str | None = None
    drift_at: int | None = None
    models: tuple[str, ...] = ()


def _simulate(world: _World, policy: Policy, *, seed: int, drift_at: int | None = None) -> _Run:
    """One policy over all tasks, learning as it goes (the live stats loop, in memory)."""
    rng = np.random.default_rng(seed)
    posterior: dict[tuple[str, str], BetaPosterior] = {}
    calls: dict[tuple[str, str], int] = {}
    latency_ewma: dict[str, float] = {}
    output_sum: dict[str, int] = {}
    output_n: dict[str, int] = {}
    run = _Run([], [], [], models=tuple(world.models))
    prior = BetaPosterior()
    for i, task in enumerate(world.tasks):
        if drift_at is not None and i == drift_at:
            run.drift_at = drift_at
            run.drift_model = max(world.models, key=lambda m: (run.picks.count(m), m))
        cat = task.category
        expected_out = round(output_sum[cat] / output_n[cat]) if output_n.get(cat) else DEFAULT_OUTPUT_TOKENS
        candidates = [
            Candidate(
                model_id=m,
                quality=posterior.get((m, cat), prior),
                latency_ms=latency_ewma.get(m),
                cost_micros_est=estimate_cost_micros(world.fleet.spec(m), task.input_tokens, expected_out),
                calls=calls.get((m, cat), 0),
            )
            for m in world.models
        ]
        chosen = policy.choose(candidates, rng).model_id
        outcome = world.outcomes[i][chosen]
        if run.drift_model == chosen:
            outcome = world.outcome(i, chosen, DRIFT_ACCURACY, outcome.latency_ms)
        reward = 1.0 if outcome.correct else 0.0
        key = (chosen, cat)
        posterior[key] = update(posterior.get(key, prior), reward, discount=DISCOUNT)
        calls[key] = calls.get(key, 0) + 1
        previous = latency_ewma.get(chosen)
        latency_ewma[chosen] = (
            outcome.latency_ms if previous is None else previous + EWMA_ALPHA * (outcome.latency_ms - previous)
        )
        output_sum[cat] = output_sum.get(cat, 0) + outcome.output_tokens
        output_n[cat] = output_n.get(cat, 0) + 1
        run.picks.append(chosen)
        run.correct.append(outcome.correct)
        run.cost_micros.append(outcome.cost_micros)
    return run


def _summary(run: _Run) -> dict[str, Any]:
    return {
        "quality": round(float(np.mean(run.correct)), 4),
        "cost_usd": round(sum(run.cost_micros) / 1e6, 6),
        "cost_micros": int(sum(run.cost_micros)),
        "picks": _shares(run.picks, run.models),
    }


def _shares(picks: Sequence[str], models: Sequence[str]) -> dict[str, float]:
    return {m: round(picks.count(m) / len(picks), 4) if picks else 0.0 for m in models}


def _windows(n: int) -> list[tuple[int, int]]:
    return [(start, min(start + WINDOW, n)) for start in range(0, n, WINDOW)]


def _curve(run: _Run, baseline: _Run) -> list[dict[str, Any]]:
    points = []
    for start, end in _windows(len(run.picks)):
        points.append(
            {
                "tasks": [start + 1, end],
                "quality": round(float(np.mean(run.correct[start:end])), 4),
                "cost_usd": round(sum(run.cost_micros[start:end]) / 1e6, 6),
                "picks": _shares(run.picks[start:end], run.models),
                "always_best_quality": round(float(np.mean(baseline.correct[start:end])), 4),
                "always_best_cost_usd": round(sum(baseline.cost_micros[start:end]) / 1e6, 6),
            }
        )
    return points


def _drift(run: _Run) -> dict[str, Any]:
    assert run.drift_model is not None and run.drift_at is not None
    model, at = run.drift_model, run.drift_at
    curve = [
        {
            "tasks": [start + 1, end],
            "degraded_share": round(run.picks[start:end].count(model) / (end - start), 4),
            "quality": round(float(np.mean(run.correct[start:end])), 4),
            "cost_usd": round(sum(run.cost_micros[start:end]) / 1e6, 6),
            "after_drift": start >= at,
        }
        for start, end in _windows(len(run.picks))
    ]
    before = run.picks[max(0, at - WINDOW) : at]
    share_before = before.count(model) / len(before)
    moved_after = None
    for k in range(MOVED_AWAY_WINDOW, len(run.picks) - at + 1):
        window = run.picks[at + k - MOVED_AWAY_WINDOW : at + k]
        if window.count(model) / MOVED_AWAY_WINDOW < share_before / 2:
            moved_after = k
            break
    return {
        "model": model,
        "at_task": at,
        "accuracy_after": DRIFT_ACCURACY,
        "share_before": round(share_before, 4),
        "share_last_window": curve[-1]["degraded_share"],
        "tasks_to_move_away": moved_after,
        "quality_before": round(float(np.mean(run.correct[:at])), 4),
        "quality_after": round(float(np.mean(run.correct[at:])), 4),
        "curve": curve,
    }


def _policies(true_quality: Mapping[str, float]) -> dict[str, Policy]:
    return {
        "learning": ThompsonPolicy(),
        "ucb": UcbPolicy(),
        "random": RandomPolicy(),
        "always_best": AlwaysBestPolicy(true_quality=true_quality),
        "cheapest": CheapestAboveFloorPolicy(floor=0.0),  # every model clears 0: the cheapest forecast
    }


def _ratios(learning: _Run, best: _Run, part: slice = slice(None)) -> tuple[float, float]:
    quality = float(np.mean(learning.correct[part]) / np.mean(best.correct[part]))
    cost = sum(learning.cost_micros[part]) / sum(best.cost_micros[part])
    return round(quality, 4), round(cost, 4)


def _repeat(n: int, seed: int, fleet: BenchFleet) -> dict[str, Any]:
    """The headline numbers with other answer draws and policy randomness."""
    world = _World(n, outcome_seed=OUTCOME_SEED + 100 * seed, fleet=fleet)
    policies = _policies(world.true_quality())
    learning = _simulate(world, policies["learning"], seed=POLICY_SEED + seed)
    best = _simulate(world, policies["always_best"], seed=POLICY_SEED + seed)
    drift = _drift(_simulate(world, ThompsonPolicy(), seed=POLICY_SEED + seed, drift_at=n // 2))
    quality_ratio, cost_ratio = _ratios(learning, best)
    return {
        "quality_ratio": quality_ratio,
        "cost_ratio": cost_ratio,
        "tasks_to_move_away": drift["tasks_to_move_away"],
    }


def _spread(values: Sequence[float | None]) -> dict[str, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return {"mean": None, "min": None, "max": None, "missing": len(values)}
    return {
        "mean": round(float(np.mean(known)), 4),
        "min": min(known),
        "max": max(known),
        "missing": len(values) - len(known),
    }


def run(*, quick: bool) -> dict[str, Any]:
    """Both fleets: the independent fleet's keys stay at the top level (what readers of the
    one-fleet result expect) and both fleets' results are under ``fleets``."""
    started = time.perf_counter()
    fleets = {fleet.name: run_fleet(fleet, quick=quick) for fleet in (INDEPENDENT, realistic_fleet())}
    result = {**fleets["independent"], "fleets": fleets}
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def run_fleet(fleet: BenchFleet, *, quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    n = TASKS_QUICK if quick else TASKS_FULL
    world = _World(n, fleet=fleet)
    true_quality = world.true_quality()
    runs = {name: _simulate(world, policy, seed=POLICY_SEED) for name, policy in _policies(true_quality).items()}
    drift_run = _simulate(world, ThompsonPolicy(), seed=POLICY_SEED, drift_at=n // 2)
    summaries = {name: _summary(r) for name, r in runs.items()}
    quality_ratio, cost_ratio = _ratios(runs["learning"], runs["always_best"])
    quality_ratio_2, cost_ratio_2 = _ratios(runs["learning"], runs["always_best"], slice(n // 2, n))
    drift = _drift(drift_run)
    repeats = [_repeat(n, seed, fleet) for seed in REPEAT_SEEDS]
    result: dict[str, Any] = {
        "fleet_name": fleet.name,
        "tasks": n,
        "categories": _category_mix(world),
        "classifier_accuracy": round(float(np.mean([t.category == t.true_category for t in world.tasks])), 4),
        "tokenizer": tokenizer_name(),
        "fleet": {
            m: {
                "input_usd_per_mtok": spec.input_usd_per_mtok,
                "output_usd_per_mtok": spec.output_usd_per_mtok,
                "accuracy_by_category": dict(spec.simulated.accuracy_by_category) if spec.simulated else {},
                "latency_median_ms": spec.simulated.latency_median_ms if spec.simulated else None,
                "overall_quality": round(true_quality[m], 4),
            }
            for m, spec in zip(fleet.ids, fleet.specs, strict=True)
        },
        "discount": DISCOUNT,
        "policies": summaries,
        "quality_ratio": quality_ratio,
        "cost_ratio": cost_ratio,
        "quality_ratio_second_half": quality_ratio_2,
        "cost_ratio_second_half": cost_ratio_2,
        "curve": _curve(runs["learning"], runs["always_best"]),
        "drift": {k: v for k, v in drift.items() if k != "curve"},
        "drift_curve": drift["curve"],
        "repeats": {
            "seeds": list(REPEAT_SEEDS),
            "quality_ratio": _spread([r["quality_ratio"] for r in repeats]),
            "cost_ratio": _spread([r["cost_ratio"] for r in repeats]),
            "tasks_to_move_away": _spread([r["tasks_to_move_away"] for r in repeats]),
        },
    }
    result["passed"] = {
        "quality_ratio_at_least_0.95": quality_ratio >= 0.95,
        "cost_ratio_at_most_0.5": cost_ratio <= 0.5,
        "moved_away_after_drift": drift["tasks_to_move_away"] is not None
        and drift["tasks_to_move_away"] <= MOVED_AWAY_LIMIT,
    }
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def _category_mix(world: _World) -> dict[str, float]:
    cats = [t.true_category for t in world.tasks]
    return {c: round(cats.count(c) / len(cats), 4) for c in sorted(set(cats))}


def render(result: Mapping[str, Any]) -> str:
    """Both fleets' policies side by side, then each fleet's details."""
    fleets = result["fleets"]
    names = list(fleets)
    lines = [f"routing on two simulated fleets: {', '.join(names)} ({result['seconds']:.1f} s)", "",
             f"{'policy':<12}" + "".join(f"{name + ' quality':>22} {'USD/task':>10} {'vs best q/cost':>16}"
                                         for name in names)]
    for policy in fleets[names[0]]["policies"]:
        cells = ""
        for f in fleets.values():
            row, best = f["policies"][policy], f["policies"]["always_best"]
            cells += (f"{row['quality']:>22.3f} {row['cost_usd'] / f['tasks']:>10.7f} "
                      f"{row['quality'] / best['quality']:>7.1%}/{row['cost_micros'] / best['cost_micros']:>7.1%}")
        lines.append(f"{policy:<12}{cells}")
    for fleet in fleets.values():
        lines += ["", _render_fleet(fleet)]
    return "\n".join(lines)


def _render_fleet(result: Mapping[str, Any]) -> str:
    models = list(result["fleet"])
    short = {m: m.removeprefix("sim-") for m in models}
    mix = ", ".join(f"{c} {share:.0%}" for c, share in result["categories"].items())
    lines = [
        f"routing on fleet {result.get('fleet_name', 'independent')}: {result['tasks']} tasks ({mix}), {len(models)} models, "
        f"classifier agrees with the task set on {result['classifier_accuracy']:.1%}",
        "",
        f"{'model':<30} {'in/out USD/Mtok':>16} {'factual':>8} {'math':>6} {'extract':>8} {'overall':>8} {'p50 ms':>7}",
    ]
    for m, row in result["fleet"].items():
        acc = row["accuracy_by_category"]
        lines.append(
            f"{m:<30} {row['input_usd_per_mtok']:>7.2f}/{row['output_usd_per_mtok']:<8.2f} "
            f"{acc.get('factual', row['overall_quality']):>8.2f} {acc.get('math', row['overall_quality']):>6.2f} "
            f"{acc.get('extraction', row['overall_quality']):>8.2f} "
            f"{row['overall_quality']:>8.3f} {row['latency_median_ms']:>7.0f}"
        )
    best = result["policies"]["always_best"]
    lines += ["", f"{'policy':<12} {'quality':>8} {'cost USD':>10} {'vs always_best':>28}"]
    for name, row in result["policies"].items():
        vs = f"quality {row['quality'] / best['quality']:.1%}, cost {row['cost_micros'] / best['cost_micros']:.1%}"
        lines.append(f"{name:<12} {row['quality']:>8.3f} {row['cost_usd']:>10.4f} {vs:>28}")
    passed = result["passed"]
    lines += [
        "",
        f"learning / always_best: quality {result['quality_ratio']:.1%} (>= 95%: "
        f"{'yes' if passed['quality_ratio_at_least_0.95'] else 'NO'}), cost {result['cost_ratio']:.1%} "
        f"(<= 50%: {'yes' if passed['cost_ratio_at_most_0.5'] else 'NO'}); second half: quality "
        f"{result['quality_ratio_second_half']:.1%}, cost {result['cost_ratio_second_half']:.1%}",
        _render_repeats(result["repeats"]),
        "",
        f"learning curve (thompson, discount {result['discount']}), per {WINDOW} tasks:",
        f"{'tasks':<11} {'quality':>7} {'best q':>7} {'cost USD':>9} {'best USD':>9}  "
        + " ".join(f"{short[m]:>9}" for m in models),
    ]
    for p in result["curve"]:
        lines.append(
            f"{p['tasks'][0]:>4}-{p['tasks'][1]:<6} {p['quality']:>7.3f} {p['always_best_quality']:>7.3f} "
            f"{p['cost_usd']:>9.4f} {p['always_best_cost_usd']:>9.4f}  "
            + " ".join(f"{p['picks'][m]:>9.0%}" for m in models)
        )
    drift = result["drift"]
    moved = drift["tasks_to_move_away"]
    lines += [
        "",
        f"drift: {drift['model']} drops to accuracy {drift['accuracy_after']} at task {drift['at_task'] + 1}; "
        f"its share of picks {drift['share_before']:.0%} before, "
        + (f"below half of that within {moved} tasks" if moved is not None else "NOT halved by the end")
        + f"; quality {drift['quality_before']:.3f} before, {drift['quality_after']:.3f} after",
        f"{'tasks':<11} {'share':>6} {'quality':>8} {'cost USD':>9}",
    ]
    for p in result["drift_curve"]:
        mark = "  <- degraded" if p["after_drift"] else ""
        lines.append(
            f"{p['tasks'][0]:>4}-{p['tasks'][1]:<6} {p['degraded_share']:>6.0%} {p['quality']:>8.3f} "
            f"{p['cost_usd']:>9.4f}{mark}"
        )
    lines.append(f"({result['seconds']:.1f} s, tokenizer {result['tokenizer']})")
    return "\n".join(lines)


def _render_repeats(repeats: Mapping[str, Any]) -> str:
    q, c, m = repeats["quality_ratio"], repeats["cost_ratio"], repeats["tasks_to_move_away"]
    moved = (
        f"moved away in {m['mean']:.0f} [{m['min']}, {m['max']}] tasks"
        if m["mean"] is not None
        else "never moved away"
    ) + (f" ({m['missing']} runs never did)" if m["missing"] else "")
    return (
        f"over seeds {repeats['seeds']} (mean [min, max]): quality {q['mean']:.1%} [{q['min']:.1%}, {q['max']:.1%}], "
        f"cost {c['mean']:.1%} [{c['min']:.1%}, {c['max']:.1%}], {moved}"
    )
