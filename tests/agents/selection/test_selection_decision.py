"""decide: budget filter, budget_exceeded, manual override, logged propensities."""

from __future__ import annotations

import json

import numpy as np
import pytest
from swarmstream.agents.selection.decision import decide
from swarmstream.agents.selection.policies import Candidate, SelectionError
from swarmstream.agents.selection.posterior import BetaPosterior


def post(mean: float, n: float = 100.0) -> BetaPosterior:
    return BetaPosterior(alpha=1 + mean * n, beta=1 + (1 - mean) * n)


CHEAP = Candidate("cheap", post(0.70), 100.0, 10, 100)
MID = Candidate("mid", post(0.88), 300.0, 50, 100)
DEAR = Candidate("dear", post(0.93), 900.0, 300, 100)
FLEET = [CHEAP, MID, DEAR]


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_unlimited_budget_is_just_the_policy() -> None:
    decision = decide(FLEET, rng=rng(), policy="weighted")
    assert decision.status == "selected"
    assert decision.model_id == "mid"
    assert decision.forecast_micros == 50
    assert decision.excluded == ()
    json.dumps(decision.to_dict())


def test_budget_excludes_what_does_not_fit_and_logs_it() -> None:
    decision = decide(FLEET, rng=rng(), policy="always_best", remaining_micros=100, limit_micros=1_000)
    assert decision.model_id == "mid"  # dear does not fit
    assert decision.excluded == ("dear",)
    assert decision.selection is not None
    assert decision.selection.propensities["dear"] == 0.0
    assert sum(decision.selection.propensities.values()) == pytest.approx(1.0)
    assert "over budget: dear" in decision.reason


def test_nothing_fits_is_budget_exceeded_with_the_forecast() -> None:
    decision = decide(FLEET, rng=rng(), remaining_micros=9, limit_micros=1_000)
    assert decision.status == "budget_exceeded"
    assert decision.selection is None and decision.model_id is None
    assert decision.forecast_micros == 10  # the cheapest forecast
    assert decision.remaining_micros == 9
    assert set(decision.excluded) == {"cheap", "mid", "dear"}
    assert decision.to_dict()["status"] == "budget_exceeded"


def test_low_budget_prefers_cheaper_models() -> None:
    full = decide(FLEET, rng=rng(), policy="weighted", remaining_micros=1_000_000, limit_micros=1_000_000)
    low = decide(FLEET, rng=rng(), policy="weighted", remaining_micros=301, limit_micros=1_000_000)
    costs = {c.model_id: c.cost_micros_est for c in FLEET}
    assert full.model_id == "mid"
    assert costs[low.model_id or ""] <= costs[full.model_id or ""]


def test_named_model_wins_if_it_fits() -> None:
    decision = decide(FLEET, rng=rng(), policy="weighted", task_model="dear", remaining_micros=1_000)
    assert decision.model_id == "dear"
    assert decision.selection is not None
    assert decision.selection.policy == "override"
    assert decision.selection.propensities["dear"] == 1.0
    assert decision.forecast_micros == 300


def test_named_model_over_budget_is_budget_exceeded() -> None:
    decision = decide(FLEET, rng=rng(), task_model="dear", remaining_micros=299)
    assert decision.status == "budget_exceeded"
    assert decision.forecast_micros == 300


def test_named_model_without_forecast_under_a_limit_is_an_error() -> None:
    with pytest.raises(SelectionError, match="cannot be forecast"):
        decide(FLEET, rng=rng(), task_model="unknown", remaining_micros=1_000)
    assert decide(FLEET, rng=rng(), task_model="unknown").model_id == "unknown"  # no limit: granted


def test_no_candidates() -> None:
    with pytest.raises(SelectionError):
        decide([], rng=rng())
