"""What a tool is, where tools are declared, and how a declaration is checked.

A tool is a name, a description written for the model, JSON Schemas for its
input and output, a handler, a timeout, a side-effect class and a cost. Tools
come from three places, all ending in one :class:`Registry`:

- ``tools.yaml`` (``tools:``): a Python callable by dotted path, an HTTP endpoint
  (POST the arguments as JSON, the reply's JSON is the output), or a tool of an
  MCP server named under ``mcp_servers:``;
- the :func:`tool` decorator on a Python function (its input schema is derived
  from the signature when none is given), registered with :meth:`Registry.add_function`
  or named by dotted path in ``tools.yaml``;
- MCP servers (``mcp.py``): their tools are imported with their schemas, and their
  side-effect class comes from OUR configuration (``mcp_servers[].side_effects``).
  A server's ``readOnlyHint``/``destructiveHint`` are hints from a third party and
  are never trusted: an MCP tool we did not classify is ``dangerous``.

A config error names the file, the path inside it and what to do, like the
catalog's (``agents/configfile.py``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from swarmstream.agents.configfile import format_validation_error, read_yaml_mapping

DEFAULT_TOOLS_PATH = Path(__file__).with_name("tools.yaml")
"""The demo tools shipped with the package: calculator, lookup, unit conversion, send_email."""

DEFAULT_TIMEOUT_MS = 5_000
"""A tool call's default limit: long enough for an HTTP round trip to a slow service,
short enough that a stuck tool cannot eat a task's whole deadline (30 s by default)."""


class SideEffect(StrEnum):
    """What a call may do to the world; permissions, votes and approvals key on it."""

    READ = "read"  # no effect: safe to share between models and to repeat
    WRITE = "write"  # changes our own state: voted on in consensus tasks
    EXTERNAL = "external"  # talks to a third party (may cost or leak), no destructive effect
    DANGEROUS = "dangerous"  # irreversible or outward-facing: needs a person's approval


class ToolsConfigError(ValueError):
    """tools.yaml (or a decorated tool) is invalid; the message names where and what."""


@dataclass(frozen=True)
class PythonHandler:
    target: str  # "package.module:function" (or "package.module.function")


@dataclass(frozen=True)
class HttpHandler:
    url: str


@dataclass(frozen=True)
class McpHandler:
    server: str
    tool: str


Handler = PythonHandler | HttpHandler | McpHandler


@dataclass(frozen=True)
class ToolSpec:
    """One tool as the registry holds it. ``cost_micros`` is charged per executed call."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: Handler
    side_effect: SideEffect = SideEffect.DANGEROUS
    output_schema: Mapping[str, Any] | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    cost_micros: int = 0

    def definition(self) -> dict[str, Any]:
        """What a model is shown: name, description, input schema (providers render it)."""
        return {"name": self.name, "description": self.description, "input_schema": dict(self.input_schema)}


# --- the decorator ---------------------------------------------------------------------------

TOOL_ATTRIBUTE = "__swarm_tool__"


def tool(
    name: str | None = None,
    *,
    description: str | None = None,
    side_effect: SideEffect | str = SideEffect.DANGEROUS,
    input_schema: Mapping[str, Any] | None = None,
    output_schema: Mapping[str, Any] | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    cost_micros: int = 0,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a Python function a tool. The function is returned unchanged (it stays callable
    and testable); the declaration rides on it. Without ``input_schema`` the schema is derived
    from the signature's type hints; without ``description``, the docstring's first paragraph.
    The side-effect class defaults to ``dangerous``: a tool is safe only when someone says so."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        where = f"@tool on {function.__module__}.{function.__qualname__}"
        doc = inspect.getdoc(function) or ""
        spec = ToolSpec(
            name=name or function.__name__,
            description=description or doc.split("\n\n")[0].strip() or (name or function.__name__),
            input_schema=dict(input_schema) if input_schema is not None else schema_from_signature(function),
            handler=PythonHandler(f"{function.__module__}:{function.__qualname__}"),
            side_effect=_side_effect(side_effect, where),
            output_schema=dict(output_schema) if output_schema is not None else None,
            timeout_ms=timeout_ms,
            cost_micros=cost_micros,
        )
        check_spec(spec, where)
        setattr(function, TOOL_ATTRIBUTE, spec)
        return function

    return decorate


def schema_from_signature(function: Callable[..., Any]) -> dict[str, Any]:
    """A JSON Schema object for the function's keyword arguments, from its type hints (pydantic)."""
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = parameter.annotation if parameter.annotation is not inspect.Parameter.empty else Any
        default = parameter.default if parameter.default is not inspect.Parameter.empty else ...
        fields[parameter.name] = (annotation, default)
    model = create_model(f"{function.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def _side_effect(value: SideEffect | str, where: str) -> SideEffect:
    try:
        return SideEffect(value)
    except ValueError:
        raise ToolsConfigError(
            f"{where}: side_effect {value!r} is not one of {', '.join(SideEffect)}"
        ) from None


def check_spec(spec: ToolSpec, where: str) -> None:
    """Schemas must be valid JSON Schema objects: a broken one would reject every call at run time."""
    for label, schema in (("input_schema", spec.input_schema), ("output_schema", spec.output_schema)):
        if schema is None:
            continue
        try:
            jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ToolsConfigError(f"{where}: {label}: not a valid JSON Schema: {exc.message}") from None
    if spec.input_schema.get("type", "object") != "object":
        raise ToolsConfigError(f"{where}: input_schema: must describe an object (models pass named arguments)")
    if spec.timeout_ms <= 0:
        raise ToolsConfigError(f"{where}: timeout_ms must be > 0")


def import_callable(target: str) -> Callable[..., Any]:
    """``package.module:function`` (or the last dot as the separator) -> the function."""
    module_name, sep, attribute = target.partition(":")
    if not sep:
        module_name, _, attribute = target.rpartition(".")
    if not module_name or not attribute:
        raise ToolsConfigError(f"handler {target!r}: expected 'package.module:function'")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise ToolsConfigError(f"handler {target!r}: cannot import: {exc}") from None
    if not callable(value):
        raise ToolsConfigError(f"handler {target!r}: not callable")
    return value  # type: ignore[no-any-return]


# --- tools.yaml ------------------------------------------------------------------------------


class Limits(BaseModel):
    """How long a tool loop may run, and how long calls may wait (per model of a task)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_turns: int = Field(8, ge=1, le=64, description="model turns, the answering one included")
    max_tool_calls: int = Field(16, ge=1, le=1024, description="tool calls per model per task")
    max_identical_calls: int = Field(
        2, ge=1, description="the same tool with the same arguments this often is a loop; the next stops it"
    )
    approval_timeout_ms: int = Field(60_000, gt=0, description="a dangerous call waits this long for an approval")
    vote_timeout_ms: int = Field(5_000, gt=0, description="a write proposal in consensus waits this long for votes")
    keep_last_turns: int = Field(2, ge=1, description="context windowing: these turns are never shortened")
    tool_result_chars: int = Field(2_000, ge=64, description="context windowing: older results are cut to this")


class _ToolEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    python: str | None = None
    http: str | None = None
    mcp: dict[str, str] | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    timeout_ms: int | None = Field(None, gt=0)
    side_effect: SideEffect | None = None
    cost_micros: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_handler(self) -> _ToolEntry:
        given = [kind for kind in ("python", "http", "mcp") if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one handler: python, http or mcp (got {', '.join(given) or 'none'})")
        if self.http is not None and not self.http.startswith(("http://", "https://")):
            raise ValueError(f"http: must start with http:// or https://, got {self.http!r}")
        if self.mcp is not None and set(self.mcp) - {"server", "tool"} or (self.mcp is not None and "server" not in self.mcp):
            raise ValueError("mcp: expected {server: <name under mcp_servers>, tool: <the server's tool name>}")
        return self


class McpServerConfig(BaseModel):
    """An MCP server whose tools are imported (``mcp.py``). Exactly one of ``url`` (streamable
    HTTP) and ``command`` (stdio, the program and its arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    url: str | None = None
    command: list[str] | None = None
    env: dict[str, str] = {}
    prefix: str = Field("", description="prepended to each imported tool's name (tools of two servers may clash)")
    side_effects: dict[str, SideEffect] = Field(
        default_factory=dict, description="tool -> class; an MCP tool not named here is dangerous"
    )
    timeout_ms: int = Field(DEFAULT_TIMEOUT_MS, gt=0)
    cost_micros: int = Field(0, ge=0)
    include: list[str] | None = Field(None, description="import only these tools (default: all)")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.url is None) == (self.command is None):
            raise ValueError("give exactly one of url (streamable HTTP) or command (stdio)")
        if self.command is not None and not self.command:
            raise ValueError("command: must name a program")
        return self


class ArgumentRule(BaseModel):
    """A constraint on one argument (a dotted path into the arguments object)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path_prefixes: list[str] | None = None
    hosts: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    calls: int = Field(ge=1)
    per_s: float = Field(gt=0)


class PolicyConfig(BaseModel):
    """allow/deny by tool name (``*`` for every tool) and side-effect class; deny always wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: list[str] = ["*"]
    deny: list[str] = []
    allow_side_effects: list[SideEffect] = list(SideEffect)
    deny_side_effects: list[SideEffect] = []
    constraints: dict[str, dict[str, ArgumentRule]] = Field(
        default_factory=dict, description="tool -> argument path -> rule"
    )
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict, description="tool -> limit, per tenant")


class ToolsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limits: Limits = Limits()
    tools: list[_ToolEntry] = []
    mcp_servers: list[McpServerConfig] = []
    policies: dict[str, PolicyConfig] = Field(default_factory=lambda: {"default": PolicyConfig()})
    tenants: dict[str, str] = Field(default_factory=dict, description='tenant -> policy name; "*" for the rest')

    @field_validator("tools")
    @classmethod
    def _unique_names(cls, tools: list[_ToolEntry]) -> list[_ToolEntry]:
        seen: dict[str, int] = {}
        for index, entry in enumerate(tools):
            if entry.name in seen:
                raise ValueError(f"duplicate tool {entry.name!r} at tools[{seen[entry.name]}] and tools[{index}]")
            seen[entry.name] = index
        return tools

    @model_validator(mode="after")
    def _references_resolve(self) -> ToolsFile:
        servers = {s.name for s in self.mcp_servers}
        for index, entry in enumerate(self.tools):
            if entry.mcp is not None and entry.mcp["server"] not in servers:
                raise ValueError(
                    f"tools[{index}].mcp.server: unknown MCP server {entry.mcp['server']!r} "
                    f"(declare it under mcp_servers; known: {', '.join(sorted(servers)) or 'none'})"
                )
        for tenant, policy in self.tenants.items():
            if policy not in self.policies:
                raise ValueError(
                    f"tenants.{tenant}: unknown policy {policy!r} (known: {', '.join(sorted(self.policies))})"
                )
        return self


@dataclass
class Registry:
    """Every tool by name, plus the file's limits, policies, tenants and MCP servers."""

    tools: dict[str, ToolSpec] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    policies: dict[str, PolicyConfig] = field(default_factory=lambda: {"default": PolicyConfig()})
    tenants: dict[str, str] = field(default_factory=dict)
    mcp_servers: dict[str, McpServerConfig] = field(default_factory=dict)

    def add(self, spec: ToolSpec, *, where: str = "registry") -> None:
        if spec.name in self.tools:
            raise ToolsConfigError(f"{where}: tool {spec.name!r} is declared twice")
        check_spec(spec, where)
        self.tools[spec.name] = spec

    def add_function(self, function: Callable[..., Any]) -> ToolSpec:
        """Register a function declared with :func:`tool`."""
        spec = getattr(function, TOOL_ATTRIBUTE, None)
        if not isinstance(spec, ToolSpec):
            raise ToolsConfigError(f"{function!r}: not declared with @tool")
        self.add(spec, where=f"@tool {spec.name}")
        return spec

    def get(self, name: str) -> ToolSpec | None:
        return self.tools.get(name)

    def unknown(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n not in self.tools]

    def definitions(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """The definitions of ``names`` that exist, in the order given."""
        return [self.tools[n].definition() for n in names if n in self.tools]

    def policy_for_tenant(self, tenant: str) -> PolicyConfig:
        name = self.tenants.get(tenant) or self.tenants.get("*") or "default"
        return self.policies.get(name) or PolicyConfig()


def load_tools(path: Path | str = DEFAULT_TOOLS_PATH) -> Registry:
    """Read and check a tools file. Python handlers are imported now (a typo fails at start-up);
    MCP servers' tools are added later by ``mcp.import_server_tools`` (it needs the event loop)."""
    path = Path(path)
    raw = read_yaml_mapping(path, what="tools file", top="tools", error=ToolsConfigError)
    try:
        parsed = ToolsFile.model_validate(raw)
    except ValidationError as exc:
        raise ToolsConfigError(format_validation_error(path.name, exc)) from None
    registry = Registry(limits=parsed.limits, policies=dict(parsed.policies), tenants=dict(parsed.tenants),
                        mcp_servers={s.name: s for s in parsed.mcp_servers})
    for index, entry in enumerate(parsed.tools):
        registry.add(_spec_of(entry, f"{path.name}: tools[{index}] ({entry.name})"), where=f"{path.name}: tools[{index}]")
    return registry


def _spec_of(entry: _ToolEntry, where: str) -> ToolSpec:
    declared: ToolSpec | None = None
    handler: Handler
    if entry.python is not None:
        try:
            function = import_callable(entry.python)
        except ToolsConfigError as exc:
            raise ToolsConfigError(f"{where}: python: {exc}") from None
        declared = getattr(function, TOOL_ATTRIBUTE, None)
        handler = PythonHandler(entry.python)
    elif entry.http is not None:
        handler = HttpHandler(entry.http)
    else:
        assert entry.mcp is not None
        handler = McpHandler(entry.mcp["server"], entry.mcp.get("tool", entry.name))
    input_schema = entry.input_schema or (declared.input_schema if declared else None)
    if input_schema is None:
        if entry.python is not None:
            input_schema = schema_from_signature(import_callable(entry.python))
        else:
            raise ToolsConfigError(f"{where}: input_schema: required for http and mcp tools")
    spec = ToolSpec(
        name=entry.name,
        description=entry.description or (declared.description if declared else entry.name),
        input_schema=input_schema,
        handler=handler,
        side_effect=entry.side_effect or (declared.side_effect if declared else SideEffect.DANGEROUS),
        output_schema=entry.output_schema or (declared.output_schema if declared else None),
        timeout_ms=entry.timeout_ms or (declared.timeout_ms if declared else DEFAULT_TIMEOUT_MS),
        cost_micros=entry.cost_micros if entry.cost_micros is not None else (declared.cost_micros if declared else 0),
    )
    check_spec(spec, where)
    return spec


def with_side_effect(spec: ToolSpec, side_effect: SideEffect) -> ToolSpec:
    return replace(spec, side_effect=side_effect)


HandlerKind = Literal["python", "http", "mcp"]
