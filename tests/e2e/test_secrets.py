"""An API key from the environment reaches the provider and nothing else: no topic,
no log line, no exception text, no result."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from swarmstream.agents.models.catalog import SimProfile
from swarmstream.agents.models.simulated.fleet import SimFleet
from swarmstream.schemas.models import TaskRequest
from swarmstream.streams.cli.runtime import running_stack, unique_settings
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine.broker import bootstrap_servers

SECRET = "sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


async def all_bytes_under(broker_url: str, prefixes: tuple[str, ...]) -> bytes:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(prefixes)]
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        chunks: list[bytes] = []
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 1.0:
            batch = await consumer.getmany(timeout_ms=100)
            if batch:
                idle_since = time.monotonic()
            for records in batch.values():
                for r in records:
                    chunks += [r.key or b"", r.value or b"", *(v for _, v in r.headers or ())]
        assert topics and chunks, "nothing was read: the search would prove nothing"
        return b"\n".join(chunks)
    finally:
        await consumer.stop()


async def test_an_api_key_appears_in_no_event_log_or_error(broker_url: str, tmp_path: Path) -> None:
    fleet = SimFleet({
        "keyed": SimProfile(accuracy=1.0, latency_median_ms=1, latency_p99_ms=5),
        "keyed-failing": SimProfile(accuracy=1.0, latency_median_ms=1, latency_p99_ms=5,
                                    script=["auth", "server_error", "rate_limited", "bad_request"]),
    })
    url = await fleet.start()
    catalog = tmp_path / "models.yaml"
    catalog.write_text(yaml.safe_dump({
        "default_consensus": ["keyed", "keyed-failing"],
        "models": [
            {"id": m, "provider": "openai", "endpoint": url, "api_key_env": "SWARM_TEST_OPENAI_KEY", "family": m}
            for m in ("keyed", "keyed-failing")
        ],
    }))
    settings = unique_settings(Settings(models=catalog))
    try:
        async with running_stack(settings, broker_url=broker_url, workers=0, fleet=False, log_dir=tmp_path) as stack:
            stack.start_worker(SWARM_TEST_OPENAI_KEY=SECRET, SWARM_WORKER_LOGLEVEL="debug")
            await stack.wait_ready()
            tasks = [TaskRequest(prompt=f"What is {i} + 1? Answer with a number.", answer_type="number")
                     for i in range(4)]
            for task in tasks:
                await stack.client.submit(task)
            results = [await stack.client.result(t.task_id, timeout_s=30) for t in tasks]
            everything = await all_bytes_under(broker_url, (settings.topic_prefix, settings.app_id))
    finally:
        await fleet.stop()

    failures = {a.failure_class for r in results for a in r.attempts if a.failure_class}
    assert {"auth", "server_error", "rate_limited", "bad_request"} <= failures  # every error path ran
    assert fleet.counters["keyed"]["calls"] >= 4
    logs = b"".join(p.read_bytes() for p in tmp_path.glob("worker-*.log"))
    assert b"DEBUG" in logs  # the worker logged at debug level, and still
    for haystack in (everything, logs, b"".join(r.model_dump_json().encode() for r in results)):
        assert SECRET.encode() not in haystack
        assert SECRET[-12:].encode() not in haystack
    await asyncio.sleep(0)
