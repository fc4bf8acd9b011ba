"""Secrets never leave a tool call: by key name, by value pattern, verbatim in outputs; and,
through the tool agent, in no audit event, result or log line."""

from __future__ import annotations

import logging

import orjson
import pytest
from swarmstream.agents.tools.redaction import (
    is_secret_key,
    redact_arguments,
    redact_text,
)
from swarmstream.schemas.codec import codec
from swarmstream.streams.engine import InputMessage

from tests.agents.tools.test_agent import make_runner, tool_call


@pytest.mark.parametrize(
    ("key", "secret"),
    [("password", True), ("api_key", True), ("apiKey", True), ("access_token", True), ("Authorization", True),
     ("client_secret", True), ("X-Auth-Header", True), ("pin", True),
     ("max_tokens", False), ("shipping", False), ("spin", False), ("passage", False), ("text", False)],
)
def test_secret_keys_by_whole_words(key, secret) -> None:
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    "value",
    ["sk-proj-abcdefgh12345678", "sk-ant-api03-xyzxyzxyz", "Bearer abcdefghijkl", "AKIAABCDEFGHIJKLMNOP",
     "ghp_abcdefghijklmnopqrstuvwx", "xoxb-1234567890-abc", "eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4f",
     "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"],
)
def test_key_shaped_values_are_redacted_anywhere(value) -> None:
    redacted, found = redact_arguments({"note": f"use {value} now", "nested": [{"deep": value}]})
    assert value not in orjson.dumps(redacted).decode()
    assert value in found


def test_secret_keys_are_redacted_whatever_the_value_and_found_verbatim_later() -> None:
    redacted, found = redact_arguments({"password": "hunter2!", "user": "ada", "max_tokens": 5})
    assert redacted == {"password": "[REDACTED]", "user": "ada", "max_tokens": 5}
    assert redact_text('{"echo": "pw hunter2! ok"}', found) == '{"echo": "pw [REDACTED] ok"}'


async def test_a_secret_argument_appears_in_no_audit_event_result_or_log_line(caplog) -> None:
    secret = "sk-live-" + "x1y2z3" * 4
    runner, emitted, counters = make_runner(echo=True)
    call = tool_call("echo", {"api_key": secret, "text": f"payload {secret}"})
    caplog.set_level(logging.DEBUG)

    await runner.handle(InputMessage("t", 0, 0, b"k", codec().encode(call)))

    assert counters["echo"] == [secret]  # the handler got the real value
    assert emitted, "the runner published nothing"
    for topic, record in emitted:
        assert secret not in record.model_dump_json(), topic
    assert {topic for topic, _ in emitted} == {"results", "audit"}
    assert secret not in caplog.text
