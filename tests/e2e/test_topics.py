"""A worker started alone creates every topic of the pipeline, as it sizes them."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer
from swarmstream.agents.models.catalog import load_catalog
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.app.worker import WorkerProcess
from swarmstream.streams.cli.runtime import unique_settings
from swarmstream.streams.engine.broker import bootstrap_servers

from tests.conftest import TEST_CHAINS, TEST_FLEET, wait_for


async def test_a_worker_alone_creates_every_topic_with_its_partitions(broker_url: str, tmp_path: Path) -> None:
    """On Apache Kafka with auto.create.topics.enable=false (deploy/), a worker with no client
    before it failed: its published-results scan waited on a results topic nobody had made.
    Tansu creates a topic when it is named, with 4 partitions; the worker's are 3 here, so a
    topic the worker did not create itself shows as 4."""
    settings = unique_settings(Settings(models=TEST_FLEET, chains=TEST_CHAINS, partitions=3,
                                        sim_url="http://127.0.0.1:9"))  # no model is called
    expected = settings.topics.all(list(load_catalog(settings.models, sim_url=settings.sim_url).models))
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(settings, broker_url, extra_env={"SWARM_WORKER_LOGLEVEL": "info"}, log_path=str(log_path))
    try:
        # topics are made before the worker joins its group: once it is assigned, they exist
        await wait_for(lambda: "partitions (" in log_path.read_text(), timeout_s=60, what="the worker's assignment")
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None)
        await consumer.start()
        try:
            existing = await consumer._client.fetch_all_metadata()  # lists topics, creates none
        finally:
            await consumer.stop()
    finally:
        worker.stop()
    counts = {t: len(existing.partitions_for_topic(t) or ()) for t in expected}
    assert counts == dict.fromkeys(expected, 3)
