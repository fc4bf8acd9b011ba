"""OpenAI Chat Completions, and every server that speaks it (vLLM, Ollama, the simulated fleet).

POST ``{endpoint}/chat/completions`` with ``Authorization: Bearer <key>``.
Reference for the shapes read here: https://platform.openai.com/docs/api-reference/chat/object
and https://platform.openai.com/docs/guides/error-codes.
"""

from __future__ import annotations

import math
import re
from typing import Any

from swarmstream.agents.models.failures import (
    FailureClass,
    ProviderError,
    failure_class_for_status,
    retry_after_from_headers,
)
from swarmstream.agents.models.http import RawResponse
from swarmstream.agents.models.providers.base import (
    ChatRequest,
    Completion,
    HttpProvider,
    ToolCallRequest,
    body_excerpt,
    decode_json_object,
)
from swarmstream.schemas.models import ChatMessage

LOGPROBS_CAPABILITY = "logprobs"
"""Ask for token log-probabilities only from models whose catalog entry says they return them:
some compatible servers reject the field."""

MAX_COMPLETION_TOKENS_CAPABILITY = "max_completion_tokens"
"""Reasoning models (o1, o3, ...) reject ``max_tokens`` and want ``max_completion_tokens``."""

_CONTEXT_LENGTH_MESSAGE = re.compile(r"(?i)maximum context length|context window|too many tokens")
_CONTENT_POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})


class OpenAIProvider(HttpProvider):
    """A model behind the OpenAI Chat Completions protocol."""

    path = "chat/completions"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        return build_chat_body(self.spec.upstream, self.spec.capabilities, request)

    def parse_success(self, body: bytes) -> Completion:
        return parse_chat_completion(body, self._secrets)

    def parse_error(self, raw: RawResponse, now: int) -> ProviderError:
        return error_from_response(raw, now, self._secrets)


def build_chat_body(upstream: str, capabilities: list[str], request: ChatRequest) -> dict[str, Any]:
    """The JSON body of one chat completion: the prompt, then any tool conversation, with the
    offered tools as ``tools`` (``{"type": "function", "function": {...}}``)."""
    messages: list[dict[str, Any]] = []
    if request.messages:
        messages.extend(render_chat(request.messages))
    else:
        if request.system is not None:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
    messages.extend(render_conversation(request.conversation))
    tokens_field = "max_completion_tokens" if MAX_COMPLETION_TOKENS_CAPABILITY in capabilities else "max_tokens"
    body: dict[str, Any] = {"model": upstream, "messages": messages, tokens_field: request.max_tokens}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.seed is not None:
        body["seed"] = request.seed
    if request.stop:
        body["stop"] = list(request.stop)
    if LOGPROBS_CAPABILITY in capabilities:
        body["logprobs"] = True
    if request.tools:
        body["tools"] = [
            {"type": "function",
             "function": {"name": t["name"], "description": t.get("description", ""), "parameters": t["input_schema"]}}
            for t in request.tools
        ]
    return body


def render_chat(chat: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """A caller's chat as OpenAI messages, turn for turn (the shape it came in, through the gateway)."""
    messages: list[dict[str, Any]] = []
    for turn in chat:
        message: dict[str, Any] = {"role": turn.role, "content": turn.content}
        if turn.tool_calls:
            message["content"] = turn.content or None
            message["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in turn.tool_calls]
        if turn.tool_call_id is not None:
            message["tool_call_id"] = turn.tool_call_id
        messages.append(message)
    return messages


def render_conversation(conversation: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Neutral turns as OpenAI messages: an assistant message with ``tool_calls``, then one
    ``role: tool`` message per result, linked by ``tool_call_id``."""
    messages: list[dict[str, Any]] = []
    for turn in conversation:
        if turn["role"] == "assistant":
            messages.append({
                "role": "assistant",
                "content": turn.get("text") or None,
                "tool_calls": [{"id": c["id"], "type": "function",
                                "function": {"name": c["name"], "arguments": c["arguments"]}}
                               for c in turn.get("calls") or ()],
            })
        else:
            # a tool message has no error flag in this protocol: the content says it
            content = f"error: {turn['content']}" if turn.get("error") else turn["content"]
            messages.append({"role": "tool", "tool_call_id": turn["id"], "content": content})
    return messages


def parse_chat_completion(body: bytes, secrets: tuple[str, ...] = ()) -> Completion:
    """Text, finish reason, usage and confidence of a ``chat.completion`` object.

    A ``refusal`` or finish_reason ``content_filter`` raises CONTENT_POLICY. Missing
    ``usage`` (some compatible servers omit it) counts as 0 tokens.
    """
    completion = decode_json_object(body)
    if completion is None:
        raise ValueError(f"not a JSON object: {body_excerpt(body)}")
    choice = completion["choices"][0]
    message = choice["message"]
    finish_reason = choice.get("finish_reason") or "stop"
    refusal = message.get("refusal")
    if refusal:
        raise ProviderError(FailureClass.CONTENT_POLICY, f"model refused: {refusal}", secrets=secrets)
    if finish_reason == "content_filter":
        raise ProviderError(FailureClass.CONTENT_POLICY, "output stopped by the content filter", secrets=secrets)
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise TypeError(f"message.content is {type(text).__name__}, not a string")
    tool_calls = tuple(
        ToolCallRequest(call_id=str(call.get("id") or ""), name=str(call["function"]["name"]),
                        arguments=str(call["function"].get("arguments") or "{}"))
        for call in message.get("tool_calls") or ()
    )
    usage = completion.get("usage") or {}
    return Completion(
        text=text,
        finish_reason=finish_reason,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        upstream_model=str(completion.get("model") or ""),
        confidence=confidence_from_logprobs(choice.get("logprobs")),
        tool_calls=tool_calls,
    )


def confidence_from_logprobs(logprobs: dict[str, Any] | None) -> float | None:
    """exp(mean log-probability) of the output tokens: the geometric-mean token probability.

    In [0, 1]; None without logprobs. Length-normalised so a long answer is not
    judged less sure than a short one merely for having more tokens.
    """
    if not logprobs:
        return None
    tokens = logprobs.get("content") or []
    values = [float(token["logprob"]) for token in tokens if token.get("logprob") is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    if not math.isfinite(mean):
        return 0.0 if mean == -math.inf else None
    return min(1.0, math.exp(mean))


def error_from_response(raw: RawResponse, now: int, secrets: tuple[str, ...] = ()) -> ProviderError:
    """Classify an error response from its status and ``{"error": {"message", "type", "code"}}``.

    The body refines the status: a 400 with code ``context_length_exceeded`` (or
    the matching message, for compatible servers without codes) is CONTEXT_LENGTH,
    content-filter codes are CONTENT_POLICY, and a 429 for ``insufficient_quota``
    is RATE_LIMITED but not retryable (billing, not load).
    """
    failure_class = failure_class_for_status(raw.status_code)
    payload = decode_json_object(raw.body) or {}
    error = payload.get("error")
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        code = str(error.get("code") or "")
        kind = str(error.get("type") or "")
    else:  # `{"error": "..."}` or FastAPI's `{"detail": ...}` from compatible servers
        message = str(error or payload.get("detail") or payload.get("message") or body_excerpt(raw.body))
        code = kind = ""
    retryable: bool | None = None
    if code == "context_length_exceeded" or (
        failure_class is FailureClass.BAD_REQUEST and _CONTEXT_LENGTH_MESSAGE.search(message)
    ):
        failure_class = FailureClass.CONTEXT_LENGTH
    elif code in _CONTENT_POLICY_CODES:
        failure_class = FailureClass.CONTENT_POLICY
    elif code == "insufficient_quota":
        retryable = False
    label = "/".join(part for part in (kind, code) if part)
    return ProviderError(
        failure_class,
        f"{label}: {message}" if label else message,
        retryable=retryable,
        retry_after_ms=retry_after_from_headers(raw.headers, now) if raw.status_code in (429, 503) else None,
        status_code=raw.status_code,
        secrets=secrets,
    )
