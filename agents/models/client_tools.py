"""Tools the caller runs itself (a task's ``client_tools``, from the gateway).

A model that calls one of them has finished its turn: nothing here runs the tool. Its
calls become the model's *answer*, written canonically (tool names and arguments, JSON
with sorted keys, no call ids), so that in consensus two models proposing the same call
cast the same vote and the call a majority proposed wins like any answer. The caller
(``streams/gateway/``) reads the winning answer back as tool calls, runs them, and sends
the next request with the results in its ``messages``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from swarmstream.schemas.models import ClientTool

TOOL_CALLS_KEY = "swarm.tool_calls"
"""The one key of a tool-call answer: no ordinary answer is a JSON object with this key."""


@dataclass(frozen=True)
class ProposedCall:
    name: str
    arguments: str  # JSON text, canonical when it parsed


def offered(tools: Sequence[ClientTool]) -> tuple[dict[str, Any], ...]:
    """The caller's tools in the providers' neutral shape (``{"name", "description", "input_schema"}``);
    a ``parameters`` that is not a JSON object offers an empty object schema."""
    out = []
    for tool in tools:
        try:
            schema = orjson.loads(tool.parameters or "{}")
        except orjson.JSONDecodeError:
            schema = None
        out.append({"name": tool.name, "description": tool.description,
                    "input_schema": schema if isinstance(schema, dict) else {"type": "object", "properties": {}}})
    return tuple(out)


def _canonical(arguments: str) -> str:
    try:
        return orjson.dumps(orjson.loads(arguments or "{}"), option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return arguments  # as the model wrote it: the caller sees what it got


def answer_of(calls: Sequence[tuple[str, str]]) -> str:
    """(name, arguments) calls as one canonical answer text."""
    return orjson.dumps({TOOL_CALLS_KEY: [{"name": name, "arguments": _canonical(arguments)}
                                          for name, arguments in calls]}).decode()


def calls_in(answer: str | None) -> list[ProposedCall] | None:
    """The calls an answer proposes, or None when it is an ordinary answer."""
    if not answer or not answer.startswith("{") or TOOL_CALLS_KEY not in answer:
        return None
    try:
        value = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return None
    calls = value.get(TOOL_CALLS_KEY) if isinstance(value, dict) and len(value) == 1 else None
    if not isinstance(calls, list):
        return None
    return [ProposedCall(str(c.get("name", "")), str(c.get("arguments", "{}"))) for c in calls if isinstance(c, dict)]
