"""One error type for everything the gateway refuses, rendered by each protocol in its own shape."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GatewayError(Exception):
    """``kind`` is the protocol-neutral reason (``invalid_request``, ``authentication``,
    ``rate_limit``, ``timeout``, ``overloaded``, ``not_found``, ``failed``); each wire module
    maps it to its own ``type``. ``message`` never holds a key: it is built from our own words
    and field names only. ``retry``: whether an SDK should retry (``x-should-retry``)."""

    status: int
    kind: str
    message: str
    param: str | None = None
    task_id: str | None = None
    retry: bool | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.kind}: {self.message}"


def invalid(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, "invalid_request", message, param=param, retry=False)
