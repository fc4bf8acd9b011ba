"""The workflows file: named workflows of steps, validated with errors that say where.

Shape (every key but ``workflows`` and each workflow's ``steps`` optional)::

    workflows:
      escalate:
        max_hops: 12                 # a task's trail longer than this ends `cycle_detected`
        budget_micros: 20000         # steps see budget_left_micros; none runs a model past it
        middleware: [timing, {use: cache, ttl_s: 300}]
        answer_from: wide            # whose answer is the result (default: the last answer on the path)
        steps:
          - name: quick
            kind: consensus          # consensus | select | chain | tools | transform | branch | workflow
            models: [sim-delta, sim-alpha]
            prompt: "{{ task.prompt }}"
            choose:                  # conditional strategy: the first that holds overrides the step's
              - {when: "depth > 0", models: [sim-delta]}
          - name: check
            kind: branch
            branches:
              - {when: "steps.quick.agreement < 1", goto: wide}
            otherwise: end           # a step, `end`, or `review` (human review)
          - name: wide
            kind: consensus
            models: [sim-alpha, sim-beta, sim-gamma]
            max_iterations: 2        # a step in a cycle must declare a bound (graph.py)

Step kinds: ``consensus``/``select``/``chain``/``tools`` run a child task of that
mode through the normal pipeline; ``workflow`` runs another workflow as a
child; ``transform`` calls a registered function (transforms.py); ``branch``
picks the next step by condition (conditions.py). Prompts and system prompts
are templates (templates.py). After a step comes its ``next``, else the step
below it, else the end.

Checked at load: names are unique identifiers, every target and called
workflow exists, models are in the catalog, templates and conditions name
only what exists, transforms and middleware import, and no cycle lacks an
iteration bound (graph.py), calls between workflows included. Errors read
``<file>: <path in file>: <what is wrong>``, one line per problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from swarmstream.agents.configfile import format_validation_error, read_yaml_mapping
from swarmstream.agents.workflows import graph
from swarmstream.agents.workflows.conditions import (
    ConditionError,
    check_names,
    parse_condition,
)
from swarmstream.agents.workflows.middleware import MiddlewareError, resolve_middleware
from swarmstream.agents.workflows.templates import (
    TemplateError,
    check_path,
    placeholders,
)
from swarmstream.agents.workflows.transforms import TransformError, resolve_transform
from swarmstream.schemas.models import AnswerType, TaskRequest

DEFAULT_WORKFLOWS_PATH = Path(__file__).with_name("workflows.yaml")
"""The built-in workflows (draft-critique-vote over the demo fleet), shipped with the package."""

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Workflow and step names become topic names (swarm.step.<workflow>.<step>): no dots."""

StepKind = Literal["consensus", "select", "chain", "tools", "transform", "branch", "workflow"]
CHILD_MODES: dict[str, str] = {"consensus": "consensus", "select": "select", "chain": "chain", "tools": "single"}
"""Model step kind -> the child task's mode (a tools step with several models runs consensus)."""

TOOLS_IN_TASKS = "tools" in TaskRequest.model_fields
"""Tool steps need the tools capability's TaskRequest fields (``tools``, ``tool_policy``, ``max_turns``)."""

TASK_FIELDS: frozenset[str] = frozenset(TaskRequest.model_fields)

_KNOWN_MODELS = "known_models"
"""Validation-context key: the catalog's model ids; absent, model ids are not checked."""

DEFAULT_PROMPT = "{{ task.prompt }}"


def _error(subpath: str, message: str) -> PydanticCustomError:
    """An error located ``subpath`` below the validated object (see configfile.format_validation_error)."""
    return PydanticCustomError("workflow_config", "{message}", {"message": message, "subpath": subpath})


def _check_models(models: list[str], info: ValidationInfo) -> list[str]:
    known = (info.context or {}).get(_KNOWN_MODELS)
    if known is not None:
        for i, model in enumerate(models):
            if model not in known:
                raise _error(f"[{i}]", f"unknown model {model!r} (known: {', '.join(sorted(known))})")
    return models


class Overrides(BaseModel):
    """Parameters of a model step that a conditional choice may replace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[str] | None = None
    strategy: str | None = None
    policy: str | None = None
    chain: str | None = None
    min_models: int | None = Field(default=None, ge=0, le=64)
    max_models: int | None = Field(default=None, ge=0, le=64)
    early_stop: bool | None = None
    max_tokens: int | None = Field(default=None, gt=0)

    @field_validator("models")
    @classmethod
    def _known(cls, models: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if models is None else _check_models(models, info)


def _parses_as_condition(when: str) -> str:
    try:
        parse_condition(when)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None
    return when


ConditionText = Annotated[str, AfterValidator(_parses_as_condition)]
"""A ``when`` condition, checked to parse at load (``conditions.py``); never evaluated as Python."""


class Choice(Overrides):
    """``when`` holds -> these parameters (the first choice that holds wins)."""

    when: ConditionText


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when: ConditionText
    goto: str


class MiddlewareSpec(BaseModel):
    """``timing`` or ``{use: cache, ttl_s: 60}``: a name and the factory's options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    use: str

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"use": value} if isinstance(value, str) else value

    @field_validator("use")
    @classmethod
    def _resolves(cls, use: str) -> str:
        try:
            resolve_middleware(use)
        except MiddlewareError as exc:
            raise ValueError(str(exc)) from None
        return use

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    kind: StepKind
    prompt: str = DEFAULT_PROMPT
    system: str | None = None
    answer_type: AnswerType | None = None
    labels: list[str] | None = None
    models: list[str] = []
    strategy: str | None = None
    policy: str | None = None
    chain: str | None = None
    min_models: int = Field(default=0, ge=0, le=64)
    max_models: int = Field(default=0, ge=0, le=64)
    early_stop: bool = False
    max_tokens: int | None = Field(default=None, gt=0)
    timeout_ms: int | None = Field(default=None, gt=0)
    choose: list[Choice] = []
    tools: list[str] = []
    tool_policy: str | None = None
    max_turns: int = Field(default=0, ge=0, le=64)
    workflow: str | None = None
    function: str | None = None
    args: dict[str, Any] = {}
    branches: list[Branch] = []
    otherwise: str | None = None
    next: str | None = None
    max_iterations: int | None = Field(default=None, ge=1)
    on_failure: Literal["fail", "continue"] = "fail"

    @field_validator("models")
    @classmethod
    def _known(cls, models: list[str], info: ValidationInfo) -> list[str]:
        return _check_models(models, info)

    @field_validator("function")
    @classmethod
    def _resolves(cls, function: str | None) -> str | None:
        if function is not None:
            try:
                resolve_transform(function)
            except TransformError as exc:
                raise ValueError(str(exc)) from None
        return function

    @model_validator(mode="after")
    def _fits_its_kind(self) -> Step:
        model_step = self.kind in CHILD_MODES
        if self.kind == "transform" and not self.function:
            raise _error("function", "a transform step names its function (a built-in or package.module:function)")
        if self.kind == "workflow" and not self.workflow:
            raise _error("workflow", "a workflow step names the workflow it calls")
        if self.kind == "tools" and not self.tools:
            raise _error("tools", "a tools step names the tools its model may call")
        if self.kind == "tools" and not TOOLS_IN_TASKS:
            raise _error("kind", "tools steps need the tools capability (TaskRequest has no 'tools' field here)")
        if (self.tools or self.tool_policy or self.max_turns) and self.kind != "tools":
            raise _error("tools", f"only a tools step has tools, tool_policy or max_turns (this step is {self.kind})")
        if self.kind == "branch" and not self.branches:
            raise _error("branches", "a branch step needs at least one {when, goto}")
        for key in ("branches", "otherwise"):
            if self.kind != "branch" and getattr(self, key):
                raise _error(key, f"only a branch step has {key} (this step is {self.kind})")
        if self.function and self.kind != "transform":
            raise _error("function", f"only a transform step has a function (this step is {self.kind})")
        if self.workflow and self.kind != "workflow":
            raise _error("workflow", f"only a workflow step calls a workflow (this step is {self.kind})")
        if self.choose and not model_step:
            raise _error("choose", f"conditional strategy choice is for model steps, not {self.kind}")
        if self.models and self.kind not in ("consensus", "tools"):
            raise _error("models", f"a {self.kind} step does not take models"
                         + (": the selector picks one (set policy)" if self.kind == "select" else ""))
        if self.chain and self.kind != "chain":
            raise _error("chain", f"only a chain step names a chain (this step is {self.kind})")
        if self.policy and self.kind != "select":
            raise _error("policy", f"only a select step names a policy (this step is {self.kind})")
        return self

    def templates(self) -> dict[str, str]:
        out = {"prompt": self.prompt}
        if self.system is not None:
            out["system"] = self.system
        return out

    def targets(self, following: str) -> dict[str, str]:
        """Where this step may go next, by where it is declared (``following``: the step below, or end)."""
        if self.kind == "branch":
            out = {f"branches[{i}].goto": b.goto for i, b in enumerate(self.branches)}
            out["otherwise"] = self.otherwise or self.next or following
            return out
        return {"next": self.next or following}


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    start: str | None = None
    steps: list[Step] = Field(min_length=1)
    max_hops: int = Field(default=32, ge=1, le=10_000)
    budget_micros: int | None = Field(default=None, ge=0)
    answer_from: str | None = None
    middleware: list[MiddlewareSpec] = []

    @model_validator(mode="after")
    def _consistent(self) -> Workflow:
        names = [s.name for s in self.steps]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise _error(f"steps[{i}].name", f"step {name!r} is defined twice")
            if name in graph.TERMINALS:
                raise _error(f"steps[{i}].name", f"{name!r} is reserved (a target that ends the workflow)")
            seen.add(name)
        known = set(names)
        allowed = ", ".join([*sorted(known), *sorted(graph.TERMINALS)])
        for key in ("start", "answer_from"):
            value = getattr(self, key)
            if value is not None and value not in known:
                raise _error(key, f"no step {value!r} (steps: {', '.join(names)})")
        for i, step in enumerate(self.steps):
            for where, target in step.targets(self.following(i)).items():
                if target not in known and target not in graph.TERMINALS:
                    raise _error(f"steps[{i}].{where}", f"unknown target {target!r} (a step or end/review: {allowed})")
            for key, template in step.templates().items():
                try:
                    paths = placeholders(template)
                except TemplateError as exc:
                    raise _error(f"steps[{i}].{key}", str(exc)) from None
                for path in paths:
                    problem = check_path(path, steps=known, task_fields=set(TASK_FIELDS))
                    if problem:
                        raise _error(f"steps[{i}].{key}", problem)
            conditions = [(f"branches[{j}].when", b.when) for j, b in enumerate(step.branches)]
            conditions += [(f"choose[{j}].when", c.when) for j, c in enumerate(step.choose)]
            for where, text in conditions:
                problem = check_names(parse_condition(text), steps=known, task_fields=set(TASK_FIELDS))
                if problem:
                    raise _error(f"steps[{i}].{where}", problem)
        return self

    @property
    def first(self) -> str:
        return self.start or self.steps[0].name

    def following(self, index: int) -> str:
        return self.steps[index + 1].name if index + 1 < len(self.steps) else "end"

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.name == name)

    def next_of(self, name: str) -> str:
        """Where a non-branch step goes after it ran."""
        i = self.index(name)
        return self.steps[i].next or self.following(i)


class WorkflowsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workflows: dict[str, Workflow]

    @field_validator("workflows")
    @classmethod
    def _names(cls, workflows: dict[str, Workflow]) -> dict[str, Workflow]:
        for name in workflows:
            if not re.match(NAME_PATTERN, name):
                raise _error(name, f"workflow name {name!r} must match {NAME_PATTERN} (it becomes a topic name)")
        return workflows

    @model_validator(mode="after")
    def _calls_and_cycles(self) -> WorkflowsFile:
        edges: list[graph.Edge] = []
        bounded: set[str] = set()
        for wf_name, wf in self.workflows.items():
            for i, step in enumerate(wf.steps):
                here = graph.node(wf_name, step.name)
                where = f"workflows.{wf_name}.steps[{i}]"
                if step.max_iterations is not None:
                    bounded.add(here)
                if step.kind == "workflow":
                    callee = self.workflows.get(step.workflow or "")
                    if callee is None:
                        raise _error(f"{where}.workflow", f"unknown workflow {step.workflow!r} "
                                     f"(workflows: {', '.join(sorted(self.workflows))})")
                    edges.append(graph.Edge(here, graph.node(step.workflow or "", callee.first), f"{where}.workflow"))
                for key, target in graph.successor_targets(step.targets(wf.following(i))):
                    edges.append(graph.Edge(here, graph.node(wf_name, target), f"{where}.{key}"))
        cycle = graph.unbounded_cycle(edges, bounded)
        if cycle:
            raise _error(cycle[-1].where, f"cycle without an iteration bound: {graph.describe_cycle(cycle)} "
                         "(set max_iterations on one of its steps)")
        return self

    def get(self, name: str) -> Workflow | None:
        return self.workflows.get(name)

    def models(self) -> set[str]:
        """Every model a step names (the catalog must have them)."""
        out: set[str] = set()
        for wf in self.workflows.values():
            for step in wf.steps:
                out.update(step.models)
                for choice in step.choose:
                    out.update(choice.models or [])
        return out


class WorkflowError(ValueError):
    """The workflows file is missing, not YAML, or invalid; the message says where and what."""


class UnknownWorkflowError(ValueError):
    """A task names a workflow the workflows file does not define (the task is dead-lettered)."""


def load_workflows(path: Path | str = DEFAULT_WORKFLOWS_PATH, *,
                   known_models: Mapping[str, Any] | None = None) -> WorkflowsFile:
    """Read and validate a workflows file (against the catalog's model ids when given).

    Raises WorkflowError with one line per problem, each ``<file>: <path>: <what is wrong>``.
    """
    path = Path(path)
    raw = read_yaml_mapping(path, what="workflows", top="workflows", error=WorkflowError)
    return parse_workflows(raw, source=path.name, known_models=known_models)


def parse_workflows(raw: Mapping[str, Any], *, source: str,
                    known_models: Mapping[str, Any] | None = None) -> WorkflowsFile:
    context = {} if known_models is None else {_KNOWN_MODELS: frozenset(known_models)}
    try:
        return WorkflowsFile.model_validate(raw, context=context)
    except ValidationError as exc:
        raise WorkflowError(format_validation_error(source, exc)) from None
