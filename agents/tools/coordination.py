"""Calls of one task that must be decided together: voted actions and shared executions.

Voted actions: in a consensus task, a ``write`` or ``dangerous`` call runs only when a
majority of the task's models propose the same call (same tool, same canonical
arguments, same turn). A proposal waits until the vote is settled:

- run: ``majority(n)`` models proposed it;
- refused: too few models are left unheard for this turn to reach a majority (a model
  is heard once any of its calls of the turn arrives), or the wait ran out;

so one confused model can never act alone, and the others are not held up by it.
:func:`vote_outcome` is the rule; :class:`VoteDesk` keeps the in-flight proposals of this
worker (a task's calls all land on one partition, so on one worker). After a crash the
unfinished proposals are redelivered and vote again; a call that already ran is found
in the ledger first and is not voted on again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

VoteOutcome = Literal["run", "refuse", "wait"]


def majority(models: int) -> int:
    return models // 2 + 1


def vote_outcome(proposers: set[str], heard: set[str], expected: Sequence[str]) -> VoteOutcome:
    need = majority(len(set(expected)))
    if len(proposers) >= need:
        return "run"
    unheard = set(expected) - heard
    if len(proposers) + len(unheard) < need:
        return "refuse"
    return "wait"


def ledger_key(task_id: str, turn: int, digest: str) -> str:
    """One executed call: the task, the model turn and the digest of tool + canonical arguments.
    No model in it: the same call by several models of a task is one execution."""
    return f"{task_id}|{turn}|{digest}"


@dataclass(frozen=True)
class Vote:
    outcome: VoteOutcome
    proposers: int
    models: int


@dataclass
class _Box:
    key: tuple[str, int]
    expected: tuple[str, ...]
    heard: set[str] = field(default_factory=set)
    proposals: dict[str, set[str]] = field(default_factory=dict)
    decided: dict[str, VoteOutcome] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0


class VoteDesk:
    def __init__(self) -> None:
        self._boxes: dict[tuple[str, int], _Box] = {}

    def _box(self, task_id: str, turn: int, expected: Sequence[str]) -> _Box:
        box = self._boxes.get((task_id, turn))
        if box is None:
            box = self._boxes[(task_id, turn)] = _Box((task_id, turn), tuple(expected))
        return box

    def hear(self, task_id: str, turn: int, model: str, expected: Sequence[str]) -> None:
        """A call of ``model`` for this turn arrived (any call: it proposes what it proposes)."""
        box = self._box(task_id, turn, expected)
        if model not in box.heard:
            box.heard.add(model)
            box.changed.set()

    async def propose(self, task_id: str, turn: int, model: str, digest: str, expected: Sequence[str],
                      timeout_s: float) -> Vote:
        """Wait until the vote on this call is settled: "run" or "refuse", with the tally."""
        box = self._box(task_id, turn, expected)
        outcome = await self._settle(box, model, digest, timeout_s)
        return Vote(outcome, len(box.proposals[digest]), len(set(box.expected)))

    async def _settle(self, box: _Box, model: str, digest: str, timeout_s: float) -> VoteOutcome:
        box.heard.add(model)
        box.proposals.setdefault(digest, set()).add(model)
        box.changed.set()
        box.waiting += 1
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                while True:
                    outcome = box.decided.get(digest) or vote_outcome(box.proposals[digest], box.heard, box.expected)
                    if outcome != "wait":
                        box.decided[digest] = outcome
                        return outcome
                    box.changed.clear()
                    await box.changed.wait()
        except TimeoutError:
            outcome = "run" if len(box.proposals[digest]) >= majority(len(set(box.expected))) else "refuse"
            box.decided.setdefault(digest, outcome)
            return box.decided[digest]
        finally:
            box.waiting -= 1
            if box.waiting == 0 and box.heard >= set(box.expected):
                self._boxes.pop(box.key, None)
