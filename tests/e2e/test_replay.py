"""Record live runs from their topics and replay them offline: consensus gives back the same answers and
accuracy; a random select run gives back its own accuracy as a counterfactual estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.agents.replay.counterfactual import always, evaluate, logged_choices, policy_target
from swarmstream.agents.replay.offline import ReplaySet, compare_with_live, replay_summary
from swarmstream.agents.replay.recording import read_recording
from swarmstream.streams.demo import to_request
from swarmstream.streams.recorder import record_run
from tests.conftest import wait_for

TASKS = 30


def models_for(i: int) -> list[str]:
    """A mix: the default three; a majority that outvotes the always-wrong coin; a 1-1 tie
    with the coin (broken by latency, so replay must use the recorded latencies); the coin alone."""
    if i % 7 == 3:
        return ["coin"]
    if i % 3 == 1:
        return ["fast-a", "coin", "fast-b"]
    if i % 5 == 2:
        return ["fast-a", "coin"]
    return []


async def test_replay_of_a_recorded_run_reproduces_the_live_results(
    make_stack, broker_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl.gz"
    async with make_stack() as stack:
        items = {}
        for i, item in enumerate(demo_tasks(TASKS, kinds=("label", "number", "text", "json"))):
            request = to_request(item, mode="consensus", models=models_for(i))
            items[request.task_id] = item
            await stack.client.submit(request, wait_ack=False)
        await stack.client.flush()
        await wait_for(lambda: all(t in stack.client.received for t in items), timeout_s=60, stack=stack,
                       what="every result")
        live = {t: stack.client.received[t] for t in items}
        labels = {t: item.answer for t, item in items.items()}
        recorded = await record_run(broker_url, stack.settings.topics, path, labels=labels, idle_s=1.0)

    assert recorded.records["tasks"] >= TASKS  # plus the warm-up probe
    assert recorded.records["results"] >= TASKS
    assert recorded.labels == TASKS
    assert recorded.skipped == {}

    recording = read_recording(path)
    live_correct = sum(live[t].answer == labels[t] for t in items)
    assert live_correct < TASKS  # the coin alone is always wrong: the comparison is not all-right vs all-right

    comparison = compare_with_live(recording)
    assert comparison.tasks == TASKS and comparison.labelled == TASKS
    assert comparison.identical, comparison
    assert comparison.live_correct == comparison.replayed_correct == live_correct
    assert comparison.confidence_mismatches == ()

    replay_set = ReplaySet.from_recording(recording)
    own = replay_set.run("default")
    majority = replay_set.run("majority")
    assert own.correct == live_correct
    assert own.accuracy == live_correct / TASKS
    for task_id, result in live.items():
        assert own.decisions[task_id].answer == result.answer, task_id
        assert own.decisions[task_id].confidence == result.confidence, task_id
        assert own.decisions[task_id].cost_micros == result.cost_micros, task_id
        if items[task_id].answer_type == "label":  # majority is the live strategy for labels
            assert majority.decisions[task_id].answer == result.answer, task_id

    summary = replay_summary(recording)
    assert summary["tasks"] == TASKS
    assert summary["live"]["identical"] is True
    assert summary["strategies"]["default"]["accuracy"] == round(live_correct / TASKS, 6)
    for name in ("majority", "weighted", "early_stop", "median", "cluster", "json_fields"):
        assert {"accuracy", "cost_usd", "calls_per_task", "ece"} <= set(summary["strategies"][name])


async def test_a_recorded_random_policy_run_feeds_counterfactual_estimates(
    make_stack, broker_url: str, tmp_path: Path
) -> None:
    """Select tasks under the uniform random policy: every selection is logged with its
    propensities, and re-evaluating the logging policy itself gives back the live accuracy."""
    path = tmp_path / "select.jsonl"
    async with make_stack() as stack:
        items = {}
        for item in demo_tasks(24, kinds=("label",)):
            request = to_request(item, mode="select", timeout_ms=2_000).model_copy(update={"policy": "random"})
            items[request.task_id] = item
            await stack.client.submit(request, wait_ack=False)
        await stack.client.flush()
        await wait_for(lambda: all(t in stack.client.received for t in items), timeout_s=60, stack=stack,
                       what="every select result")
        live = {t: stack.client.received[t] for t in items}
        await record_run(broker_url, stack.settings.topics, path,
                         labels={t: item.answer for t, item in items.items()}, idle_s=1.0)

    recording = read_recording(path)
    choices = logged_choices(recording)
    assert {c.task_id for c in choices} == set(items)
    for choice in choices:
        assert choice.policy == "random"
        assert sum(choice.propensities.values()) == pytest.approx(1.0)
        assert choice.chosen == live[choice.task_id].answered_by or live[choice.task_id].answered_by is None
    live_accuracy = sum(live[t].answer == items[t].answer for t in items) / len(items)

    same = evaluate(choices, policy_target("random"))  # the logger itself: every weight is 1
    assert same.logged_value == pytest.approx(live_accuracy)
    assert same.ips == pytest.approx(live_accuracy)
    assert same.snips == pytest.approx(live_accuracy)
    coin = evaluate(choices, always("coin"))  # always wrong: nothing to weigh up
    assert coin.ips == 0.0 and coin.unsupported == 0
