"""Quality labels for the posteriors, mostly free: consensus agreement and feedback.

A model's answer that agrees with a *high-confidence* consensus of other models
is counted right (reward 1), one that disagrees is counted wrong (0); when the
consensus itself is unsure the answer teaches nothing (None), because a coin-flip
majority would train the posterior on noise. Explicit feedback (``swarm.feedback``:
task_id, score, source) maps a score onto the same [0, 1] reward.

Caveat on self-agreement: when the model being scored voted in the consensus, its
own vote pulls the consensus toward it. With three or more voters and a high
threshold the bias is small; a caller that can recompute the consensus without
that model's vote (leave-one-out) should pass that instead.
"""

from __future__ import annotations

import math

DEFAULT_CONSENSUS_THRESHOLD = 0.8
"""Consensus confidence needed before agreement counts as a label. At 0.8 with
models of ~70% accuracy, a wrong consensus is rare enough (a few %) that the
labels are mostly right; lower it and quality estimates shrink toward 0.5."""


def _canonical(answer: str) -> str:
    # Answers from the consensus step are already normalised per answer type
    # (taskset.normalise_answer); this only absorbs case and spacing slips.
    return " ".join(answer.casefold().split()).rstrip(".!")


def reward_from_consensus(
    model_answer: str | None,
    consensus_answer: str | None,
    consensus_confidence: float,
    threshold: float = DEFAULT_CONSENSUS_THRESHOLD,
) -> float | None:
    """1.0 if the model agreed with a consensus of confidence >= ``threshold``, 0.0 if it
    disagreed, None (no label) when the consensus is below the threshold or absent.

    A model that gave no answer (a failure) gets None here: failures are the fallback
    stats' business, not evidence about answer quality."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    if consensus_answer is None or model_answer is None or math.isnan(consensus_confidence):
        return None
    if consensus_confidence < threshold:
        return None
    return 1.0 if _canonical(model_answer) == _canonical(consensus_answer) else 0.0


def reward_from_feedback(score: float, *, low: float = 0.0, high: float = 1.0) -> float:
    """A feedback score on the scale [low, high] (default [0, 1]; e.g. low=1, high=5 for
    stars) as a reward in [0, 1]. Out-of-range or NaN scores are rejected, not clipped:
    a 7 on a 1-5 scale means the producer uses another scale, and guessing would skew
    the posterior."""
    if not high > low:
        raise ValueError(f"feedback scale needs high > low, got [{low}, {high}]")
    if math.isnan(score) or not low <= score <= high:
        raise ValueError(f"feedback score {score!r} is outside its scale [{low}, {high}]")
    return (score - low) / (high - low)
