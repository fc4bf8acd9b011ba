"""The routing benchmark's contract (quick run) and the simulator's per-category accuracy."""

from __future__ import annotations

import json

import pytest
from swarmstream.agents.models.catalog import SimProfile
from swarmstream.agents.models.simulated.behaviour import accuracy_for
from swarmstream.agents.models.simulated.taskset import demo_tasks, solve
from swarmstream.bench import BENCHMARKS, routing


def test_per_category_accuracy_overrides_the_overall() -> None:
    profile = SimProfile(accuracy=0.7, accuracy_by_category={"math": 0.95})
    assert accuracy_for(profile, "math") == 0.95
    assert accuracy_for(profile, "factual") == 0.7
    with pytest.raises(ValueError, match="between 0 and 1"):
        SimProfile(accuracy_by_category={"math": 1.5})


def test_truth_category_matches_the_task_set() -> None:
    for task in demo_tasks(40, kinds=("label", "number", "text", "json")):
        truth = solve(task.prompt)
        assert truth is not None and truth.category == task.category


def test_fleet_meets_the_brief() -> None:
    assert len(routing.FLEET) >= 4
    prices = [spec.input_usd_per_mtok for spec in routing.FLEET.values()]
    assert max(prices) / min(prices) >= 20


@pytest.fixture(scope="module")
def quick() -> dict:
    return routing.run(quick=True)


def test_registered() -> None:
    assert BENCHMARKS["routing"] == "swarmstream.bench.routing"


def test_quick_run_contract(quick: dict) -> None:
    json.dumps(quick)
    assert quick["tasks"] == routing.TASKS_QUICK
    for name in ("learning", "random", "always_best"):
        assert {"quality", "cost_usd"} <= set(quick["policies"][name])
    assert len(quick["curve"]) == routing.TASKS_QUICK // routing.WINDOW
    point = quick["curve"][0]
    assert {"quality", "cost_usd", "picks"} <= set(point)
    assert sum(point["picks"].values()) == pytest.approx(1.0)
    assert len(quick["drift_curve"]) == len(quick["curve"])
    assert {"quality_ratio", "cost_ratio"} <= set(quick)
    assert quick["classifier_accuracy"] == 1.0


def test_quick_run_meets_the_targets(quick: dict) -> None:
    assert quick["quality_ratio"] >= 0.95
    assert quick["cost_ratio"] <= 0.5
    assert quick["policies"]["learning"]["quality"] > quick["policies"]["random"]["quality"]
    assert quick["drift"]["tasks_to_move_away"] is not None
    after = [p["degraded_share"] for p in quick["drift_curve"] if p["after_drift"]]
    assert after[-1] < quick["drift"]["share_before"] / 2


def test_render(quick: dict) -> None:
    text = routing.render(quick)
    assert "learning curve" in text and "drift" in text and "always_best" in text


def test_quick_run_has_both_fleets(quick: dict) -> None:
    assert set(quick["fleets"]) == {"independent", "helm-mmlu"}
    for fleet in quick["fleets"].values():
        assert {"policies", "quality_ratio", "cost_ratio", "curve", "drift", "repeats"} <= set(fleet)
        assert set(fleet["policies"]) == {"learning", "ucb", "random", "always_best", "cheapest"}
    assert quick["policies"] == quick["fleets"]["independent"]["policies"]  # the earlier keys, at the top
    assert len(quick["fleets"]["helm-mmlu"]["fleet"]) == 8
    assert "helm-mmlu" in routing.render(quick)
