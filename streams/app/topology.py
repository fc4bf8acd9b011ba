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
    calls + quality ──► every worker's breakers and model stats (from the newest checkpoint, streams/app/logs.py)
    feedback ──► quality
    undecodable or invalid input ──► dead-letters

Capabilities define handlers over plain values (``agents/*/agent.py``); this
module gives each handler its topics and tables on the engine
(``streams/engine/engine.py``), which runs it with many events in flight and commits
in offset order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from swarmstream.agents.consensus.agent import ConsensusJoiner
from swarmstream.agents.consensus.strategies import load_custom
from swarmstream.agents.dispatch.agent import Dispatcher
from swarmstream.agents.dispatch.shedding import (
    Admission,
    CachedLag,
    QueueingLimits,
    SheddingLimits,
    Waiting,
    admit,
    by_queueing,
    worst,
)
from swarmstream.agents.fallback.agent import ChainRunner, DelayLine
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.chains import ChainsConfig, ChainsError, load_chains
from swarmstream.agents.models.agent import ModelCaller
from swarmstream.agents.models.catalog import Catalog
from swarmstream.agents.models.dedupe import request_counted
from swarmstream.agents.models.providers import build_provider
from swarmstream.agents.ports import DeadLetters
from swarmstream.agents.selection.agent import Selector
from swarmstream.agents.selection.budget import BudgetLimits, window_end_ms
from swarmstream.agents.stats.book import ModelBook
from swarmstream.agents.stats.feedback import FeedbackRecorder
from swarmstream.agents.stats.folded import FoldedViews
from swarmstream.agents.taskstate import SWEEP_GRACE_MS, Finisher, Resweeps, overdue
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import (
    Failure,
    Feedback,
    StepContext,
    TaskRequest,
    now_ms,
)
from swarmstream.streams.app.graph import Topology
from swarmstream.streams.app.homing import homed, task_id_in
from swarmstream.streams.app.judging import embeddings_for, judging_for
from swarmstream.streams.app.logs import (
    Checkpoints,
    follow_logs,
    logs_checkpoints_topic,
)
from swarmstream.streams.app.security import aiokafka_security
from swarmstream.streams.app.settings import DEFAULT_CHAINS, Settings
from swarmstream.streams.app.stores import ShardedCounters
from swarmstream.streams.app.tools import tool_turns, wire_tools
from swarmstream.streams.app.workflows import wire_workflows
from swarmstream.streams.engine import Engine, InputMessage
from swarmstream.streams.engine.broker import bootstrap_servers
from swarmstream.streams.engine.published import PublishedResults

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0
"""How often each worker looks for overdue tasks in its partitions of the task table."""

DELAYED_IN_FLIGHT = 4096
"""Delayed requests mostly sleep: many may wait at once for little memory."""

SPEND_KEPT_MS = 24 * 3600 * 1000
"""A spend counter stays a day after its window (a UTC day or month) ended: only the current
window's counters are read (``agents/selection/agent.py``), and a day covers a worker whose clock
lags and an operator looking at yesterday's spend. Without it a tenant's counters grew by one
key a day for good."""

SPEND_UNDATED_MS = 40 * 24 * 3600 * 1000
"""A spend key naming no window (none is written so): kept longer than any month."""


def create_engine(settings: Settings, broker_url: str) -> Engine:
    return Engine(app_id=settings.app_id, bootstrap=bootstrap_servers(broker_url), partitions=settings.partitions,
                  session_timeout_s=settings.session_timeout_s, heartbeat_interval_s=settings.heartbeat_interval_s,
                  commit_interval_s=settings.commit_interval_s, max_poll_records=settings.max_poll_records,
                  fetch_max_wait_ms=settings.fetch_max_wait_ms, fetch_min_bytes=settings.fetch_min_bytes,
                  producer_linger_ms=settings.producer_linger_ms,
                  group_instance_id=settings.group_instance_id, security=aiokafka_security(settings),
                  traced=settings.tracing, data_dir=settings.data_dir if settings.store == "rocksdb://" else None)


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
    engine = create_engine(settings, broker_url)
    topo = Topology(engine, settings, catalog)
    names = settings.topics
    # Every topic of the pipeline, not only those the worker reads: on a cluster that does not
    # create topics when they are named (Apache Kafka with auto.create.topics.enable=false, as
    # deploy/ runs it) a first worker's published-results scan waited on a results topic nobody
    # had made, and the worker failed 40 s later.
    for topic in names.all(list(catalog.models)):
        engine.writes_to(topic)
    chains_config = chains_for(settings, catalog)
    dead_letters = DeadLetters(topo.emit, names.dead_letters)

    async def dead_letter_failed(message: InputMessage, error: BaseException) -> None:
        await dead_letters.send(message, f"handling failed: {type(error).__name__}: {error}", error)

    engine.on_error(dead_letter_failed)  # no record's content stops a worker: it gets a dead letter

    store = topo.windowed("tasks")
    book = ModelBook()
    # kept for good: one key per chain and partition, counters since the start (``swarmstream stats``)
    chain_metrics = ShardedCounters(engine.table("chain-metrics"))
    board = CircuitBoard(chains_config.circuit_for, now_ms)
    if settings.metrics_port:  # before any handler takes topo.emit: streams/observe/metrics.py counts what it emits
        from swarmstream.streams.observe.metrics import install as install_metrics

        install_metrics(topo, board)
    published = PublishedResults(engine.bootstrap, names.results, engine.security)
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
        shedding=shedding(engine, settings),
        finisher=finisher,
        home=lambda task_id: engine.home(task_id.encode()),
        forward=lambda task, partition: engine.send(names.tasks, task.task_id.encode(), codec().encode(task),
                                                     partition=partition),
    )
    topo.wire("intake", [names.tasks], dispatcher.handle, settings.intake_in_flight)

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
                (lambda r: request_counted(store.get(r.task.task_id, r.task.created_ms), r))
                if settings.dedupe_model_calls else None
            ),
            tools=turns,
        )
        topo.wire(f"model-call.{spec.id}", [names.model(spec.id)], caller.handle, spec.max_in_flight)

    delays = DelayLine(emit=topo.emit, model_topic=names.model, dead_letter_topic=names.dead_letters)
    topo.wire("delays", [names.delays], delays.handle, DELAYED_IN_FLIGHT)

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
        judging=judging_for(settings, catalog, chains_config, board),
        embeddings=embeddings_for(settings, catalog, topo.pool),
    )
    topo.wire("outcomes", [names.responses, names.failures], joiner.handle, 256)

    selector = Selector(
        models=catalog.models,
        book=book,
        spend=topo.retained("spend", spend_expiry, default_ms=SPEND_UNDATED_MS),
        limits=lambda tenant: budget_limits(settings, tenant),
        emit=topo.emit,
        model_topic=names.model,
        failures_topic=names.failures,
        selections_topic=names.selections,
        dead_letter_topic=names.dead_letters,
        policy=settings.policy,
    )
    topo.wire("select", [names.select], selector.handle, 256)

    feedback = FeedbackRecorder(store=store, emit=topo.emit, quality_topic=names.quality,
                                dead_letter_topic=names.dead_letters)
    topo.wire("feedback", [names.feedback], homed(engine, feedback.handle, task_id_in(Feedback)), 256)

    resweeps = Resweeps()

    async def sweep_overdue_tasks() -> None:
        now = now_ms()
        sends = []
        due = store.past_deadline(now - SWEEP_GRACE_MS)
        resweeps.keep_only({task_id for task_id, _ in due})
        for task_id, state in due:
            task = state["task"]
            for model, attempt in overdue(state, now):
                if not resweeps.due(task_id, model, attempt, now):
                    continue
                if resweeps.repeated(task_id, model, attempt):
                    log.error("deadline sweeper: task %s is still open after its timeout for %s was sent; "
                              "sending it again", task_id, model)
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

    engine.timer(SWEEP_INTERVAL_S, sweep_overdue_tasks)

    views = FoldedViews(book, board)
    views_caught_up = asyncio.Event()

    checkpoints_topic = logs_checkpoints_topic(settings.app_id)
    engine.writes_to(checkpoints_topic)

    async def replicated_logs() -> None:
        # from the newest checkpoint (streams/app/logs.py): a tail of ~10 s of calls, folded
        # beside the first restore, which waits for it (views_first)
        await follow_logs(engine.bootstrap, {names.calls: views.fold_call, names.quality: book.add_quality},
                          security=engine.security, checkpoints=Checkpoints(checkpoints_topic, views),
                          caught_up=views_caught_up)

    waited_for_views = [False]

    async def views_first(_gained: set[Any]) -> None:
        # the first tasks are chosen for, and routed around open breakers, with the stats and
        # breakers the other workers have, not with empty ones; later assignments never wait
        if waited_for_views[0]:
            return
        waited_for_views[0] = True
        try:
            await asyncio.wait_for(views_caught_up.wait(), VIEWS_WAIT_S)
        except TimeoutError:
            log.warning("the model stats and breakers are still being folded from the calls log after %.0f s: "
                        "tasks are handled meanwhile", VIEWS_WAIT_S)

    engine.on_assigned(views_first, beside_restore=True)
    engine.service(replicated_logs)

    async def load_published(gained: set[Any]) -> None:
        await published.load(tp.partition for tp in gained if tp.topic == names.tasks)

    engine.on_assigned(load_published, beside_restore=True)  # reads the results topic, no table

    async def trim_published(gained: set[Any]) -> None:
        # after the restore: only a task the crash left open can be finished (and published) again
        published.keep_only((tp.partition for tp in gained if tp.topic == names.tasks), store.is_open)

    engine.on_assigned(trim_published)
    engine.on_stop(topo.pool.aclose)
    wire_workflows(topo, dispatcher=dispatcher)
    wire_tools(topo, turns)
    return topo


VIEWS_WAIT_S = 5.0
"""How long a starting worker's first partitions wait for the views to be folded up to the logs'
end. A tail from a checkpoint (~10 s of calls) folds in about a second beside the restore; logs
with no checkpoint (written before there were any) could take minutes, and tasks are not held
that long: they are handled with the views as far as they got, as before checkpoints."""


def shedding(engine: Engine, settings: Settings) -> Callable[..., Admission] | None:
    """Intake's admission (``agents/dispatch/shedding.py``): (task, models, partition) -> what to do
    with a new task. The time rule reads how long the oldest event waits in the backlog of each
    model's agent and of the outcomes agent (``Engine.waiting_since_ms``, O(1) each, so per task),
    both counted from when this worker took the partitions (after their tables were restored): time
    a task spent waiting out a crash or a restore is not this worker's overload. The lag rule reads
    this worker's consumer at most every 250 ms per model topic partition."""

    lag_limits = SheddingLimits(settings.shed_soft_lag, settings.shed_hard_lag, settings.shed_max_delay_ms)
    time_limits = QueueingLimits(settings.admit_queue_share, settings.shed_max_delay_ms)
    if not lag_limits.enabled and not time_limits.enabled:
        return None
    names = settings.topics
    lag = CachedLag(read=lambda model, partition: engine.lag(names.model(model), partition), clock_ms=now_ms)
    taken_ms: dict[int, int] = {}  # partition number -> when this worker took it (every topic co-partitioned)
    last_taken_ms = [0]

    async def took(gained: set[Any]) -> None:
        now = now_ms()
        for tp in gained:
            taken_ms[tp.partition] = now
        if gained:
            last_taken_ms[0] = now

    engine.on_assigned(took)

    def ahead_ms(topic: str, now: int) -> int | None:
        # an agent's backlog spans its partitions: its head is counted from the latest taking
        since = engine.waiting_since_ms(topic)
        return None if since is None else now - max(since, last_taken_ms[0])

    def decide(task: TaskRequest, models: list[str], partition: int) -> Admission:
        now = now_ms()
        ahead: dict[str, int | None] = {}
        waits = [(wait, m) for m in models if (wait := ahead_ms(names.model(m), now)) is not None]
        if waits:  # the models are asked at once: the slowest queue among them counts
            wait, model = max(waits)
            ahead[f"model {model!r}"] = wait
        ahead["outcomes"] = ahead_ms(names.responses, now)  # then every answer (responses, failures: one agent)
        waiting = Waiting(age_ms=now - task.created_ms, timeout_ms=task.timeout_ms, ahead_ms=ahead,
                          waited_ms=now - max(task.created_ms, taken_ms.get(partition, 0)))
        decision = by_queueing(waiting, time_limits)
        if lag_limits.enabled:
            decision = worst(decision, admit(lag.lags(models, partition), models, lag_limits))
        return decision

    return decide


def spend_expiry(key: str, value: Any) -> int | None:
    """A spend counter (``tenant|YYYY-MM-DD`` or ``tenant|YYYY-MM``) goes ``SPEND_KEPT_MS`` after its window."""
    end = window_end_ms(key.rpartition("|")[2])
    return None if end is None else end + SPEND_KEPT_MS


def budget_limits(settings: Settings, tenant: str) -> BudgetLimits:
    configured = settings.budgets.get(tenant) or settings.budgets.get("*") or {}
    return BudgetLimits(per_day_micros=configured.get("per_day_micros"),
                        per_month_micros=configured.get("per_month_micros"))
