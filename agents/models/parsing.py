"""From a model's free text to the normalised answer that consensus votes on.

Two models that mean the same answer must produce the same string here ("B) Cat."
and "cat" both vote ``cat``), and text that holds no answer of the requested type
must fail loudly as ``invalid_output`` instead of casting a junk vote. Pure
functions, no I/O.

Guarantees per answer type:

* ``label``: one of ``labels``, spelled exactly as declared (the canonical form);
  with no labels, the lowercase text with whitespace collapsed and surrounding
  punctuation removed.
* ``number``: a finite number as ``"42"`` when integral, else ``repr(float)``.
* ``json``: canonical JSON (sorted keys, no whitespace) that satisfies ``json_schema``.
* ``text``: the stripped text, non-empty.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jsonschema
import orjson
from swarmstream.agents.models.failures import FailureClass, ProviderError


class AnswerType(StrEnum):
    """Mirrors ``TaskRequest.answer_type`` (``schemas/TaskRequest.avsc``)."""

    LABEL = "label"
    NUMBER = "number"
    JSON = "json"
    TEXT = "text"


MAX_ECHO_CHARS = 80
"""How much of an unparseable answer an error message quotes: enough to see why, not a whole essay."""


def invalid_output(reason: str, text: str) -> ProviderError:
    """The error for an answer that does not parse; not retryable (same prompt, same kind of answer)."""
    excerpt = text.strip().replace("\n", " ")
    if len(excerpt) > MAX_ECHO_CHARS:
        excerpt = excerpt[: MAX_ECHO_CHARS - 1] + "…"
    return ProviderError(FailureClass.INVALID_OUTPUT, f"{reason}: {excerpt!r}", retryable=False)


def parse_answer(
    text: str,
    answer_type: str,
    *,
    labels: Sequence[str] = (),
    json_schema: str | None = None,
) -> str:
    """The normalised answer in ``text``; ProviderError(INVALID_OUTPUT) when there is none.

    An unknown ``answer_type`` or an invalid ``json_schema`` is the caller's bug and
    raises ValueError instead.
    """
    try:
        kind = AnswerType(answer_type)
    except ValueError:
        raise ValueError(f"unknown answer_type {answer_type!r} (known: {', '.join(AnswerType)})") from None
    if kind is AnswerType.LABEL:
        return parse_label(text, labels)
    if kind is AnswerType.NUMBER:
        return parse_number(text)
    if kind is AnswerType.JSON:
        return parse_json(text, json_schema)
    return parse_text(text)


# --- label -----------------------------------------------------------------

# Lead-ins models put before the answer; the last one in the text wins, because
# reasoning models state the answer at the end ("...so the answer is B").
_ANSWER_MARKER = re.compile(
    r"(?i)(?:final\s+answer|answer|label|category|classification|prediction)\s*(?:is|:|=|-)\s*"
    r"|\b(?:it\s+is|it's)\s+"
)
_EDGE_PUNCTUATION = " \t\n\r.,;:!?\"'`*()[]{}<>"
# "B) cat", "(b)", "b.", "B:", "option B", "choice b - cat"
_OPTION = re.compile(r"(?i)^(?:option|choice)?\s*[(\[]?([a-z])(?:[)\].:]|\s*-\s|$)\s*(.*)$", re.DOTALL)


def normalise_label(text: str) -> str:
    """Lowercase, whitespace collapsed, surrounding punctuation and markdown emphasis removed."""
    return " ".join(text.split()).strip(_EDGE_PUNCTUATION).lower()


def parse_label(text: str, labels: Sequence[str] = ()) -> str:
    """One of ``labels`` (as declared), or the normalised text when no labels constrain it.

    Tried in order: the text after the last answer marker, its first line, then the
    whole text; for each, an exact (normalised) label, then an option letter that
    maps to ``labels[index]``. Last resort: exactly one label appearing as a whole
    word anywhere in the text. A letter that contradicts the label text after it
    ("A) cat" when A is dog) is invalid rather than guessed.
    """
    if not text.strip():
        raise invalid_output("empty answer", text)
    candidates = _label_candidates(text)
    if not labels:
        for candidate in candidates:
            normalised = normalise_label(candidate)
            if normalised:
                return normalised
        raise invalid_output("empty answer", text)

    by_normalised = {normalise_label(label): label for label in labels}
    for candidate in candidates:
        normalised = normalise_label(candidate)
        if normalised in by_normalised:
            return by_normalised[normalised]
        option = _OPTION.match(normalised)
        if option is not None:
            index = ord(option.group(1)) - ord("a")
            rest = normalise_label(option.group(2))
            if index < len(labels):
                chosen = labels[index]
                if rest and rest in by_normalised and by_normalised[rest] != chosen:
                    raise invalid_output(f"option letter says {chosen!r} but text says {by_normalised[rest]!r}", text)
                if not rest or rest in by_normalised or _is_prefix_of(rest, chosen):
                    return chosen
    found = {label for normalised, label in by_normalised.items() if _contains_word(text, normalised)}
    if len(found) == 1:
        return found.pop()
    if found:
        raise invalid_output(f"ambiguous: mentions {sorted(found)}", text)
    raise invalid_output(f"not one of {list(labels)}", text)


def _label_candidates(text: str) -> list[str]:
    stripped = text.strip()
    candidates = []
    markers = list(_ANSWER_MARKER.finditer(stripped))
    if markers:
        after = stripped[markers[-1].end() :].strip()
        if after:
            candidates.append(after.splitlines()[0])
    first_line = stripped.splitlines()[0]
    candidates.extend([first_line, stripped])
    return list(dict.fromkeys(candidates))


def _is_prefix_of(rest: str, label: str) -> bool:
    # "B) cat - a small feline" still names the label of option B.
    return rest.startswith(normalise_label(label) + " ")


def _contains_word(text: str, normalised_label: str) -> bool:
    if not normalised_label:
        return False
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(word) for word in normalised_label.split()) + r"(?!\w)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


# --- number ----------------------------------------------------------------

_NUMBER = re.compile(
    r"(?<![\w.])"  # not inside a word or after a decimal point ("v2", "1.2.3")
    r"([-+\u2212]?)"  # sign, including the Unicode minus models sometimes emit
    r"[$€£¥]?"  # currency between sign and digits: "-$5"
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"  # "1,234.5", "42", "3.14", ".5"
    r"([eE][-+]?\d+)?"
)
_NUMBER_MARKER = re.compile(r"(?i)(?:answer|result|total)\s*(?:is|:|=)|=")


def parse_number(text: str) -> str:
    """The answer's number as a canonical string: ``"42"``, ``"-0.035"``, ``"1234"``.

    Takes the first number after the last answer marker ("answer is", "=") when
    there is one, else the last number in the text (models end with the result).
    Currency symbols, units, percent signs and thousands separators are dropped.
    """
    markers = list(_NUMBER_MARKER.finditer(text))
    match = None
    if markers:
        match = _NUMBER.search(text, markers[-1].end())
    if match is None:
        matches = list(_NUMBER.finditer(text))
        match = matches[-1] if matches else None
    if match is None:
        raise invalid_output("no number", text)
    sign, digits, exponent = match.group(1), match.group(2), match.group(3) or ""
    value = float(("-" if sign in ("-", "\u2212") else "") + digits.replace(",", "") + exponent)
    if not math.isfinite(value):
        raise invalid_output("number is not finite", text)
    return canonical_number(value)


def canonical_number(value: float) -> str:
    """``"42"`` for integral values (exact below 2**53), else ``repr(value)``; ``-0`` is ``"0"``."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


# --- json ------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)


def parse_json(text: str, json_schema: str | None = None) -> str:
    """Canonical JSON of the answer (sorted keys), validated against ``json_schema``.

    Looks, in order, at a fenced ```json block, the whole text, and the span from
    the first ``{``/``[`` to the last ``}``/``]`` (models wrap JSON in prose).
    NaN and Infinity are not JSON and are rejected.
    """
    validator = _validator(json_schema) if json_schema is not None else None
    value = _extract_json(text)
    if validator is not None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            raise invalid_output(f"does not match schema at {where}: {error.message}", text)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _extract_json(text: str) -> Any:
    attempts = [block for block in _FENCE.findall(text)]
    attempts.append(text)
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        start = min(starts)
        end = max(text.rfind("}"), text.rfind("]"))
        if end > start:
            attempts.append(text[start : end + 1])
    for attempt in attempts:
        try:
            return orjson.loads(attempt.strip())
        except orjson.JSONDecodeError:
            continue
    raise invalid_output("no valid JSON", text)


@lru_cache(maxsize=256)
def _validator(json_schema: str) -> jsonschema.protocols.Validator:
    """Compiled once per schema text: tasks of one kind share a schema, and compiling costs ~ms."""
    try:
        schema = orjson.loads(json_schema)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"json_schema is not JSON: {exc}") from None
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"json_schema is not a valid JSON Schema: {exc.message}") from None
    return validator_class(schema)


# --- text ------------------------------------------------------------------


def parse_text(text: str) -> str:
    """The stripped text; free text is compared by clustering later, not here."""
    stripped = text.strip()
    if not stripped:
        raise invalid_output("empty answer", text)
    return stripped
