"""A user's aggregation strategy, registered by dotted path (tests/e2e/test_consensus.py)."""

from __future__ import annotations

from collections.abc import Sequence

from swarmstream.agents.consensus.votes import Decision, Vote


def longest_answer(votes: Sequence[Vote]) -> Decision:
    """The longest answer wins, whatever the others say."""
    best = max(votes, key=lambda v: (len(v.answer), v.answer))
    return Decision(answer=best.answer, agreement=1.0, confidence=1.0, tie=False, strategy="longest",
                    support=(best.model_id,), reason="the longest answer")
