"""Step prompts as templates over the task and earlier steps' outputs.

    "The draft answer is {{ steps.draft.answer }}. Check it: {{ task.prompt }}"

A placeholder is ``{{ dotted.path }}`` and nothing else: no loops, no filters,
no code. Prompts go to models and their text may come from users, so the
language is kept too small to execute anything; anything richer belongs in a
``transform`` step (a registered Python function).

Roots a placeholder may start with (the Reactor view of the workflow):

    task.<field>            the workflow's TaskRequest (prompt, category, labels, metadata.<key>, ...)
    steps.<step>.<field>    an earlier step's output (answer, confidence, agreement, status, ...)
    depth                   how many workflows deep this one runs (0: called by a user)
    budget_left_micros      the workflow's budget minus what its steps spent (empty: no budget)
    spent_micros            what its steps spent
    iteration               how often the current step has run before, in this task's trail

Paths are checked when the workflows file loads (:func:`placeholders`); a step
that has not run on the path taken renders as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\s*\}\}")
STRAY_BRACES = re.compile(r"\{\{|\}\}")

ROOTS: frozenset[str] = frozenset({"task", "steps", "depth", "budget_left_micros", "spent_micros", "iteration"})
OUTPUT_FIELDS: frozenset[str] = frozenset({
    "answer", "confidence", "agreement", "status", "answered_by", "cost_micros", "latency_ms", "cached", "kind",
    "hop", "detail",
})


class TemplateError(ValueError):
    """A template that cannot render: the message says which placeholder and why."""


def placeholders(template: str) -> list[str]:
    """Every placeholder path in ``template``; raises TemplateError for braces that open or close
    no placeholder (a typo such as ``{{ steps.draft.answer }`` would otherwise reach the model)."""
    paths = PLACEHOLDER.findall(template)
    if STRAY_BRACES.search(PLACEHOLDER.sub("", template)):
        raise TemplateError("unbalanced '{{' or '}}' (a placeholder is {{ dotted.path }})")
    return paths


def check_path(path: str, *, steps: set[str], task_fields: set[str]) -> str | None:
    """Why ``path`` cannot resolve in a workflow with ``steps``; None when it can."""
    parts = path.split(".")
    root = parts[0]
    if root not in ROOTS:
        return f"unknown name {root!r} (known: {', '.join(sorted(ROOTS))})"
    if root == "steps":
        if len(parts) != 3:
            return f"{path!r}: write steps.<step>.<field>"
        if parts[1] not in steps:
            return f"{path!r}: no step {parts[1]!r} in this workflow (steps: {', '.join(sorted(steps))})"
        if parts[2] not in OUTPUT_FIELDS:
            return f"{path!r}: a step output has no field {parts[2]!r} (fields: {', '.join(sorted(OUTPUT_FIELDS))})"
    elif root == "task":
        if len(parts) < 2 or parts[1] not in task_fields:
            return f"{path!r}: write task.<field> (fields: {', '.join(sorted(task_fields))})"
        if parts[1] == "metadata" and len(parts) != 3:
            return f"{path!r}: write task.metadata.<key>"
    elif len(parts) != 1:
        return f"{path!r}: {root} has no fields"
    return None


def lookup(path: str, scope: Mapping[str, Any]) -> Any:
    """The value at ``path`` in ``scope`` (the view :meth:`runner.StepView.scope` builds);
    None when any part is missing (a step not run on this path)."""
    value: Any = scope
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def render(template: str, scope: Mapping[str, Any]) -> str:
    """``template`` with every placeholder replaced by its value (None renders empty)."""

    def one(match: re.Match[str]) -> str:
        value = lookup(match[1], scope)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, (list, tuple)):
            return ", ".join(map(str, value))
        return str(value)

    return PLACEHOLDER.sub(one, template)
