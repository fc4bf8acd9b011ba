"""Admission end to end (``agents/dispatch/shedding.py``, the time rule): a worker whose
model queue would eat a new task's deadline refuses it at once, ``rejected`` with the
reason and no model called; the tasks it admitted still meet their deadlines; once the
queue has drained it admits again. A task replayed after its deadline is refused as
expired.

No fixed sleeps and no timing assertions: the test waits on what the fleet has served
and on results, each with a generous deadline."""

from __future__ import annotations

import pytest
from swarmstream.schemas.models import TaskRequest, now_ms

from tests.conftest import wait_for

QUEUED_TASKS = 40
"""For `queued` (2 calls in flight, ~300 ms each): ~6 s of queue at its topic."""
ADMITTED_TIMEOUT_MS = 60_000
"""The queued tasks: far above their ~6 s of queue, so all of them must end `ok`."""
SHORT_TIMEOUT_MS = 2_000
"""The tasks sent into the queue: their allowance is max(25% x 2 s, 1 s) = 1 s of queueing."""
CALLS_BEFORE_LATE = 14
"""Late tasks go once `queued` has started this many calls: 7 rounds of 2 at >= ~200 ms each,
so the oldest request still waiting has waited well over the late tasks' 1 s allowance, and
26 calls (~4 s) are still to come."""


def task(i: int, timeout_ms: int, models: tuple[str, ...] = ("queued",)) -> TaskRequest:
    return TaskRequest(prompt=f"What is {i} + {i}? Answer with a number.", answer_type="number", mode="single",
                       models=list(models), timeout_ms=timeout_ms)


@pytest.mark.timeout(180)
async def test_an_overloaded_worker_refuses_new_tasks_with_the_reason_then_admits_again(make_stack) -> None:
    async with make_stack(shed_soft_lag=0) as stack:  # the lag rule off: the time rule alone
        assert stack.fleet is not None

        def calls() -> int:  # read afresh: the fleet replaces a model's counters when it first serves it
            return stack.fleet.counters.get("queued", {}).get("calls", 0)  # type: ignore[union-attr]

        admitted = [task(i, ADMITTED_TIMEOUT_MS) for i in range(QUEUED_TASKS)]
        for t in admitted:
            await stack.client.submit(t, wait_ack=False)
        await stack.client.flush()
        await wait_for(lambda: calls() >= CALLS_BEFORE_LATE, timeout_s=60, stack=stack,
                       what=f"{CALLS_BEFORE_LATE} calls of the queued model")

        late = [task(1000 + i, SHORT_TIMEOUT_MS) for i in range(10)]
        for t in late:
            await stack.client.submit(t, wait_ack=False)
        await stack.client.flush()
        late_ids = {t.task_id for t in late}
        await wait_for(lambda: late_ids <= set(stack.client.received), timeout_s=60, stack=stack,
                       what="one result for every task sent into the queue")
        late_results = [stack.client.received[t] for t in late_ids]
        rejected = [r for r in late_results if r.status == "rejected"]
        print(f"\n{len(rejected)} of {len(late)} tasks sent into the queue refused, e.g. "
              f"{rejected[0].reason if rejected else '-'}")
        assert len(rejected) >= len(late) // 2, [(r.status, r.reason) for r in late_results]
        for r in rejected:
            assert r.reason.startswith("overloaded: "), r.reason
            assert "queued at model 'queued'" in r.reason and "of its 2.0 s timeout" in r.reason, r.reason
            assert not r.votes and not r.attempts

        admitted_ids = {t.task_id for t in admitted}
        await wait_for(lambda: admitted_ids <= set(stack.client.received), timeout_s=90, stack=stack,
                       what="the admitted tasks' answers")
        assert {stack.client.received[t].status for t in admitted_ids} == {"ok"}, "admitted tasks meet their deadlines"

        # The queue has drained: the same kind of task is admitted and answered again.
        after = task(2000, SHORT_TIMEOUT_MS)
        await stack.client.submit(after)
        result = await stack.client.result(after.task_id, timeout_s=30)
        assert result.status == "ok", result

        admitted_late = len(late) - len(rejected)
        assert calls() <= QUEUED_TASKS + admitted_late + 1, "a refused task must call no model"
        assert stack.client.duplicates == 0


async def test_a_task_replayed_after_its_deadline_is_refused_as_expired(stack) -> None:
    """Records read long after they were written (an old topic replayed, a long outage) cannot be
    answered in time: the new task ends at once, and no model is called for it."""
    assert stack.fleet is not None
    before = stack.fleet.counters.get("fast-a", {}).get("calls", 0)
    old = task(7, 30_000, models=("fast-a",)).model_copy(update={"created_ms": now_ms() - 3_600_000})
    await stack.client.submit(old)
    result = await stack.client.result(old.task_id, timeout_s=30)
    assert result.status == "rejected"
    assert result.reason is not None and result.reason.startswith("expired: created "), result.reason
    fresh = task(8, 30_000, models=("fast-a",))
    await stack.client.submit(fresh)
    assert (await stack.client.result(fresh.task_id, timeout_s=30)).status == "ok"
    assert stack.fleet.counters["fast-a"]["calls"] == before + 1, "only the fresh task called the model"
