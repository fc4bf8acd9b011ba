"""The console's page loads with the topics full: ``swarmstream bench console [--quick] [--json]``.

Issue 27 asks for a page load under 300 ms with 10,000 tasks in the topics. This writes, with
a plain producer on the embedded broker (or ``SWARM_BROKER``), what a run of ``TASKS`` consensus
tasks leaves behind: per task the TaskRequest, three ModelRequests, three ModelResponses, three
CallRecords and the TaskResult; every tenth task low-consensus with its ReviewItem (1,000 in the
queue, 50 drawn per page), and ``WAITING_CALLS`` dangerous tool calls waiting for an approval.
No worker runs: the console folds the topics alone (``streams/console``).

Reported: ``records`` written, ``catch_up_s`` (console start until it has read them all),
``console_rss_mb`` (this process's resident memory after the catch-up: the console's folds and
trail index, plus the producer's buffers), and per page (``review``, ``approvals``, ``fleet``,
``trail`` of one task, ``replay`` without a file) the ``median_ms``, ``p95_ms`` and ``max_ms``
of ``loads`` GETs over loopback (``time.perf_counter`` around the whole request and body, after
one warm-up load), with the page's size in bytes. ``worst_median_ms`` is the slowest page's
median. ``--quick``: 2,000 tasks and 10 loads a page instead of 10,000 and 30.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from swarmstream.agents.models.catalog import load_catalog
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import (
    AuditEvent,
    CallRecord,
    CastVote,
    ModelRequest,
    ModelResponse,
    Record,
    ReviewItem,
    StepContext,
    TaskRequest,
    TaskResult,
    now_ms,
)
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.cli.runtime import unique_settings
from swarmstream.streams.console.app import serving
from swarmstream.streams.console.settings import ConsoleSettings
from swarmstream.streams.engine.broker import (
    EmbeddedBroker,
    bootstrap_servers,
    ensure_topics,
)

TASKS = 10_000
QUICK_TASKS = 2_000
LOADS = 30
QUICK_LOADS = 10
REVIEW_EVERY = 10  # one task in ten is low-consensus: a busy review queue
WAITING_CALLS = 50
TOKEN = "bench-console-token-0123456789"
PAGES = ("review", "approvals", "fleet", "trail", "replay")


def _records(settings: Settings, models: list[str], tasks: int) -> list[tuple[str, str, Record]]:
    names = settings.topics
    start = now_ms() - 30_000  # inside the fleet page's window: its numbers are computed over these calls
    out: list[tuple[str, str, Record]] = []
    for i in range(tasks):
        at = start + i * 25_000 // tasks
        task = TaskRequest(task_id=f"bench-{i:06d}", created_ms=at, prompt=f"What is {i} + 1? Answer with a number.",
                           answer_type="number", models=models, category="math", timeout_ms=120_000)
        out.append((names.tasks, task.task_id, task))
        low = i % REVIEW_EVERY == 0
        votes = []
        for k, model in enumerate(models):
            answer = str(i + 1) if not (low and k == 2) else str(i)
            out.append((names.model(model), task.task_id, ModelRequest(task=task, model_id=model, deadline_ms=at + 120_000,
                                                                          expected_models=models)))
            step = StepContext(task_id=task.task_id, model_id=model, created_ms=at, deadline_ms=at + 120_000,
                               expected_models=models, category="math")
            out.append((names.responses, task.task_id, ModelResponse(step=step, text=answer, answer=answer,
                                                                     latency_ms=20 + k * 15, cost_micros=40,
                                                                     responded_ms=at + 40)))
            out.append((names.calls, model, CallRecord(model_id=model, ok=True, at_ms=at + 40, latency_ms=20 + k * 15,
                                                       cost_micros=40, category="math")))
            votes.append(CastVote(model_id=model, answer=answer))
        result = TaskResult(task_id=task.task_id, status="low_consensus" if low else "ok", answer=str(i + 1),
                            agreement=2 / 3 if low else 1.0, confidence=0.6 if low else 0.95, strategy="majority",
                            votes=votes, models_asked=len(models), created_ms=at, completed_ms=at + 60)
        out.append((names.results, task.task_id, result))
        if low:
            out.append((names.review, task.task_id, ReviewItem(task=task, result=result, flagged_ms=at + 60,
                                                               reason="agreement 0.67 below the review threshold")))
        if i < WAITING_CALLS:
            out.append((names.audit, task.task_id, AuditEvent(
                task_id=task.task_id, model_id=models[0], tool="send_email", digest=f"d{i}", side_effect="dangerous",
                arguments='{"to":"ops@example.com"}', decision="awaiting_approval", at_ms=now_ms())))
    return out


async def _load(session: aiohttp.ClientSession, url: str, loads: int) -> dict[str, Any]:
    async with session.get(url) as warm:
        body = await warm.read()
        assert warm.status == 200, (url, warm.status, body[:300])
    times = []
    for _ in range(loads):
        t0 = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
            "max_ms": round(times[-1], 1), "bytes": len(body)}


async def measure(broker_url: str, *, quick: bool) -> dict[str, Any]:
    tasks = QUICK_TASKS if quick else TASKS
    loads = QUICK_LOADS if quick else LOADS
    settings = unique_settings(Settings(broker=broker_url))
    catalog = load_catalog(settings.models, sim_url="http://127.0.0.1:1/v1")
    models = catalog.default_consensus[:3]
    await ensure_topics(broker_url, settings.topics.all(list(catalog.models)), settings.partitions)
    records = _records(settings, models, tasks)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        sends = [await producer.send(topic, codec().encode(r), key=key.encode()) for topic, key, r in records]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    console_settings = ConsoleSettings(port=0, recordings=Path(tempfile.mkdtemp(prefix="bench-console-")),
                                       users={"bench": {"token": TOKEN, "role": "reviewer"}})  # type: ignore[arg-type]
    started = time.perf_counter()
    async with serving(settings, console_settings) as (console, url):
        while console.state.records < len(records) or not console.follower.caught_up():
            await asyncio.sleep(0.05)
        catch_up_s = time.perf_counter() - started
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert len(console.state.review) == -(-tasks // REVIEW_EVERY), len(console.state.review)
        paths = {"review": "/review", "approvals": "/approvals", "fleet": "/fleet",
                 "trail": f"/trail?task=bench-{tasks // 2:06d}", "replay": "/replay"}
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
            pages = {name: await _load(session, url + paths[name], loads) for name in PAGES}
    return {"tasks": tasks, "records": len(records), "review_items": -(-tasks // REVIEW_EVERY),
            "waiting_calls": WAITING_CALLS, "catch_up_s": round(catch_up_s, 2), "console_rss_mb": round(rss_mb),
            "loads": loads, "pages": pages, "worst_median_ms": max(p["median_ms"] for p in pages.values())}


def run(*, quick: bool) -> dict[str, Any]:
    url = os.environ.get("SWARM_BROKER")
    if url:
        return asyncio.run(measure(url, quick=quick))
    with EmbeddedBroker() as broker:
        return asyncio.run(measure(broker.url, quick=quick))


def render(result: dict[str, Any]) -> str:
    lines = [(f"{result['tasks']} tasks ({result['records']} records, {result['review_items']} waiting for review, "
              f"{result['waiting_calls']} calls waiting for approval): console caught up in {result['catch_up_s']} s, "
              f"{result['console_rss_mb']} MB resident"),
             f"  {'page':<10}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}{'bytes':>10}   ({result['loads']} loads each)"]
    for name, p in result["pages"].items():
        lines.append(f"  {name:<10}{p['median_ms']:>10}{p['p95_ms']:>9}{p['max_ms']:>9}{p['bytes']:>10}")
    lines.append(f"  slowest median: {result['worst_median_ms']} ms (target: under 300 ms)")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    numbers = run(quick=args.quick)
    print(json.dumps(numbers) if args.json else render(numbers))
