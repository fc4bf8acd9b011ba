"""Feedback agent: swarm.feedback -> QualityEvents on swarm.quality.

A judgement of a task's result (0 wrong .. 1 right) teaches every model that
gave that answer ``score`` and every model that gave another answer
``1 - score``. The task's finished state says who agreed with the answer
(``DoneRecord.agreed``, ``agents/taskstate.py``); feedback for a task that is not
finished, or whose state has expired (the task table's window), teaches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.taskstate import TaskStore
from swarmstream.schemas.models import Feedback, QualityEvent, now_ms


def rewards(state: Mapping[str, Any], score: float) -> list[tuple[str, float]]:
    """(model, reward) for a finished task judged ``score``: ``state`` is its DoneRecord, or a
    full state of any mode marked done (as finished tasks were kept before DoneRecord)."""
    if "agreed" in state:
        return [(model, score if agreed else 1.0 - score) for model, agreed in sorted(state["agreed"].items())]
    # a full state marked done, as finished tasks were kept before they shrank to a DoneRecord
    if "chain" in state:
        attempts = state["chain"]["attempts"]
        answered = [a["model"] for a in attempts if a.get("failure_class") is None]
        return [(answered[-1], score)] if answered else []
    final = state.get("answer")
    return [(model, score if a["answer"] == final else 1.0 - score) for model, a in sorted(state["answers"].items())]


class FeedbackRecorder:
    def __init__(self, *, store: TaskStore, emit: Emit, quality_topic: str, dead_letter_topic: str) -> None:
        self._store = store
        self._emit = emit
        self._quality = quality_topic
        self._dead = DeadLetters(emit, dead_letter_topic)

    async def handle(self, message: InputMessage) -> None:
        feedback = await self._dead.decode(message, Feedback)
        if feedback is None:
            return
        state = self._store.get(feedback.task_id, feedback.created_ms)
        if state is None or not state.get("done"):
            return
        category = state["category"] if "agreed" in state else state["task"].get("category")
        for model, reward in rewards(state, feedback.score):
            await self._emit(self._quality, model, QualityEvent(model_id=model, category=category, reward=reward,
                                                                source=f"feedback:{feedback.source}",
                                                                task_id=feedback.task_id, at_ms=now_ms()))
