"""The consensus join as a pure state machine over one task's outcomes.

The state (:class:`~swarmstream.agents.taskstate.ConsensusState`: a typed dict, JSON in the
changelog), one per task, is kept by the agents in a windowed table. Intake opens it (:func:`open_task`) with the task
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

from swarmstream.agents.consensus import judge_phase
from swarmstream.agents.consensus.clustering import Embedder
from swarmstream.agents.consensus.confidence import confidence
from swarmstream.agents.consensus.judge_phase import JudgeAsk, Judging
from swarmstream.agents.consensus.judging import JUDGE_STRATEGIES
from swarmstream.agents.consensus.sequential import plan_next
from swarmstream.agents.consensus.slots import parse_slot, slot_of
from swarmstream.agents.consensus.strategies import DEFAULT_STRATEGY, aggregate
from swarmstream.agents.consensus.votes import Decision, Vote
from swarmstream.agents.taskstate import ConsensusState
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
    state: ConsensusState
    result: TaskResult | None = None
    ask: list[str] = field(default_factory=list)
    duplicate: bool = False
    judge: JudgeAsk | None = None
    """A judge or fuser call to send (``judge_phase.py``): the task waits for its outcome."""


def open_task(task: TaskRequest, *, order: Sequence[str], asked: Sequence[str], deadline_ms: int) -> ConsensusState:
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


def _adopt(outcome: ModelResponse | Failure) -> ConsensusState:
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
    state: ConsensusState | None,
    outcome: ModelResponse | Failure,
    *,
    review_threshold: float,
    stop_threshold: float = 0.65,
    reliability: Mapping[str, float] | None = None,
    judging: Judging | None = None,
    embedder: Embedder | None = None,
) -> Step:
    """Fold one outcome in. Answers and failures are keyed by slot (``slots.py``: a model's sample,
    or a judge's call); ``embedder`` is the free-text clustering's (None: the lexical default)."""
    state = _adopt(outcome) if state is None else state
    slot = slot_of(outcome.step)
    if slot.role != "candidate":
        if state["done"] or "judge" not in state:
            return Step(state, duplicate=True)
        return _phase(judge_phase.on_outcome(state, slot, outcome, judging or Judging()), review_threshold,
                      reliability or {}, embedder)
    model = slot.key
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
            "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens,
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
    if state["task"].get("strategy") in JUDGE_STRATEGIES and state["answers"]:
        vote = vote_of(state, reliability or {}, embedder)
        return _phase(judge_phase.start(state, vote, judging or Judging()), review_threshold, reliability or {},
                      embedder)
    state["done"] = True
    return Step(state, result=decide(state, review_threshold, reliability or {}, embedder=embedder))


def _phase(step: judge_phase.PhaseStep, review_threshold: float, reliability: Mapping[str, float],
           embedder: Embedder | None) -> Step:
    if step.duplicate:
        return Step(step.state, duplicate=True)
    if step.ask is not None:
        return Step(step.state, judge=step.ask)
    if step.ended is None:
        return Step(step.state)
    state = {**step.state, "done": True}
    return Step(state, result=decide(state, review_threshold, reliability, embedder=embedder, ended=step.ended))


def completes(state: ConsensusState | None, outcome: ModelResponse | Failure) -> bool:
    """Whether ``outcome`` may decide an open task: the last candidate outcome it waits for, or an
    outcome of its judge phase (whose end votes again). The agent then fetches what the vote needs,
    embeddings, once per task (later fetches find the texts cached)."""
    if state is None or state["done"] or (isinstance(outcome, Failure) and not outcome.final):
        return False
    slot = slot_of(outcome.step)
    if slot.role != "candidate":
        return "judge" in state
    seen = set(state["answers"]) | set(state["failures"]) | {slot.key}
    return all(m in seen for m in state["asked"])


def votes_of(state: ConsensusState, reliability: Mapping[str, float]) -> list[Vote]:
    """One vote per answered slot (``model_id`` is the slot key, so a model's samples are
    distinct voters); a sample weighs what its model does."""
    return [
        Vote(
            model_id=slot,
            answer=a["answer"],
            weight=reliability.get(parse_slot(slot).model_id, 1.0),
            confidence=a["confidence"],
            latency_ms=a["latency_ms"],
        )
        for slot, a in sorted(state["answers"].items())
    ]


def _voting_strategy(task: Mapping[str, Any]) -> str:
    """The strategy that votes: a judge strategy votes with its answer type's default first."""
    strategy = task.get("strategy")
    if strategy is None or strategy in JUDGE_STRATEGIES:
        return DEFAULT_STRATEGY.get(task["answer_type"], "majority")
    return str(strategy)


def vote_of(state: ConsensusState, reliability: Mapping[str, float], embedder: Embedder | None = None) -> Decision:
    strategy = _voting_strategy(state["task"])
    options = {"embedder": embedder} if embedder is not None and strategy == "cluster" else None
    return aggregate(votes_of(state, reliability), answer_type=state["task"]["answer_type"], strategy=strategy,
                     options=options)


def embedder_name(strategy: str, embedder: Embedder | None) -> str:
    """Which embedder a clustering decision used ("" when the strategy does not embed)."""
    if strategy != "cluster":
        return ""
    return str(getattr(embedder, "name", "")) or LEXICAL_EMBEDDER


LEXICAL_EMBEDDER = "hashed-ngram"
"""The built-in embedder's name in results (``clustering.HashedNgramEmbedder``)."""


def decide(state: ConsensusState, review_threshold: float, reliability: Mapping[str, float], *,
           embedder: Embedder | None = None, ended: Mapping[str, Any] | None = None) -> TaskResult:
    """The task's result from its votes; ``ended``: how its judge phase ended (``judge_phase``),
    whose pick or fused answer replaces the vote's, and whose cost counts in the task's."""
    task: dict[str, Any] = state["task"]
    answers: dict[str, dict[str, Any]] = state["answers"]
    failures: dict[str, dict[str, Any]] = state["failures"]
    votes = votes_of(state, reliability)
    attempts = [Attempt(model_id=parse_slot(m).model_id, latency_ms=a["latency_ms"]) for m, a in sorted(answers.items())]
    attempts += [Attempt(model_id=parse_slot(m).model_id, failure_class=f["class"], latency_ms=f["latency_ms"])
                 for m, f in sorted(failures.items())]
    common: dict[str, Any] = {
        "task_id": task["task_id"],
        "mode": task["mode"],
        "attempts": attempts,
        "models_asked": len(state["asked"]),
        "cost_micros": sum(a["cost_micros"] for a in answers.values()),
        "input_tokens": sum(a.get("input_tokens", 0) for a in answers.values()),  # a state from before: 0
        "output_tokens": sum(a.get("output_tokens", 0) for a in answers.values()),
        "created_ms": task["created_ms"],
        "completed_ms": now_ms(),
    }
    if not votes:
        classes = sorted({f["class"] for f in failures.values()})
        status = UNANSWERED_STATUS.get(",".join(classes), "failed")
        return TaskResult(status=status, reason=f"no model answered ({', '.join(classes)})", **common)
    decision = vote_of(state, reliability, embedder)
    cast = [CastVote(model_id=parse_slot(v.model_id).model_id, answer=v.answer, weight=v.weight,
                     latency_ms=v.latency_ms, sample=parse_slot(v.model_id).sample) for v in votes]
    common.update(embedder=embedder_name(decision.strategy, embedder), votes=cast)
    if ended is not None:
        return judged(task, decision, votes, failures, review_threshold, ended, common)
    return TaskResult(
        status=status_of(decision, failures, review_threshold),
        answer=decision.answer,
        agreement=decision.agreement,
        confidence=decision.confidence,
        strategy=decision.strategy,
        tie=decision.tie,
        answered_by=parse_slot(votes[0].model_id).model_id if len(votes) == 1 else None,
        reason=decision.reason,
        **common,
    )


def judged(task: Mapping[str, Any], vote: Decision, votes: Sequence[Vote], failures: Mapping[str, Mapping[str, Any]],
           review_threshold: float, ended: Mapping[str, Any], common: dict[str, Any]) -> TaskResult:
    """The result of a judge strategy: the judge's pick, the fuser's answer, or the vote with the
    reason no judge decided. The judge's calls count in the task's cost."""
    common = {**common, "cost_micros": common["cost_micros"] + ended["cost_micros"], "strategy": task["strategy"],
              "judge_calls": ended["calls"], "judge_cost_micros": ended["cost_micros"], "shuffle_seed": ended["seed"]}
    partial = any(f["class"] == "timeout" for f in failures.values())
    if "picked" in ended:
        picked = ended["picked"]
        agreement, picked_confidence = support_of(votes, picked)
        return TaskResult(
            status="partial" if partial else "ok", answer=picked, agreement=agreement, confidence=picked_confidence,
            answered_by=ended["by"], judged_by=ended["by"], judge_pick=ended["pick"],
            judge_rationale=ended["rationale"], reason=f"{ended['reason']}; the vote: {vote.reason}", **common)
    if "fused" in ended:
        return TaskResult(
            status="partial" if partial else "ok", answer=ended["fused"], agreement=vote.agreement,
            confidence=vote.confidence, answered_by=ended["by"], judged_by=ended["by"],
            reason=f"{ended['reason']}; the vote: {vote.reason}", **common)
    return TaskResult(
        status=status_of(vote, failures, review_threshold), answer=vote.answer, agreement=vote.agreement,
        confidence=vote.confidence, tie=vote.tie, reason=f"{ended['reason']}; {vote.strategy}: {vote.reason}",
        answered_by=parse_slot(votes[0].model_id).model_id if len(votes) == 1 else None, **common)


def support_of(votes: Sequence[Vote], answer: str) -> tuple[float, float]:
    """(agreement, confidence) of ``answer`` among ``votes``: the share of votes that gave it, and the
    one confidence formula over its backers (a judge's pick is backed by the candidates that gave it)."""
    backers = [v for v in votes if v.answer == answer]
    agreement = len(backers) / len(votes) if votes else 0.0
    return agreement, confidence(agreement, [v.weight for v in backers], [v.confidence for v in backers])


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
    first = [vote for vote in result.votes if vote.sample == 0]  # a model's samples are one model: one label
    if result.answer is None or len(first) < LABEL_MIN_VOTES or result.confidence < LABEL_MIN_CONFIDENCE:
        return []
    return [(vote.model_id, 1.0 if vote.answer == result.answer else 0.0) for vote in first]
