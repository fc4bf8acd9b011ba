"""Arguments and outputs against the tool's schemas; canonical calls."""

from __future__ import annotations

import pytest
from swarmstream.agents.tools.builtin import calculator
from swarmstream.agents.tools.registry import TOOL_ATTRIBUTE
from swarmstream.agents.tools.validation import (
    ArgumentError,
    OutputError,
    call_digest,
    parse_arguments,
    validate_arguments,
    validate_output,
)

SCHEMA = getattr(calculator, TOOL_ATTRIBUTE).input_schema


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('"x"', "must be a JSON object, got str"),
    ],
)
def test_unparseable_arguments_say_what_to_send(text, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        parse_arguments(text)


@pytest.mark.parametrize(
    ("arguments", "where", "what"),
    [
        ({"expression": 3}, "/expression", "is not of type 'string'"),
        ({}, "(the arguments object)", "'expression' is a required property"),
        ({"expression": "1", "extra": 1}, "(the arguments object)", "Additional properties"),
    ],
)
def test_schema_errors_name_the_argument_and_the_schema(arguments, where, what) -> None:
    with pytest.raises(ArgumentError) as info:
        validate_arguments("calculator", SCHEMA, arguments)
    message = str(info.value)
    assert f"at {where}" in message and what in message
    assert "arguments it takes: expression" in message


def test_valid_arguments_pass() -> None:
    validate_arguments("calculator", SCHEMA, {"expression": "1 + 1"})


def test_output_is_checked_against_the_output_schema() -> None:
    schema = getattr(calculator, TOOL_ATTRIBUTE).output_schema
    validate_output("calculator", schema, {"result": 2})
    with pytest.raises(OutputError, match="at /result"):
        validate_output("calculator", schema, {"result": "two"})
    validate_output("calculator", None, object())  # no schema: anything


def test_the_same_call_has_the_same_digest_whatever_the_key_order_or_spacing() -> None:
    assert call_digest("t", '{"a": 1, "b": [1, 2]}') == call_digest("t", '{"b":[1,2],"a":1}')
    assert call_digest("t", '{"a": 1}') != call_digest("t", '{"a": 2}')
    assert call_digest("t", '{"a": 1}') != call_digest("u", '{"a": 1}')
    assert call_digest("t", "{bad") == call_digest("t", "{bad")  # malformed calls repeat too
