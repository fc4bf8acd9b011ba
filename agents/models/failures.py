"""Every way a model call can fail, and what the caller may do about it.

A provider raises exactly one exception type, :class:`ProviderError`, and its
``failure_class`` says what went wrong::

    ProviderError(failure_class=...)      raised by                                   retryable
    ├── timeout          deadline already past; total/read/connect timeout; HTTP 408   yes
    ├── rate_limited     HTTP 429 (``retry_after_ms`` from Retry-After when sent);     yes
    │                    OpenAI ``insufficient_quota`` is a 429 too, but is billing:   no
    ├── server_error     HTTP 5xx, Anthropic 529 overloaded_error; a 2xx body that     yes
    │                    is not the protocol's JSON (an upstream bug, not the model's)
    ├── network          connection refused/reset, DNS, TLS, server closed the socket  yes
    ├── auth             HTTP 401/403 (bad or missing key, no permission)              no
    ├── bad_request      HTTP 400/404/413/422 and other 4xx: our request is wrong      no
    ├── context_length   prompt + max_tokens exceed the model's window                 no
    │                    (OpenAI code context_length_exceeded, Anthropic "prompt is too long")
    ├── content_policy   OpenAI finish_reason content_filter or a ``refusal``,         no
    │                    Anthropic stop_reason refusal, content-filter error codes
    └── invalid_output   the model answered, but not in the requested answer type      no
                         (raised by parsing.parse_answer)

"Retryable" means: the *same* model may succeed if asked again later. A
non-retryable failure can still be handed to the next model of a fallback
chain; that decision belongs to agents/fallback, not here.

Secrets: a ProviderError message is built from upstream error bodies and
transport messages, never from request headers, and is passed through
:func:`redact` with the provider's key on construction, because upstreams echo
keys back ("Incorrect API key provided: sk-...") and the message travels on
``swarm.failures``.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum


class FailureClass(StrEnum):
    """The failure vocabulary shared by providers, parsing, fallback and stats (``Failure.avsc``)."""

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    CONTENT_POLICY = "content_policy"
    INVALID_OUTPUT = "invalid_output"
    NETWORK = "network"


RETRYABLE: frozenset[FailureClass] = frozenset(
    {
        FailureClass.TIMEOUT,
        FailureClass.RATE_LIMITED,
        FailureClass.SERVER_ERROR,
        FailureClass.NETWORK,
    }
)
"""Classes where asking the same model again may succeed (transient by nature)."""

MAX_MESSAGE_CHARS = 500
"""Upstream error bodies can be whole HTML pages; a message this long names the problem
and keeps ``swarm.failures`` events small."""

REDACTED = "[REDACTED]"

# Shapes of well-known keys, redacted even when we were not told the exact secret
# (e.g. a key of another tenant echoed by a proxy). OpenAI masks keys in its own
# messages as "sk-abc1****wxyz"; the pattern covers the masked form too.
_KEY_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}"),  # OpenAI ("sk-", "sk-proj-") and Anthropic ("sk-ant-")
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{6,}"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every occurrence of each secret, and anything shaped like an API key, by ``[REDACTED]``.

    Secrets shorter than 4 characters are ignored: replacing e.g. "a" would shred
    the message while protecting nothing.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


class ProviderError(Exception):
    """The one exception a provider raises; see the module docstring for the classes.

    ``retryable`` defaults to ``failure_class in RETRYABLE`` and may be overridden
    for a specific case (a 429 for exhausted quota is not worth retrying).
    """

    def __init__(
        self,
        failure_class: FailureClass,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        status_code: int | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        message = redact(message, secrets)
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        super().__init__(message)
        self.failure_class = FailureClass(failure_class)
        self.message = message
        self.retryable = self.failure_class in RETRYABLE if retryable is None else retryable
        self.retry_after_ms = retry_after_ms
        self.status_code = status_code

    def __reduce__(self) -> tuple[object, ...]:
        # Exception pickles only ``args``; keep the keyword fields across processes.
        return (
            _rebuild_provider_error,
            (self.failure_class, self.message, self.retryable, self.retry_after_ms, self.status_code),
        )

    def __str__(self) -> str:
        status = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{self.failure_class.value}{status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.failure_class.value!r}, {self.message!r}, retryable={self.retryable}, "
            f"retry_after_ms={self.retry_after_ms}, status_code={self.status_code})"
        )


def _rebuild_provider_error(
    failure_class: FailureClass,
    message: str,
    retryable: bool,
    retry_after_ms: int | None,
    status_code: int | None,
) -> ProviderError:
    return ProviderError(
        failure_class, message, retryable=retryable, retry_after_ms=retry_after_ms, status_code=status_code
    )


def failure_class_for_status(status_code: int) -> FailureClass:
    """The class an HTTP error status implies before the error body is read.

    Providers refine it from the body (e.g. a 400 that is really ``context_length``).
    """
    if status_code == 408:
        return FailureClass.TIMEOUT
    if status_code == 429:
        return FailureClass.RATE_LIMITED
    if status_code in (401, 403):
        return FailureClass.AUTH
    if status_code >= 500:  # includes Anthropic's 529 "overloaded"
        return FailureClass.SERVER_ERROR
    return FailureClass.BAD_REQUEST


def parse_retry_after(value: str | None, now_ms: int) -> int | None:
    """Milliseconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date (RFC 9110 10.2.3).

    Fractional seconds are accepted (some gateways send them). A date in the past
    gives 0; an unparseable value gives None rather than an error, because a bad
    hint must not turn a rate limit into a different failure.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0, round(seconds * 1000))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0, round(when.timestamp() * 1000) - now_ms)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset_duration_ms(value: str | None) -> int | None:
    """Milliseconds from OpenAI's ``x-ratelimit-reset-*`` format: "20ms", "1s", "6m0s", "1h2m3.5s"."""
    if not value:
        return None
    value = value.strip()
    pos = 0
    total_ms = 0.0
    unit_ms = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            return None
        total_ms += float(match.group(1)) * unit_ms[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(value):
        return None
    return round(total_ms)


def retry_after_from_headers(headers: Mapping[str, str], now_ms: int) -> int | None:
    """The best wait hint a 429/503 carries, in ms.

    Order: ``retry-after-ms`` (OpenAI, precise), ``retry-after`` (standard, both
    providers), then OpenAI's ``x-ratelimit-reset-{requests,tokens}`` for the limit
    whose ``x-ratelimit-remaining-*`` is 0 (the longest if none says so).
    ``headers`` must be case-insensitive (httpx.Headers is).
    """
    precise = headers.get("retry-after-ms")
    if precise is not None:
        try:
            ms = float(precise)
        except ValueError:
            ms = float("nan")
        if ms == ms and ms >= 0 and ms != float("inf"):
            return round(ms)
    standard = parse_retry_after(headers.get("retry-after"), now_ms)
    if standard is not None:
        return standard
    resets: dict[str, int] = {}
    for limit in ("requests", "tokens"):
        reset_ms = parse_reset_duration_ms(headers.get(f"x-ratelimit-reset-{limit}"))
        if reset_ms is not None:
            resets[limit] = reset_ms
    exhausted = [ms for limit, ms in resets.items() if headers.get(f"x-ratelimit-remaining-{limit}") == "0"]
    candidates = exhausted or list(resets.values())
    return max(candidates) if candidates else None
