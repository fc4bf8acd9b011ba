"""A whole swarmstream stack in one context manager: broker, fleet, topics, workers.

Used by the demo, the benchmarks and the end-to-end tests, so all three run
the same way: the embedded broker unless ``SWARM_BROKER`` (or an explicit
URL) names one, the simulated fleet on loopback, topics created up front
(source topics first), and workers as child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from swarmstream.agents.models.catalog import Catalog, load_catalog
from swarmstream.agents.models.simulated.fleet import SimFleet
from swarmstream.schemas.models import TaskRequest
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.app.worker import WorkerProcess
from swarmstream.streams.client import SwarmClient
from swarmstream.streams.engine.broker import EmbeddedBroker, ensure_topics


@dataclass
class Stack:
    settings: Settings
    broker_url: str
    catalog: Catalog
    fleet: SimFleet | None
    client: SwarmClient
    workers: list[WorkerProcess] = field(default_factory=list)
    log_dir: Path | None = None

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until a probe task has gone the whole way: workers joined, topics assigned,
        tables recovered. Timing-sensitive work (deadlines, latency) starts after this."""
        probe = TaskRequest(prompt="What is 1 + 1? Answer with a number.", answer_type="number",
                            mode="single", task_id=f"warm-up-{uuid.uuid4().hex[:8]}")
        await self.client.submit(probe)
        waiter = asyncio.ensure_future(self.client.result(probe.task_id, timeout_s=timeout_s))
        while not waiter.done():
            for worker in self.workers:
                worker.check_alive()
            await asyncio.wait([waiter], timeout=0.1)
        await waiter
        self.client.forget(probe.task_id)

    def start_worker(self, **env: str) -> WorkerProcess:
        log_path = str(self.log_dir / f"worker-{len(self.workers)}.log") if self.log_dir else None
        worker = WorkerProcess(self.settings, self.broker_url, extra_env=env, log_path=log_path)
        self.workers.append(worker)
        return worker


def unique_settings(base: Settings | None = None, **overrides: object) -> Settings:
    """Settings with a fresh topic prefix and group, so a run never replays another's records."""
    run = uuid.uuid4().hex[:10]
    base = base or Settings()
    values = {"topic_prefix": f"{base.topic_prefix}-{run}", "app_id": f"{base.app_id}-{run}", **overrides}
    return base.model_copy(update=values)


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings,
    *,
    broker_url: str | None = None,
    workers: int = 1,
    ready: bool = True,
    fleet: bool = True,
    log_dir: Path | None = None,
) -> AsyncIterator[Stack]:
    broker: EmbeddedBroker | None = None
    url = broker_url or settings.broker
    if not url:
        broker = EmbeddedBroker().start()
        url = broker.url
    sim: SimFleet | None = None
    stack: Stack | None = None
    try:
        if fleet:
            probe = load_catalog(settings.models, sim_url="http://127.0.0.1:1/v1")
            profiles = {m.id: m.simulated for m in probe.models.values() if m.simulated is not None}
            sim = SimFleet(profiles)
            settings = settings.model_copy(update={"sim_url": await sim.start()})
        catalog = load_catalog(settings.models, sim_url=settings.sim_url)
        await ensure_topics(url, settings.topics.all(list(catalog.models)), settings.partitions)
        client = await SwarmClient(url, topics=settings.topics).start()
        stack = Stack(settings, url, catalog, sim, client, log_dir=log_dir)
        for _ in range(workers):
            stack.start_worker()
        if workers and ready:
            await stack.wait_ready()
        yield stack
    finally:
        if stack is not None:
            for worker in stack.workers:
                worker.stop()
            await stack.client.stop()
        if sim is not None:
            await sim.stop()
        if broker is not None:
            broker.stop()
