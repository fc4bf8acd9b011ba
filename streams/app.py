"""The Faust app, configured for fast hops and short rebalances (DESIGN.md, "Brokers").

Tables use Faust's default json codec, which is orjson when installed (it is a dependency)."""

from __future__ import annotations

import ssl
from datetime import timedelta
from typing import Any

import faust
from swarmstream.streams import transport
from swarmstream.streams.broker import bootstrap_servers
from swarmstream.streams.settings import Settings


def create_app(settings: Settings, broker_url: str) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=transport.faust_broker_url(broker_url),
        store=settings.store,
        datadir=str(settings.data_dir),
        autodiscover=False,
        web_enabled=False,  # two workers on one host would clash on port 6066
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        broker_max_poll_records=settings.max_poll_records,
        consumer_group_instance_id=settings.group_instance_id,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        stream_recovery_delay=0.0,
        producer_linger_ms=settings.producer_linger_ms,
        producer_acks=-1,
        table_cleanup_interval=30.0,
        broker_credentials=faust_credentials(settings),
    )
    app.swarm_fetch_max_wait_ms = settings.fetch_max_wait_ms  # read by streams.transport
    app.swarm_bootstrap = bootstrap_servers(broker_url)  # for streams.transport.true_end_offsets
    app.swarm_kafka_security = aiokafka_security(settings)  # for the worker's plain aiokafka clients
    return app


def window_expiry(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.consensus_expires_s)


class BrokerSecurityError(ValueError):
    """``SWARM_BROKER_*`` settings that cannot work together; the message names the variables."""


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    cafile = settings.broker_ssl_cafile
    if cafile is not None and not cafile.is_file():
        raise BrokerSecurityError(f"SWARM_BROKER_SSL_CAFILE={cafile}: no such file (a PEM CA bundle)")
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


def _check_sasl(settings: Settings) -> tuple[str, str, str]:
    missing = [name for name, value in (("SWARM_BROKER_SASL_MECHANISM", settings.broker_sasl_mechanism),
                                        ("SWARM_BROKER_SASL_USERNAME", settings.broker_sasl_username),
                                        ("SWARM_BROKER_SASL_PASSWORD", settings.broker_sasl_password)) if not value]
    if missing:
        raise BrokerSecurityError(f"SWARM_BROKER_SECURITY_PROTOCOL={settings.broker_security_protocol} needs "
                                  f"{', '.join(missing)} (see deploy/README.md)")
    assert settings.broker_sasl_mechanism and settings.broker_sasl_username and settings.broker_sasl_password
    return (settings.broker_sasl_mechanism, settings.broker_sasl_username,
            settings.broker_sasl_password.get_secret_value())


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's credentials for ``SWARM_BROKER_SECURITY_PROTOCOL`` (None = PLAINTEXT).

    Faust maps them to aiokafka's ``security_protocol``/``sasl_*``/``ssl_context``
    (``faust/transport/drivers/aiokafka.py: credentials_to_aiokafka_auth``)."""
    protocol = settings.broker_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    mechanism, username, password = _check_sasl(settings)
    return faust.SASLCredentials(username=username, password=password, mechanism=mechanism,
                                 ssl_context=_ssl_context(settings) if protocol == "SASL_SSL" else None)


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """The same settings as keyword arguments for a plain aiokafka client (consumer, producer, admin)."""
    protocol = settings.broker_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL_"):
        mechanism, username, password = _check_sasl(settings)
        kwargs |= {"sasl_mechanism": mechanism, "sasl_plain_username": username, "sasl_plain_password": password}
    return kwargs
