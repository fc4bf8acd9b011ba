"""Faust's aiokafka transport with a configurable consumer fetch wait.

faust-streaming 0.15.3 hard-codes ``fetch_max_wait_ms=1500`` when it builds
the worker's consumer (``faust/transport/drivers/aiokafka.py``,
``AIOKafkaConsumerThread._create_worker_consumer``). Tansu holds every fetch
that long when a partition is idle, so each hop cost ~0.8 s median; at 10 ms
two hops take ~15 ms (DESIGN.md, "Brokers"). This module is the one place that
overrides it; ``tests/streams/test_transport.py`` fails if a Faust upgrade
moves the attribute this relies on.

Apps select it with the URL scheme ``swarmkafka://``.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

SCHEME = "swarmkafka"
DEFAULT_FETCH_MAX_WAIT_MS = 10


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka copies this into its Fetcher in start(), which runs later.
        consumer._fetch_max_wait_ms = getattr(self.app, "swarm_fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def faust_broker_url(url: str) -> str:
    """``kafka://a:1,b:2`` -> ``swarmkafka://a:1;b:2`` (Faust separates brokers with ';')."""
    hosts = url.split("://", 1)[-1].rstrip("/").replace(",", ";")
    return f"{SCHEME}://{hosts}"
