"""The limits of ``schemas/limits.py``: a task at every limit fits, one past any limit is refused
naming the field, on every path a task takes in (the model, JSON intake, Avro intake), and
time fields keep every deadline inside int64."""

from __future__ import annotations

import types
import typing
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from swarmstream.schemas import limits
from swarmstream.schemas.codec import DecodeError, EncodeError, codec, decode_task
from swarmstream.schemas.models import (
    CallRecord,
    ModelRequest,
    ModelResponse,
    StepContext,
    TaskRequest,
)

JSON_HEADER = {"content-type": b"application/json"}


def names(prefix: str, count: int, size: int) -> list[str]:
    """``count`` distinct names of exactly ``size`` bytes."""
    return [f"{prefix}{i:04d}".ljust(size, "x") for i in range(count)]


def largest_task() -> TaskRequest:
    """Every field at its limit."""
    name = "n" * limits.MAX_NAME_BYTES
    return TaskRequest(
        task_id="i" * limits.MAX_ID_BYTES,
        created_ms=limits.MAX_TIME_MS,
        prompt="p" * limits.MAX_PROMPT_BYTES,
        system="s" * limits.MAX_SYSTEM_BYTES,
        labels=names("l", limits.MAX_LABELS, limits.MAX_LABEL_BYTES),
        json_schema="j" * limits.MAX_JSON_SCHEMA_BYTES,
        models=names("m", limits.MAX_MODELS, limits.MAX_NAME_BYTES),
        strategy=name, chain=name, policy=name, tenant=name, category=name, workflow=name, tool_policy=name,
        min_models=limits.MAX_MODELS, max_models=limits.MAX_MODELS,
        timeout_ms=limits.MAX_TIMEOUT_MS,
        max_tokens=1_000_000,
        metadata=dict(zip(names("k", limits.MAX_METADATA_ENTRIES, 128),
                          names("v", limits.MAX_METADATA_ENTRIES, 128), strict=True)),
        hops=names("h", limits.MAX_HOPS, limits.MAX_NAME_BYTES),
        parent_task_id="i" * limits.MAX_ID_BYTES,
        tools=names("t", limits.MAX_TOOLS, limits.MAX_NAME_BYTES),
        max_turns=64, max_tool_calls=1024,
    )


def test_a_task_at_every_limit_fits_the_task_record_limit() -> None:
    task = largest_task()
    data = codec().encode(task)

    assert len(data) <= limits.MAX_TASK_RECORD_BYTES
    assert decode_task(data) == task
    body = orjson.dumps(task.model_dump())
    assert len(body) <= limits.MAX_JSON_TASK_BYTES
    assert decode_task(body, JSON_HEADER) == task


def test_a_model_request_for_the_largest_task_leaves_room_in_a_record() -> None:
    task = largest_task()
    request = ModelRequest(task=task, model_id="m" * limits.MAX_NAME_BYTES, deadline_ms=limits.MAX_DEADLINE_MS,
                           expected_models=names("m", limits.MAX_MODELS, limits.MAX_NAME_BYTES),
                           not_before_ms=limits.MAX_DEADLINE_MS, attempt=limits.INT32_MAX, turn=limits.INT32_MAX)
    data = codec().encode(request)

    assert len(data) <= limits.MAX_RECORD_BYTES - 256 * limits.KiB  # room for a conversation, a result
    assert codec().decode(data) == request


def test_the_exported_record_limits() -> None:
    assert limits.MAX_RECORD_BYTES == 1024 * 1024  # aiokafka's default max_request_size
    assert limits.MAX_TASK_RECORD_BYTES <= limits.MAX_RECORD_BYTES // 2
    assert limits.DEAD_LETTER_PREFIX_BYTES == 64 * 1024


def test_every_text_and_list_field_of_a_task_has_a_limit() -> None:
    """A field added later gets a limit or this fails."""
    for name, field in TaskRequest.model_fields.items():
        annotation = field.annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if annotation is str or (isinstance(annotation, types.UnionType) and args == [str]):
            assert name in limits.TASK_TEXT_LIMITS, name
        elif typing.get_origin(annotation) is list:
            assert name in limits.TASK_LIST_LIMITS or name in limits.CHAT_FIELDS, name
        elif typing.get_origin(annotation) is dict:
            assert name == "metadata", name


OVERSIZED: list[tuple[str, dict[str, Any], str]] = [
    # (case, fields past a limit, the limit's figure the message must give)
    ("task_id", {"task_id": "i" * 257}, "256"),
    ("prompt", {"prompt": "p" * (limits.MAX_PROMPT_BYTES + 1)}, "262,144"),
    ("prompt", {"prompt": "€" * 90_000}, "262,144"),  # 90,000 characters, 270,000 bytes
    ("system", {"system": "s" * (limits.MAX_SYSTEM_BYTES + 1)}, "65,536"),
    ("json_schema", {"json_schema": "{" * (limits.MAX_JSON_SCHEMA_BYTES + 1)}, "32,768"),
    ("tenant", {"tenant": "ü" * 129}, "256"),  # 129 characters, 258 bytes
    ("category", {"category": "c" * 257}, "256"),
    ("strategy", {"strategy": "s" * 257}, "256"),
    ("workflow", {"workflow": "w" * 257}, "256"),
    ("parent_task_id", {"parent_task_id": "p" * 257}, "256"),
    ("tool_policy", {"tool_policy": "t" * 257}, "256"),
    ("labels", {"labels": names("l", limits.MAX_LABELS + 1, 3)}, "256"),
    ("labels[1]", {"labels": ["yes", "n" * 129]}, "128"),
    ("models", {"models": names("m", limits.MAX_MODELS + 1, 3)}, "64"),
    ("models[0]", {"models": ["日" * 86]}, "256"),  # 86 characters, 258 bytes
    ("hops", {"hops": names("h", limits.MAX_HOPS + 1, 3)}, "256"),
    ("tools", {"tools": names("t", limits.MAX_TOOLS + 1, 3)}, "64"),
    ("metadata", {"metadata": {f"k{i}": "v" for i in range(limits.MAX_METADATA_ENTRIES + 1)}}, "64"),
    ("metadata", {"metadata": {"trace": "v" * limits.MAX_METADATA_BYTES}}, "16,384"),
]


@pytest.mark.parametrize(("field", "fields", "limit"), OVERSIZED, ids=[c[0] for c in OVERSIZED])
def test_a_field_past_its_limit_is_refused_naming_it(field: str, fields: dict[str, Any], limit: str) -> None:
    values = {"prompt": "Is 7 prime?", **fields}
    with pytest.raises(ValidationError) as model_error:
        TaskRequest(**values)
    with pytest.raises(DecodeError) as json_error:
        decode_task(orjson.dumps(values), JSON_HEADER)
    unchecked = TaskRequest.model_construct(**TaskRequest(prompt="x").model_dump() | values)
    with pytest.raises(DecodeError) as avro_error:
        decode_task(codec().encode(unchecked))

    for message in (str(model_error.value), str(json_error.value), str(avro_error.value)):
        assert field in message
        assert limit in message


def test_sizes_are_utf8_bytes_not_characters() -> None:
    assert limits.utf8_size("€") == 3
    assert limits.utf8_size("a" * 10) == 10
    TaskRequest(prompt="€" * (limits.MAX_PROMPT_BYTES // 3))  # 262,143 bytes: fits
    TaskRequest(prompt="x", tenant="ü" * 128)  # 256 bytes: fits
    with pytest.raises(ValidationError, match=r"prompt is 262,146 bytes in UTF-8"):
        TaskRequest(prompt="€" * (limits.MAX_PROMPT_BYTES // 3 + 1))


TIMES: list[tuple[dict[str, int], bool]] = [
    ({"created_ms": 0}, True),
    ({"created_ms": -1}, False),
    ({"created_ms": limits.MAX_TIME_MS}, True),
    ({"created_ms": limits.MAX_TIME_MS + 1}, False),
    ({"created_ms": 2**63 - 1}, False),  # used to wrap created_ms + timeout_ms into an instant timeout
    ({"created_ms": 2**63}, False),  # used to pass intake, then never get a result
    ({"timeout_ms": limits.MAX_TIMEOUT_MS}, True),
    ({"timeout_ms": limits.MAX_TIMEOUT_MS + 1}, False),
    ({"timeout_ms": 0}, False),
]


@pytest.mark.parametrize(("fields", "valid"), TIMES, ids=lambda v: str(v))
def test_task_times_are_within_year_9999_and_a_day(fields: dict[str, int], valid: bool) -> None:
    body = orjson.dumps({"prompt": "x", **fields})
    if valid:
        task = decode_task(body, JSON_HEADER)
        assert task.created_ms + task.timeout_ms <= limits.MAX_DEADLINE_MS < limits.INT64_MAX
    else:
        with pytest.raises(DecodeError, match=next(iter(fields))):
            decode_task(body, JSON_HEADER)


def test_a_json_number_too_large_for_a_long_is_refused() -> None:
    with pytest.raises(DecodeError, match="created_ms"):
        decode_task(b'{"prompt": "x", "created_ms": 1e30}', JSON_HEADER)
    with pytest.raises(DecodeError, match="created_ms"):
        decode_task(b'{"prompt": "x", "created_ms": 18446744073709551615}', JSON_HEADER)


def test_every_deadline_is_far_inside_int64() -> None:
    assert limits.MAX_TIME_MS + limits.MAX_TIMEOUT_MS == limits.MAX_DEADLINE_MS
    assert limits.MAX_DEADLINE_MS * 2 < limits.INT64_MAX  # even a sum of two deadlines


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"deadline_ms": limits.MAX_DEADLINE_MS + 1}, "deadline_ms"),
        ({"deadline_ms": -1}, "deadline_ms"),
        ({"not_before_ms": 2**63}, "not_before_ms"),
        ({"attempt": 2**31}, "attempt"),
        ({"turn": -1}, "turn"),
        ({"model_id": "m" * 257}, "model_id"),
        ({"expected_models": names("m", 65, 3)}, "expected_models"),
    ],
)
def test_a_model_request_past_its_bounds_is_refused(fields: dict[str, Any], field: str) -> None:
    values = {"task": TaskRequest(prompt="x"), "model_id": "a", "deadline_ms": 5, **fields}
    with pytest.raises(ValidationError, match=field):
        ModelRequest(**values)


def test_the_writer_refuses_a_long_outside_int64_naming_the_field() -> None:
    with pytest.raises(EncodeError, match=r"CallRecord: cost_micros = 9223372036854775808 is outside"):
        codec().encode(CallRecord(model_id="a", ok=True, at_ms=1, cost_micros=2**63))
    step = StepContext.model_construct(**StepContext(task_id="t", model_id="a", created_ms=1,
                                                     deadline_ms=2).model_dump() | {"deadline_ms": -(2**63) - 1})
    with pytest.raises(EncodeError, match=r"ModelResponse: step\.deadline_ms = "):
        codec().encode(ModelResponse(step=step, text="x", answer="x"))


def test_the_writer_refuses_text_utf8_cannot_hold() -> None:
    with pytest.raises(EncodeError, match="a string is not UTF-8"):
        codec().encode(CallRecord(model_id="lone \ud800 surrogate", ok=True, at_ms=1))


def test_the_writer_takes_both_ends_of_int64() -> None:
    for cost in (2**63 - 1, -(2**63)):
        record = CallRecord(model_id="a", ok=True, at_ms=1, cost_micros=cost)
        assert codec().decode(codec().encode(record)) == record
