"""A worker's Prometheus endpoint, scraped during a real run, agrees with the results and the fleet."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from swarmstream.schemas.models import TaskRequest, TaskResult
from swarmstream.streams.cli.runtime import Stack
from swarmstream.streams.engine.broker import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, *, by: tuple[str, ...] | None = None,
          **labels: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples that match ``labels``, added up by the labels in ``by``
    (default: every label not matched)."""
    out: dict[tuple[str, ...], float] = {}
    for (sample, sample_labels), value in samples.items():
        found = dict(sample_labels)
        if sample != name or any(found.get(k) != v for k, v in labels.items()):
            continue
        group = tuple(found.get(k, "") for k in by) if by is not None else tuple(
            v for k, v in sample_labels if k not in labels)
        out[group] = out.get(group, 0.0) + value
    return out


async def scrape_until(port: int, ok: Callable[[Samples], bool], *, stack: Stack, timeout_s: float,
                       what: str) -> Samples:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        for worker in stack.workers:
            worker.check_alive()
        samples = await scrape(port)
        if ok(samples):
            return samples
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last scrape: {samples}")
        await asyncio.sleep(0.1)


def number_task(i: int, **extra: object) -> TaskRequest:
    return TaskRequest(prompt=f"What is {i} + 1? Answer with a number.", answer_type="number", **extra)  # type: ignore[arg-type]


async def test_scraped_counters_match_the_results_and_the_fleet(make_stack) -> None:
    port = free_port()
    async with make_stack(workers=0) as stack:
        stack.start_worker(SWARM_METRICS_PORT=str(port))
        await stack.wait_ready()  # one probe task: a `single` result, ok
        tasks = (
            [number_task(i) for i in range(30)]  # consensus over fast-a, fast-b, fast-c
            + [number_task(i, mode="chain", chain="two") for i in range(5)]  # flaky: server_error, then fast-a
            + [number_task(i, mode="chain", chain="breaker") for i in range(3)]  # three failures open its breaker
        )
        for task in tasks:
            await stack.client.submit(task)
        results: list[TaskResult] = [await stack.client.result(t.task_id, timeout_s=60) for t in tasks]

        by_status = Counter(r.status for r in results)
        by_status["ok"] += 1  # the probe
        fleet = {model: counts["calls"] for model, counts in stack.fleet.counters.items() if counts["calls"]}
        spent = sum(r.cost_micros for r in results)

        def settled(samples: Samples) -> bool:
            calls = {model: n for (model,), n in total(samples, "swarm_model_calls_total", by=("model",)).items()}
            return (sum(total(samples, "swarm_tasks_total").values()) == len(tasks) + 1
                    and {m: int(n) for m, n in calls.items()} == fleet
                    and total(samples, "swarm_breaker_state", model="breaker", state="open") == {(): 1.0})

        samples = await scrape_until(port, settled, stack=stack, timeout_s=20,
                                     what="tasks, calls and breakers to match the results")

    # tasks by status equal the results received
    assert {s: int(n) for (s,), n in total(samples, "swarm_tasks_total", by=("status",)).items() if n} == dict(by_status)
    assert {k: v for k, v in total(samples, "swarm_tasks_total", mode="chain").items() if v} == {("ok",): 8.0}
    # calls per model and outcome equal what the simulated fleet counted and how it failed
    outcomes = {k: int(v) for k, v in total(samples, "swarm_model_calls_total").items() if v}
    assert outcomes[("flaky", "server_error")] == fleet["flaky"] == 5
    assert outcomes[("breaker", "server_error")] == fleet["breaker"] == 3
    assert outcomes[("fast-a", "ok")] == fleet["fast-a"]
    # one latency observation per call
    counts = {m: int(v) for (m,), v in total(samples, "swarm_model_call_latency_seconds_count").items()}
    assert counts == fleet
    # money: what the models cost is what the results say they cost, plus the probe's one call
    # and any call repeated under at-least-once (a request read again while its first call
    # was not yet acked: the fleet served it twice, a result counts it once)
    cost = sum(total(samples, "swarm_model_cost_micros_total").values())
    one_call_max = max(r.cost_micros for r in results if r.mode == "chain")
    repeated = sum(fleet.values()) - sum(len(r.attempts) for r in results) - 1
    assert repeated >= 0
    assert spent > 0 and spent < cost <= spent + one_call_max * (1 + repeated)
    # every catalog model has a breaker state, exactly one of which is current
    for model in stack.catalog.models:
        states = total(samples, "swarm_breaker_state", model=model)
        assert sum(states.values()) == 1.0, (model, states)
    assert total(samples, "swarm_breaker_state", model="fast-a", state="closed") == {(): 1.0}
    # consumer lag: a sample per assigned source partition, nothing left behind on the task topic
    lag = total(samples, "swarm_consumer_lag", topic=stack.settings.topics.tasks)
    assert len(lag) == stack.settings.partitions
    assert set(lag.values()) == {0.0}
