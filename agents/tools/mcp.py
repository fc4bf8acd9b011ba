"""Tools of MCP servers, through the official ``mcp`` SDK (stdio and streamable HTTP).

:func:`import_server_tools` lists a server's tools and adds them to a registry with
their input and output schemas. What a tool may do comes from OUR configuration:
``mcp_servers[].side_effects`` names each tool's class, and a tool not named there is
``dangerous`` (it needs a person's approval). The server's own ``readOnlyHint`` and
``destructiveHint`` are hints written by a third party; they are recorded in the
description the model reads, never used to allow anything.

Each call opens its own client session (``mcp.Client``), so a server that restarts
or drops a connection costs one call, not the worker's session: an HTTP call costs
an initialise round trip more, a stdio call a process start (~0.5 s); use HTTP for
tools called often.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
from swarmstream.agents.tools.registry import (
    McpHandler,
    McpServerConfig,
    Registry,
    SideEffect,
    ToolSpec,
)


class McpToolError(RuntimeError):
    """The server reported the call as an error (``isError``); the message is the server's text."""


def _client(server: McpServerConfig) -> AbstractAsyncContextManager[Any]:
    from mcp import Client, StdioServerParameters

    if server.url is not None:
        return Client(server.url)  # type: ignore[no-any-return]
    assert server.command is not None
    import os

    params = StdioServerParameters(command=server.command[0], args=server.command[1:],
                                   env={**os.environ, **server.env} if server.env else None)
    return Client(params)  # type: ignore[no-any-return]


def spec_of_mcp_tool(server: McpServerConfig, listed: Any) -> ToolSpec:
    """Our ToolSpec of one listed MCP tool: its schemas, OUR side-effect class."""
    hints = []
    annotations = getattr(listed, "annotations", None)
    if annotations is not None:
        if annotations.read_only_hint:
            hints.append("the server says it is read-only")
        if annotations.destructive_hint:
            hints.append("the server says it may be destructive")
    description = (listed.description or listed.name) + (f" ({'; '.join(hints)})" if hints else "")
    side_effect = server.side_effects.get(listed.name, SideEffect.DANGEROUS)
    input_schema = dict(listed.input_schema or {"type": "object"})
    input_schema.setdefault("type", "object")
    return ToolSpec(
        name=f"{server.prefix}{listed.name}",
        description=description,
        input_schema=input_schema,
        handler=McpHandler(server.name, listed.name),
        side_effect=side_effect,
        output_schema=dict(listed.output_schema) if listed.output_schema else None,
        timeout_ms=server.timeout_ms,
        cost_micros=server.cost_micros,
    )


async def list_server_tools(server: McpServerConfig) -> list[ToolSpec]:
    async with _client(server) as client:
        listed = await client.list_tools()
    tools = [spec_of_mcp_tool(server, t) for t in listed.tools]
    if server.include is not None:
        tools = [t for t in tools if t.name.removeprefix(server.prefix) in server.include]
    return tools


async def import_server_tools(registry: Registry) -> list[str]:
    """Add every configured server's tools to ``registry``; returns the names added.
    A tool already declared in tools.yaml (an ``mcp:`` entry) keeps its declaration."""
    added = []
    for server in registry.mcp_servers.values():
        for spec in await list_server_tools(server):
            if spec.name not in registry.tools:
                registry.add(spec, where=f"mcp server {server.name!r}")
                added.append(spec.name)
    return added


async def call_mcp_tool(server: McpServerConfig, tool: str, arguments: dict[str, Any]) -> Any:
    """The tool's output: its structured content when it has one, else its text (parsed as JSON
    when it is JSON). McpToolError when the server flags the result as an error."""
    async with _client(server) as client:
        result = await client.call_tool(tool, arguments)
    texts = [getattr(block, "text", "") for block in result.content or () if getattr(block, "type", "") == "text"]
    if result.is_error:
        raise McpToolError("; ".join(t for t in texts if t) or f"MCP tool {tool!r} failed")
    if result.structured_content is not None:
        return result.structured_content
    text = "\n".join(texts)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"text": text}
