"""The fetch-wait override relies on Faust and aiokafka internals: fail loudly if they move."""

from __future__ import annotations

import inspect

import aiokafka
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka
from swarmstream.streams import transport
from swarmstream.streams.app import create_app
from swarmstream.streams.settings import Settings


def test_faust_still_hard_codes_the_fetch_wait_we_override() -> None:
    source = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in source, "Faust changed; revisit streams/transport.py"


async def test_aiokafka_keeps_the_attribute_the_override_sets() -> None:
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=1500)
    assert consumer._fetch_max_wait_ms == 1500


async def test_the_worker_consumer_gets_our_fetch_wait() -> None:
    app = create_app(Settings(fetch_max_wait_ms=7), "kafka://127.0.0.1:1")
    assert drivers.by_url(app.conf.broker_consumer[0]) is transport.Transport

    consumer = app.consumer  # builds the consumer thread lazily, connects nothing
    thread = consumer._new_consumer_thread()
    built = thread._create_worker_consumer(app.transport)

    assert built._fetch_max_wait_ms == 7


def test_broker_urls_are_translated_for_faust() -> None:
    assert transport.faust_broker_url("kafka://a:1,b:2") == "swarmkafka://a:1;b:2"
