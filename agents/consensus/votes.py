"""The values that consensus works on: one ``Vote`` per model answer in, one ``Decision`` out.

Every strategy in ``strategies.py`` is a pure function ``Sequence[Vote] -> Decision``,
so the same votes always give the same decision: the consensus agent, replay and the
tests all call the same code.

Answers arrive already normalised by the provider layer (labels lowercase, numbers
canonical numeric strings, JSON canonical text with sorted keys, text stripped);
``normalise_answer`` only applies what is safe for every answer type (Unicode NFC and
outer whitespace) so that two providers that encode the same text differently count
as one answer.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Vote:
    """One model's answer to one task.

    ``weight`` is the model's measured reliability for the task's category (from the
    stats tables, 0..1; 1.0 when nothing is known yet); ``confidence`` is the answer's
    own confidence from token logprobs, when the provider returns them.
    """

    model_id: str
    answer: str
    weight: float = 1.0
    confidence: float | None = None
    latency_ms: int = 0


@dataclass(frozen=True)
class Decision:
    """The outcome of one aggregation, with enough detail to reproduce and audit it.

    ``agreement`` is the share of weight behind ``answer`` (0..1, see each strategy for
    what "behind" means); ``confidence`` is ``confidence.confidence(...)`` of it;
    ``support`` names the models that back the answer; ``interval`` is the (min, max)
    of the values kept by a numeric strategy; ``clusters`` is how many groups a
    clustering strategy found; ``reason`` says in words how the answer was reached
    (ties broken, outliers rejected, answers dropped).
    """

    answer: str | None
    agreement: float
    confidence: float
    tie: bool
    strategy: str
    support: tuple[str, ...]
    interval: tuple[float, float] | None = None
    clusters: int | None = None
    reason: str = ""

    @classmethod
    def empty(cls, strategy: str, reason: str = "no answers to aggregate") -> Decision:
        """No usable answer: every model failed, or every answer was unusable."""
        return cls(
            answer=None,
            agreement=0.0,
            confidence=0.0,
            tie=False,
            strategy=strategy,
            support=(),
            reason=reason,
        )


def normalise_answer(answer: str) -> str:
    """NFC and outer whitespace only.

    No case folding: labels are already lowercase, and JSON string values and free
    text are case-sensitive.
    """
    return unicodedata.normalize("NFC", answer).strip()


def clean_weight(weight: float) -> float:
    """A usable vote weight: NaN, infinite or negative weights count as 0."""
    if not math.isfinite(weight) or weight < 0.0:
        return 0.0
    return float(weight)


def clean_confidence(confidence: float | None) -> float | None:
    """An answer confidence in [0, 1], or None when it is missing or not a number."""
    if confidence is None or not math.isfinite(confidence):
        return None
    return min(1.0, max(0.0, float(confidence)))


def usable_votes(votes: Sequence[Vote]) -> tuple[list[Vote], int]:
    """Votes with a non-empty answer, normalised; and how many were dropped as empty.

    An empty answer is a failed answer: it backs nothing and is not counted as a voice.
    """
    kept: list[Vote] = []
    dropped = 0
    for vote in votes:
        answer = normalise_answer(vote.answer)
        if not answer:
            dropped += 1
            continue
        kept.append(
            Vote(
                model_id=vote.model_id,
                answer=answer,
                weight=clean_weight(vote.weight),
                confidence=clean_confidence(vote.confidence),
                latency_ms=vote.latency_ms,
            )
        )
    return kept, dropped
