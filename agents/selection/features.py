"""Task features for model selection: input size, answer type, category, complexity.

Pure and fast (~20-40 us a prompt: one split into words, set look-ups, a few
regexes), because the distributor runs it on every ``select`` task before any
model is called. The category is what
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


_SCAN_CHARS = 8_000
"""Only the first ~2,000 tokens are classified: the instruction is nearly always at
the start, and a 1 MB prompt (the intake limit) must not cost 100x a short one."""

_WORD_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """Adds ``weight`` to ``category`` when the prompt has any of ``words`` (whole words),
    any of ``phrases`` (whole-word sequences) or a match of ``pattern`` (on lower-cased
    text). Words and phrases are set and substring look-ups on the text split once into
    words, ~10x cheaper than a regex per rule; a regex is kept for what needs one."""

    category: str
    weight: float
    words: frozenset[str] = frozenset()
    phrases: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None


def _rule(category: str, weight: float, terms: str = "", pattern: str | None = None) -> CategoryRule:
    # terms: "|"-separated; one word is a word, several words are a phrase
    items = [t.strip() for t in terms.split("|") if t.strip()]
    return CategoryRule(
        category,
        weight,
        frozenset(t for t in items if " " not in t),
        tuple(f" {t} " for t in items if " " in t),
        re.compile(pattern) if pattern else None,
    )


# A prompt's score per category is the sum of the weights of the rules that match
# (each rule counts once). Weights: 3 = near-certain signal (an arithmetic expression,
# a code fence, "translate"), 2 = strong keyword, 1 = weak hint. The first category in
# CATEGORIES order wins a tie, so "math" beats "factual" for "What is 3 + 4?".
_RULES: tuple[CategoryRule, ...] = (
    # An arithmetic expression. "-" and "/" count only with spaces around them, so dates
    # (2026-11-25, 11/25) and ranges (pages 10-20) are not arithmetic.
    _rule("math", 3.0, pattern=r"\d(?:\s*[+*×÷^=]\s*|\s+[-/x]\s+)-?\d"),
    _rule("math", 2.0, "calculate|compute|simplify|factorise|factorize|solve for|evaluate the expression"),
    _rule("math", 2.0, "equation|integral|derivative|theorem|probability|percent|percentage|arithmetic"),
    _rule("math", 1.0, "answer with a number|how many|sum of|product of"),
    _rule("code", 3.0, pattern=r"```|\bdef \w+\(|\bfunction \w*\(|\bclass \w+[:({]|#include\s*<"),
    _rule(
        "code",
        2.0,
        "python|javascript|typescript|java|rust|golang|sql|bash|regex|html|css|traceback|segfault"
        "|stack trace|compile error|unit test|write a function|implement a function|fix the bug|fix this bug",
        pattern=r"c\+\+",
    ),
    _rule("code", 1.0, "code|api|variable|algorithm|function"),
    _rule("extraction", 3.0, "extract|json object with the keys"),
    _rule("extraction", 2.0, "parse|pull out|from the following|from the text|from the document"),
    _rule("extraction", 1.0, "json|field|fields"),
    _rule("summarization", 3.0, "summarise|summarize|summary|tldr|tl dr"),
    _rule("summarization", 1.0, "in one sentence|in two sentences|in three sentences|key points"),
    _rule("translation", 3.0, "translate|translation"),
    _rule(
        "translation",
        1.0,
        "into english|into french|into german|into spanish|into japanese|into chinese|into italian|into portuguese",
    ),
    _rule("creative", 3.0, "poem|haiku|limerick|sonnet|lyrics|short story|fairy tale"),
    _rule("creative", 2.0, "imagine|creative|slogan|tagline|brainstorm|fiction|invent|write a story"),
    _rule("creative", 1.0, "story|character|plot|rhyme"),
    _rule("analytical", 2.0, "analyse|analyze|analysis|compare|contrast|evaluate|assess|critique"),
    _rule(
        "analytical",
        2.0,
        "implications|trade-off|trade-offs|tradeoff|tradeoffs|pros and cons|root cause|step by step",
    ),
    _rule("analytical", 1.0, "why|explain|reason|reasoning|should i|should we"),
    _rule(
        "factual",
        2.0,
        "who wrote|who discovered|who invented|who proposed|who formulated|who painted|who founded|who first"
        "|what is the capital|what is the population|what is the currency",
        pattern=r"\bclassify\b.*\bas one of\b",
    ),
    _rule(
        "factual",
        1.0,
        "define|what is|what are|what was|what were|name the",
        pattern=r"^\s*(?:who|when|where|which)\b",
    ),
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
    words = _WORD_RE.findall(text)
    word_set = set(words)
    joined = f" {' '.join(words)} "
    scores: dict[str, float] = {}
    for rule in _RULES:
        if (
            not rule.words.isdisjoint(word_set)
            or any(phrase in joined for phrase in rule.phrases)
            or (rule.pattern is not None and rule.pattern.search(text))
        ):
            scores[rule.category] = scores.get(rule.category, 0.0) + rule.weight
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

_STEP_RE = re.compile(r"\b(?:step by step|then|prove|justify|derive)\b")

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
