"""Task intake: which model calls a valid task becomes.

Pure: a task and the catalog in, ModelRequests out. A task that cannot run
(an unknown model, labels missing for a label task) raises :class:`InvalidTask`
with a reason a caller can act on; the agent sends it to the dead letters.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from swarmstream.schemas.models import ModelRequest, TaskRequest


class InvalidTask(ValueError):
    """A task that decoded but cannot run; the message says why."""


def plan_fanout(task: TaskRequest, *, known_models: Sequence[str], default_models: Sequence[str]) -> list[ModelRequest]:
    """One request per model: the task's own list, else the catalog's default set."""
    models = list(dict.fromkeys(task.models)) or list(default_models)
    unknown = [m for m in models if m not in known_models]
    if unknown:
        raise InvalidTask(f"unknown model(s) {unknown} (known: {sorted(known_models)})")
    if not models:
        raise InvalidTask("no models: the task names none and the catalog has no default set")
    if task.mode == "single":
        models = models[:1]
    if task.answer_type == "json" and task.json_schema is not None:
        try:
            orjson.loads(task.json_schema)
        except orjson.JSONDecodeError as exc:
            raise InvalidTask(f"json_schema is not valid JSON: {exc}") from None
    deadline_ms = task.created_ms + task.timeout_ms
    return [
        ModelRequest(task=task, model_id=model, attempt=0, deadline_ms=deadline_ms, expected_models=models)
        for model in models
    ]
