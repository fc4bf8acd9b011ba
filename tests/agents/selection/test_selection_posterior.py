"""Beta posterior: conjugate update, discounting toward the prior, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from swarmstream.agents.selection.posterior import BetaPosterior, decay, update


def test_prior_is_uniform() -> None:
    post = BetaPosterior()
    assert (post.alpha, post.beta) == (1.0, 1.0)
    assert post.mean == 0.5
    assert post.variance == pytest.approx(1 / 12)
    assert post.evidence == 0


@pytest.mark.parametrize(
    ("rewards", "alpha", "beta"),
    [
        ([], 1.0, 1.0),
        ([1.0], 2.0, 1.0),
        ([0.0], 1.0, 2.0),
        ([1.0, 1.0, 0.0], 3.0, 2.0),
        ([0.5], 1.5, 1.5),  # fractional reward splits
    ],
)
def test_undiscounted_update_is_conjugate(rewards: list[float], alpha: float, beta: float) -> None:
    post = BetaPosterior()
    for r in rewards:
        post = update(post, r)
    assert (post.alpha, post.beta) == pytest.approx((alpha, beta))


def test_discount_decays_toward_the_prior_before_adding() -> None:
    post = BetaPosterior(alpha=11.0, beta=3.0)
    got = update(post, 1.0, discount=0.5)
    # prior 1 + 0.5 * (11 - 1) + 1 = 7;  1 + 0.5 * (3 - 1) + 0 = 2
    assert (got.alpha, got.beta) == pytest.approx((7.0, 2.0))


def test_discounted_evidence_is_bounded_by_one_over_one_minus_gamma() -> None:
    post = BetaPosterior()
    for _ in range(2_000):
        post = update(post, 1.0, discount=0.99)
    assert post.evidence == pytest.approx(100.0, rel=1e-3)
    undiscounted = BetaPosterior()
    for _ in range(2_000):
        undiscounted = update(undiscounted, 1.0)
    assert undiscounted.evidence == 2_000


def test_discounting_follows_a_quality_drop() -> None:
    """After 500 successes, 60 failures move a discounted mean far; a plain one barely."""
    plain = discounted = BetaPosterior()
    for _ in range(500):
        plain, discounted = update(plain, 1.0), update(discounted, 1.0, discount=0.97)
    for _ in range(60):
        plain, discounted = update(plain, 0.0), update(discounted, 0.0, discount=0.97)
    assert plain.mean > 0.85
    assert discounted.mean < 0.25


def test_decay() -> None:
    post = BetaPosterior(alpha=5.0, beta=9.0)
    assert decay(post, 1.0) == post
    assert (decay(post, 0.0).alpha, decay(post, 0.0).beta) == (1.0, 1.0)
    with pytest.raises(ValueError):
        decay(post, 1.5)


@pytest.mark.parametrize("reward", [-0.1, 1.1, float("nan")])
def test_reward_out_of_range(reward: float) -> None:
    with pytest.raises(ValueError, match="reward"):
        update(BetaPosterior(), reward)


@pytest.mark.parametrize("discount", [0.0, -1.0, 1.01])
def test_discount_out_of_range(discount: float) -> None:
    with pytest.raises(ValueError, match="discount"):
        update(BetaPosterior(), 1.0, discount=discount)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_parameters_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        BetaPosterior(alpha=bad)


def test_json_round_trip_and_missing_is_prior() -> None:
    post = BetaPosterior(alpha=3.5, beta=2.25, prior_alpha=2.0, prior_beta=2.0)
    assert BetaPosterior.from_dict(json.loads(json.dumps(post.to_dict()))) == post
    assert BetaPosterior.from_dict(None) == BetaPosterior()
    assert BetaPosterior.from_dict({"alpha": 2, "beta": 3}) == BetaPosterior(2.0, 3.0)


def test_sample_matches_mean() -> None:
    post = BetaPosterior(alpha=30.0, beta=10.0)
    rng = np.random.default_rng(0)
    draws = [post.sample(rng) for _ in range(4_000)]
    assert np.mean(draws) == pytest.approx(post.mean, abs=0.01)
    assert np.var(draws) == pytest.approx(post.variance, rel=0.1)
