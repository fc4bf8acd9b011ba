"""tools.yaml and the @tool decorator: what is declared, and errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from swarmstream.agents.tools.registry import (
    DEFAULT_TOOLS_PATH,
    HttpHandler,
    Registry,
    SideEffect,
    ToolsConfigError,
    load_tools,
    tool,
)


def test_the_shipped_tools_file_loads_the_demo_tools() -> None:
    registry = load_tools(DEFAULT_TOOLS_PATH)
    assert list(registry.tools) == ["calculator", "lookup", "convert_units", "send_email"]
    assert registry.tools["send_email"].side_effect is SideEffect.DANGEROUS
    assert registry.tools["calculator"].side_effect is SideEffect.READ
    assert registry.definitions(["lookup", "missing"])[0]["name"] == "lookup"


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "tools.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tools": [{"name": "x", "python": "no.such.module:f"}]}, "tools.yaml: tools[0] (x): python: handler 'no.such.module:f': cannot import"),
        ({"tools": [{"name": "x"}]}, "tools.yaml: tools[0]: give exactly one handler"),
        ({"tools": [{"name": "x", "http": "ftp://h"}]}, "http: must start with http://"),
        ({"tools": [{"name": "x", "http": "http://h/x"}]}, "input_schema: required for http and mcp tools"),
        ({"tools": [{"name": "x", "mcp": {"server": "nope", "tool": "t"}}]}, "unknown MCP server 'nope'"),
        ({"tools": [{"name": "c", "python": "swarmstream.agents.tools.builtin:calculator"},
                    {"name": "c", "python": "swarmstream.agents.tools.builtin:lookup"}]}, "duplicate tool 'c'"),
        ({"tools": [{"name": "x", "http": "http://h", "side_effect": "risky", "input_schema": {"type": "object"}}]},
         "tools[0].side_effect"),
        ({"tools": [{"name": "x", "http": "http://h", "input_schema": {"type": "string"}}]}, "must describe an object"),
        ({"tenants": {"acme": "nope"}}, "tenants.acme: unknown policy 'nope'"),
        ({"limits": {"max_turns": 0}}, "limits.max_turns"),
        ({"surprise": 1}, "surprise"),
        ({"mcp_servers": [{"name": "s"}]}, "give exactly one of url"),
    ],
)
def test_errors_name_the_file_and_the_path(tmp_path, data, message) -> None:
    with pytest.raises(ToolsConfigError) as info:
        load_tools(write(tmp_path, data))
    assert message in str(info.value)
    assert "tools.yaml" in str(info.value)


def test_an_http_tool_without_a_side_effect_is_dangerous(tmp_path) -> None:
    registry = load_tools(write(tmp_path, {"tools": [{"name": "h", "http": "http://h/x",
                                                     "input_schema": {"type": "object"}}]}))
    assert registry.tools["h"].side_effect is SideEffect.DANGEROUS
    assert registry.tools["h"].handler == HttpHandler("http://h/x")


@tool(side_effect="read", timeout_ms=500)
def greet(name: str, times: int = 1) -> str:
    """Greet someone.

    More detail the model does not need."""
    return " ".join([f"hello {name}"] * times)


def test_the_decorator_derives_the_schema_and_description() -> None:
    registry = Registry()
    spec = registry.add_function(greet)
    assert spec.description == "Greet someone."
    assert spec.input_schema["required"] == ["name"]
    assert spec.input_schema["properties"]["times"] == {"default": 1, "type": "integer"}
    assert spec.input_schema["additionalProperties"] is False
    assert (spec.side_effect, spec.timeout_ms) == (SideEffect.READ, 500)
    assert greet("ada") == "hello ada"  # still a plain function
    with pytest.raises(ToolsConfigError, match="declared twice"):
        registry.add_function(greet)


def test_the_decorator_refuses_an_unknown_side_effect() -> None:
    def spicy() -> None: ...

    with pytest.raises(ToolsConfigError, match="side_effect 'spicy' is not one of read, write"):
        tool(side_effect="spicy")(spicy)
