"""Free quality labels: a model that agrees with a confident consensus was right.

No human labels are needed to learn which models are reliable for which
category: once a consensus is confident, each vote that backs its answer
counts as a success for that model and category, and each vote against it as
a failure. Weak consensus teaches nothing (it would teach the majority's
mistakes). Reliability is the mean of a Beta(1, 1)-prior posterior, so an
unmeasured model starts at 0.5 and a model needs evidence to move away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from swarmstream.schemas.models import TaskResult

MIN_VOTES = 3
MIN_CONFIDENCE = 0.75
"""Labels come only from results with at least three votes and this confidence:
with three 0.7-accurate voters a unanimous answer is right ~97% of the time."""

Counts = dict[str, int]


def labels(result: TaskResult) -> list[tuple[str, bool]]:
    """(model, agreed) for every vote of a result confident enough to teach."""
    if result.answer is None or len(result.votes) < MIN_VOTES or result.confidence < MIN_CONFIDENCE:
        return []
    return [(vote.model_id, vote.answer == result.answer) for vote in result.votes]


def add(counts: Counts | None, agreed: bool) -> Counts:
    counts = dict(counts or {"agree": 0, "total": 0})
    counts["total"] += 1
    counts["agree"] += int(agreed)
    return counts


def reliability(shards: Iterable[Mapping[str, int]]) -> float:
    agree = total = 0
    for shard in shards:
        agree += shard["agree"]
        total += shard["total"]
    return (agree + 1) / (total + 2)
