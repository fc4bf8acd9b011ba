"""Whether a model request's outcome is already counted in its task's state.

After a crash the survivor re-reads every model request its dead peer had not
committed; many of their answers already reached the task state before the
kill. The model-call agent runs on the worker that owns the task's partition of
the task table (every task topic is keyed by task id and co-partitioned), so it
reads the state first and skips a call whose step (task, model, attempt) is
counted: at-least-once then repeats only calls whose outcome was still on its
way. Pure: the state in, a yes or no out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmstream.agents.fallback.planner import ChainProgress
from swarmstream.schemas.models import ModelRequest


def outcome_counted(state: Mapping[str, Any] | None, model_id: str, attempt: int) -> bool:
    """True when calling (``model_id``, ``attempt``) again can change nothing: the task is
    done, its chain no longer waits for this attempt, or its consensus has this model's
    answer or final failure. An unknown task (no state here) is never counted."""
    if state is None:
        return False
    if state.get("done"):
        return True
    if "chain" in state:
        return not ChainProgress.from_dict(state["chain"]).is_awaiting(model_id, attempt)
    return model_id in state.get("answers", {}) or model_id in state.get("failures", {})


def request_counted(state: Mapping[str, Any] | None, request: ModelRequest) -> bool:
    """:func:`outcome_counted` for the request's own step: a consensus task keys a model's samples
    and its judge calls by slot (``agents/consensus/slots.py``: ``<model>#<k>``, ``<model>#judge``), so
    a model's second sample, or its judge call, is not taken for its first answer."""
    if request.sample == 0 and request.role == "candidate":
        return outcome_counted(state, request.model_id, request.attempt)
    if state is None:
        return False
    if state.get("done"):
        return True
    if request.role != "candidate":
        judge = state.get("judge") or {}
        if judge.get("done") or judge.get("role") != request.role:
            return True
        return judge["index"] >= len(judge["links"]) or judge["links"][judge["index"]] != request.model_id
    slot = f"{request.model_id}#{request.sample}"
    return slot in state.get("answers", {}) or slot in state.get("failures", {})
