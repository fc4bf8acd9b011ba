"""The consensus join as a pure state machine over one task's outcomes.

State is a plain dict (JSON in the changelog), one per task, kept by the
agents in a windowed table. Intake opens it (:func:`open_task`) with the task
and the models to ask; :func:`apply` folds one ModelResponse or Failure into
it and says whether the task is now decided, or which models to ask next.
Guarantees the agents rely on for exactly one result per task under
at-least-once delivery:

- an outcome from a model already counted is ignored (redelivery, retries);
- once ``done``, nothing changes the decision; later answers are duplicates
  here (the call log still records them);
- a task is decided when every model asked has answered or failed for good,
  or, with ``early_stop``, as soon as :func:`.sequential.plan_next` says the
  vote is settled. Model calls are bounded by the task's deadline, so every
  task is decided at the latest shortly after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from swarmstream.agents.consensus.sequential import plan_next
from swarmstream.agents.consensus.strategies import aggregate
from swarmstream.agents.consensus.votes import Decision, Vote
from swarmstream.agents.taskstate import State
from swarmstream.schemas.models import (
    Attempt,
    CastVote,
    Failure,
    ModelResponse,
    TaskRequest,
    TaskResult,
    now_ms,
)

UNANSWERED_STATUS = {cls: cls for cls in ("timeout", "budget_exceeded", "tool_loop", "max_turns", "max_tool_calls")}
"""When every model failed the same way and that way has a status of its own, the task ends with it
(a caller tells a deadline from a tool loop without reading the attempts); otherwise ``failed``."""


@dataclass(frozen=True)
class Step:
    state: State
    result: TaskResult | None = None
    ask: list[str] = field(default_factory=list)
    duplicate: bool = False


def open_task(task: TaskRequest, *, order: Sequence[str], asked: Sequence[str], deadline_ms: int) -> State:
    """The state intake writes before it sends the first requests."""
    return {
        "task": task.model_dump(),
        "order": list(order),
        "asked": list(asked),
        "answers": {},
        "failures": {},
        "done": False,
        "deadline_ms": deadline_ms,
    }


def _adopt(outcome: ModelResponse | Failure) -> State:
    """A state for an outcome whose task intake never opened here (an older producer,
    or a lost state): it knows only what the outcome carries."""
    step = outcome.step
    return {
        "task": {
            "task_id": step.task_id, "created_ms": step.created_ms, "answer_type": step.answer_type,
            "strategy": step.strategy, "mode": step.mode, "category": step.category, "early_stop": False,
        },
        "order": list(step.expected_models),
        "asked": list(step.expected_models),
        "answers": {},
        "failures": {},
        "done": False,
        "deadline_ms": step.deadline_ms,
    }


def apply(
    state: State | None,
    outcome: ModelResponse | Failure,
    *,
    review_threshold: float,
    stop_threshold: float = 0.65,
    reliability: Mapping[str, float] | None = None,
) -> Step:
    state = _adopt(outcome) if state is None else state
    model = outcome.step.model_id
    if state["done"] or model in state["answers"] or model in state["failures"]:
        return Step(state, duplicate=True)
    state = {**state, "answers": dict(state["answers"]), "failures": dict(state["failures"])}
    if not state["asked"]:  # select mode: intake did not know which model the selector would pick
        state["asked"] = state["order"] = [model]
    if isinstance(outcome, ModelResponse):
        state["answers"][model] = {
            "answer": outcome.answer,
            "confidence": outcome.confidence,
            "latency_ms": outcome.latency_ms,
            "cost_micros": outcome.cost_micros,
        }
    elif outcome.final:
        state["failures"][model] = {"class": outcome.failure_class, "latency_ms": outcome.latency_ms}
    else:
        return Step(state)

    pending = [m for m in state["asked"] if m not in state["answers"] and m not in state["failures"]]
    if pending:
        return Step(state)
    if state["task"].get("early_stop"):
        # Judged once per batch, as in bench/consensus.py: judging after every single
        # answer would stop on one vote (Beta(2, 1) already gives 0.75).
        plan = plan_next(
            state["order"],
            {m: a["answer"] for m, a in state["answers"].items()},
            list(state["failures"]),
            max_models=len(state["order"]),
            threshold=stop_threshold,
        )
        if plan.ask:
            state["asked"] = state["asked"] + plan.ask
            return Step(state, ask=plan.ask)
    state["done"] = True
    return Step(state, result=decide(state, review_threshold, reliability or {}))


def votes_of(state: State, reliability: Mapping[str, float]) -> list[Vote]:
    return [
        Vote(
            model_id=model,
            answer=a["answer"],
            weight=reliability.get(model, 1.0),
            confidence=a["confidence"],
            latency_ms=a["latency_ms"],
        )
        for model, a in sorted(state["answers"].items())
    ]


def decide(state: State, review_threshold: float, reliability: Mapping[str, float]) -> TaskResult:
    task: dict[str, Any] = state["task"]
    answers: dict[str, dict[str, Any]] = state["answers"]
    failures: dict[str, dict[str, Any]] = state["failures"]
    votes = votes_of(state, reliability)
    attempts = [Attempt(model_id=m, latency_ms=a["latency_ms"]) for m, a in sorted(answers.items())]
    attempts += [Attempt(model_id=m, failure_class=f["class"], latency_ms=f["latency_ms"]) for m, f in sorted(failures.items())]
    common: dict[str, Any] = {
        "task_id": task["task_id"],
        "mode": task["mode"],
        "attempts": attempts,
        "models_asked": len(state["asked"]),
        "cost_micros": sum(a["cost_micros"] for a in answers.values()),
        "created_ms": task["created_ms"],
        "completed_ms": now_ms(),
    }
    if not votes:
        classes = sorted({f["class"] for f in failures.values()})
        status = UNANSWERED_STATUS.get(",".join(classes), "failed")
        return TaskResult(status=status, reason=f"no model answered ({', '.join(classes)})", **common)
    decision = aggregate(votes, answer_type=task["answer_type"], strategy=task["strategy"])
    return TaskResult(
        status=status_of(decision, failures, review_threshold),
        answer=decision.answer,
        agreement=decision.agreement,
        confidence=decision.confidence,
        strategy=decision.strategy,
        tie=decision.tie,
        answered_by=votes[0].model_id if len(votes) == 1 else None,
        votes=[CastVote(model_id=v.model_id, answer=v.answer, weight=v.weight, latency_ms=v.latency_ms) for v in votes],
        reason=decision.reason,
        **common,
    )


def status_of(decision: Decision, failures: Mapping[str, Mapping[str, Any]], review_threshold: float) -> str:
    """Low agreement outranks a partial answer: a human should look at it either way."""
    if decision.confidence < review_threshold or decision.agreement < review_threshold:
        return "low_consensus"
    if any(f["class"] == "timeout" for f in failures.values()):
        return "partial"
    return "ok"


LABEL_MIN_VOTES = 3
LABEL_MIN_CONFIDENCE = 0.75
"""Quality labels come only from results with at least three votes and this
confidence: with three 0.7-accurate voters a unanimous answer is right ~97% of
the time, and weak consensus would teach the majority's mistakes."""


def quality_labels(result: TaskResult) -> list[tuple[str, float]]:
    """(model, reward) for every vote of a result confident enough to teach: a model
    that agrees with a confident consensus was right, one that disagrees was wrong."""
    if result.answer is None or len(result.votes) < LABEL_MIN_VOTES or result.confidence < LABEL_MIN_CONFIDENCE:
        return []
    return [(vote.model_id, 1.0 if vote.answer == result.answer else 0.0) for vote in result.votes]
