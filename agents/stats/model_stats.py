"""Per-model performance stats, folded one outcome at a time.

Pure: a stats dict (or None) and an outcome in, a new stats dict out. The
agent keeps one per ``model|category|shard`` key in a changelog-backed table,
where the shard is the input partition: outcomes are keyed by task, so each
partition's owner is the only writer of its shard, recovery restores exactly
what was written, and readers merge shards (:func:`merge`), like a G-counter.
"""

from __future__ import annotations

from typing import Any

from swarmstream.schemas.models import Failure, ModelResponse

EWMA_ALPHA = 0.1
"""Weight of the newest latency sample: ~the last 20 calls dominate, so the
estimate follows a model that slows down within a minute of traffic."""

Stats = dict[str, Any]


def stats_key(model_id: str, category: str | None, shard: int) -> str:
    return f"{model_id}|{category or '*'}|{shard}"


def parse_key(key: str) -> tuple[str, str, int]:
    model_id, category, shard = key.rsplit("|", 2)
    return model_id, category, int(shard)


def empty() -> Stats:
    return {
        "calls": 0,
        "successes": 0,
        "failures": {},
        "latency_ewma_ms": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_micros": 0,
    }


def update(stats: Stats | None, outcome: ModelResponse | Failure) -> Stats:
    new = dict(stats) if stats is not None else empty()
    new["calls"] += 1
    latency = float(outcome.latency_ms)
    previous = new["latency_ewma_ms"]
    new["latency_ewma_ms"] = latency if previous is None else previous + EWMA_ALPHA * (latency - previous)
    if isinstance(outcome, ModelResponse):
        new["successes"] += 1
        new["input_tokens"] += outcome.input_tokens
        new["output_tokens"] += outcome.output_tokens
        new["cost_micros"] += outcome.cost_micros
    else:
        failures = dict(new["failures"])
        failures[outcome.failure_class] = failures.get(outcome.failure_class, 0) + 1
        new["failures"] = failures
    return new


def success_rate(stats: Stats) -> float:
    return stats["successes"] / stats["calls"] if stats["calls"] else 0.0


def merge(shards: list[Stats]) -> Stats:
    """Sum counters across shards; latency is the call-weighted mean of the shards' EWMAs."""
    total = empty()
    weighted_latency = 0.0
    for shard in shards:
        for field in ("calls", "successes", "input_tokens", "output_tokens", "cost_micros"):
            total[field] += shard[field]
        for cls, count in shard["failures"].items():
            total["failures"][cls] = total["failures"].get(cls, 0) + count
        if shard["latency_ewma_ms"] is not None:
            weighted_latency += shard["latency_ewma_ms"] * shard["calls"]
    if total["calls"]:
        total["latency_ewma_ms"] = weighted_latency / total["calls"]
    return total
