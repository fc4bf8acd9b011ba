"""`swarmstream worker` says which setting a broker refuses, not a traceback."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import InvalidSessionTimeoutError
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.cli.main import main
from swarmstream.streams.cli.runtime import unique_settings
from swarmstream.streams.engine import engine

from tests.conftest import TEST_CHAINS, TEST_FLEET


class RefusingGroupConsumer(AIOKafkaConsumer):
    """What aiokafka raises when Apache Kafka (group.min.session.timeout.ms 6 s by default) is asked
    for the 2 s session the embedded broker is tuned for; Tansu accepts any, so it is raised here."""

    async def start(self) -> None:
        raise InvalidSessionTimeoutError()


def test_a_session_timeout_the_broker_refuses_is_named_with_its_setting(
        broker_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    settings = unique_settings(Settings())
    for name, value in {"SWARM_BROKER": broker_url, "SWARM_APP_ID": settings.app_id,
                        "SWARM_TOPIC_PREFIX": settings.topic_prefix, "SWARM_SESSION_TIMEOUT_S": "2",
                        "SWARM_MODELS": str(TEST_FLEET), "SWARM_CHAINS": str(TEST_CHAINS),
                        "SWARM_SIM_URL": "http://127.0.0.1:9"}.items():  # no model is called
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(engine, "AIOKafkaConsumer", RefusingGroupConsumer)

    assert main(["worker"]) == 2

    err = capsys.readouterr().err
    assert "refuses a 2 s session timeout" in err
    assert "SWARM_SESSION_TIMEOUT_S" in err
    assert "Traceback" not in err
