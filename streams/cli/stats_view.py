"""``swarmstream stats``: model stats and quality, chain metrics and every breaker.

It needs no worker: model stats and breakers are the workers' newest logs
checkpoint (``streams/app/logs.py``) with the call and quality logs after it
folded on, exactly as a starting worker does (the logs from the beginning when
there is no checkpoint), and chain metrics are folded from their table's
changelog (last write per key wins, shards added up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.stats.book import ModelBook
from swarmstream.agents.stats.folded import FoldedViews
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import CallRecord, QualityEvent, now_ms
from swarmstream.streams.app.logs import load_newest, logs_checkpoints_topic
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import bootstrap_servers, topic_partitions
from swarmstream.streams.engine.changelog import read_to_end


async def read_all(broker_url: str, topic: str, *, security: Mapping[str, Any] | None = None,
                   starts: Mapping[TopicPartition, int] | None = None) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of ``topic`` (from ``starts`` where given, else the beginning) to each
    partition's end as a fetch reports it (``changelog.read_to_end``). It read until 0.5 s
    brought nothing, and returned nothing when a busy broker answered the first fetch later."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None, fetch_max_wait_ms=10,
                                auto_offset_reset="earliest", **(security or {}))
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic, timeout_s=2.0)
        records: list[tuple[bytes | None, bytes | None]] = []
        if tps:
            await read_to_end(consumer, {tp: (starts or {}).get(tp, 0) for tp in tps},
                              lambda _tp, batch: records.extend((r.key, r.value) for r in batch))
        return records
    finally:
        await consumer.stop()


def fold_table(records: list[tuple[bytes | None, bytes | None]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, value in records:
        if key is None:
            continue
        name = orjson.loads(key)
        if value is None:
            table.pop(name, None)
        else:
            table[name] = orjson.loads(value)
    return table


async def collect(settings: Settings) -> dict[str, Any]:
    from swarmstream.agents.models.catalog import load_catalog
    from swarmstream.streams.app.security import aiokafka_security
    from swarmstream.streams.app.topology import chains_for

    security = aiokafka_security(settings)
    config = chains_for(settings, load_catalog(settings.models, sim_url=settings.sim_url or "http://127.0.0.1:1/v1"))
    views = FoldedViews(ModelBook(), CircuitBoard(config.circuit_for, now_ms))
    starts = await _from_checkpoint(settings, views, security)
    chains_raw, calls_raw, quality_raw = await asyncio.gather(
        read_all(settings.broker, f"{settings.app_id}-chain-metrics-changelog", security=security),
        read_all(settings.broker, settings.topics.calls, security=security, starts=starts),
        read_all(settings.broker, settings.topics.quality, security=security, starts=starts),
    )
    chains: dict[str, dict[str, int]] = defaultdict(dict)
    for key, counts in fold_table(chains_raw).items():
        chain = key.rsplit("|", 1)[0]
        for metric, n in counts.items():
            chains[chain][metric] = chains[chain].get(metric, 0) + n

    for _key, value in calls_raw:
        with contextlib.suppress(DecodeError):
            views.fold_call(codec().decode_as(value or b"", CallRecord))
    for _key, value in quality_raw:
        with contextlib.suppress(DecodeError):
            views.book.add_quality(codec().decode_as(value or b"", QualityEvent))
    book, board = views.book, views.board
    return {
        "models": book.snapshot(),
        "chains": dict(chains),
        "breakers": dict(board.states()),
        "breaker_transitions": [{"model": m, "from": a, "to": b, "count": n} for (m, a, b), n in board.transitions.items()],
    }


async def _from_checkpoint(settings: Settings, views: FoldedViews,
                           security: Mapping[str, Any]) -> dict[TopicPartition, int]:
    """The newest logs checkpoint loaded into ``views``; the offsets to fold on from (none: from the
    beginning, as when no worker has written one yet)."""
    topic = logs_checkpoints_topic(settings.app_id)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings.broker), group_id=None,
                                fetch_max_wait_ms=10, **security)
    await consumer.start()
    try:
        if not await topic_partitions(consumer, topic, timeout_s=2.0):
            return {}
        checkpoint = await load_newest(consumer, topic, views)
    finally:
        await consumer.stop()
    return checkpoint.offsets() if checkpoint else {}


def render(view: dict[str, Any]) -> str:
    lines = ["models (model|category)        calls     ok  p50_ms  p95_ms  cost_usd    quality (n)   failures"]
    for key, s in view["models"].items():
        p50, p95 = (f"{s[k]:.0f}" if s[k] is not None else "-" for k in ("latency_p50_ms", "latency_p95_ms"))
        lines.append(f"  {key:<28} {s['calls']:>6} {s['successes']:>6} {p50:>7} {p95:>7}  "
                     f"{s['cost_micros'] / 1e6:<10.6f}  {s['quality_mean']:.3f} ({s['quality_events']:>4})  "
                     f"{s['failures'] or ''}")
    lines.append("chains")
    lines += [f"  {chain:<28} {counts}" for chain, counts in view["chains"].items()]
    lines.append("breakers")
    lines += [f"  {model:<28} {state}" for model, state in view["breakers"].items()]
    lines += [f"  transition {t['model']}: {t['from']} -> {t['to']} x{t['count']}" for t in view["breaker_transitions"]]
    return "\n".join(lines)
