"""Every model's calls over a sliding window, and its breaker: the numbers of ``swarmstream top``
(``streams/cli/live.py``) and of the console's fleet page (``streams/console``). Pure: CallRecords
in, rows out; the breaker state is folded from the whole call log exactly as every worker folds
it (``agents/fallback/board.py``)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.schemas.models import CallRecord

MIN_SPAN_MS = 1000
"""Rates are taken over the window, or over the time since the first call in it when the log is
younger than the window; never over less than this, so a single call does not read as 1,000/s."""


@dataclass(frozen=True, slots=True)
class ModelRow:
    model: str
    calls: int
    requests_per_s: float
    latency_p95_ms: float | None
    error_rate: float
    cost_micros_per_min: float
    breaker: str
    failures: dict[str, int] = field(default_factory=dict)
    latency_p50_ms: float | None = None


class CallWindow:
    """Every model's calls of the last ``window_s`` seconds, plus breakers from the whole log. Pure."""

    def __init__(self, board: CircuitBoard, *, window_s: float = 60.0) -> None:
        self.board = board
        self.window_ms = int(window_s * 1000)
        self._calls: dict[str, deque[CallRecord]] = {}

    def add(self, record: CallRecord) -> None:
        self.board.apply(record)
        self._calls.setdefault(record.model_id, deque()).append(record)

    def rows(self, now: int) -> list[ModelRow]:
        start = now - self.window_ms
        states = dict(self.board.states())
        rows = []
        for model in sorted({*self._calls, *states}):
            calls = self._calls.get(model, deque())
            while calls and calls[0].at_ms < start:
                calls.popleft()
            # Each model's records are in log order (keyed by model), which is nearly but not
            # strictly at_ms order with several writers: filter, do not trust the deque's order.
            # One pass, no per-record objects: the console's fleet page runs this per refresh.
            first_ms, cost = now, 0
            latencies: list[int] = []
            failures: dict[str, int] = {}
            for c in calls:
                at = c.at_ms
                if start <= at <= now:
                    first_ms = min(first_ms, at)
                    cost += c.cost_micros
                    latencies.append(c.latency_ms)
                    if not c.ok:
                        failures[c.failure_class or "unknown"] = failures.get(c.failure_class or "unknown", 0) + 1
            count = len(latencies)
            span_ms = max(min(self.window_ms, now - (first_ms if count else start)), MIN_SPAN_MS)
            p50, p95 = np.percentile(latencies, [50, 95]) if count else (None, None)
            rows.append(ModelRow(
                model=model,
                calls=count,
                requests_per_s=count / (span_ms / 1000),
                latency_p95_ms=None if p95 is None else float(p95),
                latency_p50_ms=None if p50 is None else float(p50),
                error_rate=sum(failures.values()) / count if count else 0.0,
                cost_micros_per_min=cost / (span_ms / 60_000),
                breaker=states.get(model, "closed"),
                failures=failures,
            ))
        return rows
