"""``swarmstream demo``: a batch of labelled tasks through the whole stack, and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np
from swarmstream.agents.models.simulated.taskset import LabelledTask, demo_tasks
from swarmstream.schemas.models import TaskRequest, TaskResult, now_ms
from swarmstream.streams.cli.judge_demo import judge_model, judge_stats, judged_request
from swarmstream.streams.cli.runtime import Stack, running_stack, unique_settings
from swarmstream.streams.app.settings import Settings

MODES = ("consensus", "chain", "select", "workflow", "tools", "judge")

DEMO_WORKFLOW = "draft-critique-vote"
"""Workflow mode's built-in workflow (agents/workflows/workflows.yaml): a cheap draft, two critiques, a vote."""

SELECT_BATCH = 20
"""Select mode submits in batches and judges each batch's results (the demo knows the
answers), so later batches are chosen with what the earlier ones taught."""

SUBMIT_YIELD_EVERY = 100
"""The submit loops give the event loop a turn this often. A send without waiting for its ack
does not suspend while the producer's buffer has room, so a long loop would hold the loop and a
SIGTERM or Ctrl-C (streams/cli/signals.py) would wait until every task had been queued (seconds
for 100,000 tasks); a turn per 100 sends costs nothing measurable."""

CHAIN_PRIMARY_FAILURE_RATE = 0.3
"""In chain mode the demo makes the default chain's first model fail this often,
at random, so fallbacks happen (issue: 1,000 tasks, none lost, none repeated)."""


def to_request(item: LabelledTask, *, mode: str, models: Sequence[str] = (), timeout_ms: int = 30_000) -> TaskRequest:
    return TaskRequest(
        task_id=f"{item.task_id}-{now_ms()}",
        prompt=item.prompt,
        answer_type=item.answer_type,
        labels=list(item.labels),
        category=item.category,
        mode=mode,  # type: ignore[arg-type]
        models=list(models),
        timeout_ms=timeout_ms,
    )


def summarise(items: dict[str, LabelledTask], results: dict[str, TaskResult], models: Sequence[str]) -> dict[str, object]:
    n = len(items)
    correct = sum(1 for tid, r in results.items() if r.answer is not None and r.answer == items[tid].answer)
    per_model: dict[str, float] = {}
    for model in models:
        right = sum(
            1
            for tid, r in results.items()
            for v in r.votes
            if v.model_id == model and v.answer == items[tid].answer
        )
        per_model[model] = round(right / n, 4) if n else 0.0
    latencies = np.array([r.completed_ms - r.created_ms for r in results.values()] or [0])
    statuses: dict[str, int] = {}
    for r in results.values():
        statuses[r.status] = statuses.get(r.status, 0) + 1
    accuracy = round(correct / n, 4) if n else 0.0
    return {
        "tasks": n,
        "results": len(results),
        "accuracy": accuracy,
        "consensus_accuracy": accuracy,
        "model_accuracy": per_model,
        "latency_ms": {p: float(np.percentile(latencies, q)) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))},
        "cost_usd": round(sum(r.cost_micros for r in results.values()) / 1e6, 6),
        "statuses": statuses,
    }


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()

    def show(self, done: int) -> None:
        if self.enabled:
            width = 30
            filled = int(width * done / max(self.total, 1))
            sys.stderr.write(f"\r  results [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


@contextlib.asynccontextmanager
async def collected_results(stack: Stack) -> AsyncIterator[dict[str, TaskResult]]:
    """Every distinct result from now on, in a dict the demo owns: the client keeps only a bounded
    number of results (``client.RESULTS_KEPT``), and a run of more tasks than that must still count them all."""
    results: dict[str, TaskResult] = {}

    async def collect() -> None:
        async for result in stack.client.results():
            results.setdefault(result.task_id, result)

    collector = asyncio.create_task(collect())
    try:
        yield results
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector


def ready_line(stack: Stack, *, mode: str, tasks: int, embedded: bool) -> str:
    """What the demo says once its stack is up: where everything runs (a person can point
    ``top``/``tail`` at it; a test knows it may signal it now)."""
    broker = f"{stack.broker_url} ({'embedded' if embedded else 'SWARM_BROKER'})"
    return (f"swarmstream demo ({mode}): {tasks} tasks; broker {broker}, topics {stack.settings.topic_prefix}.*, "
            f"simulated fleet {stack.settings.sim_url}, {len(stack.workers)} worker(s)")


async def run_demo(*, tasks: int, mode: str, quiet: bool, timeout_s: float = 120.0,
                   record: str | None = None, on_ready: Callable[[str], None] | None = None,
                   fleet: str | None = None) -> dict[str, object]:
    """Run the demo; cancelling it stops everything it started (broker, fleet, workers) before it
    ends. ``on_ready`` gets :func:`ready_line` once the stack has answered a probe task. ``fleet``
    (a preset name such as ``helm-mmlu``, or a catalog file) replaces the catalog the settings name."""
    settings = unique_settings(Settings())
    if fleet is not None:
        from swarmstream.agents.models.simulated.presets import preset_path

        settings = settings.model_copy(update={"models": preset_path(fleet)})
    started = time.monotonic()
    # before anything starts: making 100,000 tasks takes seconds, which would hold the loop (and
    # a SIGTERM) while a broker and a worker run
    labelled = demo_tasks(tasks, kinds=("text",)) if mode == "judge" else demo_tasks(tasks) if mode != "tools" else []
    async with running_stack(settings) as stack, collected_results(stack) as received:
        if on_ready is not None:
            on_ready(ready_line(stack, mode=mode, tasks=tasks, embedded=not settings.broker))
        models = stack.catalog.default_consensus
        primary = None
        if mode == "chain":
            primary = await make_primary_flaky(stack)
        items = {}
        progress = Progress(tasks, enabled=not quiet)
        if mode == "select":
            await submit_with_feedback(stack, labelled, items, progress)
        elif mode == "tools":
            items.update(await submit_tool_tasks(stack, tasks))
        else:
            for i, item in enumerate(labelled):
                request = to_request(item, mode="consensus" if mode in ("workflow", "judge") else mode)
                if mode == "workflow":
                    request = request.model_copy(update={"workflow": DEMO_WORKFLOW})
                if mode == "judge":  # streams/cli/judge_demo.py
                    request = judged_request(request, i, panel=models, judge=judge_model(stack.catalog, models))
                items[request.task_id] = item
                await stack.client.submit(request, wait_ack=False)
                if i % SUBMIT_YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await stack.client.flush()
        deadline = time.monotonic() + timeout_s
        while sum(1 for t in items if t in received) < tasks and time.monotonic() < deadline:
            progress.show(sum(1 for t in items if t in received))
            for worker in stack.workers:
                worker.check_alive()
            await asyncio.sleep(0.1)
        mine = {t: r for t, r in received.items() if t in items}
        progress.show(len(mine))
        progress.close()
        summary = summarise(items, mine, models)
        summary["mode"] = mode
        summary["duplicates"] = stack.client.duplicates
        if record:
            from swarmstream.streams.cli.recorder import record_run

            recorded = await record_run(stack.broker_url, stack.settings.topics, record,
                                        labels={tid: item.answer for tid, item in items.items()})
            summary["recorded"] = {"path": record, "records": recorded.total}
        if mode == "chain":
            summary["fallbacks"] = sum(1 for r in mine.values() if r.answered_by not in (None, primary))
            summary["failed"] = sum(1 for r in mine.values() if r.status == "failed")
            summary["model_accuracy"] = {}
        if mode == "workflow":
            summary["workflow"] = DEMO_WORKFLOW
            summary["steps"] = step_stats(items, mine)
            summary["model_accuracy"] = {}
        if mode == "tools":
            summary.update(await tool_stats(stack, items, mine))
        if mode == "judge":
            summary.update(judge_stats(mine, {t: item.answer for t, item in items.items()}))
        if mode == "select":
            picks: dict[str, int] = {}
            for r in mine.values():
                picks[r.answered_by or "-"] = picks.get(r.answered_by or "-", 0) + 1
            summary["picks"] = dict(sorted(picks.items()))
            summary["model_accuracy"] = {}
    summary["wall_s"] = round(time.monotonic() - started, 2)
    return summary


async def submit_tool_tasks(stack: Stack, n: int) -> dict[str, object]:
    """Tool tasks (agents/tools/demo.py) as consensus tasks of the default models."""
    from swarmstream.agents.tools.demo import to_tool_request, tool_demo_tasks

    items: dict[str, object] = {}
    for i, item in enumerate(tool_demo_tasks(n)):
        request = to_tool_request(item, models=list(stack.catalog.default_consensus))
        items[request.task_id] = item
        await stack.client.submit(request, wait_ack=False)
        if i % SUBMIT_YIELD_EVERY == 0:
            await asyncio.sleep(0)
    await stack.client.flush()
    return items


async def tool_stats(stack: Stack, items: dict[str, object], results: dict[str, TaskResult]) -> dict[str, object]:
    """Accuracy over the tasks that expect an answer, and the tool calls' audit in numbers."""
    from aiokafka import AIOKafkaConsumer
    from swarmstream.agents.tools.demo import audit_summary
    from swarmstream.schemas.codec import codec
    from swarmstream.schemas.models import AuditEvent
    from swarmstream.streams.engine.broker import bootstrap_servers, topic_partitions

    answerable = {t: item for t, item in items.items() if getattr(item, "answer", None) is not None}
    correct = sum(1 for t, item in answerable.items() if t in results and results[t].answer == item.answer)  # type: ignore[attr-defined]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(stack.broker_url), group_id=None,
                                fetch_max_wait_ms=10)
    await consumer.start()
    events: list[AuditEvent] = []
    try:  # every audit event is published with its call's result, so they are all there: read to the end
        partitions = await topic_partitions(consumer, stack.settings.topics.audit)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while batch := await consumer.getmany(timeout_ms=500, max_records=10_000):
            events += [e for rs in batch.values() for r in rs if isinstance(e := codec().decode(r.value), AuditEvent)]
    finally:
        await consumer.stop()
    accuracy = round(correct / len(answerable), 4) if answerable else 0.0
    return {"accuracy": accuracy, "consensus_accuracy": accuracy,  # over the tasks that expect an answer
            "model_accuracy": {}, **audit_summary(events, set(items))}


async def submit_with_feedback(stack: Stack, labelled: list[LabelledTask], items: dict[str, LabelledTask],
                               progress: Progress) -> None:
    for start in range(0, len(labelled), SELECT_BATCH):
        batch = {}
        for item in labelled[start:start + SELECT_BATCH]:
            request = to_request(item, mode="select")
            batch[request.task_id] = item
            await stack.client.submit(request, wait_ack=False)
        await stack.client.flush()
        items.update(batch)
        for task_id, item in batch.items():
            result = await stack.client.result(task_id, timeout_s=60)
            await stack.client.feedback(result, 1.0 if result.answer == item.answer else 0.0, source="demo")
        progress.show(len(items))


async def make_primary_flaky(stack: Stack) -> str:
    """Give the default chain's first model random server errors; returns its id."""
    from swarmstream.streams.app.topology import chains_for

    chains = chains_for(stack.settings, stack.catalog)
    _, chain = chains.resolve(None)
    primary = chain.links[0].model
    assert stack.fleet is not None
    profile = stack.fleet.profile(primary)
    stack.fleet.set_profile(primary, profile.model_copy(update={"failures": {"server_error": CHAIN_PRIMARY_FAILURE_RATE}}))
    return primary


def step_stats(items: dict[str, LabelledTask], results: dict[str, TaskResult]) -> dict[str, dict[str, object]]:
    """Per workflow step, in the order first run: how often it ran, how often its own answer was
    right, what it cost, its latency and how often the cache answered it."""
    steps: dict[str, list[tuple[str, object]]] = {}
    for task_id, result in results.items():
        for output in result.steps:
            steps.setdefault(output.step, []).append((task_id, output))
    stats: dict[str, dict[str, object]] = {}
    for name, runs in steps.items():
        outputs = [o for _, o in runs]
        answered = [(t, o) for t, o in runs if o.answer is not None]  # type: ignore[attr-defined]
        latencies = np.array([o.latency_ms for o in outputs] or [0])  # type: ignore[attr-defined]
        stats[name] = {
            "kind": outputs[0].kind,  # type: ignore[attr-defined]
            "runs": len(outputs),
            "accuracy": round(sum(1 for t, o in answered if o.answer == items[t].answer)  # type: ignore[attr-defined]
                              / len(answered), 4) if answered else None,
            "cost_usd": round(sum(o.cost_micros for o in outputs) / 1e6, 6),  # type: ignore[attr-defined]
            "latency_ms_p50": float(np.percentile(latencies, 50)),
            "cached": sum(1 for o in outputs if o.cached),  # type: ignore[attr-defined]
        }
    return stats


def render(summary: dict[str, object]) -> str:
    lat = summary["latency_ms"]
    assert isinstance(lat, dict)
    accuracy_label = "consensus accuracy" if summary["mode"] == "consensus" else "accuracy"
    lines = [
        f"swarmstream demo ({summary['mode']}): {summary['results']}/{summary['tasks']} results in {summary['wall_s']} s",
        f"  {accuracy_label:<20}{summary['accuracy']:.3f}",
    ]
    model_accuracy = summary["model_accuracy"]
    assert isinstance(model_accuracy, dict)
    for model, acc in model_accuracy.items():
        lines.append(f"  {model:<18}  {acc:.3f}")
    lines.append(f"  latency ms          p50 {lat['p50']:.0f}  p95 {lat['p95']:.0f}  p99 {lat['p99']:.0f}")
    lines.append(f"  cost                ${summary['cost_usd']:.6f}")
    lines.append(f"  statuses            {summary['statuses']}")
    if "cache_hits" in summary:
        lines.append(f"  tool calls / task   {summary['tool_calls_per_task']}")
        lines.append(f"  executed            {summary['executed']}")
        lines.append(f"  cache hits          {summary['cache_hits']} (shared or reused: not run again)")
        lines.append(f"  denied              {summary['denied']}")
    if "picks" in summary:
        lines.append(f"  picks               {summary['picks']}")
    if "judge_calls_per_task" in summary:
        lines.append(f"  judge calls / task  {summary['judge_calls_per_task']} (by {', '.join(summary['judged_by'])}, "  # type: ignore[arg-type]
                     f"${summary['judge_cost_usd']:.6f})")
        for name, st in summary["strategies"].items():  # type: ignore[attr-defined]
            lines.append(f"    {name:<16}  {st['tasks']} tasks, accuracy {st['accuracy']:.3f} "
                         f"(the candidates' majority: {st['vote_accuracy']:.3f})")
    if "fallbacks" in summary:
        lines.append(f"  fallbacks           {summary['fallbacks']} (answered by a later link)")
        lines.append(f"  failed              {summary['failed']}")
    if "steps" in summary:
        lines.append(f"  workflow            {summary['workflow']}")
        for name, st in summary["steps"].items():  # type: ignore[attr-defined]
            accuracy = "-" if st["accuracy"] is None else f"{st['accuracy']:.3f}"
            lines.append(f"    {name:<16}  {st['kind']:<10} runs {st['runs']:<5} accuracy {accuracy:<6} "
                         f"cost ${st['cost_usd']:.6f}  p50 {st['latency_ms_p50']:.0f} ms  cached {st['cached']}")
    lines.append(f"  duplicates          {summary['duplicates']}")
    return "\n".join(lines)
