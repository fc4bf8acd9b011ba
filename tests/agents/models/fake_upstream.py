"""A loopback upstream that speaks both protocols, for the provider contract suite.

One aiohttp.web server serves ``/v1/chat/completions`` (OpenAI) and
``/v1/messages`` (Anthropic). The user prompt names the scenario to play, so one
server and one pooled client cover every case. Bodies copy the real shapes of
OpenAI ``chat.completion`` objects and Anthropic ``message`` objects, and of
each API's error JSON, as documented and as observed on the wire.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from swarmstream.agents.models.http import ClientPool

OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"

SLOW_S = 1.0
"""Server-side stall for timeout scenarios; tests give the call ~0.2 s, so this only must be larger."""


@dataclass
class Received:
    """What the upstream saw: proves what the provider sends (headers, body)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


# --- realistic bodies --------------------------------------------------------


def openai_completion(
    text: str | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    logprobs: list[float] | None = None,
    prompt_tokens: int = 19,
    completion_tokens: int = 3,
) -> dict[str, Any]:
    """A ``chat.completion`` object as api.openai.com returns it."""
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": OPENAI_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": refusal, "annotations": []},
                "logprobs": None
                if logprobs is None
                else {
                    "content": [
                        {"token": f"t{i}", "logprob": lp, "bytes": [116, 48 + i], "top_logprobs": []}
                        for i, lp in enumerate(logprobs)
                    ],
                    "refusal": None,
                },
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def anthropic_message(
    blocks: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    input_tokens: int = 19,
    output_tokens: int = 3,
) -> dict[str, Any]:
    """A ``message`` object as api.anthropic.com returns it."""
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }


def openai_error(status: int, message: str, kind: str, code: str | None, **headers: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers={"x-request-id": "req_6c9e1f0d2b", **headers})


def anthropic_error(status: int, kind: str, message: str, **headers: str) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    return web.json_response(body, status=status, headers={"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy", **headers})


def _key_of(request: web.Request) -> str:
    auth = request.headers.get("authorization", "")
    return request.headers.get("x-api-key") or auth.removeprefix("Bearer ")


# --- scenarios: name -> handler, per protocol --------------------------------

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


async def _slow(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    await asyncio.sleep(SLOW_S)
    return web.json_response({})


async def _trickle(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """Headers at once, then a byte every 50 ms: no single read stalls, only a total timeout stops it."""
    response = web.StreamResponse(status=200, headers={"content-type": "application/json"})
    await response.prepare(request)
    for _ in range(round(SLOW_S / 0.05)):
        await response.write(b" ")
        await asyncio.sleep(0.05)
    await response.write(b"{}")
    return response


async def _html_502(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html")


async def _not_json_200(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return web.Response(status=200, text='{"id": "chatcmpl-trunc', content_type="application/json")


def _openai_logprobs(body: dict[str, Any]) -> list[float] | None:
    return [-0.1, -0.2, -0.3] if body.get("logprobs") else None


OPENAI: dict[str, Handler] = {
    "ok": lambda r, b: _json(openai_completion("B) cat", logprobs=_openai_logprobs(b))),
    "length": lambda r, b: _json(openai_completion("The answer is", finish_reason="length", completion_tokens=256)),
    "refusal": lambda r, b: _json(openai_completion(None, refusal="I'm sorry, but I can't help with that.")),
    "content_filter": lambda r, b: _json(openai_completion("", finish_reason="content_filter")),
    "rate_limited": lambda r, b: _resp(
        openai_error(
            429,
            "Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1. Please try again in 20s.",
            "requests",
            "rate_limit_exceeded",
            **{"retry-after": "2", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"},
        )
    ),
    "quota": lambda r, b: _resp(
        openai_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
    ),
    "server_error": lambda r, b: _resp(
        openai_error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )
    ),
    "overloaded": lambda r, b: _resp(
        openai_error(503, "The engine is currently overloaded, please try again later.", "server_error", None)
    ),
    "auth": lambda r, b: _resp(
        openai_error(
            401,
            f"Incorrect API key provided: {_key_of(r)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    ),
    "forbidden": lambda r, b: _resp(
        openai_error(
            403, f"Project does not have access to model gpt-4o-mini (key {_key_of(r)})", "invalid_request_error", None
        )
    ),
    "bad_request": lambda r, b: _resp(
        openai_error(
            400,
            "Invalid value for 'temperature': expected a decimal between 0 and 2.",
            "invalid_request_error",
            "invalid_value",
        )
    ),
    "not_found": lambda r, b: _resp(
        openai_error(
            404,
            "The model `gpt-9` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )
    ),
    "context_length": lambda r, b: _resp(
        openai_error(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "130412 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
        )
    ),
    "request_timeout": lambda r, b: _resp(openai_error(408, "Request timed out.", "timeout", None)),
    "slow": _slow,
    "trickle": _trickle,
    "html_502": _html_502,
    "not_json_200": _not_json_200,
}

ANTHROPIC: dict[str, Handler] = {
    "ok": lambda r, b: _json(anthropic_message([{"type": "text", "text": "B) "}, {"type": "text", "text": "cat"}])),
    "length": lambda r, b: _json(
        anthropic_message([{"type": "text", "text": "The answer is"}], stop_reason="max_tokens", output_tokens=256)
    ),
    "refusal": lambda r, b: _json(anthropic_message([], stop_reason="refusal", output_tokens=0)),
    "rate_limited": lambda r, b: _resp(
        anthropic_error(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute.",
            **{"retry-after": "2", "anthropic-ratelimit-requests-remaining": "0"},
        )
    ),
    "server_error": lambda r, b: _resp(anthropic_error(500, "api_error", "Internal server error")),
    "overloaded": lambda r, b: _resp(anthropic_error(529, "overloaded_error", "Overloaded")),
    "auth": lambda r, b: _resp(anthropic_error(401, "authentication_error", f"invalid x-api-key: {_key_of(r)}")),
    "forbidden": lambda r, b: _resp(
        anthropic_error(403, "permission_error", f"Your API key {_key_of(r)} does not have permission to use the model.")
    ),
    "bad_request": lambda r, b: _resp(
        anthropic_error(400, "invalid_request_error", "temperature: range: 0..1")
    ),
    "not_found": lambda r, b: _resp(anthropic_error(404, "not_found_error", "model: claude-9")),
    "context_length": lambda r, b: _resp(
        anthropic_error(400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum")
    ),
    "request_timeout": lambda r, b: _resp(anthropic_error(408, "timeout_error", "Request timed out")),
    "slow": _slow,
    "trickle": _trickle,
    "html_502": _html_502,
    "not_json_200": _not_json_200,
}


async def _json(body: dict[str, Any]) -> web.StreamResponse:
    return web.json_response(body, headers={"x-request-id": "req_6c9e1f0d2b"})


async def _resp(response: web.Response) -> web.StreamResponse:
    return response


@dataclass
class FakeUpstream:
    url: str
    received: list[Received] = field(default_factory=list)


def _prompt_of(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


@pytest.fixture(scope="session")
async def upstream() -> AsyncIterator[FakeUpstream]:
    """The loopback upstream on a free port of 127.0.0.1, for the whole session."""
    fake = FakeUpstream(url="")

    def route(scenarios: dict[str, Handler]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            fake.received.append(Received(request.path, dict(request.headers), body))
            return await scenarios[_prompt_of(body)](request, body)

        return handle

    app = web.Application()
    app.router.add_post("/v1/chat/completions", route(OPENAI))
    app.router.add_post("/v1/messages", route(ANTHROPIC))
    # Cancel a stalled handler when the client gives up, so teardown does not wait for it.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture(scope="session")
async def hangup_url() -> AsyncIterator[str]:
    """A server that accepts, reads the request, and closes the socket without answering."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"
    server.close()
    await server.wait_closed()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens (port bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    async with ClientPool() as client_pool:
        yield client_pool
