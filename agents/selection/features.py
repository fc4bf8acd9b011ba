"""Task features for model selection: input size, answer type, category, complexity.

Pure and fast (a few regex scans per prompt, ~10-30 us), because the distributor
runs it on every ``select`` task before any model is called. The category is what
the per-model stats are keyed by (``model x category``), so a stable, cheap
classifier matters more here than a clever one: a prompt classified the same way
every time feeds the same posterior.

- **Tokens**: a real tokenizer count when ``tiktoken`` is importable and its
  encoding loads (it may need a download on first use, so failure to load falls
  back quietly); otherwise :func:`estimate_tokens_heuristic` (documented there).
- **Category**: a task that states its category keeps it; otherwise the
  rule-based :func:`classify_category` (keyword/regex scores, highest wins).
- **Replaceable**: anything satisfying :class:`FeatureExtractor` (for example a
  small embedding classifier) can stand in for :class:`RuleBasedExtractor`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

CATEGORIES: tuple[str, ...] = (
    "math",
    "code",
    "extraction",
    "summarization",
    "translation",
    "creative",
    "analytical",
    "factual",
    "general",
)
"""Categories the rule-based classifier can return; ``general`` when no rule fires.
A stated category may be any non-empty string (stats simply get a new key)."""

DEFAULT_CATEGORY = "general"

TIKTOKEN_ENCODING = "cl100k_base"
"""The encoding counted with when tiktoken is present: the GPT-4 / GPT-3.5 one, a
fair proxy for other providers' BPE tokenizers (within ~10-20% on English)."""

CHARS_PER_TOKEN = 4.0
"""OpenAI's rule of thumb for English text (~4 characters, ~0.75 words per token)."""


@dataclass(frozen=True, slots=True)
class TaskFeatures:
    """What a selection policy and a cost forecast know about a task before any call."""

    input_tokens: int
    answer_type: str
    category: str
    complexity: float  # 0 (one-line lookup) .. 1 (long, multi-step); heuristic, see `estimate_complexity`

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FeatureExtractor(Protocol):
    """Turns a task into :class:`TaskFeatures`; a stated ``category`` must win."""

    def extract(self, prompt: str, answer_type: str, category: str | None = None) -> TaskFeatures: ...


# --- tokens ---------------------------------------------------------------------------------

_WHITESPACE_RUN_RE = re.compile(r"\s+")


def estimate_tokens_heuristic(text: str) -> int:
    """Tokens estimated without a tokenizer: ``ceil(chars / 4)`` after collapsing each
    whitespace run to one space.

    Why collapse: BPE tokenizers merge a run of spaces or newlines into one or two
    tokens, so indentation and blank lines would otherwise be over-counted (a
    4-space-indented code block by ~25%). Measured against cl100k_base on English
    prose this lands within ~15%; it under-counts digit-heavy and non-Latin text,
    which is why a reservation (budget.py) uses an upper-bound output size.
    Empty or blank text is 0 tokens, anything else at least 1.
    """
    collapsed = _WHITESPACE_RUN_RE.sub(" ", text).strip()
    if not collapsed:
        return 0
    return max(1, math.ceil(len(collapsed) / CHARS_PER_TOKEN))


@functools.cache
def _tiktoken_counter() -> Callable[[str], int] | None:
    try:
        import tiktoken  # optional: not a dependency of swarmstream
    except ImportError:
        return None
    try:
        encoding = tiktoken.get_encoding(TIKTOKEN_ENCODING)
    except Exception:  # noqa: BLE001 - the encoding file may need a download that fails offline
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def tokenizer_name() -> str:
    """Which counter :func:`estimate_tokens` uses: ``tiktoken:cl100k_base`` or ``estimate:chars/4``."""
    return f"tiktoken:{TIKTOKEN_ENCODING}" if _tiktoken_counter() is not None else "estimate:chars/4"


def estimate_tokens(text: str) -> int:
    """Input tokens of ``text``: tiktoken's count when available, else the heuristic."""
    counter = _tiktoken_counter()
    return counter(text) if counter is not None else estimate_tokens_heuristic(text)


# --- category -------------------------------------------------------------------------------


def _rx(*patterns: str) -> re.Pattern[str]:
    # Case-sensitive on purpose: the text is lower-cased once before matching, which is
    # ~2x faster than re.IGNORECASE on every pattern.
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_SCAN_CHARS = 8_000
"""Only the first ~2,000 tokens are classified: the instruction is nearly always at
the start, and a 1 MB prompt (the intake limit) must not cost 100x a short one."""


# (category, weight, pattern). A prompt's score per category is the sum of the weights
# of the rules that match (each rule counts once). Weights: 3 = near-certain signal
# (an arithmetic expression, a code fence), 2 = strong keyword, 1 = weak hint. The
# first category in CATEGORIES order wins a tie, so "math" beats "factual" for
# "What is 3 + 4?" even if a weak factual rule fired too.
_RULES: tuple[tuple[str, float, re.Pattern[str]], ...] = (
    # An arithmetic expression. "-" and "/" count only with spaces around them, so dates
    # (2026-11-25, 11/25) and ranges (pages 10-20) are not arithmetic.
    ("math", 3.0, re.compile(r"\d(?:\s*[+*×÷^=]\s*|\s+[-/x]\s+)-?\d")),
    ("math", 2.0, _rx(r"\b(?:calculate|compute|evaluate the expression|solve for|simplify|factori[sz]e)\b")),
    ("math", 2.0, _rx(r"\b(?:equation|integral|derivative|theorem|probability|percent(?:age)?|arithmetic)\b")),
    ("math", 1.0, _rx(r"\banswer with a number\b", r"\bhow many\b", r"\bsum of\b", r"\bproduct of\b")),
    ("code", 3.0, _rx(r"```", r"\bdef \w+\(", r"\bfunction \w*\(", r"\bclass \w+[:({]", r"#include\s*<")),
    (
        "code",
        2.0,
        _rx(
            r"\b(?:python|javascript|typescript|java|rust|golang|c\+\+|sql|bash|regex|html|css)\b",
            r"\b(?:write|implement|refactor|debug|fix) (?:a |the |this )?(?:function|method|class|script|program|query|bug)\b",
            r"\b(?:stack trace|traceback|compile error|segfault|unit test)\b",
        ),
    ),
    ("code", 1.0, _rx(r"\b(?:code|api|variable|algorithm)\b")),
    ("extraction", 3.0, _rx(r"\bextract\b", r"\bjson object with the keys\b")),
    ("extraction", 2.0, _rx(r"\b(?:parse|pull out|list all (?:the )?\w+ (?:mentioned|in))\b", r"\bfrom the (?:following|text|document)\b")),
    ("extraction", 1.0, _rx(r"\bjson\b", r"\bfields?\b")),
    ("summarization", 3.0, _rx(r"\bsummari[sz]e\b", r"\bsummary\b", r"\btl;?dr\b")),
    ("summarization", 1.0, _rx(r"\bin (?:one|two|three|a few) sentences\b", r"\bkey points\b")),
    ("translation", 3.0, _rx(r"\btranslate\b", r"\btranslation\b")),
    ("translation", 1.0, _rx(r"\b(?:into|to) (?:english|french|german|spanish|japanese|chinese|italian|portuguese)\b")),
    ("creative", 3.0, _rx(r"\b(?:poem|haiku|limerick|sonnet|lyrics|short story|fairy tale)\b")),
    ("creative", 2.0, _rx(r"\b(?:write a story|imagine|creative|slogan|tagline|brainstorm|fiction|invent)\b")),
    ("creative", 1.0, _rx(r"\b(?:story|character|plot|rhyme)\b")),
    ("analytical", 2.0, _rx(r"\b(?:analy[sz]e|analysis|compare|contrast|evaluate|assess|critique)\b")),
    ("analytical", 2.0, _rx(r"\b(?:pros and cons|trade-?offs?|implications|root cause|step by step)\b")),
    ("analytical", 1.0, _rx(r"\bwhy\b", r"\bexplain\b", r"\breason(?:ing)?\b", r"\bshould (?:i|we)\b")),
    ("factual", 2.0, _rx(r"\bwho (?:wrote|discovered|invented|proposed|formulated|painted|founded|first)\b")),
    ("factual", 2.0, _rx(r"\bwhat is the (?:capital|population|currency|height|name)\b", r"\bclassify\b.*\bas one of\b")),
    ("factual", 1.0, _rx(r"^\s*(?:who|when|where|which)\b", r"\bwhat (?:is|are|was|were)\b", r"\bdefine\b", r"\bname the\b")),
)

_ANSWER_TYPE_HINTS: Mapping[str, tuple[str, float]] = {
    "number": ("math", 0.5),
    "json": ("extraction", 0.5),
    "label": ("factual", 0.5),
}
"""A weak prior from the requested answer type: it only breaks near-ties, never
overrides a keyword (a JSON answer about code is still code)."""


def category_scores(prompt: str, answer_type: str | None = None) -> dict[str, float]:
    """Score per category (only those that scored), for debugging and for logging why."""
    text = prompt[:_SCAN_CHARS].lower()
    scores: dict[str, float] = {}
    for category, weight, pattern in _RULES:
        if pattern.search(text):
            scores[category] = scores.get(category, 0.0) + weight
    if answer_type in _ANSWER_TYPE_HINTS:
        category, weight = _ANSWER_TYPE_HINTS[answer_type]
        scores[category] = scores.get(category, 0.0) + weight
    return scores


_MIN_CATEGORY_SCORE = 1.0
"""Below this (only the answer-type hint fired) the prompt is ``general``: half a
point from the answer type alone is not evidence about the content."""


def classify_category(prompt: str, answer_type: str | None = None) -> str:
    """The highest-scoring category; ties go to the earlier one in :data:`CATEGORIES`
    (more specific first); ``general`` when nothing scores at least 1."""
    scores = category_scores(prompt, answer_type)
    best = DEFAULT_CATEGORY
    best_score = _MIN_CATEGORY_SCORE - 1e-9
    for category in CATEGORIES:
        score = scores.get(category, 0.0)
        if score > best_score:
            best, best_score = category, score
    return best


# --- complexity -----------------------------------------------------------------------------

_STEP_RE = _rx(r"\bstep by step\b", r"\bthen\b", r"\bfirst\b.*\bthen\b", r"\bprove\b", r"\bjustify\b", r"\bderive\b")

_COMPLEXITY_TOKENS_AT_HALF = 500
"""Input size that alone gives complexity 0.5: a page of text. Size enters on a log
scale because 50 -> 500 tokens changes a task far more than 5,000 -> 5,450."""


def estimate_complexity(prompt: str, input_tokens: int, category: str) -> float:
    """A 0..1 heuristic: 60% input size (log scale), 25% multi-step cues, 15% the
    number of questions; code and analytical tasks get +0.1. Only used to order
    tasks (a policy may prefer stronger models for complex ones), never as money."""
    size = math.log1p(input_tokens) / math.log1p(_COMPLEXITY_TOKENS_AT_HALF) * 0.5
    text = prompt[:_SCAN_CHARS].lower()
    steps = min(1.0, len(_STEP_RE.findall(text)) / 2)
    questions = min(1.0, max(0, text.count("?") - 1) / 3)
    value = 0.6 * min(1.0, size) + 0.25 * steps + 0.15 * questions
    if category in ("code", "analytical"):
        value += 0.1
    return round(min(1.0, max(0.0, value)), 4)


# --- the extractor --------------------------------------------------------------------------


class RuleBasedExtractor:
    """The default :class:`FeatureExtractor`: token count, regex category, heuristic complexity."""

    def extract(self, prompt: str, answer_type: str, category: str | None = None) -> TaskFeatures:
        input_tokens = estimate_tokens(prompt)
        stated = category.strip() if category else ""
        chosen = stated or classify_category(prompt, answer_type)
        return TaskFeatures(
            input_tokens=input_tokens,
            answer_type=answer_type,
            category=chosen,
            complexity=estimate_complexity(prompt, input_tokens, chosen),
        )


DEFAULT_EXTRACTOR: FeatureExtractor = RuleBasedExtractor()


def extract_features(prompt: str, answer_type: str, category: str | None = None) -> TaskFeatures:
    """Features of one task with the default extractor; a stated ``category`` wins."""
    return DEFAULT_EXTRACTOR.extract(prompt, answer_type, category)
