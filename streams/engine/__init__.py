"""The engine: a Kafka consumer group that runs handlers, with tables and in-order commits.

It knows nothing of LLMs, tasks or swarmstream's records: it moves bytes between topics
and hands each consumed record to a handler as an :class:`InputMessage`. Capabilities
(``agents/``) depend on the shape of that message, never on this package; this package
imports nothing from ``agents/`` or the app (``streams/app``), and an import contract in
CI (``.importlinter``) keeps it so.

What it guarantees (each module says how):

- **In-order commits** (``engine.py``): records of a partition are dispatched in offset
  order, many in flight; a partition's offset is committed only over a run of finished
  events from its head, so nothing is committed past an unfinished event. A handler that
  raises has its event reported (``on_error``) and committed: no record stops a worker.
- **Outputs before state, acknowledged before commit** (``engine.py``, ``batching.py``):
  what a handler emits and writes to its tables is sent when it returns, in per-partition
  batches, and its event's slot is held until the broker has all of it.
- **Tables held until acked** (``changelog.py``, ``tables.py``): a table write lives in
  memory and in a changelog topic, co-partitioned with the input; a partition's tables are
  restored (from a restore horizon, ``horizon.py``, then the tail) before its first record is
  handled, and expire with tombstones (``tables.Retained``).
- **Rebalance behaviour** (``engine.py``): eager rebalances; a partition kept under the same
  member id keeps its handlers, tables and position; a lost one has its handlers cancelled
  and tables dropped, and its next owner reads from the commit; what an event produces
  during the rebalance waits and is dropped if its partition moved.
- **Fencing** (``fencing.py``): a worker publishes only while heartbeats prove its
  membership; a stalled worker's sends wait, and a lost membership drops every partition.
- **Published offsets** (``published.py``), **brokers** (``broker.py``: the embedded Tansu,
  topic creation), **a fetch wait that rises when a broker leaves a partition unread**
  (``fetchwait.py``) and **trace context in headers** (``tracing.py``) serve the same end.
"""

from swarmstream.streams.engine.engine import (
    PRODUCE_LIMIT_BYTES,
    Agent,
    Engine,
    Handler,
    OnError,
    RecordTooLarge,
    current_partition,
    flush,
)
from swarmstream.streams.engine.message import InputMessage

__all__ = [
    "PRODUCE_LIMIT_BYTES", "Agent", "Engine", "Handler", "InputMessage", "OnError", "RecordTooLarge",
    "current_partition", "flush",
]
