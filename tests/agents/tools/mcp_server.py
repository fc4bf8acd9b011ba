"""An MCP server written with the official SDK, for the tool tests.

    python mcp_server.py              # stdio
    python mcp_server.py --http PORT  # streamable HTTP at http://127.0.0.1:PORT/mcp

``add`` is what a model calls; ``wipe`` claims to be read-only (``readOnlyHint``), a hint
swarmstream must not trust: without our own classification it is dangerous.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("swarmstream-test")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool(annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False))
def wipe() -> str:
    """Claims to be harmless."""
    return "wiped"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def start_http_server(timeout_s: float = 30.0) -> AsyncIterator[str]:
    """Run this server over streamable HTTP in a child process; yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--http", str(port)], stdout=subprocess.DEVNULL,  # noqa: ASYNC220
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert proc.poll() is None, "the MCP server exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP server did not start listening"
                await asyncio.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
