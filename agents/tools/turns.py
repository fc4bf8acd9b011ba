"""The model side of the tool loop: what the model-call agent needs to offer tools and to
turn a reply's tool calls into ToolCall events (or a stop). Plain values, no Faust.

``ModelCaller`` (agents/models/agent.py) asks :meth:`ToolTurns.offer` for the tools of a
task's request and, when the model replies with calls, :meth:`ToolTurns.calls_of` for
the events to publish. The ToolCall's ``request`` is the NEXT turn's request: its
conversation already holds the assistant's calls (arguments redacted) and what the
turn cost, so the conversation agent only appends the results.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from swarmstream.agents.tools.conversation import (
    Conversation,
    LoopLimits,
    ProposedCall,
    StopReason,
    after_calls,
    check_calls,
)
from swarmstream.agents.tools.redaction import redact_arguments, redact_text
from swarmstream.agents.tools.registry import Registry
from swarmstream.agents.tools.validation import call_digest, canonical
from swarmstream.schemas.models import ModelRequest, TaskRequest, ToolCall, now_ms


class UnknownToolsError(LookupError):
    """A task names tools the registry does not have; the message lists both."""


@dataclass(frozen=True)
class RawCall:
    """A call as a provider parsed it (``providers.base.ToolCallRequest`` has the same fields)."""

    call_id: str
    name: str
    arguments: str


def shown_arguments(arguments_text: str) -> str:
    """The arguments as they may be stored, shown and audited: canonical JSON with secrets
    replaced, or the raw text with key-shaped values replaced when it is not JSON."""
    try:
        value = orjson.loads(arguments_text or "{}")
    except orjson.JSONDecodeError:
        return redact_text(arguments_text)
    redacted, _ = redact_arguments(value)
    return canonical(redacted)


class ToolTurns:
    def __init__(self, registry: Registry, *, tool_calls_topic: str,
                 ready: Callable[[], Awaitable[None]] | None = None) -> None:
        self.registry = registry
        self.tool_calls_topic = tool_calls_topic
        self._ready = ready

    async def ready(self) -> None:
        """Waits until MCP servers' tools are imported (once per worker)."""
        if self._ready is not None:
            await self._ready()

    def offer(self, task: TaskRequest) -> list[dict[str, Any]]:
        """The definitions of the task's tools; UnknownToolsError for names the registry lacks."""
        unknown = self.registry.unknown(task.tools)
        if unknown:
            raise UnknownToolsError(
                f"the task names unknown tool(s) {', '.join(map(repr, unknown))} "
                f"(registered: {', '.join(sorted(self.registry.tools)) or 'none'}; see tools.yaml)"
            )
        return self.registry.definitions(task.tools)

    def limits(self, task: TaskRequest) -> LoopLimits:
        configured = self.registry.limits
        return LoopLimits(
            max_turns=task.max_turns or configured.max_turns,
            max_tool_calls=task.max_tool_calls or configured.max_tool_calls,
            max_identical_calls=configured.max_identical_calls,
        )

    def calls_of(
        self,
        request: ModelRequest,
        *,
        text: str,
        calls: Sequence[RawCall],
        cost_micros: int,
        input_tokens: int,
        output_tokens: int,
    ) -> list[ToolCall] | StopReason:
        conversation = Conversation.from_json(request.conversation)
        proposed = [
            ProposedCall(
                call_id=c.call_id or f"call_{request.turn}_{i}",
                name=c.name,
                arguments=c.arguments,
                digest=call_digest(c.name, c.arguments),
                shown_arguments=shown_arguments(c.arguments),
            )
            for i, c in enumerate(calls)
        ]
        stop = check_calls(conversation, proposed, turn=request.turn, limits=self.limits(request.task))
        if stop is not None:
            return stop
        following = after_calls(conversation, text=redact_text(text), calls=proposed, cost_micros=cost_micros,
                                input_tokens=input_tokens, output_tokens=output_tokens)
        next_request = request.model_copy(update={"turn": request.turn + 1, "conversation": following.to_json()})
        at = now_ms()
        return [
            ToolCall(request=next_request, turn=request.turn, call_id=c.call_id, index=i, count=len(proposed),
                     tool=c.name, arguments=c.arguments, digest=c.digest, assistant_text=redact_text(text),
                     proposed_ms=at)
            for i, c in enumerate(proposed)
        ]
