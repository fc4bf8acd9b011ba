"""Anthropic Messages, as the ``anthropic`` SDK reads it.

Request: https://docs.anthropic.com/en/api/messages (``system``, ``messages`` with text,
``tool_use`` and ``tool_result`` blocks, ``tools``, ``max_tokens``, ``temperature``,
``top_p``, ``stop_sequences``, ``stream``). The swarm extension object comes as the body's
``swarm`` (``extra_body``), ``metadata.swarm``, or the ``x-swarm`` header (JSON). Streaming
events: ``message_start``, ``ping``, ``content_block_start/delta/stop``, ``message_delta``,
``message_stop``; errors ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from swarmstream.schemas.models import ChatMessage, ChatToolCall, ClientTool, TaskResult

from .chat import ChatCall
from .errors import GatewayError, invalid
from .outcome import Answer, extension_of

ERROR_TYPES = {
    "invalid_request": "invalid_request_error", "authentication": "authentication_error",
    "rate_limit": "rate_limit_error", "timeout": "api_error", "overloaded": "overloaded_error",
    "not_found": "not_found_error", "failed": "api_error",
}


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise invalid(f"{where}: must be a string or a list of content blocks", where)
    for i, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") not in ("text", "tool_use", "tool_result"):
            raise invalid(f"{where}[{i}]: only text, tool_use and tool_result blocks are supported", where)
    return content


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or () if isinstance(b, dict) and b.get("type") == "text")


def read_request(body: Any, header_swarm: str | None = None) -> ChatCall:
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: required", "model")
    if not isinstance(body.get("max_tokens"), int):
        raise invalid("max_tokens: required, an integer", "max_tokens")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise invalid("messages: must be a non-empty list", "messages")
    messages: list[ChatMessage] = []
    system = body.get("system")
    if system:
        messages.append(ChatMessage(role="system", content=system if isinstance(system, str) else _result_text(system)))
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise invalid(f"{where}.role: must be user or assistant", f"{where}.role")
        blocks = _blocks(m.get("content"), f"{where}.content")
        text = "".join(b.get("text", "") for b in blocks if b["type"] == "text")
        if m["role"] == "assistant":
            calls = [ChatToolCall(id=str(b.get("id", "")), name=str(b.get("name", "")),
                                  arguments=orjson.dumps(b.get("input") or {}).decode())
                     for b in blocks if b["type"] == "tool_use"]
            messages.append(ChatMessage(role="assistant", content=text, tool_calls=calls))
            continue
        for b in blocks:
            if b["type"] == "tool_result":
                content = _result_text(b.get("content"))
                messages.append(ChatMessage(role="tool", tool_call_id=str(b.get("tool_use_id", "")),
                                            content=f"error: {content}" if b.get("is_error") else content))
        if text or not any(b["type"] == "tool_result" for b in blocks):
            messages.append(ChatMessage(role="user", content=text))
    choice = body.get("tool_choice") or {}
    tools = [] if choice.get("type") == "none" else [_tool(t, f"tools[{i}]") for i, t in enumerate(body.get("tools") or ())]
    sampling: dict[str, Any] = {k: body[k] for k in ("temperature", "top_p") if body.get(k) is not None}
    sampling["max_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        sampling["stop"] = body["stop_sequences"]
    return ChatCall(model=model, messages=messages, tools=tools, sampling=sampling,
                    swarm=_swarm(body, header_swarm), stream=bool(body.get("stream")))


def _swarm(body: dict[str, Any], header: str | None) -> dict[str, Any]:
    found: Any = body.get("swarm") or (body.get("metadata") or {}).get("swarm")
    if found is None and header:
        try:
            found = orjson.loads(header)
        except orjson.JSONDecodeError:
            raise invalid("x-swarm: must be a JSON object of task fields", "x-swarm") from None
    if isinstance(found, str):  # metadata values may have to be strings
        try:
            found = orjson.loads(found)
        except orjson.JSONDecodeError:
            raise invalid("metadata.swarm: must be a JSON object of task fields", "metadata.swarm") from None
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise invalid("swarm: must be an object of task fields", "swarm")
    return found


def _tool(raw: Any, where: str) -> ClientTool:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise invalid(f"{where}: must be {{'name', 'description', 'input_schema'}}", where)
    return ClientTool(name=str(raw["name"]), description=str(raw.get("description") or ""),
                      parameters=orjson.dumps(raw.get("input_schema") or {"type": "object"}).decode())


def message_id(task_id: str) -> str:
    return f"msg_{task_id}"


def stop_reason(answer: Answer) -> str:
    return "tool_use" if answer.tool_calls else "end_turn"


def _content(answer: Answer) -> list[dict[str, Any]]:
    if answer.tool_calls:
        return [{"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)} for c in answer.tool_calls]
    return [{"type": "text", "text": answer.text}]


def _input(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_unparsed_arguments": arguments}
    return value if isinstance(value, dict) else {"_unparsed_arguments": arguments}


def response(model: str, result: TaskResult, answer: Answer) -> dict[str, Any]:
    return {
        "id": message_id(result.task_id), "type": "message", "role": "assistant", "model": model,
        "content": _content(answer), "stop_reason": stop_reason(answer), "stop_sequence": None,
        "usage": {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
        "swarm": extension_of(result),
    }


def error_body(error: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(error.kind, "api_error"), "message": error.message}}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class Stream:
    """The events of one streamed message: :meth:`start` at once, pings while the task runs,
    then :meth:`answer` (blocks, ``message_delta`` with usage, ``message_stop``) or :meth:`error`."""

    keep_alive = _event("ping", {"type": "ping"})

    def __init__(self, model: str, task_id: str, include_usage: bool = True) -> None:
        self._model = model
        self._id = message_id(task_id)

    def start(self) -> bytes:
        return _event("message_start", {"type": "message_start", "message": {
            "id": self._id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}})

    def answer(self, result: TaskResult, answer: Answer) -> list[bytes]:
        out: list[bytes] = []
        for index, block in enumerate(_content(answer)):
            if block["type"] == "text":
                out.append(_event("content_block_start", {"type": "content_block_start", "index": index,
                                                          "content_block": {"type": "text", "text": ""}}))
                out.append(_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                          "delta": {"type": "text_delta", "text": block["text"]}}))
            else:
                out.append(_event("content_block_start", {"type": "content_block_start", "index": index,
                                                          "content_block": {**block, "input": {}}}))
                out.append(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                    "type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}}))
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        out.append(_event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": stop_reason(answer), "stop_sequence": None},
            "usage": {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
            "swarm": extension_of(result)}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return out

    def error(self, error: GatewayError) -> list[bytes]:
        return [_event("error", error_body(error))]
