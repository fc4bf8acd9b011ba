"""A model's quality on one category as a Beta posterior, with discounting for drift.

Quality is the probability that a model's answer is right (agrees with a
high-confidence consensus, or is rated good by feedback; see learning.py).
With a Beta(alpha, beta) prior and rewards r in [0, 1], the conjugate update
is ``alpha += r, beta += 1 - r`` (fractional rewards are the usual
"Bernoulli-ised" extension: the mean stays unbiased).

**Discounting** (discounted Thompson sampling, Raj & Kalyani 2017,
"Taming non-stationary bandits: a Bayesian approach", arXiv:1707.09727):
before adding a reward, the evidence decays toward the prior by a factor
gamma in (0, 1]::

    alpha <- prior_alpha + gamma * (alpha - prior_alpha) + r
    beta  <- prior_beta  + gamma * (beta  - prior_beta)  + (1 - r)

so an observation k updates old weighs gamma**k, the posterior never holds more
than ``1 / (1 - gamma)`` observations' worth of evidence (100 at gamma=0.99),
and when a model's quality changes the mean follows it within a few times that
many calls instead of being pinned by months of history. gamma=1 is the plain
stationary update. The paper decays every arm at every step; here each
(model, category) key decays when it is updated (each stats key has one writer
and is touched only by its own outcomes), and :func:`decay` lets a reader
apply extra forgetting to a key that has gone quiet (``gamma ** idle_steps``),
which widens it back toward the prior so Thompson sampling tries it again.

Stored as a plain dict (``to_dict`` / ``from_dict``) in the stats table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Protocol


class _BetaRng(Protocol):
    def beta(self, a: float, b: float) -> float: ...


UNIFORM_PRIOR = (1.0, 1.0)
"""Beta(1, 1): every quality equally likely. A new model starts here, so Thompson
sampling explores it (its samples spread over [0, 1]) until evidence arrives."""


@dataclass(frozen=True, slots=True)
class BetaPosterior:
    """Beta(alpha, beta) over a model's quality on one category, and the prior it decays to."""

    alpha: float = UNIFORM_PRIOR[0]
    beta: float = UNIFORM_PRIOR[1]
    prior_alpha: float = UNIFORM_PRIOR[0]
    prior_beta: float = UNIFORM_PRIOR[1]

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "prior_alpha", "prior_beta"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"BetaPosterior.{name} must be a finite number > 0, got {value!r}")

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> float:
        total = self.alpha + self.beta
        return self.alpha * self.beta / (total * total * (total + 1.0))

    @property
    def evidence(self) -> float:
        """Observations' worth of evidence beyond the prior (discounted)."""
        return self.alpha + self.beta - self.prior_alpha - self.prior_beta

    def sample(self, rng: _BetaRng) -> float:
        """One draw of the quality (``rng``: numpy Generator, or anything with ``beta(a, b)``)."""
        return float(rng.beta(self.alpha, self.beta))

    def to_dict(self) -> dict[str, float]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "prior_alpha": self.prior_alpha,
            "prior_beta": self.prior_beta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BetaPosterior:
        """Inverse of ``to_dict``; None (no stats yet) is the uniform prior."""
        if not data:
            return cls()
        return cls(
            alpha=float(data["alpha"]),
            beta=float(data["beta"]),
            prior_alpha=float(data.get("prior_alpha", UNIFORM_PRIOR[0])),
            prior_beta=float(data.get("prior_beta", UNIFORM_PRIOR[1])),
        )


def decay(post: BetaPosterior, factor: float) -> BetaPosterior:
    """Move the evidence toward the prior by ``factor`` in [0, 1] (1: unchanged, 0: prior)."""
    if not 0.0 <= factor <= 1.0:
        raise ValueError(f"decay factor must lie in [0, 1], got {factor!r}")
    return replace(
        post,
        alpha=post.prior_alpha + factor * (post.alpha - post.prior_alpha),
        beta=post.prior_beta + factor * (post.beta - post.prior_beta),
    )


def update(post: BetaPosterior, reward: float, *, discount: float = 1.0) -> BetaPosterior:
    """Decay by ``discount`` (gamma in (0, 1]), then add ``reward`` in [0, 1] (1 = right)."""
    if not 0.0 <= reward <= 1.0 or math.isnan(reward):
        raise ValueError(f"reward must lie in [0, 1], got {reward!r}")
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"discount must lie in (0, 1], got {discount!r}")
    decayed = decay(post, discount) if discount < 1.0 else post
    return replace(decayed, alpha=decayed.alpha + reward, beta=decayed.beta + (1.0 - reward))
