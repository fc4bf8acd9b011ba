"""OpenTelemetry spans across steps, the trace context carried in event headers.

Every hop of a task is a Kafka event, so a trace crosses processes only if
its context rides on the events: the W3C ``traceparent`` (and ``tracestate``)
header, as bytes, next to ``content-type`` (DESIGN.md, "Events"). A step does

    with tracing.span("model-call", message.headers, model="fast-a"):
        ...
        await emit(topic, key, record, tracing.inject(headers))

so its span is a child of the span that produced its input event, and the
events it writes carry its own context to the next step.

A no-op when ``opentelemetry`` is not importable: :func:`inject` returns the
headers unchanged and :func:`span` does nothing, so the pipeline never
depends on it. With the API alone (no SDK) spans are not recorded, yet an
incoming ``traceparent`` still flows on to the events a step writes (the
API's non-recording span keeps its parent's context), so a caller that
traces its tasks sees where they went. Install the ``otel`` extra
(``pip install 'swarmstream[otel]'``) and configure a tracer provider (the
SDK's ``OTEL_*`` variables, or ``opentelemetry-instrument``) to record spans.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.propagators.textmap import Getter, Setter
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )
except ImportError:  # pragma: no cover - exercised where opentelemetry is absent
    trace = None  # type: ignore[assignment]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACER_NAME = "swarmstream"

ENABLED = trace is not None
"""Whether ``opentelemetry`` is importable here."""

if ENABLED:

    class _BytesHeadersGetter(Getter[Mapping[str, bytes]]):
        """Kafka header values are bytes; the propagator reads strings."""

        def get(self, carrier: Mapping[str, bytes], key: str) -> list[str] | None:
            value = carrier.get(key)
            if value is None:
                return None
            return [value.decode("latin-1") if isinstance(value, bytes) else str(value)]

        def keys(self, carrier: Mapping[str, bytes]) -> list[str]:
            return list(carrier)

    class _BytesHeadersSetter(Setter[dict[str, bytes]]):
        def set(self, carrier: dict[str, bytes], key: str, value: str) -> None:
            carrier[key] = value.encode("latin-1")

    _PROPAGATOR = TraceContextTextMapPropagator()
    _GETTER = _BytesHeadersGetter()
    _SETTER = _BytesHeadersSetter()


def inject(headers: Mapping[str, bytes] | None = None, *, context: Any = None) -> dict[str, bytes]:
    """``headers`` plus the current (or given) trace context; a copy, never the input.

    Without opentelemetry, or outside any span, the copy has no trace headers added."""
    out = dict(headers or {})
    if ENABLED:
        _PROPAGATOR.inject(out, context=context, setter=_SETTER)
    return out


def extract(headers: Mapping[str, bytes] | None) -> Any:
    """The trace context an event's headers carry (an empty context if none; None without
    opentelemetry). A malformed ``traceparent`` is ignored, as the W3C spec asks."""
    if not ENABLED:
        return None
    return _PROPAGATOR.extract(dict(headers or {}), getter=_GETTER)


def trace_id_of(headers: Mapping[str, bytes] | None) -> str | None:
    """The 32-hex trace id in ``headers``' ``traceparent`` (for log lines), or None."""
    raw = (headers or {}).get(TRACEPARENT)
    if not raw:
        return None
    parts = raw.decode("latin-1").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@contextlib.contextmanager
def span(name: str, headers: Mapping[str, bytes] | None = None, *, tracer_provider: Any = None,
         **attributes: str | int | float | bool) -> Iterator[Any]:
    """A span named ``name``, child of the context in ``headers`` (a new trace if none),
    current for the block so that :func:`inject` carries it on. Yields the span (None
    without opentelemetry). An exception in the block is recorded and re-raised."""
    if not ENABLED:
        yield None
        return
    tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
    parent = extract(headers) if headers is not None else None
    token = otel_context.attach(parent) if parent is not None else None
    try:
        with tracer.start_as_current_span(name, kind=trace.SpanKind.CONSUMER if headers else trace.SpanKind.INTERNAL,
                                          attributes=attributes or None) as current:
            yield current
    finally:
        if token is not None:
            otel_context.detach(token)
