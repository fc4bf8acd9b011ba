"""Secrets out of everything a tool call leaves behind: audit events, results, log lines.

Two nets, because neither alone is enough:

- by key name: any argument whose key looks like a credential (``password``,
  ``api_key``, ``token``, ``secret``, ``authorization``, ...) is replaced whole,
  whatever its value looks like;
- by value pattern: strings shaped like well-known keys (OpenAI/Anthropic ``sk-...``,
  ``Bearer ...``, AWS access key ids, GitHub and Slack tokens, JWTs, PEM private
  keys) are replaced wherever they appear, in any argument or in a tool's output.

The secret values found in a call's arguments are also removed verbatim from the
tool's output (a tool that echoes its input must not leak what we hid). The raw
arguments exist on ``swarm.tool-calls`` only, which the tool agent needs to run
the call; nothing else is ever built from them unredacted.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

from swarmstream.agents.models.failures import REDACTED

SECRET_WORDS = frozenset({
    "password", "passwd", "passphrase", "secret", "token", "authorization", "credential", "credentials",
    "cookie", "pin", "otp", "ssn", "cvv", "apikey", "bearer",
})
SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("session", "id"),
                          ("client", "secret"), ("card", "number"), ("auth", "header")})
"""Argument names whose value is a secret whatever it looks like, matched by whole words of
the key (``access_token``, ``apiKey``, ``X-Auth-Header``), so ``max_tokens`` or ``shipping``
are not mistaken for one."""

_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_key(key: str) -> bool:
    words = [w.lower() for w in _WORD.findall(key)]
    return any(w in SECRET_WORDS for w in words) or any(pair in SECRET_PAIRS for pair in itertools.pairwise(words))


SECRET_VALUE = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{8,}"  # OpenAI, Anthropic (sk-ant-...)
    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}"
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"  # Slack tokens
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JWT
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
)
"""Values that are secrets wherever they appear."""

MIN_SECRET_CHARS = 4
"""Shorter values under a secret key are still redacted in the arguments, but not hunted
down verbatim in outputs: "1234" would blank every number that happens to contain it."""


def redact_value(value: Any, secrets: list[str] | None = None, *, key: str | None = None) -> Any:
    """A copy of ``value`` with secrets replaced; strings found are appended to ``secrets``."""
    if key is not None and is_secret_key(key) and not isinstance(value, (dict, list)):
        if isinstance(value, str) and secrets is not None and len(value) >= MIN_SECRET_CHARS:
            secrets.append(value)
        return REDACTED if value not in (None, "") else value
    if isinstance(value, dict):
        return {k: redact_value(v, secrets, key=str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, secrets) for v in value]
    if isinstance(value, str):
        if secrets is not None:
            secrets.extend(m.group(0) for m in SECRET_VALUE.finditer(value))
        return SECRET_VALUE.sub(REDACTED, value)
    return value


def redact_arguments(arguments: Any) -> tuple[Any, list[str]]:
    """(the arguments with secrets replaced, the secret strings that were replaced)."""
    found: list[str] = []
    return redact_value(arguments, found), found


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secret strings and without anything shaped like a key."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, REDACTED)
    return SECRET_VALUE.sub(REDACTED, text)
