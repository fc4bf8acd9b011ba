"""Load shedding end to end: a model whose topic backs up past the hard limit gets no
new tasks; they end at once as ``rejected`` with the reason, one result each, and the
tasks already admitted still get their answers. Once the backlog drains, tasks are
admitted again."""

from __future__ import annotations

import time

import pytest
from swarmstream.schemas.models import TaskRequest

from tests.conftest import wait_for

BACKLOG = 40  # tasks for `queued` (2 calls in flight, ~300 ms each): ~10 per partition
SOFT, HARD = 2, 5  # per partition of the model's topic


def task(i: int) -> TaskRequest:
    return TaskRequest(prompt=f"What is {i} + {i}? Answer with a number.", answer_type="number", mode="single",
                       models=["queued"], timeout_ms=60_000)


@pytest.mark.timeout(180)
async def test_a_backed_up_model_gets_no_new_tasks_they_end_rejected_at_once(make_stack) -> None:
    async with make_stack(shed_soft_lag=SOFT, shed_hard_lag=HARD, shed_max_delay_ms=200) as stack:
        assert stack.fleet is not None
        admitted = [task(i) for i in range(BACKLOG)]
        for t in admitted:
            await stack.client.submit(t, wait_ack=False)
        await stack.client.flush()
        # The backlog is on the model's topic once the model-call agent has started on it.
        await wait_for(lambda: stack.fleet.counters["queued"]["calls"] >= 4, timeout_s=30, stack=stack,
                       what="the first calls of the backed-up model")

        late = [task(1000 + i) for i in range(12)]
        submitted_ms = time.time() * 1000
        for t in late:
            await stack.client.submit(t, wait_ack=False)
        await stack.client.flush()
        late_ids = {t.task_id for t in late}
        await wait_for(lambda: late_ids <= set(stack.client.received), timeout_s=30, stack=stack,
                       what="a result for every task sent to the backed-up model")
        late_results = [stack.client.received[t] for t in late_ids]
        rejected = [r for r in late_results if r.status == "rejected"]
        print(f"\n{len(rejected)} of {len(late)} late tasks rejected, e.g. {rejected[0].reason if rejected else ''}")
        assert len(rejected) >= len(late) // 2, [r.status for r in late_results]
        assert all("'queued'" in r.reason and f"hard limit {HARD}" in r.reason for r in rejected)
        # At once: long before the backlog (~40 x 300 ms / 2 in flight) could have drained.
        assert max(r.completed_ms for r in rejected) - submitted_ms < 3_000

        admitted_ids = {t.task_id for t in admitted}
        await wait_for(lambda: admitted_ids <= set(stack.client.received), timeout_s=60, stack=stack,
                       what="the admitted tasks' answers")
        assert {stack.client.received[t].status for t in admitted_ids} == {"ok"}

        after = task(2000)  # the backlog has drained: admitted again
        await stack.client.submit(after)
        assert (await stack.client.result(after.task_id, timeout_s=30)).status == "ok"

        calls = stack.fleet.counters["queued"]["calls"]
        assert calls == BACKLOG + len(late) - len(rejected) + 1, "a rejected task must call no model"
        assert stack.client.duplicates == 0
