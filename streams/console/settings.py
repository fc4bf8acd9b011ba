"""The console's settings (``SWARM_CONSOLE_*``); where the topics are comes from ``SWARM_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["viewer", "reviewer"]


class ConsoleUser(BaseModel):
    token: SecretStr = Field(min_length=16, description="a bearer token or login token; never rendered or logged")
    role: Role = "viewer"


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWARM_CONSOLE_", extra="ignore")

    host: str = Field("127.0.0.1", description="where the console listens; put a TLS reverse proxy in front")
    port: int = Field(8470, ge=0, le=65535, description="0: any free port (tests)")
    users: dict[str, ConsoleUser] = Field(
        default_factory=dict,
        description='JSON: {"ada": {"token": "<at least 16 characters>", "role": "reviewer"}}; '
        "a viewer sees every page, a reviewer also decides reviews and approvals")
    identity_header: str | None = Field(
        None, description="trust this request header (e.g. X-Forwarded-User) for the person's name: only behind a "
        "reverse proxy that sets it and strips it from clients")
    proxy_reviewers: list[str] = Field(
        default_factory=list, description="identities (from identity_header) with the reviewer role; others view")
    secret: SecretStr | None = Field(
        None, description="signs session cookies and CSRF tokens; empty: a random one per process (sessions end "
        "with a restart)")
    session_s: int = Field(12 * 3600, gt=0, description="how long a login lasts: a working day")
    recordings: Path = Field(Path("."), description="the folder whose recordings the replay page offers")
    window_s: float = Field(60.0, gt=0, description="the fleet page's sliding window (as `swarmstream top`)")
    refresh_s: float = Field(1.0, gt=0, description="how often live pages get an update (server-sent events)")

    @model_validator(mode="after")
    def _someone_can_log_in(self) -> ConsoleSettings:
        if not self.users and not self.identity_header:
            raise ValueError("the console needs a way to know who is asking: set SWARM_CONSOLE_USERS "
                             '(JSON: {"ada": {"token": "...", "role": "reviewer"}}) or SWARM_CONSOLE_IDENTITY_HEADER '
                             "(behind a reverse proxy that sets it)")
        return self
