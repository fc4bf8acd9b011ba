"""Consensus quality and cost on the simulated fleet: ``swarmstream bench consensus [--quick] [--json]``.

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

from swarmstream.agents.consensus.sequential import plan_next
from swarmstream.agents.consensus.strategies import cluster, majority, weighted
from swarmstream.agents.consensus.votes import Decision, Vote
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.providers.base import cost_micros
from swarmstream.agents.models.simulated.behaviour import (
    accuracy_for,
    answer_text,
    decide_answer,
    estimate_tokens,
)
from swarmstream.agents.models.simulated.fleet import _TOKENS_PER_MESSAGE
from swarmstream.agents.models.simulated.taskset import LabelledTask, demo_tasks, solve

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


@dataclass(frozen=True)
class Answer:
    text: str  # normalised
    cost_micros: int


def ask_all(task: LabelledTask, seed: int) -> dict[str, Answer]:
    """Every model's answer to ``task`` and what the call costs, as the live fleet would give them."""
    truth = solve(task.prompt)
    if truth is None:
        raise ValueError(f"bench consensus: the simulator cannot solve task {task.task_id}: {task.prompt!r}")
    input_tokens = estimate_tokens(len(task.prompt)) + _TOKENS_PER_MESSAGE  # one user message
    answers = {}
    for spec in FLEET:
        assert spec.simulated is not None
        accuracy = accuracy_for(spec.simulated, truth.category)
        decision = decide_answer(seed, spec.id, task.prompt, truth, accuracy)
        output_tokens = estimate_tokens(len(answer_text(truth.answer_type, decision.answer)))
        answers[spec.id] = Answer(decision.answer, cost_micros(spec, input_tokens, output_tokens))
    return answers


def estimate_reliability(warmup: Sequence[Mapping[str, Answer]]) -> dict[str, float]:
    """Each model's accuracy from pairwise agreement on unlabelled answers (module docstring)."""
    models = [spec.id for spec in FLEET]
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


def early_stop(answers: Mapping[str, Answer], order: Sequence[str], threshold: float) -> tuple[Decision, list[str]]:
    """Sequential consensus over pre-drawn answers: the decision and the models asked."""
    got: dict[str, str] = {}
    asked: list[str] = []
    while True:
        step = plan_next(order, got, (), max_models=MAX_MODELS, threshold=threshold)
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


def evaluate(n_tasks: int, n_warmup: int, seed: int, thresholds: Sequence[float]) -> dict[str, Any]:
    """All strategies on ``n_tasks`` tasks after ``n_warmup`` warm-up tasks, fleet seed ``seed``."""
    tasks = demo_tasks(n_warmup + n_tasks, seed=TASK_SEED, kinds=("label", "number"))
    warmup, evaluated = tasks[:n_warmup], tasks[n_warmup:]
    reliability = estimate_reliability([ask_all(task, seed) for task in warmup])
    weights = {model: vote_weight(p) for model, p in reliability.items()}
    logodds = {model: max(0.0, math.log(p / (1.0 - p))) for model, p in reliability.items()}
    everyone = [spec.id for spec in FLEET]
    order = sorted(everyone, key=lambda model: (-reliability[model], model))

    tallies = {name: _Tally() for name in ("majority", "weighted", "weighted_logodds")}
    sweep = {threshold: _Tally() for threshold in thresholds}
    single = dict.fromkeys(everyone, 0)
    for task in evaluated:
        answers = ask_all(task, seed)
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
            decision, asked = early_stop(answers, order, threshold)
            tally.add(decision, task.answer, asked, answers)
    return {
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
            for spec in FLEET
        ],
        "order": order,
    }


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
    started = time.perf_counter()
    n_tasks = QUICK_TASKS if quick else TASKS
    n_warmup = 200 if quick else WARMUP_TASKS
    thresholds = (EARLY_STOP_THRESHOLD, 0.95)
    main = evaluate(n_tasks, n_warmup, FLEET_SEED, thresholds)
    strategies = dict(main["strategies"])
    logodds = strategies.pop("weighted_logodds")
    strategies["early_stop"] = main["early_stop"][EARLY_STOP_THRESHOLD]

    repeats = []
    for seed in REPEAT_SEEDS[:2] if quick else REPEAT_SEEDS:
        other = evaluate(n_tasks, n_warmup, seed, (EARLY_STOP_THRESHOLD,))
        repeats.append((seed, other["strategies"], other["early_stop"][EARLY_STOP_THRESHOLD]))
    all_runs = [(FLEET_SEED, main["strategies"], strategies["early_stop"]), *repeats]

    def spread(values: Sequence[float]) -> dict[str, float]:
        return {"mean": round(statistics.fmean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}

    clustering = time_cluster()
    result = {
        "tasks": n_tasks,
        "warmup_tasks": n_warmup,
        "strategies": strategies,
        "best_single_accuracy": max(m["accuracy_measured"] for m in main["models"]),
        "cluster_ms": clustering["median_ms"],
        "cluster_p90_ms": clustering["p90_ms"],
        "cluster_groups_found": int(clustering["clusters"]),
        "early_stop_threshold": EARLY_STOP_THRESHOLD,
        "early_stop_sweep": {str(t): s for t, s in main["early_stop"].items()},
        "early_stop_call_saving": round(1 - strategies["early_stop"]["calls_per_task"] / MAX_MODELS, 4),
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


def render(result: Mapping[str, Any]) -> str:
    lines = [
        f"consensus on the simulated fleet: {result['tasks']} labelled tasks (label + number), "
        f"5 models, accuracies 0.60-0.80, reliability from {result['warmup_tasks']} unlabelled warm-up tasks",
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
        f"{result['early_stop_call_saving']:.0%} fewer calls than asking all 5",
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
