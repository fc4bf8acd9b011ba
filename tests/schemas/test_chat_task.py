"""A task's chat (``messages``), the caller's own tools (``client_tools``) and ``reply_to``
(issue 26): optional fields that old readers and writers survive, bounded as one budget."""

from __future__ import annotations

import copy
import io

import fastavro
import orjson
import pytest
from pydantic import ValidationError
from swarmstream.schemas import limits
from swarmstream.schemas.codec import AvroCodec, codec, decode_task, shipped_schemas
from swarmstream.schemas.models import (
    ChatMessage,
    ChatToolCall,
    ClientTool,
    ModelRequest,
    TaskRequest,
)

CHAT_FIELDS = ("messages", "client_tools", "reply_to")

CHAT_TASK = TaskRequest(
    task_id="chat-1", created_ms=1_700_000_000_000, prompt="And times 2?", answer_type="text", mode="single",
    messages=[
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="What is 17 * 23?"),
        ChatMessage(role="assistant", tool_calls=[ChatToolCall(id="call_1", name="calc", arguments='{"x": "17*23"}')]),
        ChatMessage(role="tool", content="391", tool_call_id="call_1"),
        ChatMessage(role="assistant", content="391"),
        ChatMessage(role="user", content="And times 2?"),
    ],
    client_tools=[ClientTool(name="calc", description="arithmetic", parameters='{"type": "object"}')],
    reply_to="swarm.results.gw-a",
)


def schema_without_chat() -> dict:
    older = copy.deepcopy(shipped_schemas()["swarmstream.TaskRequest"])
    older["fields"] = [f for f in older["fields"] if f["name"] not in CHAT_FIELDS]
    return older


def test_a_chat_task_round_trips_avro_json_and_inside_a_model_request() -> None:
    assert codec().decode(codec().encode(CHAT_TASK)) == CHAT_TASK
    assert decode_task(orjson.dumps(CHAT_TASK.model_dump()), {"content-type": b"application/json"}) == CHAT_TASK
    request = ModelRequest(task=CHAT_TASK, model_id="a", deadline_ms=2_000_000_000_000)
    assert codec().decode(codec().encode(request)) == request


def test_an_old_writer_s_task_reads_with_no_chat() -> None:
    older = schema_without_chat()
    plain = TaskRequest(task_id="t", created_ms=1, prompt="2 + 2?")
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(older, named_schemas={}),
                               {k: v for k, v in plain.model_dump().items() if k not in CHAT_FIELDS})
    reader = AvroCodec()
    decoded = reader.decode(b"\xc3\x01" + reader.register_writer(older) + out.getvalue())
    assert decoded == plain
    assert (decoded.messages, decoded.client_tools, decoded.reply_to) == ([], [], None)


def test_an_old_reader_reads_a_chat_task_as_its_prompt() -> None:
    older = fastavro.parse_schema(schema_without_chat(), named_schemas={})
    data = codec().encode(CHAT_TASK)
    writer = fastavro.parse_schema(shipped_schemas()["swarmstream.TaskRequest"], named_schemas={})
    decoded = fastavro.schemaless_reader(io.BytesIO(data[10:]), writer, older)
    assert decoded["prompt"] == "And times 2?"
    assert not set(CHAT_FIELDS) & set(decoded)


def test_the_chat_shares_the_prompt_s_budget_naming_the_limit() -> None:
    half = "x" * (limits.MAX_CHAT_BYTES // 2)
    with pytest.raises(ValidationError, match="MAX_CHAT_BYTES"):
        TaskRequest(prompt=half, messages=[ChatMessage(role="user", content=half)])
    assert TaskRequest(prompt="q", messages=[ChatMessage(role="user", content=half)]).messages[0].content == half
    with pytest.raises(ValidationError, match="messages"):
        TaskRequest(prompt="q", messages=[ChatMessage(role="user", content="q")] * (limits.MAX_MESSAGES + 1))
    with pytest.raises(ValidationError):
        ChatMessage(role="robot", content="hi")
