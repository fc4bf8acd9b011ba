"""A task's trail: every event of one task across the topics, in time order. Pure.

The follower files each record of a task-keyed topic under its key as raw bytes
(decoded only when someone opens the trail: 10,000 tasks are ~100,000 records).
What is shown passes the redaction nets of the tool agent (``agents/tools/redaction.py``):
a ToolCall's raw arguments become the audited form, and every text has key-shaped
values replaced, so a secret a caller put in a prompt or a call is not rendered.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from swarmstream.agents.tools.redaction import redact_text
from swarmstream.agents.tools.turns import shown_arguments
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import (
    Approval,
    AuditEvent,
    DeadLetter,
    Failure,
    Feedback,
    ModelRequest,
    ModelResponse,
    Record,
    ReviewDecision,
    ReviewItem,
    SelectionEvent,
    TaskRequest,
    TaskResult,
    ToolCall,
    ToolResult,
)

TASKS_KEPT = 200_000
"""Tasks whose trail is kept, newest first seen: at ~10 records and ~1.5 KB a task, ~300 MB at
most; a task older than that was finished long ago and its records are on the topics."""

RECORDS_PER_TASK = 500
"""A bound per task (a looping tool task writes a few records per turn, at most 64 turns)."""


@dataclass(frozen=True, slots=True)
class Filed:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes


@dataclass(frozen=True, slots=True)
class TrailEvent:
    at_ms: int
    topic: str
    kind: str
    summary: str
    detail: str  # redacted JSON


class TrailIndex:
    def __init__(self, *, tasks_kept: int = TASKS_KEPT) -> None:
        self._by_task: OrderedDict[str, list[Filed]] = OrderedDict()
        self._kept = tasks_kept

    def file(self, key: bytes, filed: Filed) -> None:
        task_id = key.decode(errors="replace")
        entries = self._by_task.get(task_id)
        if entries is None:
            entries = self._by_task[task_id] = []
            if len(self._by_task) > self._kept:
                self._by_task.popitem(last=False)
        if len(entries) < RECORDS_PER_TASK:
            entries.append(filed)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._by_task

    def __len__(self) -> int:
        return len(self._by_task)

    def events(self, task_id: str, secrets: list[str]) -> list[TrailEvent]:
        shown = sorted((event_of(f, secrets) for f in self._by_task.get(task_id, [])), key=lambda pair: pair[0])
        return [event for _, event in shown]

    def raw(self, task_id: str) -> list[Filed]:
        return list(self._by_task.get(task_id, []))


STEP_ORDER = {"TaskRequest": 0, "SelectionEvent": 1, "ModelRequest": 2, "ToolCall": 3, "AuditEvent": 4,
              "ToolResult": 5, "Failure": 6, "ModelResponse": 6, "TaskResult": 7, "ReviewItem": 8,
              "Approval": 9, "ReviewDecision": 10, "Feedback": 11, "DeadLetter": 12}
"""Within one millisecond (one producer batch), the order the pipeline writes them in."""


def event_of(filed: Filed, secrets: list[str]) -> tuple[tuple[int, ...], TrailEvent]:
    """(sort key, TrailEvent); the sort key is (time, attempt, step) so a chain's retries read in order."""
    try:
        record = codec().decode(filed.value)
    except DecodeError as exc:
        event = TrailEvent(filed.timestamp_ms, filed.topic, "undecodable", str(exc)[:200], "")
        return (filed.timestamp_ms, 0, 99, filed.offset), event
    kind = type(record).__name__
    summary, attempt = summarize(record)
    detail = redact_text(orjson.dumps(shown_dict(record), option=orjson.OPT_INDENT_2).decode(), secrets)
    event = TrailEvent(filed.timestamp_ms, filed.topic, kind, redact_text(summary, secrets), detail)
    return (filed.timestamp_ms, attempt, STEP_ORDER.get(kind, 50), filed.offset), event


def shown_dict(record: Record) -> dict[str, Any]:
    """The record as it may be shown: raw tool arguments redacted, dead letters' bytes left out."""
    if isinstance(record, ToolCall):
        record = record.model_copy(update={"arguments": shown_arguments(record.arguments)})
    data = record.model_dump(mode="json")
    if isinstance(record, DeadLetter):
        data["key"] = data["value"] = f"({record.value_length} bytes, not shown)"
    return data


def summarize(record: Record) -> tuple[str, int]:
    """One line for the trail, and the attempt it belongs to (0 when none)."""
    match record:
        case TaskRequest():
            return f"task: {record.mode} {record.answer_type}, models {', '.join(record.models) or 'default'}", 0
        case ModelRequest():
            turn = f", turn {record.turn}" if record.turn else ""
            return f"request to {record.model_id} (attempt {record.attempt}{turn})", record.attempt
        case ModelResponse():
            return (f"response from {record.step.model_id} (attempt {record.step.attempt}): {record.answer!r}, "
                    f"{record.latency_ms} ms"), record.step.attempt
        case Failure():
            return (f"failure of {record.step.model_id} (attempt {record.step.attempt}): {record.failure_class}"
                    f"{' (retryable)' if record.retryable else ''}"), record.step.attempt
        case TaskResult():
            return f"result: {record.status}, answer {record.answer!r} by {record.answered_by or '-'}", 1 << 30
        case ReviewItem():
            return f"flagged for review: {record.reason}", 1 << 30
        case ReviewDecision():
            return f"review decision by {record.reviewer or '-'}: {record.action} {record.answer!r}", 1 << 30
        case Feedback():
            return f"feedback {record.score:g} from {record.source}", 1 << 30
        case SelectionEvent():
            return f"selection ({record.policy}): {record.status}, chose {record.chosen or '-'}", 0
        case ToolCall():
            return f"tool call {record.tool} by {record.request.model_id} (turn {record.turn})", record.request.attempt
        case ToolResult():
            return f"tool result {record.call.tool}: {record.status}", record.call.request.attempt
        case AuditEvent():
            return f"audit {record.tool} by {record.model_id}: {record.decision} {record.reason}".strip(), 0
        case Approval():
            verdict = "approved" if record.approved else "refused"
            return f"approval: {record.tool} {verdict} by {record.approver or '-'}", 1 << 30
        case DeadLetter():
            return f"dead letter from {record.topic}: {record.reason}", 0
    return type(record).__name__, 0
