"""Workflows on a Topology: the step topics, the workflow and cache tables, the runner agent.

    swarm.tasks (workflow: <name>) ──► intake ──► swarm.step.<workflow>.<first step>
    swarm.step.<workflow>.<step> + swarm.step-results ──► workflow runner (workflow table)
        ├─ model step / workflow call ──► child task ──► swarm.tasks ──► ... ──► Finisher
        │                                   └─ result keyed by the parent ──► swarm.step-results
        ├─ next step ──► swarm.step.<workflow>.<next>
        └─ done ──► swarm.results (the workflow's one result: every step's output, the path)

``build()`` in ``streams/app/topology.py`` calls :func:`wire_workflows` last. Step
topics depend on the workflows file, so the engine creates them at start, with
the configured partitions, before it subscribes (a topic Tansu auto-created on
first reference would get 4 partitions whatever the setting).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from swarmstream.agents.dispatch.agent import Dispatcher
from swarmstream.agents.models.catalog import Catalog
from swarmstream.agents.taskstate import SWEEP_GRACE_MS, Finisher
from swarmstream.agents.workflows.agent import WorkflowRunner
from swarmstream.agents.workflows.dsl import (
    WorkflowError,
    WorkflowsFile,
    load_workflows,
)
from swarmstream.agents.workflows.middleware import (
    MiddlewareChain,
    MiddlewareEnv,
    MiddlewareError,
    build_middleware,
)
from swarmstream.schemas.models import now_ms
from swarmstream.streams.app.graph import Topology
from swarmstream.streams.app.settings import DEFAULT_WORKFLOWS, Settings

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0
"""How often each worker looks for workflows stuck past their deadline (as the task sweeper)."""

RUNNER_IN_FLIGHT = 256

CACHE_UNDATED_MS = 3600 * 1000
"""A cache entry without ``expires_ms`` (none is written so): an hour, six times the default TTL."""


def cache_expiry(key: str, value: Any) -> int | None:
    at = value.get("expires_ms") if isinstance(value, dict) else None
    return None if at is None else int(at)


def workflows_for(settings: Settings, catalog: Catalog) -> WorkflowsFile:
    """The configured workflows; the shipped ones only when the catalog has their models
    (a custom catalog without its own workflows file runs with none: workflow tasks are dead-lettered)."""
    try:
        return load_workflows(settings.workflows, known_models=catalog.models)
    except WorkflowError:
        if settings.workflows != DEFAULT_WORKFLOWS:
            raise
        log.warning("the built-in workflows in %s name models this catalog lacks: no workflows configured",
                    DEFAULT_WORKFLOWS)
        return WorkflowsFile.model_construct(workflows={})


def build_chains(workflows: WorkflowsFile, env: MiddlewareEnv, source: str) -> dict[str, MiddlewareChain]:
    chains = {}
    for name, wf in workflows.workflows.items():
        items = []
        for i, spec in enumerate(wf.middleware):
            try:
                items.append(build_middleware(spec.use, spec.options, env))
            except MiddlewareError as exc:
                raise WorkflowError(f"{source}: workflows.{name}.middleware[{i}]: {exc}") from None
        chains[name] = MiddlewareChain(items)
    return chains


def wire_workflows(topo: Topology, *, dispatcher: Dispatcher) -> WorkflowRunner:
    settings = topo.settings
    names = settings.topics
    workflows = workflows_for(settings, topo.catalog)

    store = topo.windowed("workflows")
    # a cache entry goes once its TTL passed: an expired entry is a miss anyway (middleware.ResponseCache)
    cache = topo.retained("workflow-cache", cache_expiry, default_ms=CACHE_UNDATED_MS)
    env = MiddlewareEnv(cache=cache)
    workflow_finisher = Finisher(store=store, emit=topo.emit, results_topic=names.results,
                                 review_topic=names.review, review_threshold=settings.review_threshold,
                                 step_results_topic=names.step_results)  # a called workflow answers its caller
    runner = WorkflowRunner(
        workflows=workflows,
        chains=build_chains(workflows, env, settings.workflows.name),
        store=store,
        emit=topo.emit,
        finisher=workflow_finisher,
        tasks_topic=names.tasks,
        step_topic=names.step,
        step_results_topic=names.step_results,
        dead_letter_topic=names.dead_letters,
    )
    dispatcher.route_workflows(runner.open)

    sources = [names.step_results, *(names.step(w, s.name) for w, wf in workflows.workflows.items()
                                     for s in wf.steps)]
    topo.wire("workflows", sources, runner.handle, RUNNER_IN_FLIGHT)

    async def sweep_overdue_workflows() -> None:
        now = now_ms()
        sends = [topo.emit(topic, key, record) for topic, key, record in
                 runner.overdue(store.past_deadline(now - SWEEP_GRACE_MS), now, SWEEP_GRACE_MS)]
        if sends:
            log.warning("workflow sweeper: %d workflow(s) past their deadline", len(sends))
            await asyncio.gather(*sends)

    topo.engine.timer(SWEEP_INTERVAL_S, sweep_overdue_workflows)
    return runner
