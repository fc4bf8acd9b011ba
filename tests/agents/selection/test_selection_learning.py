"""Free quality labels: consensus agreement and feedback scores."""

from __future__ import annotations

import pytest
from swarmstream.agents.selection.learning import (
    reward_from_consensus,
    reward_from_feedback,
)


@pytest.mark.parametrize(
    ("model", "consensus", "confidence", "threshold", "reward"),
    [
        (None, "paris", 0.99, 0.8, None),  # the model failed: no quality label
        ("paris", None, 0.99, 0.8, None),  # no consensus
        ("paris", "paris", 0.79, 0.8, None),  # unsure consensus: no label
        ("paris", "paris", 0.8, 0.8, 1.0),  # at the threshold counts
        ("paris", "paris", 0.95, 0.8, 1.0),
        ("lyon", "paris", 0.95, 0.8, 0.0),
        ("Paris.", "paris", 0.95, 0.8, 1.0),  # case and final stop absorbed
        ("new  york", "new york", 0.9, 0.8, 1.0),
        ("lyon", "paris", 0.5, 0.4, 0.0),  # a caller's lower threshold
        ("lyon", "paris", float("nan"), 0.8, None),
    ],
)
def test_reward_from_consensus(
    model: str | None, consensus: str | None, confidence: float, threshold: float, reward: float | None
) -> None:
    assert reward_from_consensus(model, consensus, confidence, threshold) == reward


def test_consensus_threshold_range() -> None:
    with pytest.raises(ValueError):
        reward_from_consensus("a", "a", 0.9, threshold=1.5)


@pytest.mark.parametrize(
    ("score", "low", "high", "reward"),
    [
        (0.0, 0.0, 1.0, 0.0),
        (1.0, 0.0, 1.0, 1.0),
        (0.25, 0.0, 1.0, 0.25),
        (1, 1, 5, 0.0),  # stars
        (5, 1, 5, 1.0),
        (4, 1, 5, 0.75),
    ],
)
def test_reward_from_feedback(score: float, low: float, high: float, reward: float) -> None:
    assert reward_from_feedback(score, low=low, high=high) == pytest.approx(reward)


@pytest.mark.parametrize("score", [-0.1, 1.5, float("nan")])
def test_feedback_out_of_scale_is_refused(score: float) -> None:
    with pytest.raises(ValueError, match="outside its scale"):
        reward_from_feedback(score)


def test_feedback_scale_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        reward_from_feedback(1, low=5, high=1)
