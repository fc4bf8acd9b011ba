"""Consensus quality and cost on two simulated fleets: ``swarmstream bench consensus [--quick] [--json]``.

Two fleets in one run (``fleets``): the independent fleet below, and ``helm-mmlu``, eight real
models whose accuracies and pairwise error statistics are the published ones
(``agents/models/simulated/helm_mmlu.yaml``: their mistakes are correlated and their wrong
answers shared), on label tasks only (four options, MMLU's shape). The independent fleet's
keys stay at the top level. On the preset the result adds ``frontier``: quality, cost and
calls per task of the best single model, majority and weighted votes of the three models
with the best reliability estimates, early stopping, the cascade (``agents/consensus/cascade.py``:
the cheapest model within ``CASCADE_SLACK`` of the best published accuracy first, two more
only when its confidence is under ``CASCADE_FLOOR`` or a cheap checker disagrees) and learned
routing (one model per task, discounted Thompson sampling learning from labels), with the
same over every fleet seed in ``frontier_over_seeds``.

The fleet: five simulated models with accuracies 0.60-0.80 and independent errors,
priced like the catalog's tiers (``agents/models/models.yaml``: the weakest is the
cheapest, the strongest costs 3/15 USD per million tokens). Each model answers each
task exactly as the live simulated fleet would: ``behaviour.decide_answer`` with the
fleet's seed, the model id and the prompt, so a wrong answer is one of the task's
plausible wrong answers (another label offered in the prompt, an off-by-one or
off-by-ten number). No HTTP, no broker: the benchmark measures the decision rules.

Tasks: ``taskset.demo_tasks`` (label and number kinds, seed 7). The first
``WARMUP_TASKS`` are a warm-up set whose answers (never their labels) estimate each
model's reliability; the next 1,000 (quick: 300) are evaluated against their labels.

Strategies, each with the real code in ``agents/consensus``:

* ``majority``: all five models, ``strategies.majority``;
* ``weighted``: all five, ``strategies.weighted`` with each model's weight
  ``log((K - 1) * p / (1 - p))``: ``p`` its estimated reliability, ``K = 4`` answer
  options. This is the weighted vote that picks the most probable answer when models
  err independently and spread their errors over the ``K - 1`` wrong options (with
  ``K = 2`` it is the familiar log-odds weight ``log(p / (1 - p))``, Nitzan and
  Paroush 1982). Plain log-odds over-weights the strong models here: a wrong answer
  rarely coincides with another model's wrong answer, so agreeing weak models are
  better evidence than log-odds credits; the plain log-odds accuracy is reported too
  (``weighted_logodds_accuracy``). ``K = 4`` is the number of labels a label prompt
  offers; number tasks have 5 plausible answers, and ``K = 5`` gives the same
  decisions here, so one constant serves both;
* ``early_stop``: sequential consensus, ``sequential.plan_next``: models in order of
  estimated reliability, the first batch of ``stopping.initial_batch(5) = 3``, then
  one (or two) at a time until ``stopping.should_stop``; ``strategies.majority`` over
  the answers collected.

Reliability without labels: for independent models, two models agree mostly when both
are right (a shared wrong answer is rare), so ``P(i agrees with j) ~= p_i * p_j`` and,
for any two other models ``j`` and ``k``, ``p_i ~= sqrt(a_ij * a_ik / a_jk)`` (the
method-of-moments "triplet" estimator for the one-coin Dawid-Skene model). ``p_i`` is
its mean over all pairs ``(j, k)``, measured on the warm-up set only.

The early-stopping threshold: with five models and a first batch of three, the Beta
rule of ``stopping.py`` can only act on a 2-1 split of the first three answers
(``P(leader ahead) = 11/16 = 0.6875``; every other case is settled by "cannot be
overturned" or by running out of models). So every threshold at or above 0.6875,
0.95 (Adaptive-Consistency's default) included, behaves alike and asks ~3.9 models,
and every threshold below it stops on a 2-1 split and asks ~3.1. ``EARLY_STOP_THRESHOLD``
is 0.65, below the step; ``early_stop_sweep`` reports both sides.

Accuracy differences of ~1 point are within the noise of 1,000 tasks, so ``repeats``
reruns the comparison with other fleet seeds (independent answers on the same tasks).

Cost: input tokens as the fleet counts them (``estimate_tokens`` of the prompt plus the
per-message framing for the one user message), output tokens of the reply worded by
``behaviour.answer_text``, priced by ``providers.base.cost_micros``.

``cluster_ms``: median time of ``strategies.cluster`` over 10 answers of 2,000
characters each (three paraphrase groups), ``CLUSTER_RUNS`` runs, ``time.perf_counter``.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from swarmstream.agents.consensus.cascade import Cascade, plan_cascade
from swarmstream.agents.consensus.sequential import plan_next
from swarmstream.agents.consensus.strategies import cluster, majority, weighted
from swarmstream.agents.consensus.votes import Decision, Vote
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.providers.base import cost_micros
from swarmstream.agents.models.simulated.behaviour import answer_text, estimate_tokens
from swarmstream.agents.models.simulated.fleet import _TOKENS_PER_MESSAGE
from swarmstream.agents.models.simulated.taskset import LabelledTask, demo_tasks, solve
from swarmstream.agents.selection.policies import Candidate, ThompsonPolicy
from swarmstream.agents.selection.posterior import BetaPosterior, update
from swarmstream.bench.fleets import (
    REALISTIC,
    BenchFleet,
    independent_fleet,
    realistic_fleet,
)
from swarmstream.bench.judging import judge_rows

FLEET_SEED = 0
"""``SimFleet``'s default seed: the answers the demo's fleet gives."""
REPEAT_SEEDS = tuple(range(1, 8))
"""Further fleet seeds for ``repeats``; quick mode uses the first two."""
TASK_SEED = 7
"""``demo_tasks``'s default seed."""
WARMUP_TASKS = 500
"""Unlabelled warm-up tasks for the reliability estimate (quick: 200). At 500 the
estimates land within ~0.03 of the true accuracies, enough to rank the models."""
TASKS, QUICK_TASKS = 1000, 300
MAX_MODELS = 5
EARLY_STOP_THRESHOLD = 0.65
"""Below 11/16 = 0.6875, so a 2-1 split of the first three answers stops (module docstring)."""
ANSWER_OPTIONS = 4
"""``K`` in the weight ``log((K - 1) p / (1 - p))``: the labels a label prompt offers."""
RELIABILITY_BOUNDS = (0.01, 0.99)
"""Estimates are clipped here so that a weight stays finite."""
CLUSTER_ANSWERS, CLUSTER_CHARS, CLUSTER_RUNS = 10, 2000, 30


def _model(model_id: str, accuracy: float, input_usd_per_mtok: float, output_usd_per_mtok: float) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="simulated",
        family=model_id,
        input_usd_per_mtok=input_usd_per_mtok,
        output_usd_per_mtok=output_usd_per_mtok,
        simulated={"accuracy": accuracy, "latency_median_ms": 0, "latency_p99_ms": 0},
    )


# Prices are the catalog's tiers (sim-delta, sim-alpha, sim-beta, sim-gamma, sim-epsilon):
# the more accurate, the dearer.
FLEET: tuple[ModelSpec, ...] = (
    _model("sim-acc60", 0.60, 0.10, 0.40),
    _model("sim-acc65", 0.65, 0.15, 0.60),
    _model("sim-acc70", 0.70, 0.25, 1.25),
    _model("sim-acc75", 0.75, 0.50, 1.50),
    _model("sim-acc80", 0.80, 3.00, 15.00),
)


INDEPENDENT = independent_fleet(FLEET)
TASK_KINDS: dict[str, tuple[str, ...]] = {"independent": ("label", "number"), REALISTIC: ("label",)}
"""helm-mmlu answers label prompts only: four options, MMLU's shape, which its agreement is fitted to."""


@dataclass(frozen=True)
class Answer:
    text: str  # normalised
    cost_micros: int
    confidence: float = 1.0  # exp(logprob) of the answer, as a logprobs provider reports it


def ask_all(task: LabelledTask, seed: int, fleet: BenchFleet = INDEPENDENT) -> dict[str, Answer]:
    """Every model's answer to ``task`` and what the call costs, as the live fleet would give them."""
    truth = solve(task.prompt)
    if truth is None:
        raise ValueError(f"bench consensus: the simulator cannot solve task {task.task_id}: {task.prompt!r}")
    input_tokens = estimate_tokens(len(task.prompt)) + _TOKENS_PER_MESSAGE  # one user message
    answers = {}
    for model, decision in fleet.answers(seed, task.prompt, truth).items():
        output_tokens = estimate_tokens(len(answer_text(truth.answer_type, decision.answer)))
        answers[model] = Answer(decision.answer, cost_micros(fleet.spec(model), input_tokens, output_tokens),
                                math.exp(decision.confidence_logprob))
    return answers


def estimate_reliability(warmup: Sequence[Mapping[str, Answer]], models: Sequence[str] | None = None) -> dict[str, float]:
    """Each model's accuracy from pairwise agreement on unlabelled answers (module docstring)."""
    models = list(models) if models is not None else [spec.id for spec in FLEET]
    agree = {
        (i, j): sum(answers[i].text == answers[j].text for answers in warmup) / len(warmup)
        for i, j in itertools.permutations(models, 2)
    }
    low, high = RELIABILITY_BOUNDS
    reliability = {}
    for i in models:
        others = [m for m in models if m != i]
        triplets = [
            math.sqrt(agree[i, j] * agree[i, k] / agree[j, k])
            for j, k in itertools.combinations(others, 2)
            if agree[j, k] > 0
        ]
        reliability[i] = min(high, max(low, statistics.fmean(triplets))) if triplets else 0.5
    return reliability


def vote_weight(reliability: float, options: int = ANSWER_OPTIONS) -> float:
    """``log((K - 1) p / (1 - p))``, floored at 0 (a model no better than chance backs nothing)."""
    return max(0.0, math.log((options - 1) * reliability / (1.0 - reliability)))


def early_stop(
    answers: Mapping[str, Answer], order: Sequence[str], threshold: float, max_models: int = MAX_MODELS
) -> tuple[Decision, list[str]]:
    """Sequential consensus over pre-drawn answers: the decision and the models asked."""
    got: dict[str, str] = {}
    asked: list[str] = []
    while True:
        step = plan_next(order, got, (), max_models=max_models, threshold=threshold)
        if step.done:
            break
        for model in step.ask:
            asked.append(model)
            got[model] = answers[model].text
    return majority([Vote(model, got[model]) for model in asked]), asked


@dataclass
class _Tally:
    correct: int = 0
    calls: int = 0
    cost_micros: int = 0

    def add(self, decision: Decision, truth: str, asked: Sequence[str], answers: Mapping[str, Answer]) -> None:
        self.correct += decision.answer == truth
        self.calls += len(asked)
        self.cost_micros += sum(answers[model].cost_micros for model in asked)

    def summary(self, n_tasks: int) -> dict[str, float]:
        return {
            "accuracy": round(self.correct / n_tasks, 4),
            "calls_per_task": round(self.calls / n_tasks, 3),
            "cost_per_task_usd": round(self.cost_micros / n_tasks / 1e6, 8),
        }


def evaluate(
    n_tasks: int, n_warmup: int, seed: int, thresholds: Sequence[float], fleet: BenchFleet = INDEPENDENT,
    *, frontier: bool = False,
) -> dict[str, Any]:
    """All strategies on ``n_tasks`` tasks after ``n_warmup`` warm-up tasks, fleet seed ``seed``."""
    tasks = demo_tasks(n_warmup + n_tasks, seed=TASK_SEED, kinds=TASK_KINDS[fleet.name])  # type: ignore[arg-type]
    warmup, evaluated = tasks[:n_warmup], tasks[n_warmup:]
    everyone = fleet.ids
    reliability = estimate_reliability([ask_all(task, seed, fleet) for task in warmup], everyone)
    weights = {model: vote_weight(p) for model, p in reliability.items()}
    logodds = {model: max(0.0, math.log(p / (1.0 - p))) for model, p in reliability.items()}
    order = sorted(everyone, key=lambda model: (-reliability[model], model))
    all_answers: list[dict[str, Answer]] = []

    tallies = {name: _Tally() for name in ("majority", "weighted", "weighted_logodds")}
    sweep = {threshold: _Tally() for threshold in thresholds}
    single = dict.fromkeys(everyone, 0)
    for task in evaluated:
        answers = ask_all(task, seed, fleet)
        all_answers.append(answers)
        for model in everyone:
            single[model] += answers[model].text == task.answer
        tallies["majority"].add(
            majority([Vote(m, answers[m].text) for m in everyone]), task.answer, everyone, answers
        )
        tallies["weighted"].add(
            weighted([Vote(m, answers[m].text, weight=weights[m]) for m in everyone]), task.answer, everyone, answers
        )
        tallies["weighted_logodds"].add(
            weighted([Vote(m, answers[m].text, weight=logodds[m]) for m in everyone]), task.answer, everyone, answers
        )
        for threshold, tally in sweep.items():
            decision, asked = early_stop(answers, order, threshold, len(everyone))
            tally.add(decision, task.answer, asked, answers)
    measured = {model: single[model] / n_tasks for model in everyone}
    extra: dict[str, Any] = {}
    if frontier:
        extra["frontier"] = quality_cost_frontier(fleet, evaluated, all_answers, reliability, measured, order,
                                                  thresholds[0])
    return {
        **extra,
        "strategies": {name: tally.summary(n_tasks) for name, tally in tallies.items()},
        "early_stop": {threshold: tally.summary(n_tasks) for threshold, tally in sweep.items()},
        "models": [
            {
                "id": spec.id,
                "accuracy_configured": spec.simulated.accuracy if spec.simulated else None,
                "accuracy_measured": round(single[spec.id] / n_tasks, 4),
                "reliability_estimated": round(reliability[spec.id], 4),
                "weight": round(weights[spec.id], 4),
                "usd_per_mtok": [spec.input_usd_per_mtok, spec.output_usd_per_mtok],
            }
            for spec in fleet.specs
        ],
        "order": order,
    }


CASCADE_SLACK = 0.01
"""The cascade's first model: the cheapest whose published accuracy (the profile's, what a user
reads on a leaderboard) is within this of the best one's: "strong for its price". Published,
not estimated: the agreement-based estimate assumes independent errors, and on correlated
models it ranks them wrongly (``models[].reliability_estimated`` in the result shows it)."""
CASCADE_FLOOR = 0.9
"""Escalate when the first model's stated confidence is below this. The preset's models are
overconfident (a logit shift of 0.8), so 0.9 there means roughly "calibrated P(right) < 0.8"."""


def cascade_for(fleet: BenchFleet, cost: Mapping[str, float], *, floor: float | None, checker: bool) -> Cascade:
    """The cascade the benchmark measures on ``fleet``: the first model strong for its price, the
    two next-best (published accuracy) to escalate to, the cheapest other model as the checker."""
    published = {m: fleet.profile(m).accuracy for m in fleet.ids}
    best = max(published.values())
    first = min((m for m in fleet.ids if published[m] >= best - CASCADE_SLACK), key=lambda m: (cost[m], m))
    escalate = tuple(sorted((m for m in fleet.ids if m != first), key=lambda m: (-published[m], m)))[:2]
    cheapest = min((m for m in fleet.ids if m not in (first, *escalate)), key=lambda m: (cost[m], m))
    return Cascade(first=first, escalate=escalate, confidence_floor=floor, checker=cheapest if checker else None)


def run_cascade(cascade: Cascade, answers: Mapping[str, Answer], weights: Mapping[str, float]) -> tuple[Decision, list[str]]:
    got: dict[str, Vote] = {}
    asked: list[str] = []
    while True:
        step = plan_cascade(cascade, got)
        if step.done:
            assert step.decision is not None
            return step.decision, asked
        for model in step.ask:
            asked.append(model)
            got[model] = Vote(model, answers[model].text, weight=weights[model], confidence=answers[model].confidence)


def route_learning(fleet: BenchFleet, tasks: Sequence[LabelledTask], answers: Sequence[Mapping[str, Answer]],
                   seed: int) -> _Tally:
    """Learned routing (``agents/selection``'s default: discounted Thompson sampling with cost and
    latency penalties) over the same tasks, learning from each answer's label as it goes, one
    model per task (the routing benchmark's loop, on one category)."""
    from swarmstream.bench.routing import DISCOUNT

    rng = np.random.default_rng(seed)
    posterior: dict[str, BetaPosterior] = {}
    calls: dict[str, int] = {}
    policy = ThompsonPolicy()
    tally = _Tally()
    for task, row in zip(tasks, answers, strict=True):
        candidates = [
            Candidate(model_id=m, quality=posterior.get(m, BetaPosterior()), latency_ms=fleet.profile(m).latency_median_ms,
                      cost_micros_est=row[m].cost_micros, calls=calls.get(m, 0))
            for m in fleet.ids
        ]
        chosen = policy.choose(candidates, rng).model_id
        right = row[chosen].text == task.answer
        posterior[chosen] = update(posterior.get(chosen, BetaPosterior()), 1.0 if right else 0.0, discount=DISCOUNT)
        calls[chosen] = calls.get(chosen, 0) + 1
        tally.add(majority([Vote(chosen, row[chosen].text)]), task.answer, [chosen], row)
    return tally


def quality_cost_frontier(
    fleet: BenchFleet, tasks: Sequence[LabelledTask], answers: Sequence[Mapping[str, Answer]],
    reliability: Mapping[str, float], measured: Mapping[str, float], order: Sequence[str], threshold: float,
) -> list[dict[str, Any]]:
    """Quality, cost and calls per task of each policy the issue names, on the same answers."""
    n = len(tasks)
    cost = {m: statistics.fmean(row[m].cost_micros for row in answers) for m in fleet.ids}
    weights = {m: vote_weight(p) for m, p in reliability.items()}
    best = max(fleet.ids, key=lambda m: (measured[m], m))
    top3 = list(order[:3])
    cascades = {
        "cascade_confidence": cascade_for(fleet, cost, floor=CASCADE_FLOOR, checker=False),
        "cascade_second_opinion": cascade_for(fleet, cost, floor=None, checker=True),
    }
    tallies: dict[str, _Tally] = {name: _Tally() for name in ("majority_of_3", "weighted_of_3", "early_stop",
                                                               *cascades)}
    escalated = dict.fromkeys(cascades, 0)
    for task, row in zip(tasks, answers, strict=True):
        tallies["majority_of_3"].add(majority([Vote(m, row[m].text) for m in top3]), task.answer, top3, row)
        tallies["weighted_of_3"].add(weighted([Vote(m, row[m].text, weight=weights[m]) for m in top3]),
                                     task.answer, top3, row)
        decision, asked = early_stop(row, order, threshold, len(fleet.ids))
        tallies["early_stop"].add(decision, task.answer, asked, row)
        for name, cascade in cascades.items():
            decision, asked = run_cascade(cascade, row, weights)
            tallies[name].add(decision, task.answer, asked, row)
            escalated[name] += len(asked) > (2 if cascade.checker else 1)
    tallies["learned_routing"] = route_learning(fleet, tasks, answers, seed=FLEET_SEED)
    first = cascades["cascade_confidence"].first
    rows = [
        {"policy": "best_single", "models": [best], "quality": round(measured[best], 4),
         "cost_per_task_usd": round(cost[best] / 1e6, 8), "calls_per_task": 1.0},
        {"policy": "cascade_first_alone", "models": [first], "quality": round(measured[first], 4),
         "cost_per_task_usd": round(cost[first] / 1e6, 8), "calls_per_task": 1.0},
    ]
    models_of = {"majority_of_3": top3, "weighted_of_3": top3, "early_stop": list(order),
                 "learned_routing": list(fleet.ids)}
    for name, tally in tallies.items():
        summary = tally.summary(n)
        row: dict[str, Any] = {"policy": name, "quality": summary["accuracy"],
                               "cost_per_task_usd": summary["cost_per_task_usd"],
                               "calls_per_task": summary["calls_per_task"]}
        if name in cascades:
            cascade = cascades[name]
            row["models"] = [cascade.first, *([cascade.checker] if cascade.checker else []), *cascade.escalate]
            row["escalated_share"] = round(escalated[name] / n, 4)
            row["confidence_floor"] = cascade.confidence_floor
        else:
            row["models"] = models_of[name]
        rows.append(row)
    return rows


def _paraphrase_answers(n: int, chars: int, seed: int = 0) -> list[str]:
    """``n`` answers of exactly ``chars`` characters in three groups (three different
    answers): each group is a base text over its own random vocabulary, and each answer
    rewrites a tenth of its group's words (a paraphrase)."""
    rng = random.Random(f"bench-consensus-cluster:{seed}")

    def word() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))

    vocabularies = [[word() for _ in range(300)] for _ in range(3)]
    bases = [[rng.choice(vocabulary) for _ in range(chars // 3)] for vocabulary in vocabularies]
    answers = []
    for i in range(n):
        group = i % len(bases)
        words = list(bases[group])
        for _ in range(len(words) // 10):
            words[rng.randrange(len(words))] = rng.choice(vocabularies[group])
        answers.append(" ".join(words)[:chars])
    return answers


def time_cluster(runs: int = CLUSTER_RUNS) -> dict[str, float]:
    """Median and p90 ms of ``strategies.cluster`` on 10 answers of 2,000 characters."""
    votes = [
        Vote(f"m{i}", text, latency_ms=i) for i, text in enumerate(_paraphrase_answers(CLUSTER_ANSWERS, CLUSTER_CHARS))
    ]
    decision = cluster(votes)  # warm-up: first-call imports and allocations
    timings_ms = []
    for _ in range(runs):
        start = time.perf_counter()
        cluster(votes)
        timings_ms.append((time.perf_counter() - start) * 1000.0)
    timings_ms.sort()
    return {
        "median_ms": round(statistics.median(timings_ms), 3),
        "p90_ms": round(timings_ms[int(0.9 * (len(timings_ms) - 1))], 3),
        "clusters": float(decision.clusters or 0),
    }


def run(*, quick: bool) -> dict[str, Any]:
    """Both fleets; the independent fleet's keys stay at the top level (what readers of the
    earlier, one-fleet result expect), both are under ``fleets``, the preset's frontier at ``frontier``."""
    started = time.perf_counter()
    clustering = time_cluster()
    fleets = {fleet.name: run_fleet(fleet, quick=quick, clustering=clustering)
              for fleet in (INDEPENDENT, realistic_fleet())}
    result = {**fleets["independent"], "fleets": fleets, "frontier": fleets[REALISTIC]["frontier"]}
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def run_fleet(fleet: BenchFleet, *, quick: bool, clustering: Mapping[str, float]) -> dict[str, Any]:
    started = time.perf_counter()
    n_tasks = QUICK_TASKS if quick else TASKS
    n_warmup = 200 if quick else WARMUP_TASKS
    thresholds = (EARLY_STOP_THRESHOLD, 0.95)
    main = evaluate(n_tasks, n_warmup, FLEET_SEED, thresholds, fleet, frontier=True)
    n_models = len(fleet.ids)
    strategies = dict(main["strategies"])
    logodds = strategies.pop("weighted_logodds")
    strategies["early_stop"] = main["early_stop"][EARLY_STOP_THRESHOLD]
    strategies.update(judge_rows(fleet, n_tasks=n_tasks, n_warmup=n_warmup, seed=FLEET_SEED))  # bench/judging.py

    repeats = []
    frontiers = [main["frontier"]]
    for seed in REPEAT_SEEDS[:2] if quick else REPEAT_SEEDS:
        other = evaluate(n_tasks, n_warmup, seed, (EARLY_STOP_THRESHOLD,), fleet, frontier=True)
        repeats.append((seed, other["strategies"], other["early_stop"][EARLY_STOP_THRESHOLD]))
        frontiers.append(other["frontier"])
    all_runs = [(FLEET_SEED, main["strategies"], strategies["early_stop"]), *repeats]

    def spread(values: Sequence[float]) -> dict[str, float]:
        return {"mean": round(statistics.fmean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}

    result = {
        "fleet": fleet.name,
        "task_kinds": list(TASK_KINDS[fleet.name]),
        "frontier": main["frontier"],
        "frontier_over_seeds": _frontier_spread(frontiers, spread),
        "tasks": n_tasks,
        "warmup_tasks": n_warmup,
        "strategies": strategies,
        "best_single_accuracy": max(m["accuracy_measured"] for m in main["models"]),
        "cluster_ms": clustering["median_ms"],
        "cluster_p90_ms": clustering["p90_ms"],
        "cluster_groups_found": int(clustering["clusters"]),
        "early_stop_threshold": EARLY_STOP_THRESHOLD,
        "early_stop_sweep": {str(t): s for t, s in main["early_stop"].items()},
        "early_stop_call_saving": round(1 - strategies["early_stop"]["calls_per_task"] / n_models, 4),
        "weighted_logodds_accuracy": logodds["accuracy"],
        "models": main["models"],
        "asking_order": main["order"],
        "repeats": {
            "fleet_seeds": [seed for seed, _, _ in all_runs],
            "weighted_minus_majority": spread(
                [s["weighted"]["accuracy"] - s["majority"]["accuracy"] for _, s, _ in all_runs]
            ),
            "weighted_logodds_minus_majority": spread(
                [s["weighted_logodds"]["accuracy"] - s["majority"]["accuracy"] for _, s, _ in all_runs]
            ),
            "early_stop_minus_majority": spread([e["accuracy"] - s["majority"]["accuracy"] for _, s, e in all_runs]),
            "early_stop_calls_per_task": spread([e["calls_per_task"] for _, _, e in all_runs]),
        },
        "seconds": 0.0,
    }
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def _frontier_spread(frontiers: Sequence[Sequence[Mapping[str, Any]]], spread: Any) -> dict[str, Any]:
    """Per policy over every fleet seed: quality, its gap to that seed's best single model, and
    cost; one seed's 1,000 tasks leave about a point of noise in each policy's quality."""
    out: dict[str, Any] = {}
    for policy in [row["policy"] for row in frontiers[0]]:
        runs = [({r["policy"]: r for r in f}[policy], {r["policy"]: r for r in f}["best_single"]) for f in frontiers]
        out[policy] = {
            "quality": spread([row["quality"] for row, _ in runs]),
            "minus_best_single": spread([row["quality"] - best["quality"] for row, best in runs]),
            "cost_per_task_usd": spread([row["cost_per_task_usd"] for row, _ in runs]),
        }
    return out


def render(result: Mapping[str, Any]) -> str:
    """Both fleets side by side, the preset's quality/cost frontier, then each fleet's details."""
    fleets = result["fleets"]
    names = list(fleets)
    lines = [f"consensus on two simulated fleets: {', '.join(names)} ({result['seconds']:.1f} s)", "",
             f"{'strategy':<14}" + "".join(f"{name + ' acc':>18} {'calls':>6} {'USD/task':>10}" for name in names)]
    for strategy in fleets[names[0]]["strategies"]:
        cells = "".join(
            f"{f['strategies'][strategy]['accuracy']:>18.3f} {f['strategies'][strategy]['calls_per_task']:>6.2f} "
            f"{f['strategies'][strategy]['cost_per_task_usd']:>10.7f}" for f in fleets.values()
        )
        lines.append(f"{strategy:<14}{cells}")
    lines.append(f"{'best single':<14}" + "".join(f"{f['best_single_accuracy']:>18.3f} {'':>6} {'':>10}"
                                                  for f in fleets.values()))
    lines += ["", f"quality/cost frontier on {REALISTIC} ({fleets[REALISTIC]['tasks']} tasks):",
              f"  {'policy':<24}{'quality':>8}{'USD/task':>12}{'calls':>7}  models"]
    for row in result["frontier"]:
        extra = f" (escalated {row['escalated_share']:.0%})" if "escalated_share" in row else ""
        lines.append(f"  {row['policy']:<24}{row['quality']:>8.3f}{row['cost_per_task_usd']:>12.7f}"
                     f"{row['calls_per_task']:>7.2f}  {', '.join(row['models'][:4])}{'...' if len(row['models']) > 4 else ''}{extra}")
    over = fleets[REALISTIC]["frontier_over_seeds"]
    seeds = fleets[REALISTIC]["repeats"]["fleet_seeds"]
    lines += [f"  over fleet seeds {seeds}, quality minus that seed's best single model (points, mean [min, max]):"]
    for policy, row in over.items():
        lines.append(f"    {policy:<24}{_points(row['minus_best_single'])}")
    for fleet in fleets.values():
        lines += ["", _render_fleet(fleet)]
    return "\n".join(lines)


def _render_fleet(result: Mapping[str, Any]) -> str:
    accuracies = [m["accuracy_measured"] for m in result["models"]]
    lines = [
        f"fleet {result['fleet']}: {result['tasks']} labelled tasks ({' + '.join(result['task_kinds'])}), "
        f"{len(result['models'])} models, accuracies {min(accuracies):.2f}-{max(accuracies):.2f}, "
        f"reliability from {result['warmup_tasks']} unlabelled warm-up tasks",
        "",
        f"{'strategy':<12} {'accuracy':>9} {'calls/task':>11} {'cost/task USD':>14}",
    ]
    for name, row in result["strategies"].items():
        lines.append(
            f"{name:<12} {row['accuracy']:>9.3f} {row['calls_per_task']:>11.2f} {row['cost_per_task_usd']:>14.7f}"
        )
    repeats = result["repeats"]
    lines += [
        "",
        f"best single model accuracy     {result['best_single_accuracy']:.3f}",
        f"weighted, plain log-odds       {result['weighted_logodds_accuracy']:.3f}",
        f"early stop: threshold {result['early_stop_threshold']}, "
        f"{result['early_stop_call_saving']:.0%} fewer calls than asking all {len(result['models'])}",
    ]
    for threshold, row in result["early_stop_sweep"].items():
        lines.append(f"  threshold {threshold:<5} accuracy {row['accuracy']:.3f}, {row['calls_per_task']:.2f} calls/task")
    lines += [
        f"over fleet seeds {repeats['fleet_seeds']} (accuracy points, mean [min, max]):",
        "  weighted - majority       " + _points(repeats["weighted_minus_majority"]),
        "  plain log-odds - majority " + _points(repeats["weighted_logodds_minus_majority"]),
        "  early_stop - majority     " + _points(repeats["early_stop_minus_majority"]),
        f"  early_stop calls/task     {repeats['early_stop_calls_per_task']['mean']:.2f}",
        f"cluster 10 x 2,000-char answers: {result['cluster_ms']:.2f} ms median "
        f"(p90 {result['cluster_p90_ms']:.2f} ms, {result['cluster_groups_found']} groups found of 3)",
        f"({result['seconds']:.1f} s)",
    ]
    return "\n".join(lines)


def _points(spread: Mapping[str, float]) -> str:
    return f"{spread['mean'] * 100:+.1f} [{spread['min'] * 100:+.1f}, {spread['max'] * 100:+.1f}]"
