"""The whole graph in one place: every topic, table and agent, and how they link.

    tasks ──► intake ──► model.<id> ──► model-call ──► responses | failures
                 │                            └──► calls (one record per call, keyed by model)
                 ├─ chain: first link (or delays, when it must wait)
                 └─ select: ──► select (keyed by tenant) ──► selector: budget + policy ──► model.<id>
                                                                   └─► selections (propensities)
    responses + failures ──► outcomes: task table (windowed) ──► results (+ review)
                                 ├─ consensus: early stop asks more model.<id>; labels ──► quality
                                 └─ chain: retry / next link ──► model.<id> | delays; metrics (table)
    delays ──► (sleep until not_before) ──► model.<id>
    calls + quality ──► every worker's breakers and model stats (replayed from the start)
    feedback ──► quality
    undecodable or invalid input ──► dead-letters

Capabilities define handlers over plain values (``agents/*/agent.py``); this
module applies the Faust decorators, gives each handler its topics and
tables, and runs it with :func:`streams.inflight.run_in_order`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from swarmstream.agents.consensus.agent import ConsensusJoiner
from swarmstream.agents.consensus.strategies import load_custom
from swarmstream.agents.dispatch.agent import Dispatcher
from swarmstream.agents.dispatch.shedding import (
    Admission,
    CachedLag,
    SheddingLimits,
    admit,
)
from swarmstream.agents.fallback.agent import ChainRunner, DelayLine
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.chains import ChainsConfig, ChainsError, load_chains
from swarmstream.agents.models.agent import ModelCaller
from swarmstream.agents.models.catalog import Catalog
from swarmstream.agents.models.dedupe import outcome_counted
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.providers import build_provider
from swarmstream.agents.selection.agent import Selector
from swarmstream.agents.selection.budget import BudgetLimits
from swarmstream.agents.stats.book import ModelBook
from swarmstream.agents.stats.feedback import FeedbackRecorder
from swarmstream.agents.taskstate import Finisher, overdue
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import Failure, Record, StepContext, now_ms
from swarmstream.streams import tracing
from swarmstream.streams.app import create_app, window_expiry
from swarmstream.streams.inflight import Handler, run_in_order
from swarmstream.streams.logs import follow_logs
from swarmstream.streams.published import PublishedResults
from swarmstream.streams.settings import DEFAULT_CHAINS, Settings
from swarmstream.streams.tables import ShardedCounters, WindowedStore, durable
from swarmstream.streams.tool_wiring import tool_turns, wire_tools
from swarmstream.streams.transport import local_lag, reseek_to_committed
from swarmstream.streams.workflow_wiring import wire_workflows

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0
"""How often each worker looks for overdue tasks in its partitions of the task table."""

DELAYED_IN_FLIGHT = 4096
"""Delayed requests mostly sleep: many may wait at once for little memory."""


@dataclass
class Topology:
    app: faust.App
    settings: Settings
    catalog: Catalog
    pool: ClientPool = field(default_factory=ClientPool)

    async def emit(self, topic: str, key: str, record: Record, headers: Mapping[str, bytes] | None = None) -> None:
        if self.settings.tracing:
            headers = tracing.inject(headers)
        fut = await self.app.producer.send(
            topic, key.encode(), codec().encode(record), None, None, list((headers or {}).items())
        )
        await fut

    def raw_topic(self, *names: str) -> faust.TopicT:
        return self.app.topic(
            *names, key_serializer="raw", value_serializer="raw", partitions=self.settings.partitions
        )

    def wire(self, name: str, channel: faust.TopicT, handler: Handler, max_in_flight: int) -> None:
        async def agent(stream: Any) -> None:
            await run_in_order(stream, handler, max_in_flight=max_in_flight, name=name, traced=self.settings.tracing)

        self.app.agent(channel, name=name)(agent)


def chains_for(settings: Settings, catalog: Catalog) -> ChainsConfig:
    """The configured chains; the shipped example chains only when the catalog has their models
    (a custom catalog without its own chains file runs with no chains: chain tasks are dead-lettered)."""
    windows = {m.id: m.context_window for m in catalog.models.values()}
    try:
        return load_chains(settings.chains, known_models=windows)
    except ChainsError:
        if settings.chains != DEFAULT_CHAINS:
            raise
        log.warning("the example chains in %s name models this catalog lacks: no chains configured", DEFAULT_CHAINS)
        return ChainsConfig.model_construct(chains={})  # "at least one chain" holds for files, not for none


def build(settings: Settings, broker_url: str, catalog: Catalog) -> Topology:
    for name, dotted in settings.strategies.items():
        load_custom(dotted, name=name)  # a StrategyLoadError names the path and what is wrong
    app = create_app(settings, broker_url)
    topo = Topology(app, settings, catalog)
    names = settings.topics
    partitions = settings.partitions
    chains_config = chains_for(settings, catalog)

    task_table = app.Table("tasks", default=None, partitions=partitions).tumbling(
        settings.consensus_window_s, expires=window_expiry(settings)
    )
    store = WindowedStore(task_table)
    book = ModelBook()
    chain_metrics = ShardedCounters(durable(app.Table("chain-metrics", default=None, partitions=partitions)))
    board = CircuitBoard(chains_config.circuit_for, now_ms)
    if settings.metrics_port:  # before any handler takes topo.emit: streams/metrics.py counts what it emits
        from swarmstream.streams.metrics import install as install_metrics

        install_metrics(topo, board)
    published = PublishedResults(app.swarm_bootstrap, names.results, app.swarm_kafka_security)
    finisher = Finisher(store=store, emit=topo.emit, results_topic=names.results, review_topic=names.review,
                        review_threshold=settings.review_threshold, step_results_topic=names.step_results,
                        published=published.__contains__)
    chains = ChainRunner(
        chains=chains_config,
        context_windows={m.id: m.context_window for m in catalog.models.values()},
        board=board,
        store=store,
        emit=topo.emit,
        finisher=finisher,
        model_topic=names.model,
        delay_topic=names.delays,
        metrics=chain_metrics.add,
        model_stats=lambda model: book.get(model).to_dict(),
    )

    dispatcher = Dispatcher(
        emit=topo.emit,
        store=store,
        model_topic=names.model,
        dead_letter_topic=names.dead_letters,
        families={m.id: m.family for m in catalog.models.values()},
        default_models=catalog.default_consensus,
        chains=chains,
        select_topic=names.select,
        reliability=book.reliability,
        shedding=shedding(app, settings),
        finisher=finisher,
    )
    topo.wire("intake", topo.raw_topic(names.tasks), dispatcher.handle, settings.intake_in_flight)

    turns = tool_turns(settings)
    for spec in catalog.models.values():
        caller = ModelCaller(
            provider=build_provider(spec, topo.pool),
            emit=topo.emit,
            responses_topic=names.responses,
            failures_topic=names.failures,
            dead_letter_topic=names.dead_letters,
            calls_topic=names.calls,
            outcome_counted=(
                (lambda r: outcome_counted(store.get(r.task.task_id, r.task.created_ms), r.model_id, r.attempt))
                if settings.dedupe_model_calls else None
            ),
            tools=turns,
        )
        topo.wire(f"model-call.{spec.id}", topo.raw_topic(names.model(spec.id)), caller.handle, spec.max_in_flight)

    delays = DelayLine(emit=topo.emit, model_topic=names.model, dead_letter_topic=names.dead_letters)
    topo.wire("delays", topo.raw_topic(names.delays), delays.handle, DELAYED_IN_FLIGHT)

    joiner = ConsensusJoiner(
        store=store,
        emit=topo.emit,
        finisher=finisher,
        model_topic=names.model,
        dead_letter_topic=names.dead_letters,
        review_threshold=settings.review_threshold,
        stop_threshold=settings.early_stop_threshold,
        reliability=book.reliability,
        quality_topic=names.quality,
        chains=chains.handle,
    )
    topo.wire("outcomes", topo.raw_topic(names.responses, names.failures), joiner.handle, 256)

    selector = Selector(
        models=catalog.models,
        book=book,
        spend=durable(app.Table("spend", default=None, partitions=partitions)),
        limits=lambda tenant: budget_limits(settings, tenant),
        emit=topo.emit,
        model_topic=names.model,
        failures_topic=names.failures,
        selections_topic=names.selections,
        dead_letter_topic=names.dead_letters,
        policy=settings.policy,
    )
    topo.wire("select", topo.raw_topic(names.select), selector.handle, 256)

    feedback = FeedbackRecorder(store=store, emit=topo.emit, quality_topic=names.quality,
                                dead_letter_topic=names.dead_letters)
    topo.wire("feedback", topo.raw_topic(names.feedback), feedback.handle, 256)

    @app.timer(SWEEP_INTERVAL_S)  # type: ignore[misc]
    async def sweep_overdue_tasks() -> None:
        now = now_ms()
        sends = []
        for task_id, state in store.items():
            task = state["task"]
            for model, attempt in overdue(state, now):
                step = StepContext(task_id=task_id, model_id=model, attempt=attempt, created_ms=task["created_ms"],
                                   deadline_ms=state["deadline_ms"], mode=task["mode"], answer_type=task["answer_type"],
                                   strategy=task.get("strategy"), expected_models=state.get("asked") or [model],
                                   tenant=task.get("tenant", "default"), category=task.get("category"))
                failure = Failure(step=step, failure_class="timeout", retryable=False, final=task["mode"] != "chain",
                                  message="no outcome arrived by the deadline (swept)", failed_ms=now)
                sends.append(topo.emit(names.failures, task_id, failure))
        if sends:
            log.warning("deadline sweeper: %d overdue outcome(s) ended as timeouts", len(sends))
            await asyncio.gather(*sends)

    @app.task  # type: ignore[misc]
    async def replicated_logs() -> None:
        await follow_logs(app.swarm_bootstrap, {names.calls: _fold_call(board, book), names.quality: book.add_quality},
                          security=app.swarm_kafka_security)

    sources = {names.tasks, names.select, names.feedback, names.delays, names.responses, names.failures,
               *(names.model(m) for m in catalog.models)}

    async def reread_uncommitted(sender: Any, assigned: Any, **kwargs: Any) -> None:
        await published.load(tp.partition for tp in assigned if tp.topic == names.tasks)
        await reseek_to_committed(app, [tp for tp in assigned if tp.topic in sources])

    app.on_partitions_assigned.connect(reread_uncommitted)

    async def close_http(sender: Any, **kwargs: Any) -> None:
        await topo.pool.aclose()

    app.on_before_shutdown.connect(close_http)
    wire_workflows(topo, dispatcher=dispatcher)
    wire_tools(topo, turns)
    return topo


def shedding(app: faust.App, settings: Settings) -> Callable[[list[str], int], Admission] | None:
    """Intake's load shedding (``agents/dispatch/shedding.py``), lags read from this worker's
    consumer at most every 250 ms per model topic partition."""
    limits = SheddingLimits(settings.shed_soft_lag, settings.shed_hard_lag, settings.shed_max_delay_ms)
    if not limits.enabled:
        return None
    lag = CachedLag(read=lambda model, partition: local_lag(app, settings.topics.model(model), partition),
                    clock_ms=now_ms)
    return lambda models, partition: admit(lag.lags(models, partition), models, limits)


def _fold_call(board: CircuitBoard, book: ModelBook) -> Callable[[Any], None]:
    def fold(record: Any) -> None:
        board.apply(record)
        book.add_call(record)

    return fold


def budget_limits(settings: Settings, tenant: str) -> BudgetLimits:
    configured = settings.budgets.get(tenant) or settings.budgets.get("*") or {}
    return BudgetLimits(per_day_micros=configured.get("per_day_micros"),
                        per_month_micros=configured.get("per_month_micros"))
