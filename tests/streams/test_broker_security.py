"""SWARM_BROKER_* settings become aiokafka arguments for every client; mistakes name the variables."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
from swarmstream.streams.app.security import BrokerSecurityError, aiokafka_security
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.app.topology import create_engine
from swarmstream.streams.app.worker import settings_env

PASSWORD = "s3cr3t-password-value"


@pytest.mark.parametrize(
    ("env", "protocol", "mechanism", "tls"),
    [
        ({}, None, None, False),
        ({"broker_security_protocol": "SSL"}, "SSL", None, True),
        ({"broker_security_protocol": "SASL_PLAINTEXT", "broker_sasl_mechanism": "PLAIN",
          "broker_sasl_username": "u", "broker_sasl_password": PASSWORD}, "SASL_PLAINTEXT", "PLAIN", False),
        ({"broker_security_protocol": "SASL_SSL", "broker_sasl_mechanism": "SCRAM-SHA-512",
          "broker_sasl_username": "u", "broker_sasl_password": PASSWORD}, "SASL_SSL", "SCRAM-SHA-512", True),
    ],
)
def test_settings_map_to_aiokafka(env: dict[str, str], protocol: str | None, mechanism: str | None,
                                           tls: bool) -> None:
    settings = Settings(**env)
    kwargs = aiokafka_security(settings)
    if protocol is None:
        assert kwargs == {}
        return
    assert kwargs["security_protocol"] == protocol
    assert isinstance(kwargs.get("ssl_context"), ssl.SSLContext) == tls
    if mechanism:
        assert kwargs["sasl_mechanism"] == mechanism and kwargs["sasl_plain_password"] == PASSWORD
        assert PASSWORD not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"broker_security_protocol": "SASL_SSL"},
         "SWARM_BROKER_SECURITY_PROTOCOL=SASL_SSL needs SWARM_BROKER_SASL_MECHANISM, SWARM_BROKER_SASL_USERNAME, "
         "SWARM_BROKER_SASL_PASSWORD"),
        ({"broker_security_protocol": "SASL_PLAINTEXT", "broker_sasl_mechanism": "PLAIN", "broker_sasl_username": "u"},
         "needs SWARM_BROKER_SASL_PASSWORD"),
        ({"broker_security_protocol": "SSL", "broker_ssl_cafile": "/no/such/ca.pem"},
         "SWARM_BROKER_SSL_CAFILE=/no/such/ca.pem: no such file"),
    ],
)
def test_incomplete_settings_say_what_is_missing(env: dict[str, str], message: str) -> None:
    with pytest.raises(BrokerSecurityError, match=re.escape(message)):
        aiokafka_security(Settings(**env))


def test_the_engine_is_built_with_the_credentials() -> None:
    settings = Settings(broker_security_protocol="SASL_PLAINTEXT", broker_sasl_mechanism="SCRAM-SHA-256",
                        broker_sasl_username="u", broker_sasl_password=PASSWORD)
    engine = create_engine(settings, "kafka://127.0.0.1:1")
    assert engine.security["sasl_mechanism"] == "SCRAM-SHA-256"
    assert engine.security["sasl_plain_username"] == "u"


def test_a_child_worker_gets_the_real_password_not_the_mask(tmp_path: Path) -> None:
    settings = Settings(broker_sasl_password=PASSWORD)
    env = settings_env(settings, "kafka://b:9092")
    assert env["SWARM_BROKER_SASL_PASSWORD"] == PASSWORD
