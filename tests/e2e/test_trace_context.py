"""With ``SWARM_TRACING`` on, a caller's trace follows its task through every step.

The caller publishes a task with a W3C ``traceparent``; each worker step handles
the event inside a span that is a child of the context the event carries, and
every event it writes carries that trace on. So the model requests, the model
outcomes and the result all carry the caller's trace id (the worker has only the
opentelemetry API here: spans are not recorded, the context still flows).
"""

from __future__ import annotations

from swarmstream.schemas.models import TaskRequest
from swarmstream.streams.engine import tracing

from tests.conftest import read_raw, wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


async def headers_of(broker_url: str, topic: str, task_id: str, *, count: int,
                     timeout_s: float = 10.0) -> list[dict[str, bytes]]:
    """The headers of the first ``count`` records of ``task_id`` on ``topic`` (and any more
    that arrive in the same fetches)."""
    records = await read_raw(broker_url, topic, keep=lambda r: r.key == task_id.encode(),
                             until=lambda kept: len(kept) >= count, timeout_s=timeout_s)
    return [dict(r.headers) for r in records]


async def test_a_callers_trace_id_reaches_every_step_and_the_result(make_stack) -> None:
    async with make_stack(tracing=True) as stack:
        task = TaskRequest(prompt="What is 2 + 2? Answer with a number.", answer_type="number",
                           models=["fast-a", "fast-b"])
        traceparent = f"00-{TRACE_ID}-{CALLER_SPAN}-01".encode()
        await stack.client.submit(task, headers={"traceparent": traceparent})
        await wait_for(lambda: task.task_id in stack.client.received, timeout_s=20, stack=stack, what="the result")

        names = stack.settings.topics
        for topic, expected in ((names.model("fast-a"), 1), (names.model("fast-b"), 1), (names.responses, 2),
                                (names.results, 1)):
            headers = await headers_of(stack.broker_url, topic, task.task_id, count=expected)
            assert len(headers) == expected, (topic, headers)
            for h in headers:
                assert tracing.trace_id_of(h) == TRACE_ID, (topic, h)


async def test_without_tracing_no_trace_header_is_written(make_stack) -> None:
    async with make_stack() as stack:
        task = TaskRequest(prompt="What is 3 + 3? Answer with a number.", answer_type="number", models=["fast-a"])
        await stack.client.submit(task, headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01".encode()})
        await wait_for(lambda: task.task_id in stack.client.received, timeout_s=20, stack=stack, what="the result")
        [result_headers] = await headers_of(stack.broker_url, stack.settings.topics.results, task.task_id, count=1)
        assert "traceparent" not in result_headers
