"""A cascade: ask one strong-for-its-price model, and pay for more models only when there is
reason to doubt it (FrugalGPT, Chen et al. 2023; AutoMix, Madaan et al. 2023). Pure logic.

Why it, and not a vote of many: on models whose mistakes are correlated (every real fleet,
``agents/models/simulated/correlated.py``) a second and third model mostly repeat the first
one's answer, right or wrong, so a fixed vote of three buys little accuracy for three times
the price. A doubt signal that is cheap decides where extra calls are worth it:

- the first model's own confidence (token logprobs) below ``confidence_floor``, and/or
- a cheap ``checker`` model's answer differing from the first model's.

When either doubts, the ``escalate`` models are asked and the answers of everyone asked are
combined by ``strategies.weighted`` (each model's vote weight is its measured reliability,
supplied by the caller), so a strong escalation model can overrule the first one.

    step = plan_cascade(cascade, got={})                  # -> ask (first, checker)
    step = plan_cascade(cascade, got={first: v1, checker: v2})
    if step.done: step.decision  else: ask step.ask, and plan again
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .strategies import weighted
from .votes import Decision, Vote


@dataclass(frozen=True, slots=True)
class Cascade:
    """``first`` answers every task; ``checker`` (optional, cheap) is asked with it; ``escalate``
    is asked when the first answer is doubted. ``confidence_floor`` None ignores confidence;
    a first answer without a confidence (no logprobs) is doubted only by the checker."""

    first: str
    escalate: tuple[str, ...]
    confidence_floor: float | None = 0.9
    checker: str | None = None

    def __post_init__(self) -> None:
        named = [self.first, *self.escalate, *([self.checker] if self.checker else [])]
        if len(set(named)) != len(named):
            raise ValueError(f"cascade: a model is named twice in {named}")
        if self.confidence_floor is None and self.checker is None:
            raise ValueError("cascade: with neither a confidence floor nor a checker nothing would ever escalate")


@dataclass(frozen=True, slots=True)
class CascadeStep:
    """Either models still to ask (``ask``), or the decision (``done``) and why."""

    ask: tuple[str, ...]
    done: bool
    decision: Decision | None = None
    escalated: bool = False
    reason: str = ""


def doubt(cascade: Cascade, got: Mapping[str, Vote]) -> str | None:
    """Why the first answer is doubted (in words), or None when it stands."""
    first = got[cascade.first]
    if cascade.confidence_floor is not None and first.confidence is not None and first.confidence < cascade.confidence_floor:
        return f"{cascade.first} confidence {first.confidence:.2f} < {cascade.confidence_floor}"
    if cascade.checker is not None and got[cascade.checker].answer != first.answer:
        return f"{cascade.checker} answered {got[cascade.checker].answer!r}, {cascade.first} {first.answer!r}"
    return None


def plan_cascade(cascade: Cascade, got: Mapping[str, Vote]) -> CascadeStep:
    """The next step given the votes collected so far (keyed by model id)."""
    opening = (cascade.first, *([cascade.checker] if cascade.checker else []))
    missing = tuple(m for m in opening if m not in got)
    if missing:
        return CascadeStep(ask=missing, done=False, reason="opening")
    why = doubt(cascade, got)
    if why is None:
        first = got[cascade.first]
        return CascadeStep(ask=(), done=True, decision=weighted([first]), reason=f"{cascade.first} stands")
    missing = tuple(m for m in cascade.escalate if m not in got)
    if missing:
        return CascadeStep(ask=missing, done=False, escalated=True, reason=why)
    asked: Sequence[Vote] = [got[m] for m in (*opening, *cascade.escalate)]
    return CascadeStep(ask=(), done=True, decision=weighted(asked), escalated=True, reason=why)
