"""Judge, fuse, vote_then_judge and self-consistency end to end, on the real broker.

Every case runs in one stack (one worker), submitted together, so the file costs one
worker start-up. A judge's calls are counted by the simulated fleet's per-model counters,
so each case that asserts a count has a judge model of its own.
"""

from __future__ import annotations

from pathlib import Path

from swarmstream.agents.replay.offline import ReplaySet, compare_with_live
from swarmstream.agents.replay.recording import read_recording
from swarmstream.schemas.models import TaskRequest, TaskResult
from swarmstream.streams.cli.recorder import record_run

from tests.conftest import wait_for

SALMON = {"prompt": "Is a salmon an animal or a fruit?", "answer_type": "label", "labels": ["animal", "fruit"]}
"""coin and coin-b (accuracy 0) answer "fruit", fast-a "animal": the vote is wrong 2-1."""
WRONG_PAIR = ["coin", "coin-b", "fast-a"]
CAPITAL = {"prompt": "What is the capital of France? Answer with the name only.", "answer_type": "text"}


def task(**fields: object) -> TaskRequest:
    return TaskRequest(**fields)  # type: ignore[arg-type]


async def test_judge_fuse_vote_then_judge_fallback_budget_samples_embeddings_and_replay(
    make_stack, broker_url: str, tmp_path: Path
) -> None:
    async with make_stack(embeddings_model="sim-embed") as stack:
        await judge_cases(stack, broker_url, tmp_path)


async def judge_cases(stack, broker_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cases = {
        "judge": task(**SALMON, models=WRONG_PAIR, strategy="judge", judge="fast-b"),
        "fuse": task(**CAPITAL, models=["fast-a", "coin", "coin-b"], strategy="fuse", judge="fast-c"),
        "agreeing": task(prompt="What is 2 + 5? Answer with a number.", answer_type="number",
                         models=["fast-a", "fast-b", "fast-c"], strategy="vote_then_judge", judge="tool-a"),
        "split": task(**SALMON, models=["coin", "fast-a", "fast-b"], strategy="vote_then_judge", judge="tool-c"),
        "chain": task(**SALMON, models=WRONG_PAIR, strategy="judge", judge="judges"),
        "no_judge_left": task(**SALMON, models=WRONG_PAIR, strategy="judge", judge="no-judges"),
        "over_budget": task(**SALMON, models=WRONG_PAIR, strategy="judge", judge="fast-b", max_cost_micros=300),
        "in_budget": task(**SALMON, models=WRONG_PAIR, strategy="judge", judge="fast-b", max_cost_micros=100_000),
        "cluster": task(**CAPITAL, models=["fast-a", "fast-b", "coin"]),  # clustered by the embeddings model
        "samples": task(prompt="What is 6 * 7? Answer with a number.", answer_type="number", models=["tool-d"],
                        samples=5, temperature=0.7, seed=11),
    }
    for request in cases.values():
        await stack.client.submit(request, wait_ack=False)
    await stack.client.flush()
    await wait_for(lambda: all(t.task_id in stack.client.received for t in cases.values()), timeout_s=60,
                   stack=stack, what="judged results")
    results: dict[str, TaskResult] = {name: stack.client.received[t.task_id] for name, t in cases.items()}
    calls = {model: counts["calls"] for model, counts in stack.fleet.counters.items()}

    judged = results["judge"]
    assert sorted(v.answer for v in judged.votes) == ["animal", "fruit", "fruit"]  # the vote alone is wrong
    assert (judged.status, judged.answer, judged.strategy) == ("ok", "animal", "judge")
    assert judged.judged_by == "fast-b" and judged.judge_pick is not None and judged.judge_rationale
    assert judged.judge_calls == 1 and judged.judge_cost_micros > 0
    assert judged.cost_micros > judged.judge_cost_micros  # the candidates' (fast-a is priced) and the judge's
    assert judged.shuffle_seed is not None

    fused = results["fuse"]
    assert (fused.answer, fused.judged_by, fused.strategy) == ("paris", "fast-c", "fuse")
    assert len(fused.votes) == 3 and "paris" in {v.answer for v in fused.votes}
    assert {v.answer for v in fused.votes} != {"paris"}  # candidates kept for audit, wrong ones included
    assert fused.embedder == "sim-embed"  # the vote under the fuser clustered by meaning

    clustered = results["cluster"]
    assert (clustered.answer, clustered.strategy, clustered.embedder) == ("paris", "cluster", "sim-embed")
    assert clustered.agreement == 2 / 3
    assert calls["embeddings"] >= 1  # one batch per text task at most; cached answers are not fetched again

    assert results["agreeing"].answer == "7" and results["agreeing"].judge_calls == 0
    assert calls["tool-a"] == 0  # agreeing: the judge was never asked
    assert results["split"].judge_calls == 1 and results["split"].judged_by == "tool-c"
    assert results["split"].answer == "animal"
    assert calls["tool-c"] == 1  # split 2-1: asked once

    chain = results["chain"]
    assert (chain.answer, chain.judged_by, chain.judge_calls) == ("animal", "fast-b", 3)
    assert calls["flaky"] >= 1 and calls["judge-bad-json"] >= 2

    none_left = results["no_judge_left"]
    assert none_left.answer == "fruit" and none_left.judged_by is None  # the vote's answer stands
    assert none_left.judge_calls == 2
    assert "no judge left" in none_left.reason and "server_error" in none_left.reason
    assert "invalid_output" in none_left.reason

    over, within = results["over_budget"], results["in_budget"]
    assert over.judge_calls == 0 and over.answer == "fruit" and "budget_exceeded" in over.reason
    assert within.judge_calls == 1 and within.answer == "animal"
    assert within.cost_micros <= 100_000 and within.cost_micros == over.cost_micros + within.judge_cost_micros

    sampled = results["samples"]
    assert calls["tool-d"] == 5
    assert sorted((v.model_id, v.sample) for v in sampled.votes) == [("tool-d", k) for k in range(5)]
    assert sampled.answer == "42" and sampled.models_asked == 5

    # Replay: the recorded verdicts re-score the judge strategies, no model called.
    labels = {t.task_id: ("animal" if t.labels else "paris" if t.answer_type == "text" else
                          "7" if "2 + 5" in t.prompt else "42") for t in cases.values()}
    path = tmp_path / "judged.jsonl.gz"
    await record_run(broker_url, stack.settings.topics, path, labels=labels, idle_s=1.0)
    before = {model: dict(counts) for model, counts in stack.fleet.counters.items()}
    recording = read_recording(path)
    comparison = compare_with_live(recording)
    assert comparison.identical, comparison  # each task's own strategy, replayed: the live answers
    replayed = ReplaySet.from_recording(recording)
    own = replayed.run("default")
    for name, request in cases.items():
        assert own.decisions[request.task_id].answer == results[name].answer, name
        assert own.decisions[request.task_id].cost_micros == results[name].cost_micros, name
    # the always-judge task replayed as vote_then_judge: split 2-1, so the recorded verdict decides
    assert replayed.decide(replayed_task(replayed, cases["judge"]), "vote_then_judge").answer == "animal"
    assert replayed.decide(replayed_task(replayed, cases["judge"]), "majority").answer == "fruit"
    assert stack.fleet.counters == before  # no model was called to replay


def replayed_task(replay_set: ReplaySet, request: TaskRequest):  # type: ignore[no-untyped-def]
    [task] = [t for t in replay_set.tasks if t.task_id == request.task_id]
    return task


async def test_the_judge_demo_fuses_and_judges_free_text(broker_url, monkeypatch) -> None:
    from swarmstream.streams.cli.demo import render, run_demo

    monkeypatch.setenv("SWARM_BROKER", broker_url)
    summary = await run_demo(tasks=12, mode="judge", quiet=True)

    assert (summary["results"], summary["mode"]) == (12, "judge")
    strategies = summary["strategies"]
    assert strategies["fuse"]["tasks"] == strategies["judge"]["tasks"] == 6  # type: ignore[index]
    assert 0 < summary["judge_calls_per_task"] <= 1  # type: ignore[operator]  # agreeing panels need no judge
    assert summary["judged_by"] == ["sim-epsilon"]  # the catalog's strongest model outside the panel
    assert "judge calls / task" in render(summary)
