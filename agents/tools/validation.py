"""Arguments in, output out: parsed, canonicalised and checked against the tool's schemas.

Every error here goes back to the model as the tool's result, worded so it can
correct itself: which argument, what is wrong, what the schema wants. Canonical
arguments (sorted keys, no whitespace) make "the same call" well defined for the
ledger, votes, shared reads and loop detection: ``{"b": 1, "a": 2}`` and
``{"a":2,"b":1}`` are one call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema
import orjson


class ArgumentError(ValueError):
    """The call's arguments are unusable; the message is for the model."""


class OutputError(ValueError):
    """The tool's output breaks its own schema: the tool's fault, reported to the model as an error."""


def parse_arguments(text: str) -> dict[str, Any]:
    """The arguments object of a call; ArgumentError when it is not a JSON object."""
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError as exc:
        raise ArgumentError(f"arguments are not valid JSON ({exc}); send a JSON object") from None
    if not isinstance(value, dict):
        raise ArgumentError(f"arguments must be a JSON object, got {type(value).__name__}")
    return value


def canonical(value: Any) -> str:
    """Sorted keys, no whitespace: equal values give equal text."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def call_digest(tool: str, arguments_text: str) -> str:
    """sha256 over the tool name and the canonical arguments (or the raw text when it is not
    JSON, so two identical malformed calls are still "the same call")."""
    try:
        body = canonical(orjson.loads(arguments_text or "{}"))
    except orjson.JSONDecodeError:
        body = arguments_text
    return hashlib.sha256(f"{tool}\x00{body}".encode()).hexdigest()[:32]


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> jsonschema.protocols.Validator:
    schema = orjson.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)  # type: ignore[no-any-return]


def _first_error(schema: Mapping[str, Any], value: Any) -> jsonschema.ValidationError | None:
    validator = _validator(canonical(schema))
    return jsonschema.exceptions.best_match(validator.iter_errors(value))


def _where(error: jsonschema.ValidationError) -> str:
    return "/" + "/".join(str(p) for p in error.absolute_path) if error.absolute_path else "(the arguments object)"


def validate_arguments(tool: str, schema: Mapping[str, Any], arguments: Any) -> None:
    """ArgumentError naming the argument and what the schema wants, e.g.
    ``arguments of 'calculator' do not match its input schema at /expression: 3 is not of type 'string'``."""
    error = _first_error(schema, arguments)
    if error is not None:
        expected = ", ".join(sorted(schema.get("properties", {}))) or "none"
        raise ArgumentError(
            f"arguments of {tool!r} do not match its input schema at {_where(error)}: {error.message} "
            f"(arguments it takes: {expected}; required: {', '.join(schema.get('required', [])) or 'none'})"
        )


def validate_output(tool: str, schema: Mapping[str, Any] | None, output: Any) -> None:
    if schema is None:
        return
    error = _first_error(schema, output)
    if error is not None:
        raise OutputError(f"the output of {tool!r} does not match its output schema at {_where(error)}: {error.message}")
