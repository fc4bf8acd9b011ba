"""The per-task state every mode shares, and the one way a task ends.

Intake opens a task's state; the consensus join or the chain runner moves it
on; :class:`Finisher` publishes the task's one result. All of them write the
same table (keyed by task id, co-partitioned with every task topic), so each
task has one writer: the worker that owns its partition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from swarmstream.agents.ports import Emit
from swarmstream.schemas.models import ReviewItem, TaskRequest, TaskResult, now_ms

State = dict[str, Any]


class TaskStore(Protocol):
    """The task table, addressed by task and the task's creation time (its window)."""

    def get(self, task_id: str, created_ms: int) -> State | None: ...
    def set(self, task_id: str, created_ms: int, state: State) -> None:
        """Write the state; the event being handled is acked only once it is in the changelog."""


class Finisher:
    """Publishes a task's result, then marks the task done.

    The done mark is written after the result is acknowledged, never before,
    and the input is acked only once the mark is in the changelog (every table
    write holds back its event's ack): a crash in between can repeat a result
    (the window is one changelog write; clients dedupe by task id) but never
    lose one. While the result is in flight the task id is in ``_publishing``,
    so a redelivered event cannot end the same task twice.

    A workflow step's child task (``parent_task_id`` set) is not the caller's:
    given the workflows' step-results topic (``step_results_topic``), its
    result goes there keyed by the parent, so the workflow runner that owns the
    parent's partition gets it, and no review item is raised for it (the
    workflow decides what a split vote means).
    """

    def __init__(self, *, store: TaskStore, emit: Emit, results_topic: str, review_topic: str,
                 review_threshold: float, step_results_topic: str | None = None,
                 published: Callable[[str], bool] = lambda task_id: False) -> None:
        """``published``: whether a task's result is already on the results topic
        (``streams/published.py``): then only the done mark is written."""
        self._store = store
        self._emit = emit
        self._results = results_topic
        self._review = review_topic
        self._review_threshold = review_threshold
        self._publishing: set[str] = set()
        self._step_results = step_results_topic
        self._published = published

    def busy(self, task_id: str) -> bool:
        return task_id in self._publishing

    async def finish(self, state: State, result: TaskResult) -> None:
        task_id, created_ms = result.task_id, state["task"]["created_ms"]
        parent = state["task"].get("parent_task_id") if self._step_results else None
        self._publishing.add(task_id)
        try:
            if parent:
                await self._emit(self._step_results, parent, result)  # type: ignore[arg-type]
                self._store.set(task_id, created_ms, {**state, "done": True, "answer": result.answer})
                return
            if self._published(task_id):  # published before a crash that lost the done mark
                self._store.set(task_id, created_ms, {**state, "done": True, "answer": result.answer})
                return
            if result.status == "low_consensus" and "prompt" in state["task"]:
                await self._emit(self._review, task_id, ReviewItem(
                    task=TaskRequest.model_validate(state["task"]),
                    result=result,
                    reason=review_reason(result, self._review_threshold),
                    flagged_ms=now_ms(),
                ))
            await self._emit(self._results, task_id, result)
            self._store.set(task_id, created_ms, {**state, "done": True, "answer": result.answer})
        finally:
            self._publishing.discard(task_id)


def review_reason(result: TaskResult, review_threshold: float) -> str:
    return (
        f"agreement {result.agreement:.2f} / confidence {result.confidence:.2f} below the review threshold "
        f"{review_threshold:.2f}: {len(result.votes)} answers, {len({v.answer for v in result.votes})} distinct"
    )


SWEEP_GRACE_MS = 2_000
"""How long after its deadline a task may still be waiting before the sweeper ends
it: model calls are bounded by the deadline, so a healthy outcome arrives within a
fetch or two of it; one still missing then was lost on the way."""


def overdue(state: State, now_ms: int) -> list[tuple[str, int]]:
    """(model, attempt) of every outcome an open task still waits for, if it is overdue.

    The safety net under "every call ends in an outcome": should an outcome event be
    lost (a consumer that drops a fetched record in a rebalance, say), the task would
    wait forever; the sweeper turns each missing outcome into a timeout Failure and
    the task ends like any other (``timeout`` or ``partial``, or the chain moves on).
    """
    if state.get("done") or state["deadline_ms"] + SWEEP_GRACE_MS > now_ms:
        return []
    if "chain" in state:
        chain = state["chain"]
        if chain.get("awaiting_attempt") is None:
            return []
        return [(chain["links"][chain["index"]], chain["awaiting_attempt"])]
    asked = state["asked"] or ["(selector)"]
    return [(m, 0) for m in asked if m not in state["answers"] and m not in state["failures"]]
