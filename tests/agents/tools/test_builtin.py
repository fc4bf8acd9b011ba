"""The demo tools; the calculator never evaluates anything but arithmetic."""

from __future__ import annotations

import pytest
from swarmstream.agents.tools.builtin import (
    CalculatorError,
    calculator,
    convert_units,
    evaluate,
    lookup,
    send_email,
)


@pytest.mark.parametrize(
    ("expression", "value"),
    [("(17 * 23) + 5", 396), ("2 ** 10", 1024), ("7 / 2", 3.5), ("-3 + +4", 1), ("17 // 5", 3), ("17 % 5", 2),
     ("1.5 * 2", 3), ("2 × 3 − 1", 5)],
)
def test_arithmetic(expression, value) -> None:
    assert evaluate(expression) == value
    assert calculator(expression) == {"result": value}


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("__import__('os').system('true')", "not Call"),
        ("x + 1", "not Name"),
        ("(1).__class__", "not Attribute"),
        ("[1, 2]", "not List"),
        ("'a' * 3", "not Constant"),
        ("True + 1", "not Constant"),
        ("9 ** 9 ** 9", "exponent"),
        ("10 ** 60 * 10 ** 60", "outside"),
        ("1 / 0", "division by zero"),
        ("1 +", "not an arithmetic expression"),
        ("1" * 201, "longer than 200"),
    ],
)
def test_anything_else_is_refused_with_a_reason(expression, why) -> None:
    with pytest.raises(CalculatorError, match=why):
        evaluate(expression)


def test_lookup_and_units() -> None:
    assert lookup("Norway", "capital") == {"value": "oslo"}
    with pytest.raises(LookupError, match="known: canada"):
        lookup("atlantis", "capital")
    assert convert_units(1, "mi", "km") == {"result": 1.609344}
    assert convert_units(100, "c", "f") == {"result": 212.0}
    with pytest.raises(ValueError, match="cannot convert length"):
        convert_units(1, "km", "kg")


def test_send_email_is_fake_and_dangerous() -> None:
    from swarmstream.agents.tools.builtin import OUTBOX
    from swarmstream.agents.tools.registry import TOOL_ATTRIBUTE

    assert getattr(send_email, TOOL_ATTRIBUTE).side_effect == "dangerous"
    result = send_email("a@example.com", "hi", "body")
    assert result["status"] == "sent" and OUTBOX[-1]["to"] == "a@example.com"
