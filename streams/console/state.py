"""Everything the console shows, folded from records as they are read. Pure: ``ingest`` takes
what a consumer returns; the pages read the folds."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.stats.book import ModelBook
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import (
    Approval,
    AuditEvent,
    CallRecord,
    QualityEvent,
    ReviewDecision,
    ReviewItem,
    TaskRequest,
)
from swarmstream.streams.console.fleet import FleetView
from swarmstream.streams.console.queues import ApprovalQueue, ReviewQueue, WaitingCall
from swarmstream.streams.console.trail import Filed, TrailIndex
from swarmstream.streams.observe.calls import CallWindow


@dataclass(frozen=True)
class ConsoleTopics:
    """The topics the console reads, by what it does with them."""

    calls: str
    quality: str
    review: str
    decisions: str
    audit: str
    approvals: str
    feedback: str
    trail: tuple[str, ...]  # keyed by task id: filed for the task trail

    def all(self) -> list[str]:
        return list(dict.fromkeys([self.calls, self.quality, self.review, self.decisions, self.audit, self.approvals,
                                   self.feedback, *self.trail]))


class ConsoleState:
    def __init__(self, topics: ConsoleTopics, board: CircuitBoard, *, window_s: float,
                 approval_timeout_ms: int) -> None:
        self.topics = topics
        self.review = ReviewQueue()
        self.approvals = ApprovalQueue()
        self.trail = TrailIndex()
        self.fleet = FleetView(CallWindow(board, window_s=window_s))
        self.book = ModelBook()
        self.approval_timeout_ms = approval_timeout_ms
        self._trail_topics = frozenset(topics.trail)
        self.records = 0
        self.undecodable = 0

    def ingest(self, topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
               value: bytes | None) -> None:
        self.records += 1
        if value is None:
            return
        t = self.topics
        try:
            if topic == t.calls:
                record = codec().decode_as(value, CallRecord)
                self.fleet.add(record)
                self.book.add_call(record)
                return
            if topic == t.quality:
                self.book.add_quality(codec().decode_as(value, QualityEvent))
                return
            if topic == t.review:
                self.review.add_item(codec().decode_as(value, ReviewItem))
            elif topic == t.decisions:
                self.review.add_decision(codec().decode_as(value, ReviewDecision))
            elif topic == t.audit:
                self.approvals.add_audit(codec().decode_as(value, AuditEvent))
            elif topic == t.approvals:
                self.approvals.add_approval(codec().decode_as(value, Approval))
        except DecodeError:
            self.undecodable += 1  # a dead letter's business, not the console's; still filed below
        if key is not None and topic in self._trail_topics:
            self.trail.file(key, Filed(topic, partition, offset, timestamp_ms, value))

    def task(self, task_id: str) -> TaskRequest | None:
        """The task as submitted (its first TaskRequest on the task topic)."""
        for filed in self.trail.raw(task_id):
            if filed.topic == self.topics.trail[0]:
                with contextlib.suppress(DecodeError):
                    return codec().decode_as(filed.value, TaskRequest)
        return None

    def approval_expires_ms(self, call: WaitingCall) -> int:
        """When the waiting call stops waiting: its approval timeout from when it asked, or the
        task's deadline if that comes first (``agents/tools/agent.py`` waits the lesser)."""
        expires = call.since_ms + self.approval_timeout_ms
        task = self.task(call.task_id)
        return expires if task is None else min(expires, task.created_ms + task.timeout_ms)
