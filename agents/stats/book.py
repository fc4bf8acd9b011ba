"""Per model and category performance, folded from the call log and the quality log.

Every worker folds the same two logs (``swarm.calls``: one CallRecord per
model call; ``swarm.quality``: QualityEvents from confident consensus, chain
outcomes and feedback) into a :class:`ModelBook`, so all workers share the
same stats, a restarted worker rebuilds them from the newest checkpoint of
them and the logs after it (the logs are the changelog; ``agents/stats/folded.py``),
and ``swarmstream stats`` shows exactly what the selectors see. Pure: records in, numbers out.

Quality is a Beta posterior per (model, category) updated with discounting
(:func:`selection.posterior.update`), so it follows a model whose quality
drifts; ``"*"`` aggregates every category.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from swarmstream.agents.selection.posterior import BetaPosterior, update
from swarmstream.schemas.models import CallRecord, QualityEvent

ALL = "*"

LATENCY_BUCKETS_MS = tuple(round(10 ** (i / 8)) for i in range(0, 39))
"""Log-spaced latency bucket bounds, 1 ms .. ~75 s, ~33% apart: p50/p95 within a
third of the truth from a fixed 39 counters per model and category."""

QUALITY_DISCOUNT = 0.995
"""Per-event decay of older quality evidence: ~200 events of memory, so a model
whose quality drops is noticed within a few hundred tasks (bench routing)."""


@dataclass
class ModelStats:
    calls: int = 0
    successes: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latency_ewma_ms: float | None = None
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    cost_micros: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    quality: BetaPosterior = field(default_factory=BetaPosterior)
    quality_events: int = 0

    def latency_percentile_ms(self, q: float) -> float | None:
        total = sum(self.latency_buckets)
        if not total:
            return None
        rank = math.ceil(q * total)
        seen = 0
        for i, count in enumerate(self.latency_buckets):
            seen += count
            if seen >= rank:
                return float(LATENCY_BUCKETS_MS[min(i, len(LATENCY_BUCKETS_MS) - 1)])
        return float(LATENCY_BUCKETS_MS[-1])

    def to_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "successes": self.successes,
            "failures": dict(self.failures),
            "latency_ewma_ms": None if self.latency_ewma_ms is None else round(self.latency_ewma_ms, 1),
            "latency_p50_ms": self.latency_percentile_ms(0.5),
            "latency_p95_ms": self.latency_percentile_ms(0.95),
            "cost_micros": self.cost_micros,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "quality_mean": round(self.quality.mean, 4),
            "quality_events": self.quality_events,
        }


EWMA_ALPHA = 0.1
"""Weight of the newest latency sample: ~the last 20 calls dominate."""


class ModelBook:
    def __init__(self, *, discount: float = QUALITY_DISCOUNT) -> None:
        self._discount = discount
        self._stats: dict[tuple[str, str], ModelStats] = {}

    def _of(self, model: str, category: str | None) -> list[ModelStats]:
        keys = {(model, ALL), (model, category or ALL)}
        return [self._stats.setdefault(key, ModelStats()) for key in keys]

    def add_call(self, record: CallRecord) -> None:
        bucket = bisect.bisect_left(LATENCY_BUCKETS_MS, record.latency_ms)
        for s in self._of(record.model_id, record.category):
            s.calls += 1
            if record.ok:
                s.successes += 1
            else:
                cls = record.failure_class or "unknown"
                s.failures[cls] = s.failures.get(cls, 0) + 1
            s.latency_buckets[bucket] += 1
            latency = float(record.latency_ms)
            s.latency_ewma_ms = latency if s.latency_ewma_ms is None else s.latency_ewma_ms + EWMA_ALPHA * (
                latency - s.latency_ewma_ms)
            s.cost_micros += record.cost_micros
            s.input_tokens += record.input_tokens
            s.output_tokens += record.output_tokens

    def add_quality(self, event: QualityEvent) -> None:
        for s in self._of(event.model_id, event.category):
            s.quality = update(s.quality, event.reward, discount=self._discount)
            s.quality_events += 1

    def get(self, model: str, category: str | None = None) -> ModelStats:
        """Stats for the category, falling back to the model's overall stats when the
        category has no quality evidence yet."""
        specific = self._stats.get((model, category or ALL))
        if specific is not None and specific.quality_events:
            return specific
        return self._stats.get((model, ALL)) or specific or ModelStats()

    def reliability(self, models: list[str], category: str | None) -> dict[str, float]:
        return {m: self.get(m, category).quality.mean for m in models}

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {f"{m}|{c}": s.to_dict() for (m, c), s in sorted(self._stats.items())}

    def state(self) -> list[BookEntry]:
        """Everything folded so far, to be loaded by another book (a checkpoint of the logs)."""
        return [BookEntry(model, category, stats) for (model, category), stats in sorted(self._stats.items())]

    def load(self, entries: list[BookEntry]) -> None:
        """Become a book that folded what ``entries`` were taken from (what was folded here is replaced)."""
        self._stats = {(e.model, e.category): e.stats for e in entries}


@dataclass
class BookEntry:
    model: str
    category: str
    stats: ModelStats
