"""Retry policies: the defaults per class, and the backoff arithmetic (jitter, cap, Retry-After)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from swarmstream.agents.fallback.retry import (
    DEFAULT_POLICIES,
    NO_RETRY,
    RetryPolicy,
    backoff_ms,
    policy_for,
)
from swarmstream.agents.models.failures import FailureClass as FC

P = RetryPolicy(max_attempts=5, base_delay_ms=100, max_delay_ms=1_000)


@pytest.mark.parametrize(
    ("failure_class", "retries"),
    [
        (FC.TIMEOUT, 1),
        (FC.RATE_LIMITED, 2),
        (FC.SERVER_ERROR, 2),
        (FC.NETWORK, 2),
        (FC.AUTH, 0),
        (FC.BAD_REQUEST, 0),
        (FC.CONTEXT_LENGTH, 0),
        (FC.CONTENT_POLICY, 0),
        (FC.INVALID_OUTPUT, 0),
    ],
)
def test_default_retries_per_class(failure_class: FC, retries: int) -> None:
    assert DEFAULT_POLICIES[failure_class].retries == retries


def test_every_class_has_a_default_and_a_missing_one_is_not_retried() -> None:
    assert set(DEFAULT_POLICIES) == set(FC)
    assert policy_for("server_error", {}) is NO_RETRY


@pytest.mark.parametrize(
    ("policy", "retry_number", "u", "retry_after_ms", "expected_ms"),
    [
        # edge cases first: no delay, full and no jitter, the cap, huge retry numbers
        (RetryPolicy(max_attempts=2, base_delay_ms=0, max_delay_ms=0), 1, 0.7, None, 0),
        (P.model_copy(update={"jitter": 1.0}), 1, 0.0, None, 0),  # full jitter can be 0
        (P.model_copy(update={"jitter": 0.0}), 3, 0.9, None, 400),  # no jitter: exactly raw
        (P, 1, 0.0, None, 50),  # equal jitter: [raw/2, raw)
        (P, 1, 0.5, None, 75),
        (P, 1, 0.999, None, 100),
        (P, 2, 0.0, None, 100),
        (P, 3, 0.5, None, 300),  # raw 400 -> 200 + 200*0.5
        (P, 5, 0.0, None, 500),  # raw 1600 capped at 1000
        (P, 10_000, 0.0, None, 500),  # no float overflow
        (P.model_copy(update={"multiplier": 3.0}), 3, 0.0, None, 450),  # 100 * 3^2 = 900
        # Retry-After is a floor, above the cap too
        (P, 1, 0.0, 1_000, 1_000),
        (P, 1, 0.0, 30_000, 30_000),
        (P, 3, 0.5, 10, 300),  # a smaller hint does not shorten the backoff
        (P, 1, 0.0, 0, 50),
        (P, 1, 0.0, -5, 50),
    ],
)
def test_backoff_ms(
    policy: RetryPolicy, retry_number: int, u: float, retry_after_ms: int | None, expected_ms: int
) -> None:
    assert backoff_ms(policy, retry_number, u, retry_after_ms) == expected_ms


@pytest.mark.parametrize(
    ("retry_number", "u", "message"),
    [
        (0, 0.5, "retry_number is 1-based, got 0"),
        (1, 1.0, "rng_uniform must be in [0, 1), got 1.0"),
        (1, -0.1, "rng_uniform must be in [0, 1), got -0.1"),
    ],
)
def test_backoff_rejects_bad_arguments(retry_number: int, u: float, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        backoff_ms(P, retry_number, u)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_attempts": 0, "base_delay_ms": 0, "max_delay_ms": 0}, "greater than or equal to 1"),
        (
            {"max_attempts": 2, "base_delay_ms": 500, "max_delay_ms": 100},
            "max_delay_ms (100) is below base_delay_ms (500)",
        ),
        ({"max_attempts": 2, "base_delay_ms": 1, "max_delay_ms": 1, "jitter": 1.5}, "less than or equal to 1"),
        ({"max_attempts": 2, "base_delay_ms": 1, "max_delay_ms": 1, "multiplier": 0.5}, "greater than or equal to 1"),
    ],
)
def test_policy_validation(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RetryPolicy(**fields)  # type: ignore[arg-type]
