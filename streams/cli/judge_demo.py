"""``swarmstream demo --mode judge``: free-text tasks answered by three models, then fused or judged.

Tasks alternate: even ones ``fuse`` (the judge model writes the answer from the three
candidates), odd ones ``judge`` (it picks one). The judge is the catalog's most accurate
model outside the task's three (a stronger model judging a panel, as OpenRouter Fusion's
judge and TensorZero's evaluator are meant to be), or their first when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from swarmstream.agents.models.catalog import Catalog
from swarmstream.schemas.models import TaskRequest, TaskResult

STRATEGIES = ("fuse", "judge")


def judge_model(catalog: Catalog, panel: Sequence[str]) -> str:
    others = [m for m in catalog.models.values() if m.id not in panel]
    if not others:
        return panel[0]
    return max(others, key=lambda m: (m.simulated.accuracy if m.simulated else 0.0, m.id)).id


def judged_request(request: TaskRequest, index: int, *, panel: Sequence[str], judge: str) -> TaskRequest:
    return request.model_copy(update={"models": list(panel), "strategy": STRATEGIES[index % 2], "judge": judge})


def judge_stats(results: Mapping[str, TaskResult], answers: Mapping[str, str]) -> dict[str, object]:
    """What the judge mode adds to the summary: judge calls per task, and accuracy per strategy."""
    n = max(1, len(results))
    by_strategy: dict[str, dict[str, float]] = {}
    for strategy in STRATEGIES:
        mine = {t: r for t, r in results.items() if r.strategy == strategy}
        right = sum(1 for t, r in mine.items() if r.answer == answers[t])
        vote_right = sum(1 for t, r in mine.items() if _vote_answer(r) == answers[t])
        by_strategy[strategy] = {"tasks": len(mine), "accuracy": round(right / max(1, len(mine)), 4),
                                 "vote_accuracy": round(vote_right / max(1, len(mine)), 4)}
    return {
        "judge_calls_per_task": round(sum(r.judge_calls for r in results.values()) / n, 3),
        "judge_cost_usd": round(sum(r.judge_cost_micros for r in results.values()) / 1e6, 6),
        "judged_by": sorted({r.judged_by for r in results.values() if r.judged_by}),
        "strategies": by_strategy,
    }


def _vote_answer(result: TaskResult) -> str | None:
    """The plain majority of the candidates a result keeps (what the task would have answered unjudged)."""
    counts: dict[str, int] = {}
    for vote in result.votes:
        counts[vote.answer] = counts.get(vote.answer, 0) + 1
    return max(counts, key=lambda a: (counts[a], a)) if counts else None
