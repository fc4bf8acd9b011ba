"""Running one allowed call: the handler, its timeout, its output schema. I/O, no Faust.

Python handlers: coroutine functions are awaited on the worker's loop; plain functions
run in a thread (``asyncio.to_thread``), so a slow one never blocks a partition. A
thread cannot be cancelled: at the timeout the call is reported as timed out and the
thread's late result is thrown away. HTTP handlers get the arguments as a JSON POST
and answer with the output as JSON. MCP handlers go through ``mcp.call_mcp_tool``.

Every failure becomes an :class:`Outcome` with status ``error`` or ``timeout`` and a
message for the model; nothing here raises.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.tools import mcp
from swarmstream.agents.tools.registry import (
    HttpHandler,
    McpHandler,
    PythonHandler,
    Registry,
    ToolSpec,
    import_callable,
)
from swarmstream.agents.tools.validation import OutputError, validate_output

MAX_CONTENT_CHARS = 64_000
"""A tool result longer than this is cut before it travels: it would bloat every later turn
(context windowing cuts older results further)."""


@dataclass(frozen=True)
class Outcome:
    status: str  # ok | error | timeout
    content: str  # output as JSON text (ok), or what went wrong
    latency_ms: int = 0
    cost_micros: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "content": self.content, "latency_ms": self.latency_ms,
                "cost_micros": self.cost_micros}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(data["status"], data["content"], int(data.get("latency_ms", 0)), int(data.get("cost_micros", 0)))


class Executor:
    def __init__(self, registry: Registry, pool: ClientPool | None = None) -> None:
        self._registry = registry
        self._pool = pool or ClientPool()
        self._functions: dict[str, Callable[..., Any]] = {}

    async def run(self, spec: ToolSpec, arguments: dict[str, Any], *, budget_ms: int) -> Outcome:
        """Call the tool within ``min(spec.timeout_ms, budget_ms)``; validate its output."""
        limit_ms = max(1, min(spec.timeout_ms, budget_ms))
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit_ms / 1000):
                output = await self._call(spec, arguments)
            validate_output(spec.name, spec.output_schema, output)
            content = orjson.dumps(output, option=orjson.OPT_SORT_KEYS).decode()
            status = "ok"
        except TimeoutError:
            content, status = f"timeout: {spec.name!r} did not finish within {limit_ms} ms", "timeout"
        except OutputError as exc:
            content, status = str(exc), "error"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a tool's failure is the model's information, not ours
            content, status = f"tool error: {type(exc).__name__}: {exc}", "error"
        if len(content) > MAX_CONTENT_CHARS:
            content = content[:MAX_CONTENT_CHARS] + f"…[cut at {MAX_CONTENT_CHARS} chars]"
        latency_ms = int((time.monotonic() - started) * 1000)
        return Outcome(status, content, latency_ms, spec.cost_micros if status == "ok" else 0)

    async def _call(self, spec: ToolSpec, arguments: dict[str, Any]) -> Any:
        handler = spec.handler
        if isinstance(handler, PythonHandler):
            function = self._functions.get(handler.target)
            if function is None:
                function = self._functions[handler.target] = import_callable(handler.target)
            if inspect.iscoroutinefunction(function):
                return await function(**arguments)
            return await asyncio.to_thread(function, **arguments)
        if isinstance(handler, HttpHandler):
            url = httpx.URL(handler.url)
            client = self._pool.get(f"{url.scheme}://{url.netloc.decode()}")
            response = await client.post(url.raw_path.decode().lstrip("/"), content=orjson.dumps(arguments),
                                         headers={"content-type": "application/json"})
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
            return orjson.loads(response.content) if response.content else None
        assert isinstance(handler, McpHandler)
        server = self._registry.mcp_servers[handler.server]
        return await mcp.call_mcp_tool(server, handler.tool, arguments)
