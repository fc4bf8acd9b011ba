"""Prompt templates and branch conditions: what renders, what holds, what is refused."""

from __future__ import annotations

from typing import Any

import pytest
from swarmstream.agents.workflows.conditions import (
    ConditionError,
    check_names,
    parse_condition,
)
from swarmstream.agents.workflows.templates import (
    TemplateError,
    check_path,
    placeholders,
    render,
)

SCOPE: dict[str, Any] = {
    "task": {"prompt": "What is 2 + 2?", "metadata": {"pair": "split"}, "labels": ["x", "y"]},
    "steps": {"draft": {"answer": "4", "confidence": 0.55, "cached": False, "agreement": 1.0}},
    "depth": 1,
    "budget_left_micros": 120,
    "spent_micros": 30,
    "iteration": 0,
}


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{ task.prompt }}", "What is 2 + 2?"),
        ("Draft: {{steps.draft.answer}}; check: {{ task.prompt }}", "Draft: 4; check: What is 2 + 2?"),
        ("{{ steps.draft.confidence }}", "0.55"),
        ("{{ steps.draft.cached }}", "false"),
        ("{{ task.labels }}", "x, y"),
        ("{{ task.metadata.pair }}", "split"),
        ("depth {{ depth }}, left {{ budget_left_micros }}", "depth 1, left 120"),
        ("[{{ steps.never.answer }}]", "[]"),  # a step not run on this path renders empty
        ("no placeholders", "no placeholders"),
    ],
)
def test_templates_render_over_the_task_and_earlier_outputs(template: str, rendered: str) -> None:
    assert render(template, SCOPE) == rendered


@pytest.mark.parametrize("template", ["{{ task.prompt }", "{ { x }}", "}} {{ task.prompt }}", "{{ 1 + 1 }}"])
def test_malformed_placeholders_are_refused(template: str) -> None:
    with pytest.raises(TemplateError, match="unbalanced"):
        placeholders(template)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("task.prompt", None),
        ("task.metadata.pair", None),
        ("steps.draft.answer", None),
        ("depth", None),
        ("secret", "unknown name 'secret'"),
        ("task.nope", "write task.<field>"),
        ("task.metadata", "write task.metadata.<key>"),
        ("steps.draft", "write steps.<step>.<field>"),
        ("steps.other.answer", "no step 'other'"),
        ("steps.draft.secret", "has no field 'secret'"),
        ("depth.x", "depth has no fields"),
    ],
)
def test_paths_are_checked_against_the_workflow(path: str, problem: str | None) -> None:
    found = check_path(path, steps={"draft"}, task_fields={"prompt", "metadata"})
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ("steps.draft.confidence < 0.8", True),
        ("steps.draft.confidence < 0.8 and depth == 0", False),
        ("steps.draft.confidence < 0.5 or depth >= 1", True),
        ("not steps.draft.cached", True),
        ("steps.draft.answer in ['3', '4']", True),
        ("steps.draft.answer not in ('3', '4')", False),
        ("task.metadata.pair == 'split'", True),
        ("0 < budget_left_micros <= 120", True),
        ("-spent_micros < -10", True),
        # a missing value never satisfies an ordering: "confidence below 0.8" is false when the step never ran
        ("steps.missing.confidence < 0.8", False),
        ("steps.missing.confidence >= 0.8", False),
        ("steps.missing.answer == None", True),
        ("steps.draft.answer < 5", False),  # '4' < 5: a type mismatch is not true
    ],
)
def test_conditions_evaluate_over_the_view(condition: str, holds: bool) -> None:
    assert parse_condition(condition).holds(SCOPE) is holds


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("__import__('os').system('x')", "Call is not allowed"),
        ("steps['draft']", "Subscript is not allowed"),
        ("(lambda: 1)()", "not allowed"),
        ("depth if depth else 1", "IfExp is not allowed"),
        ("depth +", "not a valid expression"),
        ("[x for x in task.labels]", "not allowed"),
        ("'a'.upper", "Attribute is not allowed"),
        ("depth + 1 > 2", "BinOp is not allowed"),
    ],
)
def test_conditions_cannot_run_code(condition: str, reason: str) -> None:
    with pytest.raises(ConditionError, match=reason):
        parse_condition(condition)


def test_condition_names_are_checked_against_the_workflow() -> None:
    ok = parse_condition("steps.draft.confidence < 0.5 and task.prompt != ''")
    assert check_names(ok, steps={"draft"}, task_fields={"prompt"}) is None
    bad = parse_condition("steps.drfat.confidence < 0.5")
    assert "no step 'drfat'" in (check_names(bad, steps={"draft"}, task_fields={"prompt"}) or "")
