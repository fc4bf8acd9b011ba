"""JSON logs: one object per line, the task id when given, and no secret in any line."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import orjson
import pytest
from swarmstream.streams.observe.jsonlog import (
    REDACTED,
    JsonFormatter,
    redact,
    secret_values,
)

API_KEY = "sk-live-4c1f0e9d8b7a6c5d4e3f2a1b0c9d8e7f"
PASSWORD = "hunter2-but-longer"


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("calling with Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
        ("headers={'x-api-key': 'k-0123456789'}", "k-0123456789"),
        ('{"api_key": "plain-secret-value"}', "plain-secret-value"),
        ("sasl_plain_password=topsecretpw", "topsecretpw"),
        ("url?apikey=abc123def456&x=1", "abc123def456"),
        (f"provider said: invalid key {API_KEY}", API_KEY),
        ("password = 'two words'", "two words"),
        ('{"Authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
    ],
)
def test_credential_shaped_text_is_masked(text: str, leaked: str) -> None:
    out = redact(text)
    assert leaked not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "text",
    ["deadline sweeper: 3 overdue outcome(s) ended as timeouts", "model fast-a: server_error (HTTP 500)",
     "task 9f2c1d answered by sk-model"],  # ordinary words are left alone
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


def test_only_secret_looking_variables_with_real_values_are_hunted() -> None:
    env = {"SWARM_TEST_OPENAI_KEY": API_KEY, "SWARM_BROKER_SASL_PASSWORD": PASSWORD, "GITHUB_TOKEN": "1",
           "SWARM_TOPIC_PREFIX": "swarm-abcdef", "HOME": "/root/keyring"}
    assert secret_values(env) == sorted([API_KEY, PASSWORD], key=len, reverse=True)


def json_lines(handler_stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in handler_stream.getvalue().splitlines()]


def test_a_record_carrying_an_api_key_reaches_no_line() -> None:
    env = {"SWARM_TEST_OPENAI_KEY": API_KEY, "SWARM_BROKER_SASL_PASSWORD": PASSWORD}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(env))
    log = logging.getLogger("test.jsonlog")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("calling %s with key %s", "fast-a", API_KEY, extra={"task_id": "t-1", "model_id": "fast-a"})
        log.warning("config %r", {"headers": {"authorization": f"Bearer {API_KEY}"}, "sasl": PASSWORD},
                    extra={"task_id": "t-2", "unrelated": API_KEY})
        try:
            raise RuntimeError(f"upstream rejected key {API_KEY[:10]}" + API_KEY[10:])
        except RuntimeError:
            log.exception("call failed", extra={"task_id": "t-3", "partition": 2, "offset": 17})
        log.warning("no task here")
    finally:
        log.removeHandler(handler)

    output = stream.getvalue()
    assert API_KEY not in output and API_KEY[10:] not in output
    assert PASSWORD not in output
    lines = json_lines(stream)
    assert [line.get("task_id") for line in lines] == ["t-1", "t-2", "t-3", None]
    assert lines[0]["model_id"] == "fast-a" and lines[0]["level"] == "WARNING"
    assert lines[0]["logger"] == "test.jsonlog" and isinstance(lines[0]["at_ms"], int)
    assert "unrelated" not in lines[1]  # extras outside the known context fields never reach a line
    assert (lines[2]["partition"], lines[2]["offset"]) == (2, 17)
    assert "RuntimeError" in str(lines[2]["error"]) and REDACTED in str(lines[2]["error"])
    assert lines[0]["message"] == f"calling fast-a with key {REDACTED}"


async def test_a_worker_with_json_logs_writes_only_json_lines(make_stack, tmp_path: Path) -> None:
    async with make_stack(workers=0, log_format="json") as stack:
        worker = stack.start_worker(SWARM_WORKER_LOGLEVEL="info", SWARM_TEST_OPENAI_KEY=API_KEY)
        await stack.wait_ready()
        worker.stop()
    lines = (tmp_path / "worker-0.log").read_bytes().splitlines()
    parsed = [orjson.loads(line) for line in lines if line.strip()]  # fails on any line that is not JSON
    assert len(parsed) > 5  # the consumer group logs its start-up at info: the check saw real lines
    assert {"at_ms", "level", "logger", "message"} <= set(parsed[0])
    assert API_KEY.encode() not in b"".join(lines)
