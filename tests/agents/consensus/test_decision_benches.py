"""The decision benchmarks on both fleets (quick runs): the `fleets` level, the frontier, and
the helm-mmlu replay recording."""

from __future__ import annotations

import json

import pytest
from swarmstream.agents.replay import offline
from swarmstream.agents.replay.recording import read_recording
from swarmstream.bench import consensus, replay
from swarmstream.bench.fleets import REALISTIC, realistic_fleet

FRONTIER = {"best_single", "majority_of_3", "weighted_of_3", "early_stop", "cascade_confidence",
            "cascade_second_opinion", "learned_routing"}


@pytest.fixture(scope="module")
def quick() -> dict:
    return consensus.run(quick=True)


def test_consensus_has_both_fleets_with_the_earlier_keys(quick: dict) -> None:
    json.dumps(quick)
    assert set(quick["fleets"]) == {"independent", REALISTIC}
    earlier = {"tasks", "strategies", "best_single_accuracy", "early_stop_sweep", "early_stop_call_saving",
               "weighted_logodds_accuracy", "models", "repeats", "cluster_ms"}
    for fleet in quick["fleets"].values():
        assert earlier <= set(fleet)
        assert {"majority", "weighted", "early_stop"} <= set(fleet["strategies"])
    # readers of the one-fleet result still find the independent fleet's numbers at the top
    assert quick["strategies"] == quick["fleets"]["independent"]["strategies"]
    assert len(quick["fleets"][REALISTIC]["models"]) == 8


def test_the_frontier_on_the_preset(quick: dict) -> None:
    rows = {row["policy"]: row for row in quick["frontier"]}
    assert FRONTIER <= set(rows)
    for row in rows.values():
        assert {"policy", "quality", "cost_per_task_usd", "calls_per_task"} <= set(row)
        assert 0 < row["quality"] <= 1 and row["cost_per_task_usd"] > 0
    assert rows["majority_of_3"]["calls_per_task"] == 3.0
    cascade = rows["cascade_confidence"]
    assert 1.0 < cascade["calls_per_task"] < 3.0  # it escalates some tasks, not all
    assert cascade["calls_per_task"] == pytest.approx(1 + 2 * cascade["escalated_share"], abs=1e-3)
    # on correlated models a vote of the top three buys little over its best member
    assert rows["majority_of_3"]["quality"] - rows["best_single"]["quality"] < 0.03
    assert "frontier on helm-mmlu" in consensus.render(quick)


def test_replay_records_the_preset_models_answers(tmp_path) -> None:
    path = tmp_path / "helm.jsonl"
    assert replay.generate(path, tasks=400, fleet=realistic_fleet()) == 1600
    replay_set = offline.ReplaySet.from_recording(read_recording(path))
    majority = replay_set.run("majority")
    assert 0.78 < majority.accuracy < 0.95  # four models of 0.76-0.87, erring alike
    assert majority.to_dict()["cost_usd"] > 0
