"""What a simulated model understands a prompt to ask: the demo's own prompt shapes
(``taskset.solve``) first, then the forms a person types. No I/O.

The fleet only ever sees the prompt text (never the task's ``labels`` or ``answer_type``),
as a real model does, so everything is read from the text:

- arithmetic questions: "What is 6 * 7?", "2+2", "what's 12 divided by 4", "How much is
  7 x 8?", "Compute (2 + 3) * 4", "What is the sum of 3 and 4?"; the expression is
  evaluated exactly by the safe parser in ``arithmetic`` (never ``eval``). A question
  needs a cue ("what is", "compute", ...) or must be nothing but the expression, so a date
  or a version number in other text is not taken for a subtraction;
- choices between labels: "Is a salmon an animal or a fruit?", "Classify salmon as
  animal, fruit or tool", "Which is a falcon: animal, color or tool?", "... one of:
  positive, negative". The subject is looked up in the demo vocabulary; when it is not
  there, or its label is not offered, the model guesses one of the offered labels (the
  same guess for the same prompt), so a person's label question gets a label back.

The answer is then right with the model's simulated accuracy, like any other
(``behaviour.decide_answer``): a guess is the "truth" the simulated model believes in.
"""

import hashlib
import re
from fractions import Fraction

from .arithmetic import NotArithmetic, evaluate, format_number, is_operation
from .taskset import VOCABULARY, Truth, solve

__all__ = ["arithmetic_truth", "choice_truth", "offered_labels", "question_expression", "understand"]


def understand(prompt: str) -> Truth | None:
    """The answer a simulated model gives to ``prompt`` when right, and its plausible wrong
    ones; None when it cannot make sense of it (the fleet then answers "unknown")."""
    return solve(prompt) or arithmetic_truth(prompt) or choice_truth(prompt)


# --- arithmetic ------------------------------------------------------------------------------

_WORD_OPERATORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\bmultiplied\s+by\b", "*"),
        (r"\btimes\b", "*"),
        (r"\bdivided\s+by\b", "/"),
        (r"\bplus\b", "+"),
        (r"\bminus\b", "-"),
        (r"\bto\s+the\s+power\s+of\b", "^"),
        (r"\bsquared\b", "^2"),
        (r"\bcubed\b", "^3"),
        (r"\*\*", "^"),
        (r"(?<=[\d)])\s*[x\u00d7]\s*(?=[\d(])", " * "),  # 7 x 8, 7×8
        (r"\u00f7", "/"),
        (r"[\u2212\u2013]", "-"),  # minus sign, en dash
        (r"(?<=\d),(?=\d{3}\b)", ""),  # 1,000 -> 1000
    )
)
_NAMED_OPERATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"\bthe\s+{name}\s+of\s+(-?[\d.]+)\s+and\s+(-?[\d.]+)", re.IGNORECASE), op)
    for name, op in (("sum", "+"), ("product", "*"), ("difference\\s+between|difference", "-"), ("quotient", "/"))
)
_EXPRESSION = r"[-+*/^().\d\s]+"
_CUED_RE = re.compile(
    r"(?:what\s+is|what's|whats|how\s+much\s+is|compute|calculate|evaluate|work\s+out|solve)\s*:?\s*"
    rf"({_EXPRESSION})",
    re.IGNORECASE,
)
_BARE_RE = re.compile(rf"^\s*({_EXPRESSION})(?:=\s*)?\??\s*[.!]?\s*$")


def question_expression(prompt: str) -> str | None:
    """The arithmetic expression a prompt asks about, in symbols ("12 divided by 4" -> "12 / 4"),
    or None when it asks none (module docstring: a cue, or the expression alone)."""
    text = prompt
    for pattern, replacement in _WORD_OPERATORS:
        text = pattern.sub(replacement, text)
    for pattern, op in _NAMED_OPERATIONS:
        text = pattern.sub(rf"(\1) {op} (\2)", text)
    candidates = [m[1] for m in _CUED_RE.finditer(text)]
    if (bare := _BARE_RE.match(text)) is not None:
        candidates.append(bare[1])
    for candidate in candidates:
        expression = candidate.strip()
        if is_operation(expression):
            return expression
    return None


def _number_wrong(value: Fraction) -> tuple[str, ...]:
    # off-by-one and off-by-ten, as taskset's demo arithmetic: the slips models make in carries
    return tuple(format_number(value + d) for d in (1, -1, 10, -10))


def arithmetic_truth(prompt: str) -> Truth | None:
    """The exact result of the arithmetic the prompt asks about (``question_expression``)."""
    expression = question_expression(prompt)
    if expression is None:
        return None
    try:
        value = evaluate(expression)
    except NotArithmetic:
        return None
    return Truth(format_number(value), _number_wrong(value), "number")


# --- choices between labels ------------------------------------------------------------------

_ARTICLE_RE = re.compile(r"^(?:an?|the)\s+", re.IGNORECASE)
_ITEM = r"(?:(?:an?|the)\s+)?[\w'-]+"
# An explicit list: "one of: a, b, c", "as a, b or c", "between a and b", "labels: a/b/c".
_EXPLICIT_RE = re.compile(
    r"\b(?:one\s+of|among|between|either|choose\s+from|options?|labels?|categories|as)\s*:?\s*"
    r"((?:[\w'\"-]+\s*){1,3}(?:(?:,|/|\bor\b|\band\b)\s*(?:[\w'\"-]+\s*){1,3})+)",
    re.IGNORECASE,
)
# An implicit one: "... an animal or a fruit?", "... animal, fruit, or tool?" (single words).
_OR_LIST_RE = re.compile(rf"({_ITEM}(?:\s*,\s*{_ITEM})*\s*,?\s+or\s+{_ITEM})", re.IGNORECASE)
_SPLIT_RE = re.compile(r"\s*(?:,|/|\bor\b|\band\b)\s*", re.IGNORECASE)
_WORD_RE = re.compile(r"[a-z][a-z-]*")


def _clean(item: str) -> str:
    item = item.strip().strip("'\"").strip()
    return _ARTICLE_RE.sub("", item).strip().lower()


def offered_labels(prompt: str) -> tuple[str, ...]:
    """The labels a prompt offers to choose from, lower-case, in order, without articles; ()
    when it offers fewer than two."""
    sentence = prompt.strip()
    lists = [m[1] for m in _EXPLICIT_RE.finditer(sentence)] or [m[1] for m in _OR_LIST_RE.finditer(sentence)]
    if not lists:
        return ()
    labels: list[str] = []
    for item in _SPLIT_RE.split(lists[-1].strip(" .?!")):
        label = _clean(item)
        if label and label not in labels:
            labels.append(label)
    return tuple(labels) if len(labels) >= 2 else ()


def _guess(prompt: str, labels: tuple[str, ...]) -> str:
    """A label picked by the prompt alone: the same prompt gets the same guess from every model
    (models that do not know are wrong the same way, which consensus must survive)."""
    digest = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
    return labels[int.from_bytes(digest, "big") % len(labels)]


def choice_truth(prompt: str) -> Truth | None:
    """The label a prompt's subject has among those it offers (``offered_labels``), or a guess
    among them when the subject is not in the demo vocabulary or its label is not offered."""
    labels = offered_labels(prompt)
    if not labels:
        return None
    words = [w for w in _WORD_RE.findall(prompt.lower()) if w not in labels]
    known = [VOCABULARY[w] for w in words if w in VOCABULARY]
    known += [VOCABULARY[w[:-1]] for w in words if w.endswith("s") and w[:-1] in VOCABULARY]  # "are otters ..."
    # as offered, plural or not: "animals or tools?" is answered "animals"
    offered = [label for word_label in known for label in labels if label in (word_label, word_label + "s")]
    answer = offered[0] if offered else _guess(prompt, labels)
    return Truth(answer, tuple(label for label in labels if label != answer), "label")
