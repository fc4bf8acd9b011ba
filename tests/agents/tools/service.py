"""A loopback HTTP service for tool tests: every path counts its calls, so a test can prove
what ran (and what never did) in a worker in another process."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web


class ToolService:
    """``POST /<name>`` counts and answers ``{"value": ..., "echo": <arguments>}``;
    ``/slow`` answers after ``slow_s``."""

    def __init__(self, *, slow_s: float = 3.0) -> None:
        self.calls: Counter[str] = Counter()
        self.bodies: dict[str, list[Any]] = {}
        self.slow_s = slow_s
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> ToolService:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = orjson.loads(await request.read() or b"{}")
        self.calls[name] += 1
        self.bodies.setdefault(name, []).append(body)
        if name == "slow":
            await asyncio.sleep(self.slow_s)
        text = body.get("text") if isinstance(body, dict) else None
        return web.json_response({"value": text if text is not None else f"{name}-ok", "echo": body})


def http_tool(service: ToolService, name: str, side_effect: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "http": f"{service.url}/{name}", "side_effect": side_effect,
            "description": f"test tool {name}",
            "input_schema": {"type": "object", "properties": {"text": {"type": "string"}, "key": {"type": "string"},
                                                              "api_key": {"type": "string"}}},
            **extra}


def write_tools_file(path: Path, tools: list[dict[str, Any]], **sections: Any) -> Path:
    """A tools.yaml with the demo tools plus ``tools``, and any other sections."""
    builtin = [{"name": n, "python": f"swarmstream.agents.tools.builtin:{n}"}
               for n in ("calculator", "lookup", "convert_units", "send_email")]
    path.write_text(yaml.safe_dump({"tools": builtin + tools, **sections}, sort_keys=False))
    return path
