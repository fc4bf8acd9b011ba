"""Task intake: which models a valid task asks, and in what order.

Pure: a task, the catalog and measured reliabilities in, a plan out. A task
that cannot run (an unknown model, a bad JSON schema) raises
:class:`InvalidTask` with a reason a caller can act on; the agent sends it to
the dead letters.

Which models:
- the task names them: those (``single`` mode: the first);
- the task sets ``min_models``/``max_models`` or ``early_stop``: chosen from
  the whole catalog for diversity (one per family first, then by measured
  reliability, :func:`consensus.diversity.pick_models`), as many as the
  task's complexity asks for within its bounds;
- otherwise the catalog's default consensus set.

With ``samples`` > 1 every model is asked that many times (self-consistency): the plan's
``order`` and ``ask`` are candidate slots (``consensus/slots.py``), round by round (every model's
first sample, then the second ...); diversity picks choose models first, so a model's samples never
pass for other families, and an early-stop batch asks other models before a model's next sample.

With ``early_stop`` the plan asks only the first batch now
(:func:`consensus.sequential.plan_next`); the consensus agent asks the rest
if the vote is not yet settled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from swarmstream.agents.consensus.diversity import models_for_complexity, pick_models
from swarmstream.agents.consensus.sequential import plan_next
from swarmstream.agents.consensus.slots import candidate_slots
from swarmstream.agents.taskstate import task_digest
from swarmstream.schemas.models import TaskRequest

DEFAULT_MAX_MODELS = 5
"""Diversity picks never exceed this unless the task asks: five independent
voters already take a 0.7-accurate fleet to ~0.84 (majority), and each extra
model is paid for."""


class InvalidTask(ValueError):
    """A task that decoded but cannot run; the message says why."""


@dataclass(frozen=True)
class Plan:
    order: list[str]
    ask: list[str]
    deadline_ms: int


def plan_task(
    task: TaskRequest,
    *,
    families: Mapping[str, str],
    default_models: Sequence[str],
    reliability: Callable[[], Mapping[str, float]] = dict,
) -> Plan:
    """``reliability`` is asked only when the models are picked for diversity."""
    if task.samples > 1 and task.tools:
        raise InvalidTask("samples > 1 with tools is not supported: a tool turn's calls are shared by model, and "
                          "the samples of one model would wait on each other; send samples: 1 or no tools")
    models = choose_models(task, families=families, default_models=default_models, reliability=reliability)
    order = candidate_slots(models, task.samples)
    if task.answer_type == "json" and task.json_schema is not None:
        try:
            orjson.loads(task.json_schema)
        except orjson.JSONDecodeError as exc:
            raise InvalidTask(f"json_schema is not valid JSON: {exc}") from None
    ask = plan_next(order, {}, [], max_models=len(order)).ask if task.early_stop else order
    return Plan(order=order, ask=ask, deadline_ms=task.created_ms + task.timeout_ms)


def choose_models(
    task: TaskRequest,
    *,
    families: Mapping[str, str],
    default_models: Sequence[str],
    reliability: Callable[[], Mapping[str, float]],
) -> list[str]:
    if task.models:
        models = list(dict.fromkeys(task.models))
        unknown = [m for m in models if m not in families]
        if unknown:
            raise InvalidTask(f"unknown model(s) {unknown} (known: {sorted(families)})")
        return models[:1] if task.mode == "single" else models
    if task.min_models > task.max_models > 0:
        raise InvalidTask(f"min_models {task.min_models} > max_models {task.max_models}")
    if task.mode == "single":
        return list(default_models[:1])
    if not (task.min_models or task.max_models or task.early_stop):
        if not default_models:
            raise InvalidTask("no models: the task names none and the catalog has no default set")
        return list(default_models)
    upper = min(task.max_models or DEFAULT_MAX_MODELS, len(families))
    lower = min(task.min_models or 1, upper)
    n = upper if task.early_stop else models_for_complexity(task.prompt, task.answer_type, lower, upper)
    measured = reliability()
    candidates = [(m, family, measured.get(m, 0.5)) for m, family in families.items()]
    return pick_models(candidates, n)


def same_task(state: Mapping[str, Any], task: TaskRequest) -> bool:
    """Whether ``state`` (open, or finished and compacted to its digest) is ``task``'s."""
    if "task_digest" in state:
        return bool(state["task_digest"] == task_digest(task))
    known = state.get("task")
    if known is None or "prompt" not in known:  # adopted from an outcome: it knows too little to tell
        return True
    return task_digest(known) == task_digest(task)
