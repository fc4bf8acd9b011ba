"""Conditions of branches and of conditional strategy choice: a tiny expression language.

    steps.quick.confidence < 0.8 and depth == 0
    steps.vote.answer in ['yes', 'maybe'] or budget_left_micros < 2000
    not steps.draft.cached

Written in Python's expression syntax but never evaluated by Python: the text
is parsed with :mod:`ast` and only these nodes are allowed: ``and``/``or``/
``not``, comparisons (``== != < <= > >= in not in``), unary minus, literals
(numbers, strings, booleans, None, lists/tuples of them) and dotted names over
the roots :mod:`.templates` documents (``task``, ``steps``, ``depth``,
``budget_left_micros``, ``spent_micros``, ``iteration``). No calls, no
subscripts, no attributes of anything but those roots: a workflows file may
come from a user, and a condition must not be able to run code.

A comparison with a missing value (a step not run on this path, no budget) is
false, whatever the operator, except ``== None`` / ``!= None``: "confidence
below 0.8" must not be true because the step never ran.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from swarmstream.agents.workflows.templates import check_path, lookup

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


class ConditionError(ValueError):
    """A condition that does not parse or uses something not allowed; the message says what."""


@dataclass(frozen=True)
class Condition:
    """A parsed, checked condition; :meth:`holds` evaluates it over a step's view."""

    text: str
    tree: ast.Expression

    def names(self) -> list[str]:
        return [_dotted(node) for node in ast.walk(self.tree) if isinstance(node, (ast.Name, ast.Attribute))
                and _is_outermost(node, self.tree)]

    def holds(self, scope: Mapping[str, Any]) -> bool:
        return bool(_eval(self.tree.body, scope))


def parse_condition(text: str) -> Condition:
    """Parse and check the shape of ``text``; raises ConditionError saying what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"not a valid expression: {exc.msg} (at column {exc.offset})") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
                             ast.Compare, ast.Load, ast.List, ast.Tuple, *_COMPARE)):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            continue
        if isinstance(node, ast.Name):
            continue
        if isinstance(node, ast.Attribute) and _dotted(node):
            continue
        raise ConditionError(f"{type(node).__name__} is not allowed in a condition "
                             "(allowed: and, or, not, comparisons, literals, dotted names)")
    return Condition(text, tree)


def check_names(condition: Condition, *, steps: set[str], task_fields: set[str]) -> str | None:
    """Why a name in ``condition`` cannot resolve in a workflow with ``steps``; None when all can."""
    for name in condition.names():
        problem = check_path(name, steps=steps, task_fields=task_fields)
        if problem:
            return problem
    return None


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of attributes over a name; "" for anything else (a call's attribute)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_outermost(node: ast.AST, tree: ast.AST) -> bool:
    """True unless ``node`` is the inner part of a longer dotted name."""
    return not any(isinstance(parent, ast.Attribute) and parent.value is node for parent in ast.walk(tree))


def _eval(node: ast.AST, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, scope) for v in node.values)
        return any(_eval(v, scope) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, scope)
        if isinstance(node.op, ast.Not):
            return not value
        return None if value is None else -value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, scope)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, scope) for e in node.elts]
    if isinstance(node, (ast.Name, ast.Attribute)):
        return lookup(_dotted(node), scope)
    raise ConditionError(f"cannot evaluate {type(node).__name__}")  # parse_condition keeps these out


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(op, (ast.Eq, ast.NotEq)):
        return _COMPARE[type(op)](left, right)
    if left is None or right is None:
        return False
    try:
        return _COMPARE[type(op)](left, right)
    except TypeError:
        return False  # "0.8" < 0.9: a type mismatch is not a truth
