"""Structured logs (``SWARM_LOG_FORMAT=json``): one JSON object per line, secrets removed.

A line looks like::

    {"at_ms": 1767225600123, "level": "WARNING", "logger": "swarmstream.streams.app.topology",
     "message": "deadline sweeper: 2 overdue outcome(s) ended as timeouts", "task_id": "9f2c..."}

``task_id`` (and ``model_id``, ``topic``, ``partition``, ``offset``, ``trace_id``)
appear when the log call passes them, ``log.warning(..., extra={"task_id": t})``,
so a log search joins lines to the events of one task.

No secrets, by two nets, because a key can reach a log line through any
library's exception text (an HTTP client echoing a header, a config repr):

- every value of an environment variable whose name says it is secret
  (``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``, ``*_CREDENTIALS``)
  is replaced wherever it appears in the line, whatever the log call did;
- text shaped like a credential is masked: ``Authorization``/``x-api-key``
  values, ``Bearer`` tokens, ``sk-...`` keys and ``password=``/``api_key=`` pairs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

REDACTED = "[redacted]"

SECRET_ENV_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)

MIN_SECRET_CHARS = 6
"""Shorter environment values are not hunted for: "on", "1" or "true" under a ``*_TOKEN``
name would redact every occurrence of a common word, and no real key is that short."""

CREDENTIAL_PATTERNS = (
    # header-like: "Authorization: Bearer x", 'x-api-key': 'x', api_key=x, "password": "x"
    re.compile(r"""(?ix)
        (?P<name>authorization|proxy-authorization|x-api-key|api[-_]?key|apikey|access[-_]?token|
                 secret|password|passwd|sasl[-_]plain[-_]password)
        (?P<sep>["']?\s*[:=]\s*)
        (?P<value>"[^"]*"|'[^']*'|(?:bearer\s+|basic\s+)?[^\s"',;}&]+)"""),
    re.compile(r"(?i)\b(?P<name>bearer)(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"(?P<name>)(?P<sep>)(?P<value>\bsk-[A-Za-z0-9_-]{12,})"),
)

CONTEXT_FIELDS = ("task_id", "model_id", "topic", "partition", "offset", "trace_id")
"""``extra=`` keys copied into the line; other extras are left out (they may hold anything)."""


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables whose names say they hold a secret, longest first
    (so a key that contains another is replaced whole)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_ENV_NAME.search(k) and len(v) >= MIN_SECRET_CHARS}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every credential-shaped value replaced."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in CREDENTIAL_PATTERNS:
        text = pattern.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    return text


class JsonFormatter(logging.Formatter):
    """A ``logging.Formatter`` that writes one redacted JSON object per record."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._secrets = secret_values(environ)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at_ms": int(record.created * 1000),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), self._secrets),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, (int, float)) else str(value)
        if record.exc_info or record.exc_text:
            line["error"] = redact(record.exc_text or self.formatException(record.exc_info), self._secrets)
        for name in CONTEXT_FIELDS:
            if isinstance(line.get(name), str):
                line[name] = redact(line[name], self._secrets)
        text = orjson.dumps(line, default=str).decode()
        # Once more on the line as written: a known secret is caught even where a field above
        # was built from pieces that only spell it once joined.
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def use_json_logs(loglevel: str = "warning") -> None:
    """One JSON line per record on stderr for this process (a worker, a CLI tool)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(loglevel.upper())
