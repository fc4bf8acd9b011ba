"""OpenAI Chat Completions, as the ``openai`` SDK reads it.

Request: https://platform.openai.com/docs/api-reference/chat/create (``messages``,
``tools``, ``temperature``, ``top_p``, ``seed``, ``stop``, ``max_tokens`` /
``max_completion_tokens``, ``stream``, ``stream_options.include_usage``; the SDK's
``extra_body={"swarm": {...}}`` arrives as the body's ``swarm``). Response, chunk and
error shapes: the ``chat.completion`` and ``chat.completion.chunk`` objects and
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from swarmstream.schemas.models import ChatMessage, ChatToolCall, ClientTool, TaskResult

from .chat import ChatCall
from .errors import GatewayError, invalid
from .outcome import Answer, extension_of

ERROR_TYPES = {
    "invalid_request": "invalid_request_error", "authentication": "authentication_error",
    "rate_limit": "rate_limit_exceeded", "timeout": "timeout", "overloaded": "server_overloaded",
    "not_found": "invalid_request_error", "failed": "server_error",
}


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise invalid(f"{where}[{i}]: only text parts are supported", where)
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise invalid(f"{where}: must be a string or a list of text parts", where)


def read_request(body: Any) -> ChatCall:
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: required", "model")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise invalid("messages: must be a non-empty list", "messages")
    messages = [_message(m, f"messages[{i}]") for i, m in enumerate(raw)]
    tools = [] if body.get("tool_choice") == "none" else [_tool(t, f"tools[{i}]") for i, t in enumerate(body.get("tools") or ())]
    if (body.get("n") or 1) != 1:
        raise invalid("n: only 1 choice per request (the swarm's candidates are in the response's swarm field)", "n")
    sampling: dict[str, Any] = {k: body[k] for k in ("temperature", "top_p", "seed") if body.get(k) is not None}
    tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if tokens is not None:
        sampling["max_tokens"] = tokens
    stop = body.get("stop")
    if stop is not None:
        sampling["stop"] = [stop] if isinstance(stop, str) else stop
    swarm = body.get("swarm") or {}
    if not isinstance(swarm, dict):
        raise invalid("swarm: must be an object of task fields", "swarm")
    options = body.get("stream_options") or {}
    return ChatCall(model=model, messages=messages, tools=tools, sampling=sampling, swarm=swarm,
                    stream=bool(body.get("stream")), include_usage=bool(options.get("include_usage")))


def _message(raw: Any, where: str) -> ChatMessage:
    if not isinstance(raw, dict):
        raise invalid(f"{where}: must be an object", where)
    role = raw.get("role")
    role = "system" if role == "developer" else role
    if role not in ("system", "user", "assistant", "tool"):
        raise invalid(f"{where}.role: {role!r} is not system, developer, user, assistant or tool", f"{where}.role")
    calls = [ChatToolCall(id=str(c.get("id", "")), name=str((c.get("function") or {}).get("name", "")),
                          arguments=str((c.get("function") or {}).get("arguments") or "{}"))
             for c in raw.get("tool_calls") or () if isinstance(c, dict)]
    return ChatMessage(role=role, content=_text(raw.get("content"), f"{where}.content"), tool_calls=calls,
                       tool_call_id=raw.get("tool_call_id") if role == "tool" else None)


def _tool(raw: Any, where: str) -> ClientTool:
    function = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise invalid(f"{where}: must be {{'type': 'function', 'function': {{'name', ...}}}}", where)
    return ClientTool(name=str(function["name"]), description=str(function.get("description") or ""),
                      parameters=orjson.dumps(function.get("parameters") or {"type": "object", "properties": {}}).decode())


def completion_id(task_id: str) -> str:
    return f"chatcmpl-{task_id}"


def _usage(answer: Answer) -> dict[str, int]:
    return {"prompt_tokens": answer.input_tokens, "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens}


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.tool_calls]


def finish_reason(answer: Answer) -> str:
    return "tool_calls" if answer.tool_calls else "stop"


def response(model: str, result: TaskResult, answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text if not answer.tool_calls else None}
    if answer.tool_calls:
        message["tool_calls"] = _tool_calls(answer)
    return {
        "id": completion_id(result.task_id), "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(answer), "logprobs": None}],
        "usage": _usage(answer), "swarm": extension_of(result),
    }


def error_body(error: GatewayError) -> dict[str, Any]:
    code = error.kind if error.kind != "invalid_request" else None
    return {"error": {"message": error.message, "type": ERROR_TYPES.get(error.kind, "server_error"),
                      "param": error.param, "code": code}}


class Stream:
    """The chunks of one streamed completion, in order: :meth:`start` at once, then (the task
    done) :meth:`answer` or :meth:`error`. Keep-alives are SSE comments, which the SDK skips."""

    keep_alive = b": keep-alive\n\n"

    def __init__(self, model: str, task_id: str, include_usage: bool) -> None:
        self._model = model
        self._id = completion_id(task_id)
        self._created = int(time.time())
        self._usage = include_usage

    def _chunk(self, delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
        body = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""}, None)

    def answer(self, result: TaskResult, answer: Answer) -> list[bytes]:
        out: list[bytes] = []
        if answer.tool_calls:
            out.append(self._chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(_tool_calls(answer))]},
                                   None))
        elif answer.text:
            out.append(self._chunk({"content": answer.text}, None))
        out.append(self._chunk({}, finish_reason(answer), swarm=extension_of(result)))
        if self._usage:
            out.append(b"data: " + orjson.dumps({"id": self._id, "object": "chat.completion.chunk",
                                                  "created": self._created, "model": self._model, "choices": [],
                                                  "usage": _usage(answer)}) + b"\n\n")
        out.append(b"data: [DONE]\n\n")
        return out

    def error(self, error: GatewayError) -> list[bytes]:
        return [b"data: " + orjson.dumps(error_body(error)) + b"\n\n", b"data: [DONE]\n\n"]
