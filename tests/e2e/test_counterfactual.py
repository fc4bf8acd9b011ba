"""Counterfactual evaluation, the issue's must-show: record a run under the random (exploring)
selection policy, estimate from it how always-best and the learning policy (Thompson
sampling) would have done, then run those policies live on the same tasks: each live
accuracy lies inside the estimate's interval, and no model was called to estimate it.

Intervals here are 99% (``Z_99``), not the CLI's 95%: the test checks four of them (IPS
and DR, two policies) and a 95% interval misses by design one time in twenty, so at 95%
about one run in six would fail with nothing wrong. The learner's live run is a random draw
too (~0.02 of accuracy either way over 240 tasks), so its accuracy is compared with the
estimate counting both errors (``agrees``); against the estimate's interval alone it fell
outside now and then (0.879 against 0.885-0.984). The widths are bounded too, so a
wide interval cannot pass by covering everything. Offline Thompson learns in batches of
``FEEDBACK_BATCH`` as the live one does (``PolicyTarget.feedback_batch``); it still learns
from the logger's picks rather than its own, so it is a little optimistic (the usual
caveat of evaluating a learner offline: module docstring of counterfactual.py)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

from swarmstream.agents.models.simulated.taskset import LabelledTask, demo_tasks
from swarmstream.agents.replay.counterfactual import (
    Z_99,
    always,
    evaluate,
    logged_choices,
    policy_target,
)
from swarmstream.agents.replay.recording import read_recording
from swarmstream.agents.replay.summary import evaluate as evaluate_recording
from swarmstream.schemas.models import TaskResult
from swarmstream.streams.demo import to_request
from swarmstream.streams.recorder import record_run

from tests.conftest import wait_for

TASKS = 240
"""Per phase. IPS half-widths are ~0.1 at this size (three candidates, weights of 3)."""
FEEDBACK_BATCH = 10
"""The live learner submits this many, then judges them (as `demo --mode select` does with 20)."""

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


async def test_estimates_from_a_random_run_cover_live_runs_of_always_best_and_thompson(
    make_stack, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    chains = tmp_path / "chains.yaml"
    chains.write_text(CHAINS)
    tasks = demo_tasks(TASKS, kinds=("label",))
    path = tmp_path / "run.avro"
    async with make_stack(models=fleet, chains=chains) as stack:

        async def run(phase: str, *, batch: int = TASKS, feedback: bool = False, **fields: object) -> float:
            items: dict[str, LabelledTask] = {}
            for start in range(0, TASKS, batch):
                chunk = {}
                for item in tasks[start:start + batch]:
                    request = to_request(item, mode="select", timeout_ms=10_000).model_copy(
                        update={"task_id": f"{phase}-{item.task_id}", **fields})
                    chunk[request.task_id] = item
                    await stack.client.submit(request, wait_ack=False)
                await stack.client.flush()
                await wait_for(lambda c=chunk: all(t in stack.client.received for t in c), timeout_s=60,
                               stack=stack, what=f"{phase} results")
                if feedback:
                    for task_id, item in chunk.items():
                        result = stack.client.received[task_id]
                        await stack.client.feedback(result, 1.0 if result.answer == item.answer else 0.0)
                items.update(chunk)
            results = {t: stack.client.received[t] for t in items}
            assert all(r.status == "ok" for r in results.values()), phase
            labels.update({t: item.answer for t, item in items.items()})
            return accuracy(results, items)

        labels: dict[str, str] = {}
        logged_accuracy = await run("random", policy="random")  # no feedback: the book learns nothing
        live_best = await run("best", models=["good"])  # manual override: every task on the best model
        live_thompson = await run("thompson", batch=FEEDBACK_BATCH, feedback=True, policy="thompson")
        assert stack.fleet is not None
        calls_before = copy.deepcopy(stack.fleet.counters)
        await record_run(stack.broker_url, stack.settings.topics, path, labels=labels, idle_s=1.0)
        recording = read_recording(path)
        choices = logged_choices(recording, logging_policies={"random"})
        best = evaluate(choices, always("good"), z=Z_99)
        worst = evaluate(choices, always("poor"), z=Z_99)
        thompson = evaluate(choices, policy_target("thompson", seed=1, feedback_batch=FEEDBACK_BATCH), z=Z_99)
        summary = evaluate_recording(recording, logging_policies={"random"}).summary
        assert stack.fleet.counters == calls_before  # estimating called no model

    assert len(choices) == TASKS
    assert {c.policy for c in choices} == {"random"} and all(set(c.candidates) == {"good", "fair", "poor"}
                                                             for c in choices)
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
    targets = summary["selection"]["targets"]
    assert {"always:good", "always:fair", "always:poor", "thompson", "random", "weighted"} <= set(targets)
    assert targets["always:good"]["dr"] == round(best.dr, 4)  # type: ignore[arg-type]
