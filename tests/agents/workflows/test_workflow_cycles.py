"""Cycle detection at load: a cycle needs a declared iteration bound, calls between workflows included."""

from __future__ import annotations

from typing import Any

import pytest
from swarmstream.agents.workflows.dsl import WorkflowError, parse_workflows
from swarmstream.agents.workflows.graph import Edge, describe_cycle, unbounded_cycle


def s(name: str, kind: str = "consensus", **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, **extra}


def branch(name: str, goto: str, **extra: Any) -> dict[str, Any]:
    return s(name, "branch", branches=[{"when": "depth > 100", "goto": goto}], **extra)


@pytest.mark.parametrize(
    ("workflows", "message"),
    [
        ({"w": [s("a", next="a")]}, "workflows.w.steps[0].next: cycle without an iteration bound: w.a -> w.a"),
        ({"w": [s("a"), branch("b", "a")]},
         "workflows.w.steps[1].branches[0].goto: cycle without an iteration bound: w.a -> w.b -> w.a"),
        ({"w": [s("a"), s("b"), s("c", next="b")]}, "w.b -> w.c -> w.b"),
        # a branch's `otherwise` is an edge too
        ({"w": [s("a"), s("b", "branch", branches=[{"when": "depth > 1", "goto": "end"}], otherwise="a")]},
         "workflows.w.steps[1].otherwise: cycle without an iteration bound: w.a -> w.b -> w.a"),
        # recursion through calls: x calls y, y calls x
        ({"x": [s("call", "workflow", workflow="y")], "y": [s("back", "workflow", workflow="x")]},
         "cycle without an iteration bound: x.call -> y.back -> x.call"),
        ({"me": [s("again", "workflow", workflow="me")]}, "me.again -> me.again"),
    ],
)
def test_an_unbounded_cycle_is_an_error_that_names_it(workflows: dict[str, list[Any]], message: str) -> None:
    raw = {"workflows": {name: {"steps": steps} for name, steps in workflows.items()}}
    with pytest.raises(WorkflowError) as exc:
        parse_workflows(raw, source="wf.yaml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("wf.yaml: workflows.")
    assert "set max_iterations" in str(exc.value)


@pytest.mark.parametrize(
    "workflows",
    [
        {"w": [s("a", next="a", max_iterations=3)]},
        {"w": [s("a", max_iterations=2), branch("b", "a")]},
        {"x": [s("call", "workflow", workflow="y", max_iterations=2)], "y": [s("back", "workflow", workflow="x")]},
        {"w": [s("a"), branch("b", "end"), s("c")]},  # no cycle at all
        {"x": [s("call", "workflow", workflow="y")], "y": [s("leaf")]},  # a call is not a cycle
    ],
)
def test_bounded_cycles_and_acyclic_graphs_load(workflows: dict[str, list[Any]]) -> None:
    parse_workflows({"workflows": {n: {"steps": st} for n, st in workflows.items()}}, source="wf.yaml")


def test_a_bounded_cycle_does_not_hide_an_unbounded_one_beside_it() -> None:
    # a <-> b is bounded (a), but c <-> d next to it is not
    raw = {"workflows": {"w": {"steps": [
        s("a", max_iterations=2), branch("b", "a", otherwise="c"), s("c"), branch("d", "c", otherwise="end"),
    ]}}}
    with pytest.raises(WorkflowError, match=r"w\.c -> w\.d -> w\.c"):
        parse_workflows(raw, source="wf.yaml")


def test_the_graph_search_handles_long_chains_without_recursion() -> None:
    edges = [Edge(f"n{i}", f"n{i + 1}", f"e{i}") for i in range(5000)] + [Edge("n5000", "n0", "back")]
    cycle = unbounded_cycle(edges, bounded=set())
    assert cycle is not None and len(cycle) == 5001 and cycle[-1].where == "back"
    assert unbounded_cycle(edges, bounded={"n2500"}) is None
    assert describe_cycle([Edge("a", "b", ""), Edge("b", "a", "")]) == "a -> b -> a"
