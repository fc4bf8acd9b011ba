"""The consensus join as a pure state machine over one task's outcomes.

State is a plain dict (JSON in the changelog), one per task, kept by the
agent in a windowed table. :func:`apply` folds one ModelResponse or Failure
into it and says whether the task is now decided. Guarantees, which the agent
relies on for exactly one result per task under at-least-once delivery:

- an outcome from a model already counted is ignored (redelivery, retries);
- once ``done``, nothing changes the decision;
- the task is decided exactly when every expected model has answered or
  failed for good. Model calls are bounded by the task's deadline, so this
  happens at the latest shortly after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swarmstream.agents.consensus.strategies import aggregate
from swarmstream.agents.consensus.votes import Vote
from swarmstream.schemas.models import Attempt, CastVote, Failure, ModelResponse, TaskResult, now_ms

State = dict[str, Any]


@dataclass(frozen=True)
class Step:
    state: State
    result: TaskResult | None = None
    duplicate: bool = False


def new_state(outcome: ModelResponse | Failure) -> State:
    step = outcome.step
    return {
        "expected": list(step.expected_models),
        "answers": {},
        "failures": {},
        "done": False,
        "created_ms": step.created_ms,
        "deadline_ms": step.deadline_ms,
        "answer_type": step.answer_type,
        "strategy": step.strategy,
        "mode": step.mode,
    }


def apply(
    state: State | None,
    outcome: ModelResponse | Failure,
    *,
    review_threshold: float,
    reliability: Mapping[str, float] | None = None,
) -> Step:
    state = new_state(outcome) if state is None else state
    model = outcome.step.model_id
    if state["done"] or model in state["answers"] or model in state["failures"]:
        return Step(state, duplicate=True)
    state = {**state, "answers": dict(state["answers"]), "failures": dict(state["failures"])}
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
    if not set(state["expected"]) <= state["answers"].keys() | state["failures"].keys():
        return Step(state)
    state["done"] = True
    return Step(state, result=decide(outcome.step.task_id, state, review_threshold, reliability or {}))


def decide(task_id: str, state: State, review_threshold: float, reliability: Mapping[str, float]) -> TaskResult:
    answers: dict[str, dict[str, Any]] = state["answers"]
    failures: dict[str, dict[str, Any]] = state["failures"]
    votes = [
        Vote(
            model_id=model,
            answer=a["answer"],
            weight=reliability.get(model, 1.0),
            confidence=a["confidence"],
            latency_ms=a["latency_ms"],
        )
        for model, a in sorted(answers.items())
    ]
    attempts = [Attempt(model_id=m, failure_class=None, latency_ms=a["latency_ms"]) for m, a in sorted(answers.items())]
    attempts += [Attempt(model_id=m, failure_class=f["class"], latency_ms=f["latency_ms"]) for m, f in sorted(failures.items())]
    timed_out = any(f["class"] == "timeout" for f in failures.values())
    common: dict[str, Any] = {
        "task_id": task_id,
        "mode": state["mode"],
        "attempts": attempts,
        "models_asked": len(state["expected"]),
        "cost_micros": sum(a["cost_micros"] for a in answers.values()),
        "created_ms": state["created_ms"],
        "completed_ms": now_ms(),
    }
    if not votes:
        classes = sorted({f["class"] for f in failures.values()})
        status = "timeout" if classes == ["timeout"] else "failed"
        return TaskResult(status=status, reason=f"no model answered ({', '.join(classes)})", **common)
    decision = aggregate(votes, answer_type=state["answer_type"], strategy=state["strategy"])
    if decision.agreement < review_threshold:
        status = "low_consensus"
    elif timed_out:
        status = "partial"
    else:
        status = "ok"
    return TaskResult(
        status=status,
        answer=decision.answer,
        agreement=decision.agreement,
        confidence=decision.confidence,
        strategy=decision.strategy,
        tie=decision.tie,
        votes=[CastVote(model_id=v.model_id, answer=v.answer, weight=v.weight, latency_ms=v.latency_ms) for v in votes],
        reason=decision.reason,
        **common,
    )
