"""Retry policies per failure class, and the backoff arithmetic.

A policy says how often one link of a chain may be called for a given failure
class, and how long to wait before calling it again. Everything else (moving on
to the next link, the task's attempt budget, the deadline) is the planner's.

Defaults (``DEFAULT_POLICIES``)::

    class           calls of one link  delay before retry n (before jitter)   why
    timeout         2 (1 retry)        250 ms * 2^(n-1), at most 2 s          a slow spell passes; twice means move on
    rate_limited    3 (2 retries)      1 s * 2^(n-1), at most 10 s, and       the limit resets; Retry-After says when
                                       never before Retry-After
    server_error    3 (2 retries)      200 ms * 2^(n-1), at most 5 s          5xx are mostly transient (overload)
    network         3 (2 retries)      100 ms * 2^(n-1), at most 2 s          a reset connection is cheap to redo
    auth, bad_request, context_length, 1 (no retry)                           the same request gets the same answer
    content_policy, invalid_output

Backoff formula, for retry number ``n`` (1 for the first retry) and a uniform
random ``u`` in [0, 1)::

    raw      = min(max_delay_ms, base_delay_ms * multiplier ** (n - 1))
    jittered = raw * (1 - jitter) + raw * jitter * u        # in [raw * (1 - jitter), raw)
    delay_ms = max(round(jittered), retry_after_ms or 0)

``jitter = 0.5`` is "equal jitter" and ``jitter = 1`` "full jitter" from the AWS
Architecture Blog's "Exponential Backoff and Jitter": spreading retries keeps
many tasks that failed together from hitting the model together again.
``Retry-After`` is a floor, not a cap: the upstream told us when it will accept
us, so an earlier retry is a certain 429 (and may extend the penalty), while
``max_delay_ms`` caps only our own exponential guess.

The random number is an argument, not drawn here, so every decision can be
replayed from the recorded inputs.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator
from swarmstream.agents.models.failures import FailureClass

MAX_EXPONENT = 63
"""Cap on ``n - 1`` in ``multiplier ** (n - 1)``: beyond it the delay is ``max_delay_ms``
anyway, and the float power would overflow for large retry numbers."""


class RetryPolicy(BaseModel):
    """How one failure class is retried on the same link.

    ``max_attempts`` counts calls of the link, the first included (1 = no retry),
    so a policy reads like the budget it is.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(ge=1)
    base_delay_ms: int = Field(ge=0)
    max_delay_ms: int = Field(ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _max_not_below_base(self) -> RetryPolicy:
        if self.max_delay_ms < self.base_delay_ms:
            raise ValueError(f"max_delay_ms ({self.max_delay_ms}) is below base_delay_ms ({self.base_delay_ms})")
        return self

    @property
    def retries(self) -> int:
        """Calls after the first one that this policy allows on one link."""
        return self.max_attempts - 1


NO_RETRY = RetryPolicy(max_attempts=1, base_delay_ms=0, max_delay_ms=0)
"""For classes where asking the same model again gets the same answer."""

DEFAULT_POLICIES: Mapping[FailureClass, RetryPolicy] = {
    FailureClass.TIMEOUT: RetryPolicy(max_attempts=2, base_delay_ms=250, max_delay_ms=2_000),
    FailureClass.RATE_LIMITED: RetryPolicy(max_attempts=3, base_delay_ms=1_000, max_delay_ms=10_000),
    FailureClass.SERVER_ERROR: RetryPolicy(max_attempts=3, base_delay_ms=200, max_delay_ms=5_000),
    FailureClass.NETWORK: RetryPolicy(max_attempts=3, base_delay_ms=100, max_delay_ms=2_000),
    FailureClass.AUTH: NO_RETRY,
    FailureClass.BAD_REQUEST: NO_RETRY,
    FailureClass.CONTEXT_LENGTH: NO_RETRY,
    FailureClass.CONTENT_POLICY: NO_RETRY,
    FailureClass.INVALID_OUTPUT: NO_RETRY,
}
"""One policy per class; see the module docstring for why each number."""


def policy_for(failure_class: FailureClass | str, policies: Mapping[FailureClass, RetryPolicy]) -> RetryPolicy:
    """The policy of ``failure_class``; a class with no policy is not retried (the safe default)."""
    return policies.get(FailureClass(failure_class), NO_RETRY)


def backoff_ms(
    policy: RetryPolicy,
    retry_number: int,
    rng_uniform: float,
    retry_after_ms: int | None = None,
) -> int:
    """Milliseconds to wait before retry ``retry_number`` (1-based); formula in the module docstring.

    ``rng_uniform`` must be in [0, 1) (``random.random()``); it is passed in so
    that a decision can be reproduced. A negative ``retry_after_ms`` counts as 0.
    """
    if retry_number < 1:
        raise ValueError(f"retry_number is 1-based, got {retry_number}")
    if not 0 <= rng_uniform < 1:
        raise ValueError(f"rng_uniform must be in [0, 1), got {rng_uniform}")
    exponent = min(retry_number - 1, MAX_EXPONENT)
    raw = min(float(policy.max_delay_ms), policy.base_delay_ms * policy.multiplier**exponent)
    jittered = raw * (1 - policy.jitter) + raw * policy.jitter * rng_uniform
    return max(round(jittered), max(retry_after_ms or 0, 0))
