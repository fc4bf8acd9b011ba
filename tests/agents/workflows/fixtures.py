"""Middleware and transforms the workflow tests name by dotted path (workers import them too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmstream.agents.workflows.middleware import MiddlewareEnv, Output, StepCall


class Stamp:
    """Writes ``before:<label>`` / ``after:<label>`` into the step's notes as its hooks run, and the
    whole trace into the output's ``detail``, so a test reads the order the hooks ran in."""

    def __init__(self, env: MiddlewareEnv, *, label: str) -> None:
        self.name = f"stamp-{label}"
        self._label = label

    def before(self, call: StepCall) -> Output | None:
        call.notes.setdefault("trace", []).append(f"before:{self._label}")
        return None

    def after(self, call: StepCall, output: Output) -> Output:
        trace = [*call.notes.get("trace", []), f"after:{self._label}"]
        call.notes["trace"] = trace
        return {**output, "detail": ">".join(trace)}


class AnswerWith:
    """Short-circuits every step with a fixed answer (no model call)."""

    def __init__(self, env: MiddlewareEnv, *, answer: str) -> None:
        self.name = "answer-with"
        self._answer = answer

    def before(self, call: StepCall) -> Output | None:
        return {"answer": self._answer, "confidence": 1.0}

    def after(self, call: StepCall, output: Output) -> Output:
        return output


def shout(scope: Mapping[str, Any], *, step: str) -> str:
    """An earlier step's answer, upper-cased: a transform by dotted path."""
    return str(scope["steps"][step]["answer"]).upper()


def explode(scope: Mapping[str, Any]) -> str:
    raise ValueError("boom")
