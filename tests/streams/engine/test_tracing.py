"""Trace context rides on event headers: spans of successive steps form one trace, across the broker."""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from swarmstream.streams.engine import tracing
from swarmstream.streams.engine.broker import (
    bootstrap_servers,
    ensure_topics,
    topic_partitions,
)

trace = pytest.importorskip("opentelemetry.trace", reason="opentelemetry-api is not installed: tracing is a no-op")

REMOTE = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_no_span_no_header_and_the_input_is_never_changed() -> None:
    headers = {"content-type": b"application/json"}
    out = tracing.inject(headers)
    assert out == headers and out is not headers
    assert tracing.TRACEPARENT not in out


@pytest.mark.parametrize(
    ("header", "trace_id"),
    [
        (REMOTE, "4bf92f3577b34da6a3ce929d0e0e4736"),
        (b"garbage", None),
        (b"00-short-00f067aa0ba902b7-01", None),
        (None, None),
    ],
)
def test_trace_id_of(header: bytes | None, trace_id: str | None) -> None:
    headers = {tracing.TRACEPARENT: header} if header is not None else {}
    assert tracing.trace_id_of(headers) == trace_id


def test_with_the_api_alone_an_incoming_context_flows_on() -> None:
    """No SDK: nothing is recorded, but a caller's trace id reaches the events a step writes."""
    with tracing.span("step", {tracing.TRACEPARENT: REMOTE}, tracer_provider=trace.NoOpTracerProvider()):
        out = tracing.inject({})
    assert tracing.trace_id_of(out) == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_without_opentelemetry_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "ENABLED", False)
    with tracing.span("step", {tracing.TRACEPARENT: REMOTE}) as current:
        assert current is None
        assert tracing.inject({"k": b"v"}) == {"k": b"v"}
    assert tracing.extract({tracing.TRACEPARENT: REMOTE}) is None


@pytest.fixture
def recorded() -> tuple[object, object]:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="install the otel extra to record spans")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    return provider, exporter


def test_a_malformed_traceparent_starts_a_new_trace(recorded) -> None:
    provider, exporter = recorded
    with tracing.span("step", {tracing.TRACEPARENT: b"00-zz-zz-01"}, tracer_provider=provider):
        out = tracing.inject({})
    (finished,) = exporter.get_finished_spans()
    assert finished.parent is None
    assert tracing.trace_id_of(out) == f"{finished.context.trace_id:032x}"


async def test_spans_of_three_steps_form_one_trace_across_the_broker(broker_url: str, recorded) -> None:
    provider, exporter = recorded
    run = uuid.uuid4().hex[:8]
    first, second = f"trace-{run}.a", f"trace-{run}.b"
    await ensure_topics(broker_url, [first, second], 1)
    servers = bootstrap_servers(broker_url)
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None, fetch_max_wait_ms=10)
    await producer.start()
    await consumer.start()
    try:
        async def read_one(topic: str) -> dict[str, bytes]:
            tps = await topic_partitions(consumer, topic)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    for record in records:
                        return dict(record.headers)
            raise AssertionError(f"nothing arrived on {topic}")

        with tracing.span("submit", tracer_provider=provider, task_id="t-1"):  # the caller
            headers = tracing.inject({"content-type": b"application/json"})
        await (await producer.send(first, b"task", key=b"t-1", headers=list(headers.items())))

        received = await read_one(first)  # step 1, e.g. intake
        assert received["content-type"] == b"application/json"
        with tracing.span("intake", received, tracer_provider=provider):
            onward = tracing.inject({})
        await (await producer.send(second, b"request", key=b"t-1", headers=list(onward.items())))

        with tracing.span("model-call", await read_one(second), tracer_provider=provider, model="fast-a"):
            pass
    finally:
        await consumer.stop()
        await producer.stop()

    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"submit", "intake", "model-call"}
    assert len({s.context.trace_id for s in spans.values()}) == 1
    assert spans["submit"].parent is None
    assert spans["intake"].parent.span_id == spans["submit"].context.span_id
    assert spans["model-call"].parent.span_id == spans["intake"].context.span_id
    assert spans["model-call"].attributes["model"] == "fast-a"
    assert spans["intake"].kind == trace.SpanKind.CONSUMER
