"""Selection policies on fixed stats: the expected model wins, weights move the choice
the expected way, propensities are a distribution, manual override wins."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from swarmstream.agents.selection.policies import (
    DEFAULT_POLICY,
    POLICIES,
    UNTRIED_BONUS,
    AlwaysBestPolicy,
    Candidate,
    CheapestAboveFloorPolicy,
    RandomPolicy,
    Selection,
    SelectionError,
    ThompsonPolicy,
    UcbPolicy,
    WeightedPolicy,
    get_policy,
    normalised_costs,
    normalised_latencies,
    register_policy,
    select,
)
from swarmstream.agents.selection.posterior import BetaPosterior


def post(mean: float, n: float = 100.0) -> BetaPosterior:
    """A posterior with the given mean and n observations' worth of evidence."""
    return BetaPosterior(alpha=1 + mean * n, beta=1 + (1 - mean) * n)


# A fixed fleet: cheap-and-weak, mid-and-good, dear-and-best (and slow).
CHEAP = Candidate("cheap", post(0.70), latency_ms=100.0, cost_micros_est=10, calls=100)
MID = Candidate("mid", post(0.88), latency_ms=300.0, cost_micros_est=50, calls=100)
DEAR = Candidate("dear", post(0.93), latency_ms=900.0, cost_micros_est=300, calls=100)
FLEET = [CHEAP, MID, DEAR]

BUILT_IN = ("always_best", "cheapest_above_floor", "random", "thompson", "ucb", "weighted")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_distribution(selection: Selection, candidates: list[Candidate]) -> None:
    assert set(selection.propensities) == {c.model_id for c in candidates}
    assert sum(selection.propensities.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in selection.propensities.values())
    assert selection.propensities[selection.model_id] > 0
    json.dumps(selection.to_dict())  # logged as JSON: no inf, no numpy types


# --- registry -------------------------------------------------------------------------------


def test_registry_has_every_policy() -> None:
    assert set(BUILT_IN) <= set(POLICIES)
    assert DEFAULT_POLICY in POLICIES
    for name, policy in POLICIES.items():
        assert policy.name == name


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(SelectionError, match="unknown selection policy 'best'.*known: .*thompson"):
        get_policy("best")


def test_register_a_policy() -> None:
    class FirstPolicy:
        name = "first_for_test"

        def choose(self, candidates, rng, *, cost_weight_multiplier=1.0):  # noqa: ANN001
            propensities = {c.model_id: float(i == 0) for i, c in enumerate(candidates)}
            return Selection(candidates[0].model_id, {}, propensities, self.name, "first")

    register_policy(FirstPolicy())
    try:
        assert select(FLEET, rng=rng(), policy="first_for_test").model_id == "cheap"
    finally:
        POLICIES.pop("first_for_test")


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_policy_returns_a_distribution(name: str) -> None:
    selection = get_policy(name).choose(FLEET, rng())
    assert selection.policy == name
    assert selection.model_id in {c.model_id for c in FLEET}
    assert set(selection.scores) == {c.model_id for c in FLEET}
    assert selection.reason
    assert_distribution(selection, FLEET)


@pytest.mark.parametrize("name", BUILT_IN)
def test_single_candidate_and_empty(name: str) -> None:
    only = get_policy(name).choose([MID], rng())
    assert only.model_id == "mid"
    assert only.propensities == {"mid": 1.0}
    with pytest.raises(SelectionError, match="no candidate"):
        get_policy(name).choose([], rng())


def test_duplicate_candidates_are_refused() -> None:
    with pytest.raises(SelectionError, match="duplicate"):
        WeightedPolicy().choose([MID, MID], rng())


# --- normalisation --------------------------------------------------------------------------


def test_normalised_by_the_largest() -> None:
    assert normalised_costs(FLEET) == pytest.approx([10 / 300, 50 / 300, 1.0])
    assert normalised_latencies(FLEET) == pytest.approx([100 / 900, 300 / 900, 1.0])
    free = [Candidate("a", post(0.5), None, 0), Candidate("b", post(0.5), None, 0)]
    assert normalised_costs(free) == [0.0, 0.0]
    assert normalised_latencies(free) == [0.0, 0.0]


def test_unknown_latency_gets_the_mean_of_the_known() -> None:
    new = Candidate("new", post(0.5), None, 10)
    assert normalised_latencies([CHEAP, DEAR, new])[2] == pytest.approx((100 / 900 + 1.0) / 2)


# --- weighted -------------------------------------------------------------------------------


def test_weighted_defaults_pick_the_good_mid_model() -> None:
    selection = WeightedPolicy().choose(FLEET, rng())
    assert selection.model_id == "mid"
    assert selection.propensities == {"cheap": 0.0, "mid": 1.0, "dear": 0.0}


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"quality_weight": 1.0, "cost_weight": 0.0, "latency_weight": 0.0}, "dear"),  # quality only
        ({"quality_weight": 1.0, "cost_weight": 0.2, "latency_weight": 0.05}, "mid"),
        ({"quality_weight": 1.0, "cost_weight": 2.0, "latency_weight": 0.0}, "cheap"),  # cost dominates
        ({"quality_weight": 0.0, "cost_weight": 0.0, "latency_weight": 1.0}, "cheap"),  # fastest
        ({"quality_weight": 1.0, "cost_weight": 0.0, "latency_weight": 0.5}, "mid"),  # dear is too slow
    ],
)
def test_weights_move_the_choice(weights: dict[str, float], expected: str) -> None:
    assert WeightedPolicy(**weights).choose(FLEET, rng()).model_id == expected


def test_raising_the_cost_weight_never_picks_a_dearer_model() -> None:
    previous_cost = math.inf
    for cost_weight in np.linspace(0, 2, 41):
        chosen = WeightedPolicy(cost_weight=float(cost_weight), latency_weight=0).choose(FLEET, rng())
        cost = next(c.cost_micros_est for c in FLEET if c.model_id == chosen.model_id)
        assert cost <= previous_cost
        previous_cost = cost


def test_budget_multiplier_moves_weighted_to_cheaper() -> None:
    assert WeightedPolicy().choose(FLEET, rng(), cost_weight_multiplier=1.0).model_id == "mid"
    assert WeightedPolicy().choose(FLEET, rng(), cost_weight_multiplier=10.0).model_id == "cheap"


def test_weighted_tie_goes_to_the_cheaper_model() -> None:
    a = Candidate("a", post(0.8), None, 0)
    b = Candidate("b", post(0.8), None, 0)
    assert WeightedPolicy().choose([b, a], rng()).model_id == "a"  # equal cost: lower id


# --- cheapest above floor -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("floor", "expected"),
    [
        (0.0, "cheap"),
        (0.69, "cheap"),
        (0.75, "mid"),
        (0.9, "dear"),
        (0.99, "dear"),  # nobody reaches it: best quality
    ],
)
def test_cheapest_above_floor(floor: float, expected: str) -> None:
    selection = CheapestAboveFloorPolicy(floor=floor).choose(FLEET, rng())
    assert selection.model_id == expected
    assert selection.propensities[expected] == 1.0


def test_cheapest_above_floor_fallback_says_so() -> None:
    selection = CheapestAboveFloorPolicy(floor=0.99).choose(FLEET, rng())
    assert "no model reaches" in selection.reason


# --- thompson -------------------------------------------------------------------------------


def test_thompson_exploits_a_clear_winner() -> None:
    # same price and latency, one clearly better with lots of evidence
    good = Candidate("good", post(0.9, 500), 100.0, 10, 500)
    bad = Candidate("bad", post(0.5, 500), 100.0, 10, 500)
    picks = Counter(ThompsonPolicy().choose([good, bad], rng(s)).model_id for s in range(200))
    assert picks["good"] == 200
    assert ThompsonPolicy().choose([good, bad], rng()).propensities["good"] == pytest.approx(1.0)


def test_thompson_explores_a_new_model() -> None:
    known = Candidate("known", post(0.7, 200), 100.0, 10, 200)
    new = Candidate("new", BetaPosterior(), None, 10, 0)
    selection = ThompsonPolicy().choose([known, new], rng())
    # Beta(1, 1) beats a 0.7 with probability ~0.3: the new model gets real traffic
    assert 0.2 < selection.propensities["new"] < 0.4
    picks = Counter(ThompsonPolicy().choose([known, new], rng(s)).model_id for s in range(400))
    assert 0.2 < picks["new"] / 400 < 0.4


def test_thompson_propensities_estimate_the_pick_rate() -> None:
    a = Candidate("a", post(0.80, 30), 100.0, 10, 30)
    b = Candidate("b", post(0.75, 30), 100.0, 10, 30)
    estimated = ThompsonPolicy(propensity_draws=20_000).choose([a, b], rng(1)).propensities["a"]
    picks = Counter(ThompsonPolicy().choose([a, b], rng(s)).model_id for s in range(2_000))
    assert picks["a"] / 2_000 == pytest.approx(estimated, abs=0.04)
    assert ThompsonPolicy().choose([a, b], rng(2)).propensities["a"] == pytest.approx(estimated, abs=0.1)


def test_thompson_cost_penalty_prefers_the_cheaper_of_near_equals() -> None:
    cheap = Candidate("cheap", post(0.90, 300), 100.0, 10, 300)
    dear = Candidate("dear", post(0.92, 300), 100.0, 300, 300)
    assert ThompsonPolicy(cost_weight=0.0).choose([cheap, dear], rng()).propensities["dear"] > 0.6
    assert ThompsonPolicy(cost_weight=0.15).choose([cheap, dear], rng()).propensities["dear"] < 0.01


def test_thompson_latency_penalty_prefers_the_faster() -> None:
    fast = Candidate("fast", post(0.90, 300), 100.0, 10, 300)
    slow = Candidate("slow", post(0.91, 300), 5_000.0, 10, 300)
    assert ThompsonPolicy(latency_weight=0.0).choose([fast, slow], rng()).propensities["slow"] > 0.5
    assert ThompsonPolicy(latency_weight=0.2).choose([fast, slow], rng()).propensities["slow"] < 0.01


def test_thompson_is_reproducible_from_its_seed() -> None:
    assert ThompsonPolicy().choose(FLEET, rng(7)) == ThompsonPolicy().choose(FLEET, rng(7))


# --- ucb ------------------------------------------------------------------------------------


def test_ucb_tries_untried_models_first_cheapest_first() -> None:
    untried_dear = Candidate("u-dear", BetaPosterior(), None, 300, 0)
    untried_cheap = Candidate("u-cheap", BetaPosterior(), None, 20, 0)
    selection = UcbPolicy().choose([MID, untried_dear, untried_cheap], rng())
    assert selection.model_id == "u-cheap"
    assert selection.scores["u-cheap"] > UNTRIED_BONUS / 2
    assert "not yet tried" in selection.reason


def test_ucb_prefers_the_less_tried_of_equals() -> None:
    a = Candidate("a", post(0.8, 10), 100.0, 10, 10)
    b = Candidate("b", post(0.8, 1000), 100.0, 10, 1000)
    assert UcbPolicy().choose([a, b], rng()).model_id == "a"


def test_ucb_exploits_with_enough_evidence() -> None:
    a = Candidate("a", post(0.9, 5000), 100.0, 10, 5000)
    b = Candidate("b", post(0.5, 5000), 100.0, 10, 5000)
    assert UcbPolicy().choose([a, b], rng()).model_id == "a"


# --- random and always_best -----------------------------------------------------------------


def test_random_is_uniform() -> None:
    picks = Counter(RandomPolicy().choose(FLEET, rng(s)).model_id for s in range(3_000))
    for c in FLEET:
        assert picks[c.model_id] / 3_000 == pytest.approx(1 / 3, abs=0.04)
    propensities = RandomPolicy().choose(FLEET, rng()).propensities
    assert propensities == pytest.approx({"cheap": 1 / 3, "mid": 1 / 3, "dear": 1 / 3})


def test_always_best_uses_the_known_truth_then_the_posterior() -> None:
    assert AlwaysBestPolicy().choose(FLEET, rng()).model_id == "dear"  # greedy on means
    truth = {"cheap": 0.99, "mid": 0.5, "dear": 0.5}
    assert AlwaysBestPolicy(true_quality=truth).choose(FLEET, rng()).model_id == "cheap"


# --- select and manual override -------------------------------------------------------------


def test_select_uses_the_named_policy() -> None:
    assert select(FLEET, rng=rng(), policy="weighted").model_id == "mid"
    assert select(FLEET, rng=rng(), policy=CheapestAboveFloorPolicy(floor=0.9)).model_id == "dear"


def test_manual_override_wins_with_propensity_one() -> None:
    selection = select(FLEET, rng=rng(), policy="weighted", task_model="cheap")
    assert selection.model_id == "cheap"
    assert selection.policy == "override"
    assert selection.propensities == {"cheap": 1.0, "mid": 0.0, "dear": 0.0}
    assert "override" in selection.reason


def test_manual_override_of_a_model_outside_the_candidates() -> None:
    selection = select(FLEET, rng=rng(), task_model="gpt-special")
    assert selection.model_id == "gpt-special"
    assert selection.propensities["gpt-special"] == 1.0
    assert sum(selection.propensities.values()) == 1.0
