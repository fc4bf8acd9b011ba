"""The workflows file: what loads, and errors that name the file, the path in it and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from swarmstream.agents.workflows.dsl import (
    DEFAULT_WORKFLOWS_PATH,
    WorkflowError,
    load_workflows,
    parse_workflows,
)

MODELS = {m: 1 for m in ("a", "b", "c")}


def one(*steps: dict[str, Any], **workflow: Any) -> dict[str, Any]:
    return {"workflows": {"w": {"steps": list(steps), **workflow}}}


def step(name: str, kind: str = "consensus", **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, **extra}


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(WorkflowError) as exc:
        parse_workflows(raw, source="wf.yaml", known_models=MODELS)
    return str(exc.value)


def test_the_built_in_workflows_load_against_the_demo_catalog() -> None:
    demo = {m: 1 for m in ("sim-alpha", "sim-beta", "sim-gamma", "sim-delta", "sim-epsilon")}
    loaded = load_workflows(DEFAULT_WORKFLOWS_PATH, known_models=demo)
    dcv = loaded.workflows["draft-critique-vote"]
    assert [s.name for s in dcv.steps] == ["draft", "critique", "vote"]
    assert dcv.next_of("draft") == "critique" and dcv.next_of("vote") == "end"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (one(step("a", models=["zz"])), "wf.yaml: workflows.w.steps[0].models[0]: unknown model 'zz' (known: a, b, c)"),
        (one(step("a"), step("a")), "wf.yaml: workflows.w.steps[1].name: step 'a' is defined twice"),
        (one(step("A b")), "wf.yaml: workflows.w.steps[0].name: String should match pattern"),
        (one(step("a", kind="poem")), "wf.yaml: workflows.w.steps[0].kind: Input should be"),
        (one(step("a", next="nowhere")), "wf.yaml: workflows.w.steps[0].next: unknown target 'nowhere'"),
        (one(step("a"), start="zz"), "wf.yaml: workflows.w.start: no step 'zz' (steps: a)"),
        (one(step("a", prompt="{{ steps.b.answer }}")),
         "wf.yaml: workflows.w.steps[0].prompt: 'steps.b.answer': no step 'b' in this workflow"),
        (one(step("a", prompt="{{ steps.a.colour }}")),
         "wf.yaml: workflows.w.steps[0].prompt: 'steps.a.colour': a step output has no field 'colour'"),
        (one(step("a", prompt="{{ task.prompt }")), "wf.yaml: workflows.w.steps[0].prompt: unbalanced"),
        (one(step("a", prompt="{{ secrets }}")), "wf.yaml: workflows.w.steps[0].prompt: unknown name 'secrets'"),
        (one(step("a", kind="transform")), "wf.yaml: workflows.w.steps[0].function: a transform step names"),
        (one(step("a", kind="transform", function="no_such")),
         "wf.yaml: workflows.w.steps[0].function: unknown transform 'no_such'"),
        (one(step("a", kind="transform", function="os.path:nope")),
         "wf.yaml: workflows.w.steps[0].function: transform 'os.path:nope': module 'os.path' has no 'nope'"),
        (one(step("a", kind="branch")), "wf.yaml: workflows.w.steps[0].branches: a branch step needs"),
        (one(step("a", kind="branch", branches=[{"when": "__import__('os')", "goto": "end"}])),
         "wf.yaml: workflows.w.steps[0].branches[0].when: Call is not allowed"),
        (one(step("a", kind="branch", branches=[{"when": "steps.z.answer == '1'", "goto": "end"}])),
         "wf.yaml: workflows.w.steps[0].branches[0].when: 'steps.z.answer': no step 'z'"),
        (one(step("a", kind="select", models=["a"])), "wf.yaml: workflows.w.steps[0].models: a select step does not"),
        (one(step("a", otherwise="end")), "wf.yaml: workflows.w.steps[0].otherwise: only a branch step"),
        (one(step("a", kind="workflow")), "wf.yaml: workflows.w.steps[0].workflow: a workflow step names"),
        (one(step("a", kind="workflow", workflow="ghost")),
         "wf.yaml: workflows.w.steps[0].workflow: unknown workflow 'ghost' (workflows: w)"),
        (one(step("a", choose=[{"when": "depth >", "models": ["a"]}])),
         "wf.yaml: workflows.w.steps[0].choose[0].when: not a valid expression"),
        (one(step("a", choose=[{"when": "depth > 0", "models": ["q"]}])),
         "wf.yaml: workflows.w.steps[0].choose[0].models[0]: unknown model 'q'"),
        (one(step("a"), middleware=["nope"]), "wf.yaml: workflows.w.middleware[0].use: unknown middleware 'nope'"),
        (one(step("a"), max_hops=0), "wf.yaml: workflows.w.max_hops: Input should be greater than or equal to 1"),
        (one(step("a", surprise=1)), "wf.yaml: workflows.w.steps[0].surprise: Extra inputs are not permitted"),
        (one(step("end")), "wf.yaml: workflows.w.steps[0].name: 'end' is reserved"),
        ({"workflows": {"has.dot": {"steps": [step("a")]}}}, "wf.yaml: workflows.has.dot: workflow name 'has.dot'"),
        (one(), "wf.yaml: workflows.w.steps: List should have at least 1 item"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_errors_name_the_file_the_path_and_the_problem(raw: dict[str, Any], expected: str) -> None:
    assert expected in error_of(raw)


def test_a_file_that_is_not_yaml_or_not_there_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workflows: [unclosed")
    with pytest.raises(WorkflowError, match="bad.yaml: not valid YAML"):
        load_workflows(bad)
    with pytest.raises(WorkflowError, match="cannot read workflows"):
        load_workflows(tmp_path / "missing.yaml")


def test_middleware_takes_a_name_or_a_name_with_options() -> None:
    loaded = parse_workflows(one(step("a"), middleware=["timing", {"use": "cache", "ttl_s": 5}]), source="wf.yaml")
    specs = loaded.workflows["w"].middleware
    assert [(m.use, m.options) for m in specs] == [("timing", {}), ("cache", {"ttl_s": 5})]


def test_without_a_catalog_model_ids_are_not_checked() -> None:
    parse_workflows(one(step("a", models=["anything"])), source="wf.yaml")
