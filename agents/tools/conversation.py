"""One model's tool conversation within a task, as plain values: its turns, the limits
that end it, and the JSON it travels as (``ModelRequest.conversation``).

The loop, turn by turn (``turn`` counts model replies, 0 for the first):

    model turn t replies with calls ──► check_calls: a stop? ──► Failure with that status
                   │ no stop
                   ▼
    after_calls: the assistant turn is appended (arguments redacted), calls counted
                   ▼
    every call's result in ──► with_results: the tool messages appended ──► model turn t + 1

It ends with the model's answer (a normal ModelResponse), or with a status:

- ``max_turns``: the model still calls tools on its last allowed turn;
- ``max_tool_calls``: this turn's calls would exceed the model's budget of calls;
- ``tool_loop``: a call (same tool, same canonical arguments) made ``max_identical_calls``
  times already is made again;
- ``timeout``: the task's deadline passes (the model caller's ordinary deadline check).

The neutral message format (providers render it in their own protocol):

    {"role": "assistant", "text": "...", "calls": [{"id": "c1", "name": "calculator", "arguments": "{...}"}]}
    {"role": "tool", "id": "c1", "name": "calculator", "content": "{...}", "error": false}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import orjson


class Stop(StrEnum):
    """Why a tool loop ended without an answer; also the Failure's class outside chain mode."""

    TOOL_LOOP = "tool_loop"
    MAX_TURNS = "max_turns"
    MAX_TOOL_CALLS = "max_tool_calls"


CHAIN_FAILURE_CLASS = "invalid_output"
"""In chain mode a stop is reported as ``invalid_output`` (the model gave no usable answer:
not retried, the chain moves on), because the chain planner reads failure classes as
``FailureClass`` values and has none for tool stops; the stop is the message's first word."""


def failure_class_for(stop: Stop, mode: str) -> str:
    return CHAIN_FAILURE_CLASS if mode == "chain" else stop.value


@dataclass(frozen=True)
class LoopLimits:
    max_turns: int = 8
    max_tool_calls: int = 16
    max_identical_calls: int = 2


@dataclass(frozen=True)
class ProposedCall:
    """A call as the model made it, with its digest (tool + canonical arguments) and the
    arguments as they may be stored and shown (redacted)."""

    call_id: str
    name: str
    arguments: str
    digest: str
    shown_arguments: str


@dataclass(frozen=True)
class Conversation:
    """The turns so far and what they cost (model turns and tools), for the next request."""

    messages: tuple[dict[str, Any], ...] = ()
    calls: int = 0
    signatures: dict[str, int] = field(default_factory=dict)
    cost_micros: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def to_json(self) -> str:
        return orjson.dumps({
            "messages": list(self.messages), "calls": self.calls, "signatures": self.signatures,
            "cost_micros": self.cost_micros, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
        }).decode()

    @classmethod
    def from_json(cls, text: str | None) -> Conversation:
        if not text:
            return cls()
        data = orjson.loads(text)
        return cls(
            messages=tuple(data.get("messages") or ()),
            calls=int(data.get("calls") or 0),
            signatures=dict(data.get("signatures") or {}),
            cost_micros=int(data.get("cost_micros") or 0),
            input_tokens=int(data.get("input_tokens") or 0),
            output_tokens=int(data.get("output_tokens") or 0),
        )


@dataclass(frozen=True)
class StopReason:
    stop: Stop
    message: str


def check_calls(conversation: Conversation, calls: Sequence[ProposedCall], *, turn: int,
                limits: LoopLimits) -> StopReason | None:
    """Whether the model may have these calls run; checked before anything runs."""
    if turn + 1 >= limits.max_turns:
        return StopReason(Stop.MAX_TURNS, f"max_turns: the model still called tools on turn {turn + 1} of "
                                          f"{limits.max_turns}, the last one allowed")
    if conversation.calls + len(calls) > limits.max_tool_calls:
        return StopReason(Stop.MAX_TOOL_CALLS, f"max_tool_calls: {conversation.calls} calls made, {len(calls)} more "
                                               f"asked, {limits.max_tool_calls} allowed")
    seen = dict(conversation.signatures)
    for call in calls:
        if seen.get(call.digest, 0) >= limits.max_identical_calls:
            return StopReason(Stop.TOOL_LOOP, f"tool_loop: {call.name} called {seen[call.digest] + 1} times with the "
                                              f"same arguments (at most {limits.max_identical_calls})")
        seen[call.digest] = seen.get(call.digest, 0) + 1
    return None


def after_calls(conversation: Conversation, *, text: str, calls: Sequence[ProposedCall], cost_micros: int,
                input_tokens: int, output_tokens: int) -> Conversation:
    """The conversation once the model's calling turn is appended (shown, i.e. redacted, arguments)."""
    signatures = dict(conversation.signatures)
    for call in calls:
        signatures[call.digest] = signatures.get(call.digest, 0) + 1
    assistant = {"role": "assistant", "text": text,
                 "calls": [{"id": c.call_id, "name": c.name, "arguments": c.shown_arguments} for c in calls]}
    return replace(
        conversation,
        messages=(*conversation.messages, assistant),
        calls=conversation.calls + len(calls),
        signatures=signatures,
        cost_micros=conversation.cost_micros + cost_micros,
        input_tokens=conversation.input_tokens + input_tokens,
        output_tokens=conversation.output_tokens + output_tokens,
    )


@dataclass(frozen=True)
class ToolMessage:
    call_id: str
    name: str
    content: str
    error: bool
    cost_micros: int = 0


def with_results(conversation: Conversation, results: Sequence[ToolMessage]) -> Conversation:
    """The conversation with one turn's results appended, in the order of the calls."""
    messages = [{"role": "tool", "id": r.call_id, "name": r.name, "content": r.content, "error": r.error}
                for r in results]
    return replace(conversation, messages=(*conversation.messages, *messages),
                   cost_micros=conversation.cost_micros + sum(r.cost_micros for r in results))


def turn_results(collected: dict[str, dict[str, Any]], count: int) -> list[ToolMessage] | None:
    """The turn's results in call order once all ``count`` are in (keys are call indexes), else None."""
    if len(collected) < count:
        return None
    return [ToolMessage(call_id=r["call_id"], name=r["name"], content=r["content"], error=r["error"],
                        cost_micros=r.get("cost_micros", 0))
            for _, r in sorted(collected.items(), key=lambda item: int(item[0]))]
