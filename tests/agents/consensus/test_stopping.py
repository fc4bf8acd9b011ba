"""Early stopping for sequential consensus (Adaptive-Consistency)."""

from __future__ import annotations

import numpy as np
import pytest
from swarmstream.agents.consensus.stopping import (
    initial_batch,
    p_leader_ahead,
    should_stop,
)


@pytest.mark.parametrize(
    "counts, asked, max_models, stop, reason_has, p_majority",
    [
        # edge cases first: nothing yet
        ({}, 0, 5, False, "not settled", 0.5),
        ({}, 3, 3, True, "all 3 models asked", 0.5),  # every model failed
        ({"a": 0}, 1, 3, False, "not settled", 0.5),
        # rule (a): the rest cannot overturn the leader
        ({"a": 2}, 2, 3, True, "cannot be overturned", 7 / 8),
        ({"a": 3}, 3, 5, True, "cannot be overturned", 15 / 16),
        ({"a": 2, "b": 1}, 3, 3, True, "cannot be overturned", 11 / 16),
        ({"a": 2, "b": 1}, 3, 4, False, "not settled", 11 / 16),  # 2 > 1 + 1 fails
        ({"a": 1}, 3, 3, True, "cannot be overturned", 3 / 4),  # two models failed
        # not settled yet
        ({"a": 1, "b": 1}, 2, 3, False, "not settled", 0.5),
        ({"a": 2}, 2, 5, False, "not settled", 7 / 8),
        ({"a": 3}, 3, 40, False, "not settled", 15 / 16),
        # rule (b): the Beta posterior
        ({"a": 4}, 4, 40, True, "Beta rule", 31 / 32),
        ({"a": 7, "b": 1}, 8, 40, True, "Beta rule", 502 / 512),
        ({"a": 7, "b": 2, "c": 2}, 11, 40, False, "not settled", 0.9453125),
        # a tie at the end stops because nothing is left to ask
        ({"a": 2, "b": 2}, 4, 4, True, "all 4 models asked", 0.5),
        # asked more than allowed (a retry) counts as nothing remaining
        ({"a": 1, "b": 1}, 5, 4, True, "all 4 models asked", 0.5),
    ],
)
def test_should_stop(counts, asked, max_models, stop, reason_has, p_majority):
    decision = should_stop(counts, asked=asked, max_models=max_models)
    assert decision.stop is stop
    assert reason_has in decision.reason
    assert decision.p_majority == pytest.approx(p_majority)


@pytest.mark.parametrize("threshold, stop", [(0.9, True), (0.95, False), (0.99, False)])
def test_should_stop_threshold(threshold, stop):
    assert should_stop({"a": 3}, asked=3, max_models=40, threshold=threshold).stop is stop


@pytest.mark.parametrize(
    "kwargs",
    [
        {"counts": {}, "asked": 0, "max_models": 0},
        {"counts": {}, "asked": -1, "max_models": 3},
        {"counts": {"a": -1}, "asked": 1, "max_models": 3},
        {"counts": {}, "asked": 0, "max_models": 3, "threshold": 0.0},
        {"counts": {}, "asked": 0, "max_models": 3, "threshold": 1.5},
    ],
)
def test_should_stop_rejects_impossible_inputs(kwargs):
    counts = kwargs.pop("counts")
    with pytest.raises(ValueError):
        should_stop(counts, **kwargs)


@pytest.mark.parametrize("leader, runner_up", [(0, 0), (1, 0), (3, 1), (4, 0), (5, 5), (9, 3), (20, 15), (2, 6)])
def test_p_leader_ahead_matches_numeric_integration_of_the_beta_posterior(leader, runner_up):
    x = np.linspace(0.0, 1.0, 200_001)
    density = x**leader * (1.0 - x) ** runner_up  # Beta(leader + 1, runner_up + 1), unnormalised
    upper = density[x > 0.5].sum() + 0.5 * density[x == 0.5].sum()
    assert p_leader_ahead(leader, runner_up) == pytest.approx(upper / density.sum(), abs=1e-4)


def test_p_leader_ahead_rejects_negative_counts():
    with pytest.raises(ValueError):
        p_leader_ahead(-1, 0)


@pytest.mark.parametrize("max_models, batch", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 3), (10, 3), (40, 3)])
def test_initial_batch(max_models, batch):
    assert initial_batch(max_models) == batch


@pytest.mark.parametrize("max_models", [1, 3, 4, 5])
def test_a_unanimous_initial_batch_ends_small_ensembles(max_models):
    batch = initial_batch(max_models)
    assert should_stop({"a": batch}, asked=batch, max_models=max_models).stop


def test_initial_batch_rejects_no_models():
    with pytest.raises(ValueError):
        initial_batch(0)
