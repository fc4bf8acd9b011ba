"""The HTTP edge against a real loopback server: what a call from a ``JsonTarget`` sends
and reads, now that it skips httpx's client machinery and goes to the transport."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from swarmstream.agents.models.http import ClientPool, post_json

KEY = "sk-test-http-0123456789"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append(request)
        body = orjson.dumps({"echo": await request.json(), "peer": request.transport.get_extra_info("peername")[1]})
        return web.Response(body=gzip.compress(body), headers={
            "content-type": "application/json", "content-encoding": "gzip", "set-cookie": "session=abc; Path=/"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


async def test_a_call_sends_the_joined_url_and_every_header_and_reads_a_compressed_body(
    server: tuple[str, list[web.Request]]
) -> None:
    base_url, seen = server
    async with ClientPool() as pool:
        target = pool.target(base_url, "chat/completions", {"authorization": f"Bearer {KEY}"})
        first = await post_json(target, body={"n": 1}, timeout_s=5)
        second = await post_json(target, body={"n": 2}, timeout_s=5)
    assert first.status_code == 200
    assert orjson.loads(first.body)["echo"] == {"n": 1}  # gzip decoded, as the client decoded it
    assert [r.path for r in seen] == ["/v1/chat/completions"] * 2
    headers = seen[0].headers
    assert headers["authorization"] == f"Bearer {KEY}" and headers["content-type"] == "application/json"
    assert "gzip" in headers["accept-encoding"] and headers["user-agent"].startswith("python-httpx")
    assert "cookie" not in seen[1].headers  # a model API call is stateless: set cookies are not sent back
    # the first response was read to its end and its connection went back to the pool
    assert orjson.loads(first.body)["peer"] == orjson.loads(second.body)["peer"]
    assert KEY not in repr(target)
