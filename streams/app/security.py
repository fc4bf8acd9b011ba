"""``SWARM_BROKER_*`` SASL/TLS settings as aiokafka keyword arguments, for every client a
worker, the CLI or the client SDK opens (deploy/README.md)."""

from __future__ import annotations

import ssl
from typing import Any

from swarmstream.streams.app.settings import Settings


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
