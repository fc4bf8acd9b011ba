"""A task store in a dict: the ``agents/taskstate.TaskStore`` protocol without a broker, for unit tests."""

from __future__ import annotations

from swarmstream.agents.taskstate import State


class MemoryStore:
    def __init__(self) -> None:
        self.states: dict[str, State] = {}

    def get(self, task_id: str, created_ms: int) -> State | None:
        return self.states.get(task_id)

    def set(self, task_id: str, created_ms: int, state: State) -> None:
        self.states[task_id] = state
