"""The judge phase of a consensus task: a second step after the candidates, as a pure state machine.

When every candidate slot of a ``judge``, ``fuse`` or ``vote_then_judge`` task has an
outcome, the join (``join.py``) hands the state here instead of deciding:

1. the vote is taken as usual (the task's answer type's default strategy); for
   ``vote_then_judge`` a vote that is not split (``judging.split``) ends the task as it
   would without a judge, and no judge is asked;
2. the distinct answers are shown to the judge (or fuser) anonymised and shuffled with
   the task's recorded seed (``judging.show``);
3. the judge name (the task's ``judge``, else the configured one) resolves to links tried
   in turn, like a fallback chain: a link whose breaker is open, or whose forecast does not
   fit the task's ``max_cost_micros`` next to what the task spent, is passed over; a link's
   call is an ordinary model request (role ``judge``/``fuse``) through the model's topic,
   with its failure classes, breakers, stats and the call log;
4. a link that fails, or whose reply is not a valid :class:`~.judging.Verdict`, moves the
   phase to the next link; with no link left the task ends with the vote's answer and a
   reason that says what happened to each judge.

The phase lives in the task's state under ``"judge"`` (JSON: it is in the changelog). A
judge outcome that is not the one the phase waits for (a late reply of an earlier link, a
redelivery) is a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmstream.agents.consensus.judging import (
    FUSE_SYSTEM,
    JUDGE_MAX_TOKENS,
    JUDGE_SYSTEM,
    SPLIT_BELOW,
    InvalidVerdict,
    Shown,
    fuse_prompt,
    judge_prompt,
    parse_verdict,
    show,
    shuffle_seed,
    split,
)
from swarmstream.agents.consensus.slots import Slot
from swarmstream.agents.consensus.votes import Decision
from swarmstream.agents.taskstate import ConsensusState
from swarmstream.schemas.models import Failure, ModelResponse

BAD_VERDICT = "invalid_output"
"""The failure class a reply that is not a verdict counts as (as a label outside the offered ones)."""


def _one_link(name: str) -> list[str]:
    return [name]


def _free(model: str, prompt_chars: int, max_tokens: int) -> int:
    return 0


def _closed(model: str) -> bool:
    return True


@dataclass(frozen=True)
class Judging:
    """What the judge phase needs from configuration (``streams/app/topology.py`` wires it).

    ``links``: a judge name -> the models to try in turn (a chain's links, or the model itself);
    ``forecast_micros``: (model, prompt characters, max_tokens) -> the cost reserved before a call;
    ``admits``: whether a model's breaker lets a call through now."""

    links: Callable[[str], list[str]] = _one_link
    default_judge: str | None = None
    forecast_micros: Callable[[str, int, int], int] = _free
    admits: Callable[[str], bool] = _closed
    split_below: float = SPLIT_BELOW


@dataclass(frozen=True)
class JudgeAsk:
    """A judge or fuser call to make: the agent sends it as a model request of role ``role``."""

    model_id: str
    role: str
    prompt: str
    system: str
    max_tokens: int
    forecast_micros: int


@dataclass(frozen=True)
class PhaseStep:
    state: ConsensusState
    ask: JudgeAsk | None = None
    ended: dict[str, Any] | None = None
    """How the phase ended, for ``join.decide``: ``picked`` (an answer and the verdict), ``fused``
    (the fuser's answer) or neither (the vote stands), with ``reason`` and the phase's counters."""
    duplicate: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def role_of(strategy: str) -> str:
    return "fuse" if strategy == "fuse" else "judge"


def start(state: ConsensusState, vote: Decision, judging: Judging) -> PhaseStep:
    """Open the phase after the vote, or end it at once (no split, one answer, no judge)."""
    task = state["task"]
    strategy = task["strategy"]
    if strategy == "vote_then_judge" and not split(vote.agreement, judging.split_below):
        return PhaseStep(state, ended=_ended(None, f"vote agreement {vote.agreement:.2f} >= "
                                                  f"{judging.split_below:.2f}: no judge needed"))
    if "prompt" not in task:  # adopted from an outcome (join._adopt): nothing to show a judge
        return PhaseStep(state, ended=_ended(None, "the task's prompt is unknown here: no judge"))
    answers = [(slot, a["answer"]) for slot, a in sorted(state["answers"].items())]
    shown = show(answers, shuffle_seed(task["task_id"], task.get("seed")))
    if len(shown.answers) < 2:
        return PhaseStep(state, ended=_ended(None, f"{len(shown.answers)} distinct answer(s): nothing to "
                                                  f"{role_of(strategy)}"))
    name = task.get("judge") or judging.default_judge
    if name is None:
        return PhaseStep(state, ended=_ended(None, "no judge: the task names none and none is configured"))
    phase = {
        "role": role_of(strategy), "links": judging.links(name), "index": 0, "seed": shown.seed,
        "answers": list(shown.answers), "slots": [list(s) for s in shown.slots],
        "calls": 0, "cost_micros": 0, "reserved_micros": 0, "tried": [],
    }
    return _next_link({**state, "judge": phase}, judging)


def shown_of(phase: Mapping[str, Any]) -> Shown:
    return Shown(tuple(phase["answers"]), tuple(tuple(s) for s in phase["slots"]), phase["seed"])


def _prompt(state: ConsensusState, phase: Mapping[str, Any]) -> tuple[str, str, int]:
    task = state["task"]
    shown = shown_of(phase)
    if phase["role"] == "fuse":
        return fuse_prompt(task["prompt"], shown), FUSE_SYSTEM, task.get("max_tokens", 256)
    return judge_prompt(task["prompt"], shown), JUDGE_SYSTEM, JUDGE_MAX_TOKENS


def spent_micros(state: ConsensusState) -> int:
    """What the task has spent so far: its candidates' calls and the judge phase's."""
    candidates = sum(a.get("cost_micros", 0) for a in state["answers"].values())
    return candidates + state.get("judge", {}).get("cost_micros", 0)


def _next_link(state: ConsensusState, judging: Judging) -> PhaseStep:
    """Ask the phase's current link, or the first after it that may be called; end with the vote
    when none is left."""
    phase = dict(state["judge"])
    tried = list(phase["tried"])
    prompt, system, max_tokens = _prompt(state, phase)
    cap = state["task"].get("max_cost_micros", 0)
    while phase["index"] < len(phase["links"]):
        model = phase["links"][phase["index"]]
        forecast = judging.forecast_micros(model, len(prompt) + len(system), max_tokens)
        if not judging.admits(model):
            tried.append({"model": model, "outcome": "circuit_open"})
        elif cap and spent_micros(state) + forecast > cap:
            tried.append({"model": model, "outcome": "budget_exceeded",
                          "detail": f"forecast {forecast} + spent {spent_micros(state)} > {cap}"})
        else:
            phase.update(tried=tried, reserved_micros=forecast)
            return PhaseStep({**state, "judge": phase},
                             ask=JudgeAsk(model, phase["role"], prompt, system, max_tokens, forecast))
        phase["index"] += 1
    phase.update(tried=tried, reserved_micros=0)
    state = {**state, "judge": phase}
    outcomes = ", ".join(f"{t['model']}: {t['outcome']}" for t in tried) or "no links"
    return PhaseStep(state, ended=_ended(phase, f"no {phase['role']} left ({outcomes}): the vote's answer stands"))


def awaiting(state: ConsensusState) -> Slot | None:
    """The judge slot the phase waits for, if any."""
    phase = state.get("judge")
    if not phase or phase.get("done") or phase["index"] >= len(phase["links"]):
        return None
    return Slot(phase["links"][phase["index"]], role=phase["role"])


def on_outcome(state: ConsensusState, slot: Slot, outcome: ModelResponse | Failure, judging: Judging) -> PhaseStep:
    """Fold a judge or fuser outcome into the phase: end it, or move to the next link."""
    if awaiting(state) != slot:
        return PhaseStep(state, duplicate=True)
    if isinstance(outcome, Failure) and not outcome.final:
        return PhaseStep(state)
    phase = dict(state["judge"])
    phase["calls"] += 1
    phase["reserved_micros"] = 0
    if isinstance(outcome, ModelResponse):
        phase["cost_micros"] += outcome.cost_micros
        if phase["role"] == "fuse":
            phase["done"] = True
            return PhaseStep({**state, "judge": phase}, ended={
                **_ended(phase, f"fused by {slot.model_id} from {len(phase['answers'])} distinct candidates"),
                "fused": outcome.answer, "by": slot.model_id})
        try:
            verdict = parse_verdict(outcome.answer, len(phase["answers"]))
        except InvalidVerdict as exc:
            phase["tried"] = [*phase["tried"], {"model": slot.model_id, "outcome": BAD_VERDICT, "detail": str(exc)}]
        else:
            phase["done"] = True
            return PhaseStep({**state, "judge": phase}, ended={
                **_ended(phase, f"judged by {slot.model_id}: candidate {verdict.index} of {len(phase['answers'])}"),
                "picked": phase["answers"][verdict.index - 1], "pick": verdict.index,
                "rationale": verdict.rationale, "by": slot.model_id})
    else:
        phase["tried"] = [*phase["tried"], {"model": slot.model_id, "outcome": outcome.failure_class}]
    phase["index"] += 1
    return _next_link({**state, "judge": phase}, judging)


def _ended(phase: Mapping[str, Any] | None, reason: str) -> dict[str, Any]:
    if phase is None:
        return {"reason": reason, "calls": 0, "cost_micros": 0, "seed": None}
    return {"reason": reason, "calls": phase["calls"], "cost_micros": phase["cost_micros"], "seed": phase["seed"]}
