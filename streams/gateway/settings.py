"""``SWARM_GATEWAY_*``: the gateway's own settings (the broker, topics, catalog and chains
are the workers' ``SWARM_*``, so a gateway always talks to the pipeline it sits in front of)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_instance() -> str:
    """The host name, made a legal reply-topic name: stable across restarts of one host, so a
    restarted instance reads back its own replies (``replies.py``)."""
    return "gw-" + (re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:60] or "local")


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWARM_GATEWAY_")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535, description="0: any free port (tests)")
    instance: str = Field(default_factory=default_instance, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                          description="names this instance's reply topic <results>.<instance>; one per instance")
    keys: Path | None = Field(None, description="API keys file (keys.py); none: an open gateway, tenant 'default'")
    routes: Path | None = Field(None, description="declared routes (routes.py): model name -> task fields")
    keepalive_s: float = Field(
        5.0, gt=0, description="a streamed response's keep-alive interval while its task runs: well under the 60 s "
        "idle timeouts of common proxies and load balancers")
    grace_s: float = Field(
        5.0, ge=0, description="waited past a task's deadline for its result (the worker's timeout result "
        "travels a topic) before answering 504 with the task id")
    max_in_flight: int = Field(
        4096, ge=1, description="requests waiting on their tasks at once; past it new ones get 503 (each waiter "
        "is a few KB; the worker's own admission sheds long before)")
