"""Create every swarmstream topic on SWARM_BROKER, source topics first, then exit.

The compose file runs it once before the workers start: Tansu and a Kafka with
auto-creation would otherwise create a topic on first use with the broker's
default partition count, and co-partitioned topics must share one count
(DESIGN.md, "Brokers").
"""

from __future__ import annotations

import asyncio
import sys

from swarmstream.agents.models.catalog import load_catalog
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import ensure_topics


def main() -> int:
    settings = Settings()
    if not settings.broker:
        print("create_topics: set SWARM_BROKER=kafka://host:port", file=sys.stderr)
        return 2
    catalog = load_catalog(settings.models, sim_url=settings.sim_url or "http://127.0.0.1:1/v1")
    names = settings.topics.all(list(catalog.models))
    asyncio.run(ensure_topics(settings.broker, names, settings.partitions, timeout_s=120))
    print(f"{len(names)} topics with {settings.partitions} partitions on {settings.broker}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
