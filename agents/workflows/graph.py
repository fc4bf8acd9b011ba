"""The step graph across all workflows, and the load-time cycle check.

Nodes are ``<workflow>.<step>``. Edges: a step to each step it may go to next
(``next``, a branch's ``goto`` and ``otherwise``, or the following step), and
a ``workflow`` step to the first step of the workflow it calls, so recursion
through calls is a cycle like any other.

A cycle is allowed only when one of its steps declares ``max_iterations``: at
run time that step stops the loop (the task ends ``cycle_detected``). So the
file has an unbounded cycle exactly when the graph *without* the bounded steps
still has one, and that is what :func:`unbounded_cycle` looks for; every
cycle it could report is a real one, named in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TERMINALS: frozenset[str] = frozenset({"end", "review"})
"""Targets that end the workflow: ``end`` (its answer is the result) and ``review``
(the result goes to human review: status ``low_consensus``)."""


@dataclass(frozen=True)
class Edge:
    source: str  # "<workflow>.<step>"
    target: str
    where: str  # where the edge is declared, for the error: "workflows.w.steps[1].next"


def node(workflow: str, step: str) -> str:
    return f"{workflow}.{step}"


def unbounded_cycle(edges: Iterable[Edge], bounded: set[str]) -> list[Edge] | None:
    """The edges of one cycle that passes through no bounded node, in order; None if there is none."""
    graph: dict[str, list[Edge]] = {}
    for edge in edges:
        if edge.source in bounded or edge.target in bounded:
            continue
        graph.setdefault(edge.source, []).append(edge)
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[Edge] = []

    def visit(start: str) -> list[Edge] | None:
        # iterative DFS: a long chain of steps must not hit Python's recursion limit
        state[start] = 1
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            current, index = stack[-1]
            out = graph.get(current, [])
            if index == len(out):
                state[current] = 2
                stack.pop()
                if path:
                    path.pop()
                continue
            stack[-1] = (current, index + 1)
            edge = out[index]
            seen = state.get(edge.target)
            if seen == 1:
                begin = next(i for i, e in enumerate([*path, edge]) if e.source == edge.target)
                return [*path, edge][begin:]
            if seen is None:
                state[edge.target] = 1
                path.append(edge)
                stack.append((edge.target, 0))
        return None

    for start in list(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def describe_cycle(cycle: Sequence[Edge]) -> str:
    return " -> ".join([cycle[0].source, *(e.target for e in cycle)])


def successor_targets(targets: Mapping[str, str]) -> list[tuple[str, str]]:
    """(where, target) pairs that are steps, not terminals."""
    return [(where, target) for where, target in targets.items() if target not in TERMINALS]
