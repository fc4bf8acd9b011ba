"""How sure a consensus decision is: one number in [0, 1], the same formula for every strategy.

Three pieces of evidence, each in [0, 1]:

* ``A`` agreement: the share of weight behind the answer, measured on *this* task;
* ``R`` the mean measured reliability (stats-table weight) of the models that back it;
* ``Q`` the mean answer confidence (from logprobs) of those models, where given.

They are combined by a weighted geometric mean::

    confidence = A ** 0.5 * R ** 0.25 * Q ** 0.25

and when a piece is missing (no reliabilities, or no model reported a confidence) its
exponent is dropped and the remaining exponents are rescaled to sum to 1 (so with ``Q``
missing: ``A ** (2/3) * R ** (1/3)``).

Why geometric: any one weak piece should pull the result down. Five unreliable models
that agree, or reliable models that split 50/50, must not look confident, which an
arithmetic mean allows (a perfect term would hide a bad one). A zero in any present
piece gives zero.

Why agreement weighs most: it is the only piece measured on this very task.
Reliability is a prior over the category, and LLM logprob confidences are known to be
over-confident (poorly calibrated), so each of those gets a quarter.

Example: 4 of 5 models agree (A=0.8), their reliability is 0.9 and they report 0.7:
0.8**0.5 * 0.9**0.25 * 0.7**0.25 = 0.894 * 0.974 * 0.915 = 0.797.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

AGREEMENT_EXPONENT = 0.5
RELIABILITY_EXPONENT = 0.25
ANSWER_CONFIDENCE_EXPONENT = 0.25


def _clamp01(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, value))


def confidence(
    agreement: float,
    reliabilities: Sequence[float],
    answer_confidences: Sequence[float | None],
) -> float:
    """Blend agreement, supporters' mean reliability and mean answer confidence (module docstring).

    Inputs outside [0, 1] are clamped, NaN counts as 0 for reliabilities and as missing
    for answer confidences. The result is always in [0, 1].
    """
    terms: list[tuple[float, float]] = [(_clamp01(agreement), AGREEMENT_EXPONENT)]
    if reliabilities:
        mean_reliability = sum(_clamp01(r) for r in reliabilities) / len(reliabilities)
        terms.append((mean_reliability, RELIABILITY_EXPONENT))
    given = [_clamp01(c) for c in answer_confidences if c is not None and math.isfinite(c)]
    if given:
        terms.append((sum(given) / len(given), ANSWER_CONFIDENCE_EXPONENT))

    exponent_total = sum(exponent for _, exponent in terms)
    result = 1.0
    for value, exponent in terms:
        if value <= 0.0:
            return 0.0
        result *= value ** (exponent / exponent_total)
    return _clamp01(result)
