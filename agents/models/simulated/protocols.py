"""The two wire protocols the fleet speaks, as pure functions: request in, (status, headers,
body bytes) out. Bodies follow the providers' documented shapes so a provider written
against the simulator works against the real API, and the other way round:

- OpenAI chat completions: https://platform.openai.com/docs/api-reference/chat/object
  errors `{"error": {"message", "type", "param", "code"}}`
- Anthropic messages: https://docs.anthropic.com/en/api/messages
  errors `{"type": "error", "error": {"type", "message"}}`, 529 = overloaded

Everything is serialised with orjson (~0.5 us a body); bodies that never change are built
once at import.
"""

import math
import re
import time
from collections.abc import Mapping
from typing import Any, Literal

import orjson

Protocol = Literal["openai", "anthropic"]
Reply = tuple[int, Mapping[str, str], bytes]

JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}
RETRY_HEADERS: Mapping[str, str] = {"Content-Type": "application/json", "Retry-After": "1"}

# The context windows the error messages quote; nothing is enforced against them.
OPENAI_CONTEXT_TOKENS = 128_000
ANTHROPIC_CONTEXT_TOKENS = 200_000


class RequestError(ValueError):
    """A request the real API would reject with 400; the message says what is wrong."""


# --- reading requests -----------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts/blocks whose text parts count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def read_messages(req: Mapping[str, Any], protocol: Protocol) -> tuple[str, int]:
    """(the last user message's text, characters of all text incl. the system prompt).
    Raises RequestError for a body the real API would refuse."""
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages: must be a non-empty list")
    chars = len(_text_of(req.get("system"))) if protocol == "anthropic" else 0
    last_user = ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise RequestError(f"messages[{i}]: must be an object with a role")
        text = _text_of(message.get("content"))
        chars += len(text)
        if message["role"] == "user":
            last_user = text
    if protocol == "anthropic" and not isinstance(req.get("max_tokens"), int):
        raise RequestError("max_tokens: Field required")
    return last_user, chars


# --- success bodies -------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\s?\w+|\s?[^\w\s]|\s+")


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def openai_logprobs(
    prefix: str, answer: str, answer_logprob: float, alternatives: tuple[str, ...], top_n: int
) -> dict[str, Any]:
    """Per-token logprobs in OpenAI's shape: the wording is near-certain; the first answer
    token carries the model's confidence, the other candidate answers share the rest."""
    content: list[dict[str, Any]] = []

    def entry(token: str, logprob: float, top: list[dict[str, Any]]) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": top}

    for token in _tokens(prefix):
        top = [{"token": token, "logprob": -1e-4, "bytes": list(token.encode())}][:top_n]
        content.append(entry(token, -1e-4, top))
    for i, token in enumerate(_tokens(answer)):
        if i == 0:
            top = [{"token": token, "logprob": answer_logprob, "bytes": list(token.encode())}]
            if alternatives:
                # spread what is left of the probability mass over the other answers
                rest = max(1e-6, 1.0 - math.exp(answer_logprob)) / len(alternatives)
                for alt in alternatives:
                    alt_token = (_tokens(alt) or [alt])[0]
                    top.append({"token": alt_token, "logprob": math.log(rest), "bytes": list(alt_token.encode())})
            content.append(entry(token, answer_logprob, top[:top_n]))
        else:
            top = [{"token": token, "logprob": -1e-3, "bytes": list(token.encode())}][:top_n]
            content.append(entry(token, -1e-3, top))
    return {"content": content, "refusal": None}


def openai_completion(
    *,
    completion_id: str,
    model: str,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    logprobs: dict[str, Any] | None = None,
) -> bytes:
    return orjson.dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": logprobs,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_swarmstream_sim",
        }
    )


def anthropic_message(
    *, message_id: str, model: str, content: str | None, stop_reason: str, input_tokens: int, output_tokens: int
) -> bytes:
    blocks = [] if content is None else [{"type": "text", "text": content}]
    return orjson.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    )


def openai_tool_calls(*, completion_id: str, model: str, calls: list[tuple[str, str, str]], prompt_tokens: int,
                      completion_tokens: int) -> bytes:
    """A completion that calls tools: ``(id, name, arguments JSON text)`` each, finish_reason tool_calls."""
    return orjson.dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None,
                            "tool_calls": [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                                           for i, n, a in calls]},
                "logprobs": None,
                "finish_reason": "tool_calls",
            }],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
    )


def anthropic_tool_use(*, message_id: str, model: str, calls: list[tuple[str, str, str]], input_tokens: int,
                       output_tokens: int) -> bytes:
    """A message that calls tools: one ``tool_use`` block per call, stop_reason tool_use. Arguments
    that are not a JSON object travel as ``{"_unparsed_arguments": text}`` (input must be an object)."""
    blocks = []
    for call_id, name, arguments in calls:
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            value = None
        blocks.append({"type": "tool_use", "id": call_id, "name": name,
                       "input": value if isinstance(value, dict) else {"_unparsed_arguments": arguments}})
    return orjson.dumps(
        {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": blocks,
         "stop_reason": "tool_use", "stop_sequence": None,
         "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}
    )


# --- error bodies ---------------------------------------------------------------------------


def openai_error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def anthropic_error_body(type_: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


# failure class -> (status, headers, body), for the classes whose body never changes
_OPENAI_FAILURES: dict[str, Reply] = {
    "server_error": (
        500,
        JSON_HEADERS,
        openai_error_body("The server had an error while processing your request. Sorry about that!", "server_error"),
    ),
    "rate_limited": (
        429,
        RETRY_HEADERS,
        openai_error_body(
            "Rate limit reached for requests per min (RPM). Please try again in 1s.", "requests", "rate_limit_exceeded"
        ),
    ),
    "auth": (
        401,
        JSON_HEADERS,
        openai_error_body(
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
    ),
    "bad_request": (
        400,
        JSON_HEADERS,
        openai_error_body(
            "Invalid value for 'messages': the request could not be parsed.", "invalid_request_error", None, "messages"
        ),
    ),
    "timeout": (
        504,
        JSON_HEADERS,
        openai_error_body("The server timed out waiting for the model.", "server_error", "timeout"),
    ),
}
_ANTHROPIC_FAILURES: dict[str, Reply] = {
    "server_error": (529, JSON_HEADERS, anthropic_error_body("overloaded_error", "Overloaded")),
    "rate_limited": (
        429,
        RETRY_HEADERS,
        anthropic_error_body(
            "rate_limit_error", "This request would exceed the rate limit for your organization. Retry after 1s."
        ),
    ),
    "auth": (401, JSON_HEADERS, anthropic_error_body("authentication_error", "invalid x-api-key")),
    "bad_request": (
        400,
        JSON_HEADERS,
        anthropic_error_body("invalid_request_error", "messages: the request could not be parsed"),
    ),
    "timeout": (504, JSON_HEADERS, anthropic_error_body("timeout_error", "Request timed out")),
}


def failure_reply(protocol: Protocol, failure: str, input_tokens: int) -> Reply:
    """The error response of a failure class that is answered with a non-200 status."""
    if failure == "context_length":
        if protocol == "openai":
            tokens = max(input_tokens, OPENAI_CONTEXT_TOKENS + 1)
            body = openai_error_body(
                f"This model's maximum context length is {OPENAI_CONTEXT_TOKENS} tokens. However, your messages "
                f"resulted in {tokens} tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            )
        else:
            tokens = max(input_tokens, ANTHROPIC_CONTEXT_TOKENS + 1)
            body = anthropic_error_body(
                "invalid_request_error", f"prompt is too long: {tokens} tokens > {ANTHROPIC_CONTEXT_TOKENS} maximum"
            )
        return 400, JSON_HEADERS, body
    table = _OPENAI_FAILURES if protocol == "openai" else _ANTHROPIC_FAILURES
    return table[failure]


def request_error_reply(protocol: Protocol, message: str) -> Reply:
    if protocol == "openai":
        return 400, JSON_HEADERS, openai_error_body(message, "invalid_request_error")
    return 400, JSON_HEADERS, anthropic_error_body("invalid_request_error", message)


def model_not_found_reply(protocol: Protocol, model: object, hint: str = "") -> Reply:
    if protocol == "openai":
        message = f"The model `{model}` does not exist or you do not have access to it.{hint}"
        return 404, JSON_HEADERS, openai_error_body(message, "invalid_request_error", "model_not_found", "model")
    return 404, JSON_HEADERS, anthropic_error_body("not_found_error", f"model: {model}{hint}")
