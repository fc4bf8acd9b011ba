"""Record live runs from their topics and replay them offline: consensus gives back the same answers and
accuracy; a random select run gives back its own accuracy as a counterfactual estimate."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from pathlib import Path

import pytest
from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.agents.replay.counterfactual import (
    always,
    evaluate,
    logged_choices,
    policy_target,
)
from swarmstream.agents.replay.isolation import default_output_topic, replay_group
from swarmstream.agents.replay.offline import (
    ReplaySet,
    compare_with_live,
    replay_summary,
)
from swarmstream.agents.replay.recording import read_recording
from swarmstream.agents.replay.summary import evaluate as evaluate_recording
from swarmstream.schemas.models import TaskResult, now_ms
from swarmstream.streams.cli.demo import to_request
from swarmstream.streams.cli.recorder import RecordRange, read_run, record_run

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


async def test_record_by_time_range_and_replay_from_the_topics_in_isolation(
    make_stack, broker_url: str, tmp_path: Path, topic_reader
) -> None:
    """`record` with a time range into an Avro file; `replay --from-topics` (its own group) gives the
    same numbers as the file; labels from the tasks; no model is called; re-scored results go to the
    replay's own topic, never to a production one."""
    path = tmp_path / "late.avro"
    async with make_stack() as stack:
        async def batch(name: str, n: int) -> dict[str, str]:
            items = {}
            for item in demo_tasks(n, kinds=("label",)):
                request = to_request(item, mode="consensus", models=["fast-a", "coin", "fast-b"]).model_copy(
                    update={"task_id": f"{name}-{item.task_id}", "metadata": {"label": item.answer}})
                items[request.task_id] = item.answer
                await stack.client.submit(request, wait_ack=False)
            await stack.client.flush()
            await wait_for(lambda: all(t in stack.client.received for t in items), timeout_s=60, stack=stack,
                           what=f"{name} results")
            return items

        await batch("early", 6)
        mark_ms = now_ms()
        late = await batch("late", 12)
        assert stack.fleet is not None
        calls = copy.deepcopy(stack.fleet.counters)

        recorded = await record_run(broker_url, stack.settings.topics, path, span=RecordRange(since_ms=mark_ms),
                                    idle_s=1.0, group_id=replay_group(stack.settings.app_id))
        from_topics, _ = await read_run(broker_url, stack.settings.topics, idle_s=1.0,
                                        span=RecordRange(since_ms=mark_ms), group_id=replay_group(stack.settings.app_id))
        whole, _ = await read_run(broker_url, stack.settings.topics, idle_s=1.0, span=RecordRange(end_offset=2))

        env = {**os.environ, "SWARM_BROKER": broker_url, "SWARM_TOPIC_PREFIX": stack.settings.topic_prefix,
               "SWARM_APP_ID": stack.settings.app_id, "SWARM_MODELS": str(stack.settings.models)}
        out_topic = default_output_topic(stack.settings.topic_prefix)
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "swarmstream.streams.cli", "replay", "--from-topics", "--since-ms", str(mark_ms),
            "--labels", "tasks", "--strategies", "majority,weighted", "--to-topic", out_topic, "--json",
            "--plot", str(tmp_path / "r.png"), "--idle-s", "1", env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await cli.communicate()
        assert cli.returncode == 0, stderr.decode()
        refused = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "swarmstream.streams.cli", "replay", str(path), "--to-topic",
            stack.settings.topics.results, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, refusal = await refused.communicate()
        published = await topic_reader(out_topic, count=2 * len(late), timeout_s=10)
        results_after = await topic_reader(stack.settings.topics.results, count=10_000, timeout_s=2)
        assert stack.fleet.counters == calls  # recording and replaying called no model

    assert set(from_topics.tasks) == set(late) and set(read_recording(path).tasks) == set(late)
    assert recorded.records["tasks"] == len(late) and recorded.skipped == {}
    assert len(whole.tasks) <= 2 * stack.settings.partitions  # offsets 0 and 1 of each partition only

    file_summary = evaluate_recording(read_recording(path), label_source="tasks").summary
    topic_summary = evaluate_recording(from_topics, label_source="tasks").summary
    assert file_summary["strategies"] == topic_summary["strategies"]
    assert file_summary["labels"]["from"] == {"tasks": len(late)}
    assert file_summary["live"]["identical"] is True

    cli_summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert set(cli_summary["strategies"]) == {"majority", "weighted"}
    for name in ("majority", "weighted"):
        assert cli_summary["strategies"][name]["accuracy"] == topic_summary["strategies"][name]["accuracy"]
    assert cli_summary["published"] == {"topic": out_topic, "results": 2 * len(late)}
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")

    assert refused.returncode == 2 and b"refused" in refusal and stack.settings.topics.results.encode() in refusal
    assert len([r for r in results_after if isinstance(r, TaskResult)]) == 6 + 12 + 1  # + the warm-up probe
    assert all(isinstance(r, TaskResult) and r.reason.startswith("replay of strategy") for r in published)
    assert {(r.strategy, r.task_id) for r in published} == {(s, t) for s in ("majority", "weighted") for t in late}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start_offset": 5, "end_offset": 2}, "end offset 2 must be above start 5"),
        ({"since_ms": 10, "until_ms": 10}, "until 10 ms must be after since 10 ms"),
        ({"start_offset": -1}, "start_offset must be >= 0"),
    ],
)
def test_a_record_range_that_selects_nothing_is_refused(fields: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RecordRange(**fields)
