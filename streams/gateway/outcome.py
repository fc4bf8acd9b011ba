"""What a task's result means to an HTTP caller, whatever the protocol: the status code,
the text or tool calls, the usage and the swarm's own view (headers and extension field)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from swarmstream.agents.models.client_tools import ProposedCall, calls_in
from swarmstream.schemas.models import TaskResult

from .errors import GatewayError

ANSWERED = frozenset({"ok", "low_consensus", "partial"})
"""Statuses with an answer: 200, the status in ``x-swarm-status`` (a split vote is still an answer)."""


@dataclass(frozen=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Answer:
    text: str
    tool_calls: tuple[ToolCallOut, ...]
    input_tokens: int
    output_tokens: int


def error_of(result: TaskResult) -> GatewayError | None:
    """The error a result without an answer is: 504 past the deadline, 429 over budget,
    503 shed at intake, 502 for every other failure; each names the task id."""
    if result.status in ANSWERED and result.answer is not None:
        return None
    why = result.reason or result.status
    if result.status == "timeout":
        return GatewayError(504, "timeout", f"task {result.task_id} reached its deadline: {why}",
                            task_id=result.task_id, retry=False)
    if result.status == "budget_exceeded":
        return GatewayError(429, "rate_limit", f"task {result.task_id}: budget exhausted: {why}",
                            task_id=result.task_id, retry=False)
    if result.status == "rejected":
        return GatewayError(503, "overloaded", f"task {result.task_id} was shed: {why}", task_id=result.task_id)
    return GatewayError(502, "failed", f"task {result.task_id} {result.status}: {why}", task_id=result.task_id,
                        retry=False)


def answer_of(result: TaskResult, offered_tools: bool) -> Answer:
    calls: list[ProposedCall] | None = calls_in(result.answer) if offered_tools else None
    tool_calls = tuple(ToolCallOut(call_id(result.task_id, i, c), c.name, c.arguments) for i, c in enumerate(calls or ()))
    return Answer(text="" if calls else (result.answer or ""), tool_calls=tool_calls,
                  input_tokens=result.input_tokens, output_tokens=result.output_tokens)


def call_id(task_id: str, index: int, call: ProposedCall) -> str:
    """A stable id per proposed call (a retried request gets the same ids)."""
    digest = hashlib.sha256(f"{task_id}\0{index}\0{call.name}\0{call.arguments}".encode()).hexdigest()[:24]
    return f"call_{digest}"


def headers_of(result: TaskResult) -> dict[str, str]:
    models = sorted({v.model_id for v in result.votes} | ({result.answered_by} if result.answered_by else set()))
    return {
        "x-swarm-task-id": result.task_id,
        "x-swarm-status": result.status,
        "x-swarm-agreement": f"{result.agreement:.4f}",
        "x-swarm-models": ",".join(models),
        "x-swarm-cost-usd": f"{result.cost_micros / 1_000_000:.6f}",
    }


def extension_of(result: TaskResult) -> dict[str, Any]:
    """The ``swarm`` field of a response: the candidates and votes behind the answer."""
    return {
        "task_id": result.task_id,
        "status": result.status,
        "mode": result.mode,
        "strategy": result.strategy,
        "agreement": result.agreement,
        "confidence": result.confidence,
        "answered_by": result.answered_by,
        "cost_usd": result.cost_micros / 1_000_000,
        "votes": [{"model": v.model_id, "answer": v.answer, "weight": v.weight, "latency_ms": v.latency_ms}
                  for v in result.votes],
        "attempts": [{"model": a.model_id, "failure": a.failure_class, "latency_ms": a.latency_ms}
                     for a in result.attempts],
        "reason": result.reason,
    }
