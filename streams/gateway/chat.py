"""A chat request of either protocol, once read, and the task it becomes.

Both wire modules read their protocol's body into a :class:`ChatCall`; :func:`to_task`
turns it into the one TaskRequest that runs it: the whole chat in ``messages`` (its last
user turn as ``prompt``, for readers that know only prompts), the caller's tools in
``client_tools``, sampling parameters as they came, the route's task fields, then the
caller's ``swarm`` extension object on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from swarmstream.schemas.models import ChatMessage, ClientTool, TaskRequest

from .errors import GatewayError, invalid
from .routes import Route

EXTENSION_FIELDS = frozenset(TaskRequest.model_fields) - {
    "task_id", "created_ms", "prompt", "messages", "client_tools", "reply_to", "hops", "parent_task_id", "tenant",
}
"""Task fields a request's ``swarm`` object may set. Not the ids and plumbing the gateway owns,
and ``tenant`` only on an open gateway: with keys, a key's tenant is what it pays with (``keys.py``)."""

DEFAULT_ANSWER_TYPE = "text"
"""A chat's answer is text; a caller wanting a vote on labels or numbers says so in ``swarm``."""


@dataclass
class ChatCall:
    model: str
    messages: list[ChatMessage]
    tools: list[ClientTool] = field(default_factory=list)
    sampling: dict[str, Any] = field(default_factory=dict)
    swarm: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False


def prompt_of(messages: list[ChatMessage]) -> str:
    """The last user turn with text: what a prompt-only reader (a strategy, review, replay) sees."""
    for message in reversed(messages):
        if message.role == "user" and message.content.strip():
            return message.content
    raise invalid("messages: no user message with text", "messages")


def to_task(call: ChatCall, route: Route, *, task_id: str, tenant: str, reply_to: str | None,
            created_ms: int | None = None, tenant_settable: bool = False) -> TaskRequest:
    """``tenant_settable``: an open gateway (no keys) takes ``swarm.tenant``."""
    if tenant_settable and "tenant" in call.swarm:
        tenant = call.swarm["tenant"]
    unknown = sorted(set(call.swarm) - EXTENSION_FIELDS - ({"tenant"} if tenant_settable else set()))
    if unknown:
        raise invalid(f"swarm.{unknown[0]}: not a task field a request may set "
                      f"(one of: {', '.join(sorted(EXTENSION_FIELDS))})", f"swarm.{unknown[0]}")
    values: dict[str, Any] = {"answer_type": DEFAULT_ANSWER_TYPE, **route.fields, **call.sampling, **call.swarm}
    if not isinstance(tenant, str):
        raise invalid("swarm.tenant: must be a string", "swarm.tenant")
    values.update(task_id=task_id, tenant=tenant, reply_to=reply_to, prompt=prompt_of(call.messages),
                  messages=call.messages, client_tools=call.tools)
    if created_ms is not None:
        values["created_ms"] = created_ms
    try:
        return TaskRequest(**values)
    except ValidationError as exc:
        raise _field_error(exc, call.swarm, call.sampling) from None


def _field_error(exc: ValidationError, swarm: Mapping[str, Any], sampling: Mapping[str, Any]) -> GatewayError:
    """400 naming the offending field as the caller wrote it (``swarm.<field>``, or the body's own)."""
    first = exc.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    name = loc[0] if loc else "body"
    param = f"swarm.{name}" if name in swarm else ("messages" if name in ("prompt", "messages") else name)
    if name in sampling:
        param = name
    message = str(first.get("msg", "invalid"))
    return invalid(f"{param}: {message}", param)
