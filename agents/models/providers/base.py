"""What every provider promises: one request shape, one response shape, one error type.

A provider turns a :class:`ChatRequest` into a :class:`ChatResponse` or raises
``ProviderError`` (see ``failures.py``): callers never see httpx, aiohttp or
JSON errors. The shared, protocol-independent parts live here: the deadline
arithmetic, cost in micro-dollars, and the helpers providers use to read an
error body.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Protocol

import orjson
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.http import ClientPool, RawResponse, post_json
from swarmstream.schemas.models import ChatMessage


@dataclass(frozen=True)
class ToolCallRequest:
    """A tool call a model asked for: the provider's call id, the tool, the arguments as JSON text
    (as the model wrote them: possibly not JSON at all, which the tool agent reports back)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatRequest:
    """One question to one model: a single turn, or a turn of a tool conversation.

    ``deadline_ms`` (ms since epoch) is the task's deadline: the call is cut off
    there even if the model's own ``timeout_s`` would allow more, because an
    answer after the deadline is thrown away anyway.

    ``tools`` are the tool definitions offered (``{"name", "description", "input_schema"}``)
    and ``conversation`` the turns after the prompt, in the neutral format of
    ``agents/tools/conversation.py``; each protocol renders both in its own shape.

    ``messages`` is the caller's whole chat (a task's ``messages``, the gateway's): when
    given it replaces ``system`` and ``prompt`` and is sent as it is, turn by turn.
    """

    prompt: str
    system: str | None = None
    max_tokens: int = 256
    temperature: float | None = None
    deadline_ms: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    """Sampling as the task asks (``TaskRequest``): sent as they are, each only when set, so a
    provider's own defaults hold otherwise. ``seed`` is the sample's (the task's seed + k)."""
    tools: tuple[dict[str, Any], ...] = ()
    conversation: tuple[dict[str, Any], ...] = ()
    messages: tuple[ChatMessage, ...] = ()


@dataclass(frozen=True)
class ChatResponse:
    """A model's answer, normalised across protocols.

    ``finish_reason`` uses OpenAI's words ("stop", "length", "tool_calls"; others
    pass through), ``cost_micros`` is integer micro-dollars, ``confidence`` is in
    [0, 1] when the provider reports token log-probabilities, else None.
    """

    text: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    cost_micros: int
    latency_ms: int
    upstream_model: str
    confidence: float | None = None
    tool_calls: tuple[ToolCallRequest, ...] = ()


class Provider(Protocol):
    """One model behind one protocol. ``complete`` raises ProviderError on every failure."""

    spec: ModelSpec

    async def complete(self, request: ChatRequest) -> ChatResponse: ...


Clock = Callable[[], int]
"""Returns ms since epoch; injected so deadline tests need no sleeping."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def call_budget_s(spec: ModelSpec, deadline_ms: int | None, now: int) -> float:
    """Seconds this call may take: ``min(spec.timeout_s, deadline - now)``.

    Raises TIMEOUT when the deadline has already passed, so a stale request costs
    no money and no connection.
    """
    if deadline_ms is None:
        return spec.timeout_s
    left_ms = deadline_ms - now
    if left_ms <= 0:
        raise ProviderError(FailureClass.TIMEOUT, f"deadline passed {-left_ms} ms before the call")
    return min(spec.timeout_s, left_ms / 1000)


def cost_micros(spec: ModelSpec, input_tokens: int, output_tokens: int) -> int:
    """Cost in integer micro-dollars, rounded half up (0.5 -> 1) once, on the total.

    1 USD per million tokens is exactly 1 micro-dollar per token, so the cost is
    ``input_tokens * input_usd_per_mtok + output_tokens * output_usd_per_mtok`` micros.

    Computed in Decimal from the prices' decimal text, so 0.15 USD/Mtok x 10 tokens
    is exactly 1.5 -> 2, with no binary-float drift (0.15 is 0.1499999... as a float).
    Rounding the total, not each side, keeps a sum of costs within 1 micro of the truth.
    """
    total = _price(spec.input_usd_per_mtok) * input_tokens + _price(spec.output_usd_per_mtok) * output_tokens
    return int(total.quantize(_ONE, rounding=ROUND_HALF_UP))


_ONE = Decimal(1)


@functools.lru_cache(maxsize=1024)
def _price(usd_per_mtok: float) -> Decimal:
    """A catalog has a few prices and every call costs one: parsed once (1.5% of a worker's CPU)."""
    return Decimal(str(usd_per_mtok))


def decode_json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (HTML error pages, truncation)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def body_excerpt(body: bytes, limit: int = 200) -> str:
    """The start of a body for an error message, when it has no structured error to quote."""
    text = body[:limit].decode("utf-8", errors="replace").strip()
    return text or "(empty body)"


def malformed_response(reason: str, secrets: tuple[str, ...] = ()) -> ProviderError:
    """A 2xx whose body breaks the protocol: an upstream fault, so SERVER_ERROR (retryable)."""
    return ProviderError(FailureClass.SERVER_ERROR, f"malformed response: {reason}", secrets=secrets)


@dataclass(frozen=True)
class Completion:
    """What a protocol's success body says, before timing and cost are added."""

    text: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    upstream_model: str
    confidence: float | None = None
    tool_calls: tuple[ToolCallRequest, ...] = ()


class HttpProvider:
    """The call skeleton every HTTP protocol shares: deadline, one POST, timing, cost.

    A protocol subclass supplies the pure parts: ``path``, ``headers``,
    ``build_body``, ``parse_success`` and ``parse_error``. The key is held only to
    build headers and to redact it from messages; it is never logged.
    """

    path: ClassVar[str]

    def __init__(
        self,
        spec: ModelSpec,
        pool: ClientPool,
        *,
        api_key: str | None = None,
        clock: Clock = now_ms,
    ) -> None:
        if spec.endpoint is None:
            raise ValueError(f"model {spec.id!r} has no endpoint")
        self.spec = spec
        self._api_key = api_key
        self._secrets: tuple[str, ...] = (api_key,) if api_key else ()
        self._clock = clock
        self._target = pool.target(spec.endpoint, self.path, self.headers())

    def __repr__(self) -> str:  # the default would be harmless, but say explicitly what is shown
        return f"{type(self).__name__}(model={self.spec.id!r}, endpoint={self.spec.endpoint!r})"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Ask the model once; ProviderError on any failure (see failures.py), never a retry."""
        budget_s = call_budget_s(self.spec, request.deadline_ms, self._clock())
        started_ns = time.perf_counter_ns()
        raw = await post_json(self._target, body=self.build_body(request), timeout_s=budget_s, secrets=self._secrets)
        latency_ms = (time.perf_counter_ns() - started_ns) // 1_000_000
        if not 200 <= raw.status_code < 300:
            raise self.parse_error(raw, self._clock())
        try:
            completion = self.parse_success(raw.body)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise malformed_response(f"{type(exc).__name__}: {exc}", self._secrets) from None
        return ChatResponse(
            text=completion.text,
            finish_reason=completion.finish_reason,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost_micros=cost_micros(self.spec, completion.input_tokens, completion.output_tokens),
            latency_ms=latency_ms,
            upstream_model=completion.upstream_model or self.spec.upstream,
            confidence=completion.confidence,
            tool_calls=completion.tool_calls,
        )

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def parse_success(self, body: bytes) -> Completion:
        """Raise ProviderError for a refusal; KeyError/TypeError/... for a malformed body."""
        raise NotImplementedError

    def parse_error(self, raw: RawResponse, now: int) -> ProviderError:
        raise NotImplementedError
