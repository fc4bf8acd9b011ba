"""``swarmstream stats``: model stats, learned reliability, chain metrics and every
breaker, read straight from the changelogs and the circuit log.

It needs no worker: tables are folded from their changelog topics (last
write per key wins, shards merged), and breakers are recomputed from the
circuit log exactly as each worker does.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.stats import model_stats, quality
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import CircuitEvent, now_ms
from swarmstream.streams.broker import bootstrap_servers
from swarmstream.streams.settings import Settings


async def read_all(broker_url: str, topic: str, *, idle_s: float = 0.5) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[tuple[bytes | None, bytes | None]] = []
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_s:
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            if batch:
                idle_since = time.monotonic()
            records += [(r.key, r.value) for rs in batch.values() for r in rs]
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


def _shards(table: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for key, value in table.items():
        name, category, _shard = key.rsplit("|", 2) if key.count("|") >= 2 else (key.rsplit("|", 1)[0], "*", 0)
        yield name, category, value


async def collect(settings: Settings) -> dict[str, Any]:
    changelog = f"{settings.app_id}-{{}}-changelog".format
    stats_raw, quality_raw, chains_raw, circuit_raw = await asyncio.gather(
        read_all(settings.broker, changelog("model-stats")),
        read_all(settings.broker, changelog("model-quality")),
        read_all(settings.broker, changelog("chain-metrics")),
        read_all(settings.broker, settings.topics.circuit),
    )
    grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for model, category, value in _shards(fold_table(stats_raw)):
        grouped[(model, category)].append(value)
    models = {f"{m}|{c}": model_stats.merge(v) for (m, c), v in sorted(grouped.items())}

    agreement: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for model, category, value in _shards(fold_table(quality_raw)):
        agreement[(model, category)].append(value)
    reliability = {f"{m}|{c}": round(quality.reliability(v), 4) for (m, c), v in sorted(agreement.items())}

    chains: dict[str, dict[str, int]] = defaultdict(dict)
    for key, counts in fold_table(chains_raw).items():
        chain = key.rsplit("|", 1)[0]
        for metric, n in counts.items():
            chains[chain][metric] = chains[chain].get(metric, 0) + n

    from swarmstream.agents.models.catalog import load_catalog
    from swarmstream.streams.topology import chains_for

    config = chains_for(settings, load_catalog(settings.models, sim_url=settings.sim_url or "http://127.0.0.1:1/v1"))
    board = CircuitBoard(config.circuit_for, now_ms)
    for _key, value in circuit_raw:
        try:
            board.apply(codec().decode_as(value or b"", CircuitEvent))
        except DecodeError:
            continue
    return {
        "models": models,
        "reliability": reliability,
        "chains": dict(chains),
        "breakers": dict(board.states()),
        "breaker_transitions": [{"model": m, "from": a, "to": b, "count": n} for (m, a, b), n in board.transitions.items()],
    }


def render(view: dict[str, Any]) -> str:
    lines = ["models (model|category)        calls  ok     latency_ewma_ms  cost_usd    failures"]
    for key, s in view["models"].items():
        lat = f"{s['latency_ewma_ms']:.0f}" if s["latency_ewma_ms"] is not None else "-"
        lines.append(f"  {key:<28} {s['calls']:>6} {s['successes']:>6} {lat:>16}  {s['cost_micros'] / 1e6:<10.6f}  "
                     f"{s['failures'] or ''}")
    lines.append("reliability (agreement with confident consensus)")
    lines += [f"  {key:<28} {value:.3f}" for key, value in view["reliability"].items()]
    lines.append("chains")
    lines += [f"  {chain:<28} {counts}" for chain, counts in view["chains"].items()]
    lines.append("breakers")
    lines += [f"  {model:<28} {state}" for model, state in view["breakers"].items()]
    lines += [f"  transition {t['model']}: {t['from']} -> {t['to']} x{t['count']}" for t in view["breaker_transitions"]]
    return "\n".join(lines)
