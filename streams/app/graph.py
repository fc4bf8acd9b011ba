"""What every capability's wiring adds to: the engine, the settings and catalog, one HTTP
pool, and the way tables are made with their retention.

``topology.build`` makes one and calls each capability's wiring function on it
(``tools.wire_tools``, ``workflows.wire_workflows``); those import this module, never
``topology``, so the wiring has no import circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmstream.agents.models.catalog import Catalog
from swarmstream.agents.models.http import ClientPool
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import Record, now_ms
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.app.stores import WindowedStore
from swarmstream.streams.engine import Engine, Handler, tracing
from swarmstream.streams.engine.tables import Expiry, Retained


@dataclass
class Topology:
    engine: Engine
    settings: Settings
    catalog: Catalog
    pool: ClientPool = field(default_factory=ClientPool)

    async def emit(self, topic: str, key: str, record: Record, headers: Mapping[str, bytes] | None = None) -> None:
        if self.settings.tracing:
            headers = tracing.inject(headers)
        await self.engine.send(topic, key.encode(), codec().encode(record), headers)

    def wire(self, name: str, topics: list[str], handler: Handler, max_in_flight: int) -> None:
        self.engine.agent(name, topics, handler, max_in_flight)

    def windowed(self, name: str) -> WindowedStore:
        """A table of per-task states, deleted ``SWARM_CONSENSUS_EXPIRES_S`` after their task began:
        that long a redelivered task, a late outcome or feedback still finds its task."""
        store = WindowedStore(self.engine.table(name), expires_ms=self.settings.consensus_expires_s * 1000)
        self._expiring(store)
        return store

    def retained(self, name: str, expiry: Expiry, *, default_ms: int) -> Retained:
        """A table whose entries are deleted once past ``expiry(key, value)`` (None: ``default_ms``
        after this worker first saw it)."""
        store = Retained(self.engine.table(name), expiry=expiry, default_ms=default_ms, clock=now_ms)
        self._expiring(store)
        return store

    def _expiring(self, store: WindowedStore | Retained) -> None:
        async def expire() -> None:
            await store.expire(now_ms())

        async def reindex(gained: set[Any]) -> None:
            store.reindex({tp.partition for tp in gained})

        self.engine.timer(self.settings.expire_interval_s, expire)
        self.engine.on_assigned(reindex)
