"""Which models, and how many, to ask for one consensus task.

Votes are only worth counting when the voters can be wrong in different ways: models
of one family share training data and failure modes, so five siblings agreeing is
weaker evidence than three families agreeing. ``pick_models`` therefore spreads the
ensemble across families before it doubles up, and ``models_for_complexity`` asks more
models for prompts that are more likely to split them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

# Words that signal multi-step reasoning, where models disagree more often.
_REASONING_CUES = re.compile(
    r"\b(why|explain|prove|derive|calculate|compute|estimate|compare|step|reason|justify|analy[sz]e|"
    r"evaluate|how many|how much)\b",
    re.IGNORECASE,
)
_MATH = re.compile(r"\d+(?:\.\d+)?\s*[-+*/^%=<>]\s*\d|[=<>\u2211\u222b\u221a]")

ANSWER_TYPE_BASE = {"label": 0.0, "number": 0.3, "json": 0.3, "text": 0.4}
"""Starting complexity per answer type: a label from a small set converges fastest;
numbers, structured answers and free text have more ways to differ."""

MIN_MODELS_ROBUST = 3
"""Numbers and free text want at least three answers: outlier rejection (MAD) and a
majority cluster both need a majority to measure the others against."""

LONG_PROMPT_WORDS = 400
"""Prompt length (words) that counts as fully "long"; the length term grows with log(words)."""


def _reliability_key(reliability: float) -> float:
    return reliability if math.isfinite(reliability) else -math.inf


def pick_models(catalog_models: Sequence[tuple[str, str, float]], n: int) -> list[str]:
    """Up to ``n`` model ids from ``(id, family, reliability)``: one per family first, then by reliability.

    Round-robin over families: round 1 takes each family's most reliable model, round 2
    each family's second, and so on; within a round, more reliable first (ties by id).
    Duplicate ids count once (the first row wins); NaN reliability sorts last.
    Deterministic for the same catalog.
    """
    if n <= 0:
        return []
    seen: set[str] = set()
    families: dict[str, list[tuple[str, float]]] = {}
    for model_id, family, reliability in catalog_models:
        if model_id in seen:
            continue
        seen.add(model_id)
        families.setdefault(family, []).append((model_id, _reliability_key(reliability)))
    for members in families.values():
        members.sort(key=lambda m: (-m[1], m[0]))

    rounds: list[tuple[int, float, str]] = []  # (round, -reliability, id)
    for members in families.values():
        for depth, (model_id, reliability) in enumerate(members):
            rounds.append((depth, -reliability, model_id))
    rounds.sort()
    return [model_id for _, _, model_id in rounds[:n]]


def prompt_complexity(prompt: str, answer_type: str) -> float:
    """A heuristic score in [0, 1]: answer type base + length + reasoning cues + maths + several questions.

    Deterministic and cheap (regular expressions only); a learned policy in
    ``agents/selection`` can replace it.
    """
    words = len(prompt.split())
    length = min(1.0, math.log1p(words) / math.log1p(LONG_PROMPT_WORDS))
    cues = min(1.0, len(_REASONING_CUES.findall(prompt)) / 3)
    maths = 1.0 if _MATH.search(prompt) else 0.0
    questions = min(1.0, max(0, prompt.count("?") - 1) / 2)
    score = ANSWER_TYPE_BASE.get(answer_type, 0.4) + 0.3 * length + 0.3 * cues + 0.2 * maths + 0.1 * questions
    return min(1.0, score)


def models_for_complexity(prompt: str, answer_type: str, min_models: int, max_models: int) -> int:
    """How many models to ask: ``min_models + round(complexity * (max_models - min_models))``.

    Numbers and text get at least ``MIN_MODELS_ROBUST`` when ``max_models`` allows it.
    """
    if min_models < 1:
        raise ValueError(f"models_for_complexity: min_models must be >= 1, got {min_models}")
    if max_models < min_models:
        raise ValueError(f"models_for_complexity: max_models ({max_models}) is below min_models ({min_models})")
    count = min_models + round(prompt_complexity(prompt, answer_type) * (max_models - min_models))
    if answer_type in ("number", "text"):
        count = max(count, min(MIN_MODELS_ROBUST, max_models))
    return max(min_models, min(max_models, count))
