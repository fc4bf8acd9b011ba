"""Aggregation by a model: what a judge or a fuser is shown, and what its reply must be.

Three strategies end a consensus task with a model's help instead of (or after) a vote:

- ``judge``: a judge model sees the task and the candidates and picks one (best-of-N,
  as TensorZero's evaluator or OpenRouter Fusion's judge);
- ``fuse``: a fuser model writes the final answer from the candidates (mixture-of-N,
  Together's Mixture-of-Agents aggregator); the result keeps every candidate as votes;
- ``vote_then_judge``: the vote decides when it is clear; only a split vote (agreement
  below :data:`SPLIT_BELOW`) goes to the judge, so agreeing tasks cost nothing extra.

The candidates are anonymised (no model names: a judge that knows which model wrote what
prefers the famous one) and shuffled with a seed recorded in the task's state and result
(judges favour the first position, Zheng et al. 2023, "Judging LLM-as-a-judge", section
3.3), so a replay re-draws the same order. Identical answers are shown once: the judge
picks an answer, not a model, and a repeated answer would only lengthen the prompt.

A judge must reply with exactly ``{"index": <candidate number>, "rationale": "<why>"}``
(:class:`Verdict`, validated by pydantic); anything else is a bad output, and the task's
judge chain moves on to its next link. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

JUDGE_STRATEGIES = ("judge", "fuse", "vote_then_judge")

SPLIT_BELOW = 0.75
"""vote_then_judge asks the judge when the vote's agreement is below this: with three voters a
unanimous vote (1.0) stands and a 2-1 split (0.67) is judged; with five, 4-1 (0.8) stands and
3-2 (0.6) is judged. It sits where one dissenter out of three already means a coin-flip-grade
majority for 0.7-accurate voters (a 2-1 majority of them is right ~78% of the time)."""

MAX_CANDIDATE_CHARS = 8_000
"""Each candidate shown to a judge is cut to this many characters (a note says so): eight long
answers then stay far below the prompt's 256 KiB limit and any judge's context window."""

JUDGE_MAX_TOKENS = 256
"""A verdict is an index and a sentence or two; the cap also bounds the forecast reserved for it."""

RATIONALE_MAX_CHARS = 2_000

JUDGE_SYSTEM = (
    "You are an impartial judge. You are given a task and numbered candidate answers written by "
    "anonymous assistants, in random order. Pick the candidate that answers the task best: correct "
    "first, then complete and clear. Position and length are no reason to prefer a candidate. "
    'Reply with JSON only, exactly {"index": <candidate number>, "rationale": "<one or two sentences>"}.'
)

FUSE_SYSTEM = (
    "You are given a task and numbered candidate answers written by anonymous assistants. Write the "
    "single best answer to the task: keep what the candidates get right, correct what they get wrong, "
    "and answer in the form the task asks for. Reply with the answer only."
)

TASK_HEADER = "## Task"
CANDIDATE_HEADER = "## Candidate {number}"
INSTRUCTION_HEADER = "## Your reply"


class Verdict(BaseModel):
    """The only reply a judge may give. ``index`` is the candidate's number as shown (1-based)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=1)
    rationale: str = Field(default="", max_length=RATIONALE_MAX_CHARS)


VERDICT_SCHEMA = orjson.dumps(Verdict.model_json_schema()).decode()
"""The JSON Schema the judge call is made with (providers that take one constrain the reply)."""


class InvalidVerdict(ValueError):
    """A judge reply that is not a :class:`Verdict` for the candidates shown; the message says why."""


@dataclass(frozen=True)
class Shown:
    """The candidates a judge or fuser sees, in the order it sees them: ``answers[i]`` is
    candidate ``i + 1``; ``slots[i]`` are the steps that gave that answer."""

    answers: tuple[str, ...]
    slots: tuple[tuple[str, ...], ...]
    seed: int


def shuffle_seed(task_id: str, seed: int | None) -> int:
    """The task's own ``seed`` when it has one, else one derived from its id: stable across
    redeliveries and replays without being the same order for every task."""
    if seed is not None:
        return seed
    return int.from_bytes(hashlib.blake2b(task_id.encode(), digest_size=8).digest(), "big") >> 1


def show(answers: Sequence[tuple[str, str]], seed: int) -> Shown:
    """(slot, answer) pairs -> the distinct answers in a seeded random order. The order before the
    shuffle is canonical (sorted answers), so arrival order never changes what the judge sees."""
    by_answer: dict[str, list[str]] = {}
    for slot, answer in sorted(answers, key=lambda pair: (pair[1], pair[0])):
        by_answer.setdefault(answer, []).append(slot)
    distinct = sorted(by_answer)
    random.Random(seed).shuffle(distinct)
    return Shown(tuple(distinct), tuple(tuple(by_answer[a]) for a in distinct), seed)


def _candidate_block(number: int, answer: str) -> str:
    text = answer if len(answer) <= MAX_CANDIDATE_CHARS else answer[:MAX_CANDIDATE_CHARS] + "\n[cut here]"
    return f"{CANDIDATE_HEADER.format(number=number)}\n{text}"


def judge_prompt(task_prompt: str, shown: Shown) -> str:
    blocks = "\n\n".join(_candidate_block(i + 1, a) for i, a in enumerate(shown.answers))
    return (
        f"{TASK_HEADER}\n{task_prompt}\n\n{blocks}\n\n{INSTRUCTION_HEADER}\n"
        f'Which candidate (1 to {len(shown.answers)}) answers the task best? Reply with JSON only: '
        '{"index": <number>, "rationale": "<why>"}'
    )


def fuse_prompt(task_prompt: str, shown: Shown) -> str:
    blocks = "\n\n".join(_candidate_block(i + 1, a) for i, a in enumerate(shown.answers))
    return (
        f"{TASK_HEADER}\n{task_prompt}\n\n{blocks}\n\n{INSTRUCTION_HEADER}\n"
        "Write the best answer to the task, using the candidates."
    )


def parse_verdict(text: str, candidates: int) -> Verdict:
    """The judge's reply as a :class:`Verdict` for ``candidates`` shown; :class:`InvalidVerdict`
    otherwise. A fenced reply (```json ... ```) is read; prose around the JSON is not: the shape is
    fixed so that a judge that cannot keep it counts as a bad output and its chain moves on."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        verdict = Verdict.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        raise InvalidVerdict(f"the judge's reply is not {{index, rationale}}: {where}: {first['msg']}") from None
    if verdict.index > candidates:
        raise InvalidVerdict(f"the judge picked candidate {verdict.index} of {candidates}")
    return verdict


def split(agreement: float, threshold: float = SPLIT_BELOW) -> bool:
    """Whether a vote with this agreement is split enough to ask the judge (vote_then_judge)."""
    return agreement < threshold
