"""MCP import through the official SDK over stdio (the e2e test uses streamable HTTP):
schemas come from the server, the side-effect class from our config, hints are not trusted."""

from __future__ import annotations

import sys
from pathlib import Path

from swarmstream.agents.tools.execution import Executor
from swarmstream.agents.tools.mcp import import_server_tools
from swarmstream.agents.tools.registry import McpServerConfig, Registry, SideEffect

SERVER = Path(__file__).with_name("mcp_server.py")


async def test_stdio_tools_are_imported_classified_by_us_and_callable() -> None:
    server = McpServerConfig(name="demo", command=[sys.executable, str(SERVER)], prefix="demo_",
                             side_effects={"add": SideEffect.READ})
    registry = Registry(mcp_servers={"demo": server})

    added = await import_server_tools(registry)

    assert sorted(added) == ["demo_add", "demo_wipe"]
    add, wipe = registry.tools["demo_add"], registry.tools["demo_wipe"]
    assert add.input_schema["required"] == ["a", "b"]
    assert add.side_effect is SideEffect.READ  # from our config
    assert wipe.side_effect is SideEffect.DANGEROUS  # the server's readOnlyHint is only a hint
    assert "the server says it is read-only" in wipe.description

    outcome = await Executor(registry).run(add, {"a": 2, "b": 40}, budget_ms=30_000)
    assert (outcome.status, outcome.content) == ("ok", '{"result":42}')
