"""parse_answer: table-driven, edge cases first. Each row: model text -> the vote it casts."""

from __future__ import annotations

import orjson
import pytest
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.parsing import canonical_number, parse_answer

ANIMALS = ("dog", "cat", "bird")


def _invalid(text: str, answer_type: str, **kwargs: object) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        parse_answer(text, answer_type, **kwargs)  # type: ignore[arg-type]
    assert caught.value.failure_class is FailureClass.INVALID_OUTPUT
    assert caught.value.retryable is False
    return caught.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cat", "cat"),
        ("  CAT  ", "cat"),
        ("Cat.", "cat"),
        ("**cat**", "cat"),
        ("B) cat", "cat"),
        ("B", "cat"),
        ("(b)", "cat"),
        ("b.", "cat"),
        ("Option C", "bird"),
        ("A: dog", "dog"),
        ("Answer: cat", "cat"),
        ("answer: B", "cat"),
        ("The answer is Cat.", "cat"),
        ("Final answer: (C)", "bird"),
        ("Let me think. Dogs bark, cats meow.\nThe answer is B", "cat"),
        ("B) cat - a small domesticated feline", "cat"),
        ("I am fairly sure it is a bird.", "bird"),
        ("cat\nBecause it meows.", "cat"),
    ],
)
def test_label_matches_an_allowed_label(text: str, expected: str) -> None:
    assert parse_answer(text, "label", labels=ANIMALS) == expected


def test_label_returns_the_label_as_declared() -> None:
    assert parse_answer("positive", "label", labels=["Positive", "Negative"]) == "Positive"
    assert parse_answer("b", "label", labels=["Positive", "Negative"]) == "Negative"


def test_single_letter_labels_match_themselves() -> None:
    assert parse_answer("The answer is (D).", "label", labels=["A", "B", "C", "D"]) == "D"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("fish", "not one of"),
        ("D)", "not one of"),  # only three options
        ("A) cat", "option letter says"),  # letter and text disagree
        ("dog or cat, hard to say", "ambiguous"),
    ],
)
def test_label_invalid(text: str, reason: str) -> None:
    assert reason in _invalid(text, "label", labels=ANIMALS).message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Cat", "cat"),
        ("  The   Big  Cat!  ", "the big cat"),
        ("Answer: Positive.", "positive"),
    ],
)
def test_label_without_labels_is_normalised_text(text: str, expected: str) -> None:
    assert parse_answer(text, "label") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", "42"),
        ("42.0", "42"),
        ("-7", "-7"),
        ("\u22127", "-7"),  # Unicode minus
        ("3.14", "3.14"),
        (".5", "0.5"),
        ("1,234", "1234"),
        ("1,234,567.5", "1234567.5"),
        ("1.5e3", "1500"),
        ("-3.5E-2", "-0.035"),
        ("$12.50", "12.5"),
        ("-$5", "-5"),
        ("42 km", "42"),
        ("50%", "50"),
        ("-0", "0"),
        ("The answer is 17.", "17"),
        ("3 + 4 = 7", "7"),
        ("x = 5, so the answer is 10 apples", "10"),
        ("First 2, then 3, finally 9", "9"),
        ("Version v2 gives 8", "8"),
        ("Total: 1,000 USD", "1000"),
    ],
)
def test_number_is_canonical(text: str, expected: str) -> None:
    assert parse_answer(text, "number") == expected


@pytest.mark.parametrize("text", ["", "no digits here", "NaN", "inf", "The answer is infinity", "1e999"])
def test_number_invalid(text: str) -> None:
    _invalid(text, "number")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(42.0, "42"), (-0.0, "0"), (0.1 + 0.2, "0.30000000000000004"), (2.0**60, repr(2.0**60))],
)
def test_canonical_number(value: float, expected: str) -> None:
    assert canonical_number(value) == expected


SCHEMA = orjson.dumps(
    {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
    }
).decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"b": 1, "a": 2}', '{"a":2,"b":1}'),
        ("```json\n{\"b\": 1, \"a\": [1, 2]}\n```", '{"a":[1,2],"b":1}'),
        ("```\n[3, 1]\n```", "[3,1]"),
        ('Here you go: {"a": {"d": 1, "c": 2}} Hope it helps!', '{"a":{"c":2,"d":1}}'),
        ("  7 ", "7"),
    ],
)
def test_json_is_canonical(text: str, expected: str) -> None:
    assert parse_answer(text, "json") == expected


def test_json_schema_accepts_and_canonicalises() -> None:
    assert parse_answer('{"age": 3, "name": "Rex"}', "json", json_schema=SCHEMA) == '{"age":3,"name":"Rex"}'


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json at all", "no valid JSON"),
        ('{"a": NaN}', "no valid JSON"),
        ("```json\n{broken\n```", "no valid JSON"),
        ('{"name": "Rex"}', "schema at (root)"),
        ('{"name": "Rex", "age": -1}', "schema at age"),
    ],
)
def test_json_invalid(text: str, reason: str) -> None:
    assert reason in _invalid(text, "json", json_schema=SCHEMA).message


def test_json_schema_that_is_not_a_schema_is_the_callers_bug() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_answer("{}", "json", json_schema="{oops")
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        parse_answer("{}", "json", json_schema='{"type": 12}')


@pytest.mark.parametrize(("text", "expected"), [("  Hello world.\n", "Hello world."), ("x", "x")])
def test_text_is_stripped(text: str, expected: str) -> None:
    assert parse_answer(text, "text") == expected


def test_text_empty_is_invalid() -> None:
    _invalid(" \n\t", "text")


def test_unknown_answer_type_is_the_callers_bug() -> None:
    with pytest.raises(ValueError, match="unknown answer_type 'essay'"):
        parse_answer("x", "essay")


def test_long_invalid_output_is_quoted_briefly() -> None:
    assert len(_invalid("word " * 500, "number").message) < 200
