"""How a simulated model answers a judge's or a fuser's prompt (``agents/consensus/judging.py``).

The fleet reads only the prompt text, as a real model does. A judge prompt names the task
under ``## Task`` and numbered candidates under ``## Candidate <n>``; the simulated judge
believes what it would answer to the task itself (``believe``: the fleet's own answer of the
model to the task prompt, so a judge errs on the items it would err on alone, correlated
with the other models where the fleet's models are), and replies with the fixed JSON shape:
the number of the candidate that matches what it believes, or, when none does, the first. A
fuse prompt is answered as its task is: the fuser writes the answer it would give alone,
whatever the candidates say. So a simulated judge or fuser adds no insight of its own: it
measures the plumbing and the cost, not what a real judge gains by reading. No I/O.
"""

from __future__ import annotations

import re

import orjson

from collections.abc import Callable

from .prompts import understand
from .taskset import Truth, normalise_answer

_SECTION_RE = re.compile(r"^## (Task|Candidate (\d+)|Your reply)\s*$", re.MULTILINE)
JUDGE_CUE = "Reply with JSON only"


def sections(prompt: str) -> tuple[str, list[str]] | None:
    """(task prompt, candidates in order) of a judge or fuse prompt; None for any other prompt."""
    marks = list(_SECTION_RE.finditer(prompt))
    if not marks or marks[0][1] != "Task" or marks[-1][1] != "Your reply":
        return None
    bodies = [prompt[m.end():(marks[i + 1].start() if i + 1 < len(marks) else len(prompt))].strip()
              for i, m in enumerate(marks)]
    candidates = [body for m, body in zip(marks, bodies, strict=True) if m[2] is not None]
    return bodies[0], candidates


def fused_task(prompt: str) -> str | None:
    """The task a fuse prompt asks about (the fuser answers it); None when ``prompt`` is none."""
    found = sections(prompt)
    if found is None or JUDGE_CUE in prompt:
        return None
    return found[0]


def verdict(prompt: str, believe: Callable[[str, Truth], str]) -> str | None:
    """The simulated judge's reply to a judge prompt (None for any other prompt); ``believe``:
    (task prompt, its truth) -> the answer the judge model gives to the task."""
    found = sections(prompt)
    if found is None or JUDGE_CUE not in prompt:
        return None
    task, candidates = found
    truth = understand(task)
    pick = 1
    if truth is not None and candidates:
        believed = believe(task, truth)
        matching = [i + 1 for i, c in enumerate(candidates) if normalise_answer(truth.answer_type, c) == believed]
        if matching:
            pick = matching[0]
    rationale = f"candidate {pick} answers the task" if truth is not None else "no candidate is clearly better"
    return orjson.dumps({"index": pick, "rationale": rationale}).decode()
