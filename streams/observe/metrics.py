"""Prometheus metrics of one worker, served on ``SWARM_METRICS_PORT`` (0 = off).

Least coupling by design: every record a worker publishes goes through
``Topology.emit``, so one wrapper around it (:meth:`WorkerMetrics.wrap`) sees
every TaskResult (tasks by status), CallRecord (calls by model and failure
class, latency, cost, tokens) and DeadLetter, and no handler knows metrics
exist. What is state rather than events is read when Prometheus scrapes:
breaker states from the worker's :class:`CircuitBoard`, consumer lag from the
engine's consumer (highwater minus the next offset to read, per owned partition).

Counters count what this worker *published*: after a crash the pipeline is
at-least-once (DESIGN.md), so a repeated result or call is counted again by
whichever worker repeated it, exactly as it appears on the topics.

    swarm_tasks_total{status, mode}                     results published
    swarm_model_calls_total{model, outcome}             outcome = ok | a failure class
    swarm_model_call_latency_seconds{model}             histogram of call latency
    swarm_model_cost_micros_total{model}                money, int micro-dollars
    swarm_model_tokens_total{model, direction}          direction = input | output
    swarm_dead_letters_total{topic}                     by the topic the bad event came from
    swarm_breaker_state{model, state}                   1 for the model's current state, else 0
    swarm_consumer_lag{topic, partition}                records behind the highwater
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.circuit import CircuitState
from swarmstream.agents.ports import Emit
from swarmstream.schemas.models import CallRecord, DeadLetter, Record, TaskResult

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""From a loopback simulated model (~2 ms) to a slow reasoning model near the default 30 s
task timeout; the default Prometheus buckets stop at 10 s."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    lag: int


def lag_of(highwater: int | None, position: int | None) -> int | None:
    """Records not yet fetched; None while either side is unknown (no fetch yet).

    Clamped at 0: Tansu's reported highwater can be short of the real end
    (DESIGN.md, "What the code taught us"), which would read as negative lag."""
    if highwater is None or position is None:
        return None
    return max(highwater - position, 0)


def consumer_lag(engine: Any) -> list[PartitionLag]:
    """Lag of every partition the engine owns, read without awaiting.

    Runs in the scrape thread: aiokafka's ``highwater`` is a plain read and the next
    offset to read is the engine's own, so a scrape never waits on the event loop.
    Empty until the engine has partitions."""
    lags = []
    for topic, partition, highwater, position in engine.positions():
        lag = lag_of(highwater, position)
        if lag is not None:
            lags.append(PartitionLag(topic, partition, lag))
    return sorted(lags, key=lambda lag: (lag.topic, lag.partition))


class BreakerCollector(Collector):
    """``swarm_breaker_state``: the board's state of every catalog model, at scrape time."""

    def __init__(self, board: CircuitBoard, models: Iterable[str]) -> None:
        self._board = board
        self._models = sorted(models)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("swarm_breaker_state", "circuit breaker state per model (1 = current)",
                                   labels=["model", "state"])
        states = dict(self._board.states())  # models never called are closed
        for model in sorted({*self._models, *states}):
            current = states.get(model, CircuitState.CLOSED)
            for state in CircuitState:
                family.add_metric([model, str(state)], 1.0 if state == current else 0.0)
        yield family


class LagCollector(Collector):
    """``swarm_consumer_lag``: records behind the highwater per assigned partition, at scrape time."""

    def __init__(self, read_lag: Callable[[], list[PartitionLag]]) -> None:
        self._read_lag = read_lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("swarm_consumer_lag", "records behind the partition's highwater",
                                   labels=["topic", "partition"])
        for item in self._read_lag():
            family.add_metric([item.topic, str(item.partition)], float(item.lag))
        yield family


class WorkerMetrics:
    """The counters and histograms of one worker, in a registry of its own
    (not the process-global one, so tests and tools can hold several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.tasks = Counter("swarm_tasks", "task results published, by status", ["status", "mode"], registry=r)
        self.calls = Counter("swarm_model_calls", "model calls, by outcome (ok or a failure class)",
                             ["model", "outcome"], registry=r)
        self.latency = Histogram("swarm_model_call_latency_seconds", "model call latency", ["model"],
                                 buckets=LATENCY_BUCKETS_S, registry=r)
        self.cost = Counter("swarm_model_cost_micros", "model spend in micro-dollars", ["model"], registry=r)
        self.tokens = Counter("swarm_model_tokens", "tokens by direction", ["model", "direction"], registry=r)
        self.dead_letters = Counter("swarm_dead_letters", "events dead-lettered, by source topic", ["topic"],
                                    registry=r)

    def observe(self, record: Record) -> None:
        """Count one published record (records of other types are not metrics)."""
        if isinstance(record, TaskResult):
            self.tasks.labels(record.status, record.mode).inc()
        elif isinstance(record, CallRecord):
            model = record.model_id
            self.calls.labels(model, "ok" if record.ok else (record.failure_class or "unknown")).inc()
            self.latency.labels(model).observe(record.latency_ms / 1000)
            if record.cost_micros:
                self.cost.labels(model).inc(record.cost_micros)
            if record.input_tokens:
                self.tokens.labels(model, "input").inc(record.input_tokens)
            if record.output_tokens:
                self.tokens.labels(model, "output").inc(record.output_tokens)
        elif isinstance(record, DeadLetter):
            self.dead_letters.labels(record.topic).inc()

    def wrap(self, emit: Emit) -> Emit:
        """``emit`` that also counts each record once the broker has acknowledged it."""

        async def counted(topic: str, key: str, record: Record, headers: Mapping[str, bytes] | None = None) -> None:
            await emit(topic, key, record, headers)
            self.observe(record)

        return counted

    def watch(self, board: CircuitBoard, models: Iterable[str], engine: Any) -> None:
        """Read breakers and consumer lag when scraped."""
        self.registry.register(BreakerCollector(board, models))
        self.registry.register(LagCollector(lambda: consumer_lag(engine)))

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - Prometheus scrapes from another host
        """Serve ``/metrics`` on ``port`` from a daemon thread (a scrape never waits on the event loop)."""
        try:
            start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            raise MetricsError(f"SWARM_METRICS_PORT={port}: cannot listen on {addr}:{port} ({exc.strerror}); "
                               "pick a free port, or 0 to turn metrics off") from None
        log.info("metrics on http://%s:%d/metrics", addr, port)


class MetricsError(RuntimeError):
    """The metrics endpoint could not start; the message names the setting."""


def install(topology: Any, board: CircuitBoard) -> WorkerMetrics:
    """Count everything ``topology`` emits, watch ``board`` and the engine's consumer, serve them.

    Call it in ``streams.app.topology.build`` before any handler takes ``topology.emit``
    (handlers keep the function they were given)."""
    metrics = WorkerMetrics()
    topology.emit = metrics.wrap(topology.emit)
    metrics.watch(board, topology.catalog.models, topology.engine)
    metrics.serve(topology.settings.metrics_port)
    return metrics
