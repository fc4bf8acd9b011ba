"""A second worker joining mid-run loses nothing: partitions move, every task ends once."""

from __future__ import annotations

import time

from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.streams.cli.demo import to_request


async def test_tasks_published_while_a_second_worker_joins_all_get_results(make_stack) -> None:
    async with make_stack() as stack:
        requests = [to_request(item, mode="consensus") for item in demo_tasks(400)]
        joined = stack.start_worker()  # the group rebalances while the tasks below trickle in
        started = time.monotonic()
        for request in requests:  # each waits for the one before: a lost task fails here
            await stack.client.submit(request)
            await stack.client.result(request.task_id, timeout_s=30)
            joined.check_alive()
            if time.monotonic() - started > 5 * stack.settings.session_timeout_s:
                break  # well past the rebalance

    assert stack.client.duplicates == 0
