"""How a simulated model uses tools: pure planning from the prompt, the tools offered and
the results so far (no I/O). The fleet calls it for a request that offers tools.

What the model does, by the prompt:

- tool directives, one call per line, a line ``then`` starting the next turn's calls::

      tool: calculator {"expression": "17 * 23"}
      tool: lookup {"country": "norway", "field": "population"}
      then
      tool: calculator {"expression": "{0} + {1}"}

  ``{k}`` is the value of the k-th result of the previous turn (its ``result`` or
  ``value`` field, else its JSON). Calls of one turn are parallel calls; a line
  ``tool@<model>: ...`` is a call of that model only (models of one consensus task see
  one prompt). After the last turn the model answers with the bare value of the last
  turn's first result (a number parses as a number answer, a text as a text answer);
- arithmetic, when ``calculator`` is offered: ``What is (A op B) op C?`` takes two turns
  (A op B, then that op C); ``What is A op B plus C op D?`` takes two parallel calls,
  then their sum; ``What is A op B?`` takes one call;
- anything else: the model answers as it would without tools (the caller falls back).

After a turn with errors the model retries the same turn correctly when the errors are
its own (``invalid arguments``, ``unknown tool``: it reads the message and fixes the
call); otherwise (denied, refused, timeout, a tool failure) it gives up and answers
``could not complete: <the error>``.

Injectable misbehaviour per model (``SimFleet.set_tool_behaviour``):
``malformed`` (the first call renames every argument, a schema error), ``bad_json``
(the first call's arguments are not JSON), ``unknown_tool`` (the first call names a tool
that does not exist), ``loop`` (repeats its first calls forever, never answers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

ToolBehaviour = Literal["correct", "malformed", "bad_json", "unknown_tool", "loop"]
TOOL_BEHAVIOURS: tuple[str, ...] = ("correct", "malformed", "bad_json", "unknown_tool", "loop")

CORRECTABLE_PREFIXES = ("invalid arguments", "unknown tool")


@dataclass(frozen=True)
class PlannedCall:
    name: str
    arguments: str  # JSON text (or not, for bad_json)


@dataclass(frozen=True)
class PastCall:
    name: str
    arguments: str
    content: str
    error: bool


@dataclass(frozen=True)
class Plan:
    calls: tuple[PlannedCall, ...] = ()
    answer: str | None = None


_DIRECTIVE = re.compile(r"^\s*tool(?:@([A-Za-z0-9_.\-]+))?:\s*([A-Za-z0-9_\-]+)\s*(\{.*\})\s*$")
_SEQUENTIAL = re.compile(r"What is \((-?\d+) ([+\-*]) (-?\d+)\) ([+\-*]) (-?\d+)\?")
_PARALLEL = re.compile(r"What is (-?\d+) ([+\-*]) (-?\d+) plus (-?\d+) ([+\-*]) (-?\d+)\?")
_SINGLE = re.compile(r"What is (-?\d+) ([+\-*]) (-?\d+)\? Answer with a number\.")


def _steps(prompt: str, offered: Sequence[str], model: str = "") -> list[list[tuple[str, str]]] | None:
    """The turns of calls the prompt asks of ``model`` (templates with {k}), or None for no tool use."""
    lines = prompt.splitlines()
    if any(_DIRECTIVE.match(line) for line in lines):
        steps: list[list[tuple[str, str]]] = [[]]
        for line in lines:
            if line.strip().lower() == "then":
                steps.append([])
            elif (m := _DIRECTIVE.match(line)) and m[1] in (None, model):
                steps[-1].append((m[2], m[3]))
        return [s for s in steps if s] or None
    if "calculator" not in offered:
        return None
    expr = lambda text: orjson.dumps({"expression": text}).decode()
    if m := _SEQUENTIAL.search(prompt):
        return [[("calculator", expr(f"{m[1]} {m[2]} {m[3]}"))], [("calculator", expr(f"{{0}} {m[4]} {m[5]}"))]]
    if m := _PARALLEL.search(prompt):
        return [[("calculator", expr(f"{m[1]} {m[2]} {m[3]}")), ("calculator", expr(f"{m[4]} {m[5]} {m[6]}"))],
                [("calculator", expr("{0} + {1}"))]]
    if m := _SINGLE.search(prompt):
        return [[("calculator", expr(f"{m[1]} {m[2]} {m[3]}"))]]
    return None


def value_of(content: str) -> str:
    """What a result says, for an answer or a placeholder: its ``result`` or ``value`` field."""
    try:
        data: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content
    if isinstance(data, dict):
        for field in ("result", "value", "text"):
            if field in data:
                data = data[field]
                break
    if isinstance(data, float) and data.is_integer():
        data = int(data)
    return data if isinstance(data, str) else orjson.dumps(data).decode()


def _fill(template: str, previous: Sequence[PastCall]) -> str:
    def replace(match: re.Match[str]) -> str:
        index = int(match[1])
        return value_of(previous[index].content) if index < len(previous) else match[0]

    return re.sub(r"\{(\d+)\}", replace, template)


def _misbehave(call: PlannedCall, behaviour: str) -> PlannedCall:
    if behaviour == "malformed":
        try:
            args = orjson.loads(call.arguments)
        except orjson.JSONDecodeError:
            return call
        return PlannedCall(call.name, orjson.dumps({f"{k}_": v for k, v in args.items()}).decode())
    if behaviour == "bad_json":
        return PlannedCall(call.name, call.arguments.rstrip("}"))
    if behaviour == "unknown_tool":
        return PlannedCall(f"{call.name}_v2", call.arguments)
    return call


def plan(prompt: str, offered: Sequence[str], history: Sequence[Sequence[PastCall]],
         behaviour: str = "correct", model: str = "") -> Plan | None:
    """The model's next move: calls, or an answer; None when the prompt needs no tools."""
    steps = _steps(prompt, offered, model)
    if steps is None:
        return None
    if behaviour == "loop":
        return Plan(calls=tuple(PlannedCall(n, _fill(a, ())) for n, a in steps[0]))
    done = [turn for turn in history if not any(c.error for c in turn)]
    last = history[-1] if history else ()
    errors = [c for c in last if c.error]
    if errors and not all(c.content.startswith(CORRECTABLE_PREFIXES) for c in errors):
        return Plan(answer=f"could not complete: {errors[0].content[:160]}")
    step = len(done)
    if step >= len(steps):
        return Plan(answer=value_of(done[-1][0].content))
    previous = done[-1] if done else ()
    calls = tuple(PlannedCall(n, _fill(a, previous)) for n, a in steps[step])
    if not history and behaviour != "correct":
        calls = (_misbehave(calls[0], behaviour), *calls[1:])
    return Plan(calls=calls)


# --- reading a request's tool conversation, per protocol -------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def read_tool_conversation(req: dict[str, Any], protocol: str) -> tuple[str, list[str], list[list[PastCall]]]:
    """(the task prompt: the first user text, the tools offered, the turns so far)."""
    messages = req.get("messages") or []
    prompt = next((_text(m.get("content")) for m in messages if m.get("role") == "user" and _text(m.get("content"))), "")
    if protocol == "openai":
        offered = [t.get("function", {}).get("name", "") for t in req.get("tools") or ()]
    else:
        offered = [t.get("name", "") for t in req.get("tools") or ()]
    turns: list[list[PastCall]] = []
    pending: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    results: dict[str, tuple[str, bool]] = {}

    def close() -> None:
        if order:
            turns.append([PastCall(pending[i][0], pending[i][1], *results.get(i, ("", True))) for i in order])
        order.clear()

    for m in messages:
        role = m.get("role")
        if role == "assistant":
            close()
            if protocol == "openai":
                for c in m.get("tool_calls") or ():
                    pending[c["id"]] = (c["function"]["name"], c["function"].get("arguments", ""))
                    order.append(c["id"])
            else:
                for b in m.get("content") or ():
                    if isinstance(b, dict) and b.get("type") == "tool_use":
                        pending[b["id"]] = (b["name"], orjson.dumps(b.get("input") or {}).decode())
                        order.append(b["id"])
        elif role == "tool":
            content = m.get("content")
            text = _text(content) if not isinstance(content, str) else content
            error = text.startswith("error: ")  # how the OpenAI rendering marks a failed call
            results[m.get("tool_call_id", "")] = (text.removeprefix("error: "), error)
        elif role == "user" and isinstance(m.get("content"), list):
            for b in m["content"]:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    results[b.get("tool_use_id", "")] = (_text(b.get("content")), bool(b.get("is_error")))
    close()
    return prompt, offered, turns
