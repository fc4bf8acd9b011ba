"""Anthropic Messages API.

POST ``{endpoint}/messages`` with ``x-api-key`` and ``anthropic-version``; the
system prompt is a top-level field, ``max_tokens`` is required. Shapes read here:
https://docs.anthropic.com/en/api/messages and https://docs.anthropic.com/en/api/errors.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
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

ANTHROPIC_VERSION = "2023-06-01"
"""The API version header; the Messages API shape read here is the one pinned by this date."""

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
}
"""Anthropic stop_reason -> the OpenAI finish_reason words ChatResponse uses; others pass through.
``refusal`` is not here: it raises CONTENT_POLICY."""

_ERROR_TYPES = {
    "overloaded_error": FailureClass.SERVER_ERROR,  # HTTP 529
    "api_error": FailureClass.SERVER_ERROR,
    "rate_limit_error": FailureClass.RATE_LIMITED,
    "authentication_error": FailureClass.AUTH,
    "permission_error": FailureClass.AUTH,
    "timeout_error": FailureClass.TIMEOUT,
}
_CONTEXT_LENGTH_MESSAGE = re.compile(r"(?i)prompt is too long|exceed(s|ed)? (the )?context (limit|window)")


class AnthropicProvider(HttpProvider):
    """A model behind the Anthropic Messages protocol."""

    path = "messages"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        return build_messages_body(self.spec.upstream, request)

    def parse_success(self, body: bytes) -> Completion:
        return parse_message(body, self._secrets)

    def parse_error(self, raw: RawResponse, now: int) -> ProviderError:
        return error_from_response(raw, now, self._secrets)


def build_messages_body(upstream: str, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of one message: the prompt, then any tool conversation, with the offered
    tools as ``tools`` (``{"name", "description", "input_schema"}``)."""
    system, chat = render_chat(request.messages) if request.messages else (
        request.system, [{"role": "user", "content": request.prompt}])
    body: dict[str, Any] = {
        "model": upstream,
        "max_tokens": request.max_tokens,
        "messages": [*chat, *render_conversation(request.conversation)],
    }
    if system is not None:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    # no seed: the Messages API takes none (samples differ by temperature alone)
    if request.tools:
        body["tools"] = [{"name": t["name"], "description": t.get("description", ""), "input_schema": t["input_schema"]}
                         for t in request.tools]
    return body


def _input_of(arguments: str) -> dict[str, Any]:
    # tool_use.input must be an object; arguments a model sent as non-JSON are kept as text
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_unparsed_arguments": arguments}
    return value if isinstance(value, dict) else {"_unparsed_arguments": arguments}


def render_chat(chat: tuple[ChatMessage, ...]) -> tuple[str | None, list[dict[str, Any]]]:
    """A caller's chat as (system, messages): system turns join the top-level ``system``; an
    assistant turn's calls are ``tool_use`` blocks; tool turns become ``tool_result`` blocks of
    one user message, as this protocol wants them."""
    systems = [turn.content for turn in chat if turn.role == "system"]
    messages: list[dict[str, Any]] = []
    for turn in chat:
        if turn.role == "system":
            continue
        if turn.role == "assistant" and turn.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": turn.content}] if turn.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _input_of(c.arguments)}
                       for c in turn.tool_calls]
            messages.append({"role": "assistant", "content": blocks})
        elif turn.role == "tool":
            block = {"type": "tool_result", "tool_use_id": turn.tool_call_id or "", "content": turn.content}
            if messages and messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], list):
                messages[-1]["content"].append(block)
            else:
                messages.append({"role": "user", "content": [block]})
        else:
            messages.append({"role": turn.role, "content": turn.content})
    return ("\n\n".join(systems) if systems else None), messages


def render_conversation(conversation: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Neutral turns as Anthropic messages: an assistant message of ``text`` and ``tool_use``
    blocks, then ONE user message holding every ``tool_result`` block of the turn."""
    messages: list[dict[str, Any]] = []
    for turn in conversation:
        if turn["role"] == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": turn["text"]}] if turn.get("text") else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": _input_of(c["arguments"])}
                       for c in turn.get("calls") or ()]
            messages.append({"role": "assistant", "content": blocks})
        else:
            block = {"type": "tool_result", "tool_use_id": turn["id"], "content": turn["content"],
                     "is_error": bool(turn.get("error"))}
            if messages and messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], list):
                messages[-1]["content"].append(block)
            else:
                messages.append({"role": "user", "content": [block]})
    return messages


def parse_message(body: bytes, secrets: tuple[str, ...] = ()) -> Completion:
    """Text (all ``text`` blocks joined), stop reason and usage of a ``message`` object.

    Input tokens include prompt-cache reads and writes, priced at the input price:
    an overestimate when caching is on, never an underestimate.
    """
    message = decode_json_object(body)
    if message is None:
        raise ValueError(f"not a JSON object: {body_excerpt(body)}")
    stop_reason = message.get("stop_reason") or "end_turn"
    if stop_reason == "refusal":
        raise ProviderError(FailureClass.CONTENT_POLICY, "model refused (stop_reason refusal)", secrets=secrets)
    blocks = message["content"]
    text = "".join(block["text"] for block in blocks if block.get("type") == "text")
    tool_calls = tuple(
        ToolCallRequest(call_id=str(block.get("id") or ""), name=str(block["name"]),
                        arguments=orjson.dumps(block.get("input") or {}).decode())
        for block in blocks if block.get("type") == "tool_use"
    )
    usage = message.get("usage") or {}
    input_tokens = sum(
        int(usage.get(field) or 0)
        for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return Completion(
        text=text,
        finish_reason=STOP_REASONS.get(stop_reason, stop_reason),
        input_tokens=input_tokens,
        output_tokens=int(usage.get("output_tokens") or 0),
        upstream_model=str(message.get("model") or ""),
        tool_calls=tool_calls,
    )


def error_from_response(raw: RawResponse, now: int, secrets: tuple[str, ...] = ()) -> ProviderError:
    """Classify ``{"type": "error", "error": {"type", "message"}}`` with its status.

    The error type wins over the status (a 529 ``overloaded_error`` is SERVER_ERROR);
    an ``invalid_request_error`` saying the prompt is too long is CONTEXT_LENGTH.
    """
    failure_class = failure_class_for_status(raw.status_code)
    payload = decode_json_object(raw.body) or {}
    error = payload.get("error")
    if isinstance(error, dict):
        kind = str(error.get("type") or "")
        message = str(error.get("message") or "")
    else:
        kind, message = "", body_excerpt(raw.body)
    if kind in _ERROR_TYPES:
        failure_class = _ERROR_TYPES[kind]
    elif _CONTEXT_LENGTH_MESSAGE.search(message) and failure_class is FailureClass.BAD_REQUEST:
        failure_class = FailureClass.CONTEXT_LENGTH
    hinted = failure_class in (FailureClass.RATE_LIMITED, FailureClass.SERVER_ERROR)
    return ProviderError(
        failure_class,
        f"{kind}: {message}" if kind else message,
        retry_after_ms=retry_after_from_headers(raw.headers, now) if hinted else None,
        status_code=raw.status_code,
        secrets=secrets,
    )
