"""Counterfactual evaluation, the issue's must-show: record a run under a uniformly random
(exploring) logging policy, estimate from it how always-best and the learning policy (Thompson
sampling) would have done, then run those policies on the same tasks: each live accuracy
agrees with its estimate, and no model was called to estimate it.

**Deterministic: it cannot fail by luck.** Every draw in it comes from a fixed seed, and
everything else is a pure function of the seeds and the tasks:

- the tasks: ``demo_tasks(TASKS, seed=7)``;
- the answers: the simulated fleet decides right or wrong as a pure function of (fleet seed 0,
  model, prompt) (agents/models/simulated/behaviour.py), so each model's reward on each task
  is fixed, whatever the timing;
- the picks: the live selector's RNG is unseeded (``Selector(seed=None)``) and the order it sees
  feedback in is a race, so here the *test* is the live policy: it draws the logger's picks
  with ``RandomPolicy`` and ``LOGGER_SEED``, and Thompson's with the registered ``thompson``
  policy, ``THOMPSON_SEED`` and its own book, learning in batches of ``FEEDBACK_BATCH`` from
  its own picks' rewards (``PolicyTarget``, the class the offline estimate uses), then submits
  each task naming its pick (select mode, manual override). The logger's true propensities
  (uniform, 1/3) replace the override's 1/0 in the logged choices;
- the estimate: offline Thompson's Monte-Carlo draws come from ``ESTIMATE_SEED``; the logged
  choices are put in submission order (the log's time order ties and interleaves across
  partitions), and their latencies, wall-clock measurements and the one thing no seed fixes,
  are zeroed: all three models have the same simulated latency, so latency is noise here, and
  Thompson's 2% latency penalty would turn it into different picks.

So every number below is the same on every run (the printed report shows them); a timing
problem can only fail loudly (a result that is not ``ok``), never move an estimate. The
bounds stay honest checks on the estimators: 99% intervals (``Z_99``), the live learner's own
sampling error counted (``agrees``), widths bounded so a wide interval cannot pass by covering
everything. Offline Thompson learns from the logger's picks rather than its own, so it is a
little optimistic (the usual caveat of evaluating a learner offline: counterfactual.py).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
from swarmstream.agents.models.simulated.taskset import LabelledTask, demo_tasks
from swarmstream.agents.replay.counterfactual import (
    Z_99,
    LoggedChoice,
    always,
    evaluate,
    logged_choices,
    policy_target,
)
from swarmstream.agents.replay.recording import read_recording
from swarmstream.agents.selection.policies import RandomPolicy
from swarmstream.schemas.models import TaskResult
from swarmstream.streams.cli.demo import to_request
from swarmstream.streams.cli.recorder import record_run

from tests.conftest import wait_for

TASKS = 240
"""Per phase. IPS half-widths are ~0.1 at this size (three candidates, weights of 3)."""
FEEDBACK_BATCH = 10
"""The live learner picks this many, then learns from their results (as `demo --mode select` does with 20)."""
LOGGER_SEED = 20
"""The uniform logger's draws."""
THOMPSON_SEED = 21
"""The live Thompson learner's posterior draws."""
ESTIMATE_SEED = 1
"""Offline Thompson's draws (its propensities are Monte-Carlo estimates)."""
MODELS = ("good", "fair", "poor")

FLEET = """
default_consensus: [good, fair, poor]
models:
  - id: good
    provider: simulated
    family: a
    simulated: {accuracy: 0.9, latency_median_ms: 2, latency_p99_ms: 10}
  - id: fair
    provider: simulated
    family: b
    simulated: {accuracy: 0.6, latency_median_ms: 2, latency_p99_ms: 10}
  - id: poor
    provider: simulated
    family: c
    simulated: {accuracy: 0.25, latency_median_ms: 2, latency_p99_ms: 10}
"""
CHAINS = """
default: one
chains:
  one:
    links: [{model: good}, {model: fair}]
"""


def agrees(estimate: float, interval: tuple[float, float], live: float, *, sampled: bool) -> bool:
    """Whether a live run's accuracy is within 99% of the estimate, counting both errors: the
    estimator's (its interval) and, for a policy that samples (Thompson), the live run's own:
    which model it draws for each task is random, a binomial error over ``TASKS`` tasks.
    Always-best is not: its simulated answers are a function of the task."""
    estimate_se = (estimate - interval[0]) / Z_99  # from the low side: the high one may be clipped at 1
    live_se = math.sqrt(live * (1 - live) / TASKS) if sampled else 0.0
    return abs(live - estimate) <= Z_99 * math.hypot(estimate_se, live_se)


def accuracy(results: dict[str, TaskResult], items: dict[str, LabelledTask]) -> float:
    return sum(results[t].answer == item.answer for t, item in items.items()) / len(items)


def pending(task_id: str, item: LabelledTask) -> LoggedChoice:
    """A choice still to be made: the candidates as the live selector sees them (no prices in
    this fleet, so every cost forecast is 0; the logged ones are checked to be)."""
    return LoggedChoice(task_id=task_id, category=item.category, at_ms=0, candidates=MODELS,
                        cost_micros_est=(0,) * len(MODELS), propensities={}, chosen="", reward=0.0)


async def test_estimates_from_a_random_run_agree_with_runs_of_always_best_and_thompson(
    make_stack, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    chains = tmp_path / "chains.yaml"
    chains.write_text(CHAINS)
    tasks = demo_tasks(TASKS, kinds=("label",))
    path = tmp_path / "run.avro"
    labels: dict[str, str] = {}
    async with make_stack(models=fleet, chains=chains) as stack:

        async def run(phase: str, items: list[LabelledTask], picks: list[str]) -> dict[str, TaskResult]:
            """``items`` as tasks ``<phase>-<id>``, item i on model ``picks[i]``; their results, all ``ok``."""
            batch = {}
            for item, model in zip(items, picks, strict=True):
                request = to_request(item, mode="select", timeout_ms=30_000).model_copy(
                    update={"task_id": f"{phase}-{item.task_id}", "models": [model]})
                batch[request.task_id] = item
                await stack.client.submit(request, wait_ack=False)
            await stack.client.flush()
            await wait_for(lambda: all(t in stack.client.received for t in batch), timeout_s=60, stack=stack,
                           what=f"{phase} results")
            results = {t: stack.client.received[t] for t in batch}
            assert all(r.status == "ok" for r in results.values()), phase
            labels.update({t: item.answer for t, item in batch.items()})
            return results

        # the logger: uniform over the three models, seeded
        logger_rng = np.random.default_rng(LOGGER_SEED)
        logged = [RandomPolicy().choose(policy_target("random").candidates(pending(f"random-{t.task_id}", t)),
                                        logger_rng) for t in tasks]
        logged_results = await run("random", tasks, [s.model_id for s in logged])
        propensities = {f"random-{t.task_id}": s.propensities for t, s in zip(tasks, logged, strict=True)}
        logged_accuracy = accuracy(logged_results, {f"random-{t.task_id}": t for t in tasks})

        best_results = await run("best", tasks, ["good"] * TASKS)  # every task on the best model
        live_best = accuracy(best_results, {f"best-{t.task_id}": t for t in tasks})

        # the learner: Thompson sampling, learning from its own picks a batch at a time
        learner = policy_target("thompson", feedback_batch=FEEDBACK_BATCH)
        thompson_rng = np.random.default_rng(THOMPSON_SEED)
        thompson_results: dict[str, TaskResult] = {}
        for start in range(0, TASKS, FEEDBACK_BATCH):
            items = tasks[start:start + FEEDBACK_BATCH]
            chunk = [pending(f"thompson-{t.task_id}", t) for t in items]
            picks = [learner.policy.choose(learner.candidates(c), thompson_rng).model_id for c in chunk]
            results = await run("thompson", items, picks)
            for choice, model in zip(chunk, picks, strict=True):
                result = results[choice.task_id]
                right = result.answer == labels[choice.task_id]
                learner.observe(dataclasses.replace(choice, chosen=model, reward=float(right)))
                await stack.client.feedback(result, float(right))  # published, as a live learner's judgements
            thompson_results.update(results)
        live_thompson = accuracy(thompson_results, {f"thompson-{t.task_id}": t for t in tasks})

        assert stack.fleet is not None
        calls_before = copy.deepcopy(stack.fleet.counters)
        await record_run(stack.broker_url, stack.settings.topics, path, labels=labels, idle_s=1.0)
        recording = read_recording(path)
        order = {f"random-{t.task_id}": i for i, t in enumerate(tasks)}
        recorded = [c for c in logged_choices(recording) if c.task_id in order]
        choices = sorted((dataclasses.replace(c, propensities=propensities[c.task_id], policy="random", latency_ms=0)
                          for c in recorded), key=lambda c: order[c.task_id])
        best = evaluate(choices, always("good"), z=Z_99)
        worst = evaluate(choices, always("poor"), z=Z_99)
        thompson = evaluate(choices, policy_target("thompson", seed=ESTIMATE_SEED, feedback_batch=FEEDBACK_BATCH),
                            z=Z_99)
        assert stack.fleet.counters == calls_before  # estimating called no model

    assert len(choices) == TASKS
    for choice, selection in zip(choices, logged, strict=True):  # the log holds what was picked, as picked
        assert choice.chosen == selection.model_id and set(choice.candidates) == set(MODELS)
        assert choice.cost_micros_est == (0, 0, 0)  # as `pending` assumed
    assert recording.feedback  # the learner's judgements were recorded too
    assert best.logged_value is not None and abs(best.logged_value - logged_accuracy) < 1e-9

    report = (f"live always-best {live_best:.3f}: ips {best.ips:.3f} {best.ips_interval}, dr {best.dr:.3f} "
              f"{best.dr_interval}; live thompson {live_thompson:.3f}: ips {thompson.ips:.3f} "
              f"{thompson.ips_interval}, dr {thompson.dr:.3f} {thompson.dr_interval}; logged {logged_accuracy:.3f}")
    print(report)
    for estimate, live, sampled in ((best, live_best, False), (thompson, live_thompson, True)):
        for value, interval, widest in ((estimate.ips, estimate.ips_interval, 0.5),
                                        (estimate.dr, estimate.dr_interval, 0.25)):
            assert value is not None and interval is not None, report
            assert agrees(value, interval, live, sampled=sampled), report
            assert interval[1] - interval[0] < widest, report
    # the estimates tell policies apart: the best model's interval lies above the worst's, and above the logger's
    assert worst.dr_interval is not None and best.dr_interval is not None
    assert worst.dr_interval[1] < best.dr_interval[0], (worst, best)
    assert live_best > logged_accuracy
