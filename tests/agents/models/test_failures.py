"""The failure model: classes, retryability, wait hints, redaction. Pure, table-driven."""

from __future__ import annotations

import pickle

import httpx
import pytest
from swarmstream.agents.models.failures import (
    RETRYABLE,
    FailureClass,
    ProviderError,
    failure_class_for_status,
    parse_reset_duration_ms,
    parse_retry_after,
    redact,
    retry_after_from_headers,
)

NOW_MS = 1_445_412_480_000  # Wed, 21 Oct 2015 07:28:00 GMT


def test_vocabulary_matches_the_failure_event_schema() -> None:
    assert [c.value for c in FailureClass] == [
        "timeout",
        "rate_limited",
        "server_error",
        "auth",
        "bad_request",
        "context_length",
        "content_policy",
        "invalid_output",
        "network",
    ]


@pytest.mark.parametrize(
    ("failure_class", "retryable"),
    [
        (FailureClass.TIMEOUT, True),
        (FailureClass.RATE_LIMITED, True),
        (FailureClass.SERVER_ERROR, True),
        (FailureClass.NETWORK, True),
        (FailureClass.AUTH, False),
        (FailureClass.BAD_REQUEST, False),
        (FailureClass.CONTEXT_LENGTH, False),
        (FailureClass.CONTENT_POLICY, False),
        (FailureClass.INVALID_OUTPUT, False),
    ],
)
def test_retryable_by_class(failure_class: FailureClass, retryable: bool) -> None:
    assert (failure_class in RETRYABLE) is retryable
    assert ProviderError(failure_class, "x").retryable is retryable


def test_retryable_can_be_overridden() -> None:
    assert ProviderError(FailureClass.RATE_LIMITED, "quota", retryable=False).retryable is False


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, FailureClass.BAD_REQUEST),
        (401, FailureClass.AUTH),
        (403, FailureClass.AUTH),
        (404, FailureClass.BAD_REQUEST),
        (408, FailureClass.TIMEOUT),
        (413, FailureClass.BAD_REQUEST),
        (422, FailureClass.BAD_REQUEST),
        (429, FailureClass.RATE_LIMITED),
        (500, FailureClass.SERVER_ERROR),
        (502, FailureClass.SERVER_ERROR),
        (503, FailureClass.SERVER_ERROR),
        (529, FailureClass.SERVER_ERROR),
    ],
)
def test_failure_class_for_status(status: int, expected: FailureClass) -> None:
    assert failure_class_for_status(status) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2", 2000),
        (" 120 ", 120_000),
        ("0.5", 500),
        ("0", 0),
        ("-3", 0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30_000),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0),  # in the past
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: int | None) -> None:
    assert parse_retry_after(value, NOW_MS) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20ms", 20), ("1s", 1000), ("6m0s", 360_000), ("1h2m3.5s", 3_723_500), ("", None), ("5x", None), ("s", None)],
)
def test_parse_reset_duration(value: str, expected: int | None) -> None:
    assert parse_reset_duration_ms(value) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1500),
        ({"Retry-After": "9"}, 9000),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9000),
        (
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "20s",
                "x-ratelimit-remaining-tokens": "5000",
                "x-ratelimit-reset-tokens": "6m0s",
            },
            20_000,
        ),
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "3s"}, 3000),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], expected: int | None) -> None:
    assert retry_after_from_headers(httpx.Headers(headers), NOW_MS) == expected


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("key abcd1234efgh was rejected", ["abcd1234efgh"], "key [REDACTED] was rejected"),
        ("Incorrect API key provided: sk-proj-Ab12****wxyz.", [], "Incorrect API key provided: [REDACTED]."),
        ("x-api-key sk-ant-api03-XYZxyz123", [], "x-api-key [REDACTED]"),
        ("Authorization: Bearer eyJhbGciOi.abc", [], "Authorization: [REDACTED]"),
        ("nothing secret", ["abc"], "nothing secret"),  # too short to redact safely
        ("", ["abcdef"], ""),
    ],
)
def test_redact(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


def test_provider_error_redacts_and_truncates() -> None:
    error = ProviderError(FailureClass.AUTH, "bad key my-secret-key " + "x" * 1000, secrets=["my-secret-key"])
    for text in (str(error), repr(error), error.message, *map(str, error.args)):
        assert "my-secret-key" not in text
    assert len(error.message) <= 500


def test_provider_error_str_and_pickle() -> None:
    error = ProviderError(FailureClass.RATE_LIMITED, "slow down", retry_after_ms=2000, status_code=429)
    assert str(error) == "rate_limited (HTTP 429): slow down"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.failure_class, copy.message, copy.retryable, copy.retry_after_ms, copy.status_code) == (
        FailureClass.RATE_LIMITED,
        "slow down",
        True,
        2000,
        429,
    )
