"""Judge strategies replayed from a recording: the recorded verdicts, no model called.

A recorded judge, fuse or vote_then_judge run holds, per task, the candidates' answers and the
judge phase's outcomes (slots ``<model>#judge`` / ``<model>#fuse``, ``consensus/slots.py``).
Replay shows the candidates again exactly as the live phase did (``judging.show``, with the
seed the live result recorded, or the one the task id gives), reads the first valid verdict
the recording holds, and so picks the answer the live judge picked. Re-scoring is then free:

- ``judge``: the recorded verdict's pick (no valid verdict recorded: the vote, as live);
- ``fuse``: the recorded fused answer (none: the vote);
- ``vote_then_judge``: the vote when it is not split (``judging.split``), and the recorded
  verdict otherwise, at the candidates' cost plus the judge's only for split tasks. From a
  recording of an always-judge run this says what vote_then_judge would have cost and scored
  on the same answers.

A judge strategy asked of a task whose recording has no verdict (a plain vote run) falls back
to the vote, as a live task with no judge left does; the report counts such tasks nowhere
else, so compare judge rows on recordings of judge runs. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmstream.agents.consensus.judging import (
    SPLIT_BELOW,
    InvalidVerdict,
    parse_verdict,
    show,
    shuffle_seed,
    split,
)
from swarmstream.agents.consensus.slots import parse_slot
from swarmstream.agents.consensus.votes import Decision


@dataclass(frozen=True)
class JudgedReplay:
    answer: str | None
    judge_calls: int
    judge_cost_micros: int
    used_judge: bool


def split_outcomes(answers: Mapping[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(candidate answers, judge-phase answers) of a task's recorded answers, keyed by slot."""
    candidates = {k: v for k, v in answers.items() if parse_slot(k).role == "candidate"}
    return candidates, {k: v for k, v in answers.items() if k not in candidates}


def replay_judged(strategy: str, vote: Decision, candidates: Mapping[str, Mapping[str, Any]],
                  judges: Mapping[str, Mapping[str, Any]], judge_failures: Sequence[str], *, task_id: str,
                  seed: int | None, split_below: float = SPLIT_BELOW) -> JudgedReplay:
    """``strategy`` (judge, fuse, vote_then_judge) on one task, from its recorded outcomes."""
    if strategy == "vote_then_judge" and not split(vote.agreement, split_below):
        return JudgedReplay(vote.answer, 0, 0, False)
    role = "fuse" if strategy == "fuse" else "judge"
    judges = {slot: a for slot, a in judges.items() if parse_slot(slot).role == role}  # a fuse run has no verdicts
    shown = show([(slot, a["answer"]) for slot, a in candidates.items()], shuffle_seed(task_id, seed))
    calls = sum(1 for slot in judge_failures if parse_slot(slot).role == role) + len(judges)
    cost = sum(int(a.get("cost_micros", 0)) for a in judges.values())
    for recorded in judges.values():
        if len(shown.answers) < 2:
            break
        if role == "fuse":
            return JudgedReplay(recorded["answer"], calls, cost, True)
        try:
            verdict = parse_verdict(recorded["answer"], len(shown.answers))
        except InvalidVerdict:
            continue
        return JudgedReplay(shown.answers[verdict.index - 1], calls, cost, True)
    return JudgedReplay(vote.answer, calls, cost, False)
