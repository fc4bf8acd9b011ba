"""The demo tools: a calculator, a lookup over a small data set, unit conversion and a
fake ``send_email``. Declared with :func:`~.registry.tool`; ``tools.yaml`` names them.

The calculator evaluates with ``ast``, never ``eval``: only numbers, + - * / // % **,
unary signs and parentheses are accepted, exponents and sizes are bounded, so a model
cannot run code or make the worker compute a number with a million digits.
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
from collections.abc import Callable
from typing import Any

from swarmstream.agents.tools.registry import SideEffect, tool

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 64
MAX_MAGNITUDE = 1e18
"""Bounds of the calculator: generous for arithmetic, tiny for abuse (``9**9**9`` is refused)."""


class CalculatorError(ValueError):
    """An expression the calculator refuses; the message says why (the model reads it)."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; CalculatorError for anything else."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("×", "*").replace("÷", "/").replace("−", "-"), mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    value = _eval(tree.body)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CalculatorError("the result is not a finite number")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent {right} is larger than {MAX_EXPONENT}")
        try:
            value = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
            raise CalculatorError(f"the result is outside ±{MAX_MAGNITUDE:g}")
        return value  # type: ignore[no-any-return]
    raise CalculatorError(f"only numbers, + - * / // % ** and parentheses are allowed, not {type(node).__name__}")


@tool(
    "calculator",
    description="Evaluate an arithmetic expression (numbers, + - * / // % **, parentheses). "
    "Returns {\"result\": number}.",
    side_effect=SideEffect.READ,
    input_schema={
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "for example (17 * 23) + 5"}},
        "required": ["expression"],
        "additionalProperties": False,
    },
    output_schema={"type": "object", "properties": {"result": {"type": "number"}}, "required": ["result"]},
    timeout_ms=1_000,
)
def calculator(expression: str) -> dict[str, Any]:
    return {"result": evaluate(expression)}


COUNTRIES: dict[str, dict[str, Any]] = {
    "france": {"capital": "paris", "population": 68_170_000, "area_km2": 551_695, "currency": "EUR"},
    "japan": {"capital": "tokyo", "population": 124_500_000, "area_km2": 377_975, "currency": "JPY"},
    "canada": {"capital": "ottawa", "population": 40_100_000, "area_km2": 9_984_670, "currency": "CAD"},
    "kenya": {"capital": "nairobi", "population": 55_100_000, "area_km2": 580_367, "currency": "KES"},
    "peru": {"capital": "lima", "population": 34_350_000, "area_km2": 1_285_216, "currency": "PEN"},
    "norway": {"capital": "oslo", "population": 5_520_000, "area_km2": 385_207, "currency": "NOK"},
    "portugal": {"capital": "lisbon", "population": 10_470_000, "area_km2": 92_212, "currency": "EUR"},
    "vietnam": {"capital": "hanoi", "population": 100_300_000, "area_km2": 331_212, "currency": "VND"},
}
"""The lookup tool's demo data set (rounded 2023-24 figures)."""


@tool(
    "lookup",
    description="Look up a fact about a country: its capital, population, area_km2 or currency. "
    "Returns {\"value\": ...}.",
    side_effect=SideEffect.READ,
    input_schema={
        "type": "object",
        "properties": {
            "country": {"type": "string"},
            "field": {"type": "string", "enum": ["capital", "population", "area_km2", "currency"]},
        },
        "required": ["country", "field"],
        "additionalProperties": False,
    },
    output_schema={"type": "object", "required": ["value"]},
    timeout_ms=1_000,
)
def lookup(country: str, field: str) -> dict[str, Any]:
    record = COUNTRIES.get(country.strip().lower())
    if record is None:
        raise LookupError(f"no country {country!r} in the data set (known: {', '.join(sorted(COUNTRIES))})")
    return {"value": record[field]}


UNITS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0), "km": ("length", 1000.0), "cm": ("length", 0.01), "mm": ("length", 0.001),
    "mi": ("length", 1609.344), "ft": ("length", 0.3048), "in": ("length", 0.0254), "yd": ("length", 0.9144),
    "kg": ("mass", 1.0), "g": ("mass", 0.001), "lb": ("mass", 0.45359237), "oz": ("mass", 0.028349523125),
    "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0), "day": ("time", 86400.0),
    "l": ("volume", 1.0), "ml": ("volume", 0.001), "gal": ("volume", 3.785411784),
}
"""Unit -> (dimension, factor to the dimension's base unit). Temperatures are affine, handled apart."""

_TEMPERATURES = {"c", "f", "k"}


def convert(value: float, from_unit: str, to_unit: str) -> float:
    source, target = from_unit.strip().lower(), to_unit.strip().lower()
    if source in _TEMPERATURES and target in _TEMPERATURES:
        kelvin = {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[source]
        return {"c": kelvin - 273.15, "f": (kelvin - 273.15) * 9 / 5 + 32, "k": kelvin}[target]
    if source not in UNITS or target not in UNITS:
        unknown = source if source not in UNITS else target
        raise ValueError(f"unknown unit {unknown!r} (known: {', '.join([*UNITS, 'c', 'f', 'k'])})")
    (dimension_a, factor_a), (dimension_b, factor_b) = UNITS[source], UNITS[target]
    if dimension_a != dimension_b:
        raise ValueError(f"cannot convert {dimension_a} ({source}) to {dimension_b} ({target})")
    return value * factor_a / factor_b


@tool(
    "convert_units",
    description="Convert a value between units of length, mass, time, volume or temperature (c, f, k). "
    "Returns {\"result\": number}.",
    side_effect=SideEffect.READ,
    input_schema={
        "type": "object",
        "properties": {"value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}},
        "required": ["value", "from_unit", "to_unit"],
        "additionalProperties": False,
    },
    output_schema={"type": "object", "properties": {"result": {"type": "number"}}, "required": ["result"]},
    timeout_ms=1_000,
)
def convert_units(value: float, from_unit: str, to_unit: str) -> dict[str, Any]:
    return {"result": round(convert(value, from_unit, to_unit), 6)}


OUTBOX: list[dict[str, str]] = []
"""Where the fake ``send_email`` puts mail (this process only); nothing leaves the machine."""
_message_ids = itertools.count(1)


@tool(
    "send_email",
    description="Send an email. Irreversible: runs only after a person approves it.",
    side_effect=SideEffect.DANGEROUS,
    input_schema={
        "type": "object",
        "properties": {"to": {"type": "string", "format": "email"}, "subject": {"type": "string"},
                       "body": {"type": "string"}},
        "required": ["to", "subject", "body"],
        "additionalProperties": False,
    },
    output_schema={"type": "object", "properties": {"status": {"type": "string"}, "id": {"type": "string"}},
                   "required": ["status", "id"]},
    timeout_ms=2_000,
)
def send_email(to: str, subject: str, body: str) -> dict[str, Any]:
    message_id = f"msg-{next(_message_ids)}"
    OUTBOX.append({"id": message_id, "to": to, "subject": subject, "body": body})
    return {"status": "sent", "id": message_id}
