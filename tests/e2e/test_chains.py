"""Fallback chains end to end: retries, fallbacks, breakers, all over topics."""

from __future__ import annotations

import time

from swarmstream.agents.models.catalog import SimProfile
from swarmstream.schemas.models import TaskRequest, TaskResult

from tests.conftest import wait_for


def chain_task(chain: str, prompt: str = "What is 20 + 22? Answer with a number.", **extra: object) -> TaskRequest:
    return TaskRequest(prompt=prompt, answer_type="number", mode="chain", chain=chain, **extra)  # type: ignore[arg-type]


def path(result: TaskResult) -> list[tuple[str, str | None]]:
    return [(a.model_id, a.failure_class) for a in result.attempts]


async def test_chain_scenarios(stack) -> None:
    """One stack for the scenarios that need no special settings (a worker start each would cost ~2 s)."""
    primary_500 = chain_task("two")
    hang = chain_task("hang", timeout_ms=3000)
    limited = chain_task("limited")
    refusal = chain_task("refusal")
    doomed = chain_task("doomed")
    for task in (primary_500, hang, limited, refusal, doomed):
        await stack.client.submit(task)

    r = await stack.client.result(primary_500.task_id, timeout_s=30)
    assert (r.status, r.answer, r.answered_by) == ("ok", "42", "fast-a")
    assert path(r) == [("flaky", "server_error"), ("fast-a", None)]

    r = await stack.client.result(hang.task_id, timeout_s=30)
    assert (r.status, r.answer, r.answered_by) == ("ok", "42", "fast-b")
    assert path(r) == [("hangs", "timeout"), ("hangs", "timeout"), ("fast-b", None)]  # one retry, then the next link
    assert r.completed_ms - r.created_ms < 3000  # within the task's deadline

    r = await stack.client.result(limited.task_id, timeout_s=30)
    assert (r.status, r.answered_by) == ("ok", "limited")
    assert path(r) == [("limited", "rate_limited"), ("limited", None)]
    assert r.completed_ms - r.created_ms >= 1000  # Retry-After: 1 honoured on the same model

    r = await stack.client.result(refusal.task_id, timeout_s=30)
    assert r.answered_by == "fast-c"
    assert path(r) == [("refuser", "content_policy"), ("fast-c", None)]  # fast-a skipped as configured

    r = await stack.client.result(doomed.task_id, timeout_s=30)
    assert (r.status, r.answer) == ("failed", None)
    assert path(r) == [("flaky", "server_error"), ("refuser", "content_policy")]
    assert "doomed" in r.strategy


async def test_a_breaker_opens_skips_the_model_and_a_probe_closes_it(stack) -> None:
    def calls() -> int:
        return stack.fleet.counters["breaker"]["calls"]

    async def run() -> TaskResult:
        return await stack.client.result(await stack.client.submit(chain_task("breaker")), timeout_s=30)

    for _ in range(3):  # three consecutive failures open it
        assert path(await run()) == [("breaker", "server_error"), ("fast-a", None)]
    assert calls() == 3

    # The worker learns of the third failure from the call log a moment after the
    # result (streams/app/logs.py); from then on the model is skipped without a call.
    deadline = time.monotonic() + 10
    while path(await run()) != [("fast-a", None)]:
        assert time.monotonic() < deadline, "the breaker never opened"
    opened_at = calls()
    assert [path(await run()) for _ in range(3)] == [[("fast-a", None)]] * 3
    assert calls() == opened_at  # skipped: no call reached the model

    stack.fleet.set_profile("breaker", SimProfile(accuracy=1.0, latency_median_ms=2, latency_p99_ms=10))
    before = calls()
    deadline = time.monotonic() + 15
    while (probe := await run()).answered_by != "breaker":  # the cooldown is 1.5 s; then one probe
        assert path(probe) == [("fast-a", None)]
        assert time.monotonic() < deadline, "no probe after the cooldown"
    assert path(probe) == [("breaker", None)]
    assert calls() == before + 1
    deadline = time.monotonic() + 10
    while (await run()).answered_by != "breaker":  # closed again once the probe's success is folded in
        assert time.monotonic() < deadline, "the probe's success did not close the breaker"
    assert (await run()).answered_by == "breaker"


async def test_a_thousand_tasks_through_a_flaky_primary_none_lost_none_repeated(stack) -> None:
    tasks = [chain_task("coin", prompt=f"What is {i} + 1? Answer with a number.") for i in range(1000)]
    for task in tasks:
        await stack.client.submit(task, wait_ack=False)
    await stack.client.flush()

    await wait_for(lambda: len(stack.client.received) >= 1000, timeout_s=120, stack=stack, what="1000 chain results")

    results = stack.client.received
    assert {t.task_id for t in tasks} == set(results)
    assert stack.client.duplicates == 0
    assert all(r.status == "ok" for r in results.values())
    by = {"coinflip": 0, "fast-b": 0}
    for r in results.values():
        by[r.answered_by] += 1
    assert 200 < by["fast-b"] < 400  # ~30% of primaries fail at random
