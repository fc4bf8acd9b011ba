"""Hostile input never crashes a decoder or a loader: it becomes a clear error.

A fixed example budget keeps the suite fast and the run reproducible in CI. The decoders'
time is linear in their input (``schemas/compiled.py``); these tests do not time them (the
benchmark does: ``swarmstream bench codec``), but inputs that were quadratic before
issue 20 run here at 1 MiB, so a regression would show as a test that does not end."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swarmstream.agents.fallback.chains import ChainsError, load_chains
from swarmstream.agents.models.catalog import CatalogError, load_catalog
from swarmstream.agents.models.failures import ProviderError
from swarmstream.agents.models.parsing import parse_answer
from swarmstream.schemas.codec import AvroCodec, DecodeError, codec, decode_task, fingerprint, shipped_schemas
from swarmstream.schemas.compiled import write_long
from swarmstream.schemas.limits import MAX_JSON_DEPTH, MAX_JSON_TASK_BYTES, MAX_RECORD_BYTES, MAX_TASK_RECORD_BYTES
from swarmstream.schemas.models import Record, TaskRequest

BUDGET = settings(max_examples=300, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON_HEADER = {"content-type": b"application/json"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


@BUDGET
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_a_decode_error_or_a_record(data: bytes) -> None:
    try:
        codec().decode(data)
    except DecodeError as exc:
        assert str(exc)


@BUDGET
@given(st.binary(min_size=1, max_size=64))
def test_a_valid_record_with_corrupted_tail_never_crashes(noise: bytes) -> None:
    good = codec().encode(TaskRequest(prompt="hello", labels=["a", "b"]))
    for data in (good[:-len(noise)] + noise, good + noise, good[:10] + noise):
        try:
            codec().decode(data)
        except DecodeError:
            pass


@BUDGET
@given(json_values)
def test_any_json_task_is_a_task_or_a_decode_error(value: object) -> None:
    try:
        task = decode_task(json.dumps(value).encode(), JSON_HEADER)  # stdlib: big ints too
    except DecodeError as exc:
        assert str(exc)
    else:
        assert task.prompt.strip()


@BUDGET
@given(st.text(max_size=300), st.sampled_from(["label", "number", "json", "text"]))
def test_any_model_text_parses_or_is_invalid_output(text: str, answer_type: str) -> None:
    try:
        parse_answer(text, answer_type, labels=("cat", "dog"))
    except ProviderError as exc:
        assert exc.failure_class == "invalid_output"


def test_deep_json_and_huge_prompts_are_refused_cleanly() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(DecodeError, match="nested deeper"):
        decode_task(deep, JSON_HEADER)
    huge = orjson.dumps({"prompt": "x" * 300_000})
    with pytest.raises(DecodeError, match="prompt is 300,000 bytes"):
        decode_task(huge, JSON_HEADER)
    too_big = orjson.dumps({"prompt": "x" * 2_000_000})
    with pytest.raises(DecodeError, match="JSON task is 2,000,013 bytes"):
        decode_task(too_big, JSON_HEADER)
    bad_unicode = b'{"prompt": "\\ud800 lone surrogate"}'
    try:
        decode_task(bad_unicode, JSON_HEADER)
    except DecodeError:
        pass


# --- Avro: bytes after a valid marker and fingerprint ------------------------------------

SHIPPED_HEADS = sorted(b"\xc3\x01" + fingerprint(schema) for schema in shipped_schemas().values())


def other_writers() -> tuple[AvroCodec, list[bytes]]:
    """A reader taught writer schemas it does not ship, so their records go through the wire
    checker and fastavro: a newer TaskResult, and a schema of every Avro type."""
    reader = AvroCodec()
    newer = copy.deepcopy(shipped_schemas()["swarmstream.TaskResult"])
    newer["fields"].append({"name": "reviewer", "type": ["null", "string"], "default": None})
    every_type = {"type": "record", "name": "Every", "namespace": "hostile", "fields": [
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["a", "b"]}},
        {"name": "f", "type": {"type": "fixed", "name": "F", "size": 4}},
        {"name": "u", "type": ["null", "long", "string", "E"]},
        {"name": "n", "type": {"type": "array", "items": "null"}},
        {"name": "m", "type": {"type": "map", "values": {"type": "array", "items": "double"}}},
        {"name": "b", "type": "bytes"}, {"name": "x", "type": "float"}, {"name": "t", "type": "boolean"},
    ]}
    return reader, [b"\xc3\x01" + reader.register_writer(newer), b"\xc3\x01" + reader.register_writer(every_type)]


OTHER_READER, OTHER_HEADS = other_writers()


@BUDGET
@given(st.sampled_from(SHIPPED_HEADS), st.binary(max_size=4096))
def test_any_bytes_after_a_shipped_fingerprint_are_a_record_or_a_decode_error(head: bytes, body: bytes) -> None:
    try:
        record = codec().decode(head + body)
    except DecodeError as exc:
        assert str(exc)
    else:
        assert isinstance(record, Record)


@BUDGET
@given(st.sampled_from(OTHER_HEADS), st.binary(max_size=4096))
def test_any_bytes_after_another_writers_fingerprint_are_a_value_or_a_decode_error(head: bytes, body: bytes) -> None:
    """The fastavro path: fastavro raises many types on corrupt input, and reads bytes the
    wire checker refuses (a 20-byte varint, 2**63 as 0); none of it may pass."""
    try:
        OTHER_READER.decode_raw(head + body)
    except DecodeError as exc:
        assert str(exc)


@pytest.mark.parametrize("fill", [b"\xff", b"\x80", b"random"])
def test_a_1mib_crafted_record_after_any_fingerprint_is_a_decode_error(fill: bytes) -> None:
    """Issue 20's record: marker + fingerprint + a run of 0xFF (quadratic before: 512 KiB froze a
    worker ~15 s). At 1 MiB, the most a record may be, after every fingerprint known."""
    size = MAX_RECORD_BYTES - 10
    run = random.Random(20).randbytes(size) if fill == b"random" else fill * size
    for head in SHIPPED_HEADS:
        with pytest.raises(DecodeError):
            codec().decode(head + run)
    for head in OTHER_HEADS:
        with pytest.raises(DecodeError):
            OTHER_READER.decode_raw(head + run)


def test_a_1mib_record_of_one_byte_items_is_refused_by_the_array_limit() -> None:
    """A million empty labels: linear already, but ~0.4 s of Python loop before the model
    refused the list; the per-array limit stops the reader after 4,096."""
    body = bytearray(b"\x02t\x0a\x02x\x00\x0alabel")  # task_id, created_ms, prompt, system, answer_type
    count = MAX_RECORD_BYTES - 10 - len(body) - 8
    write_long(body, count)
    data = codec().encode(TaskRequest(prompt="x"))[:10] + bytes(body) + b"\x00" * count
    with pytest.raises(DecodeError, match="more than 4096 items in one array"):
        codec().decode(data)


def test_a_record_over_the_limit_is_refused_before_it_is_read() -> None:
    good = codec().encode(TaskRequest(prompt="x"))
    with pytest.raises(DecodeError, match="record is 1,048,577 bytes, over the limit of 1,048,576"):
        codec().decode(good + b"\x00" * (MAX_RECORD_BYTES + 1 - len(good)))
    with pytest.raises(DecodeError, match="over the limit of 524,288"):
        decode_task(good + b"\x00" * MAX_TASK_RECORD_BYTES)


LONG_SCHEMA = {"type": "record", "name": "L", "namespace": "hostile", "fields": [{"name": "n", "type": "long"}]}
LONGS = [
    ("feffffffffffffffff01", 2**63 - 1),
    ("ffffffffffffffffff01", -(2**63)),
    ("80808080808080808002", None),  # 2**63
    ("81808080808080808002", None),  # -2**63 - 1
    ("ffffffffffffffffffffff01", None),  # 12 bytes
]


@pytest.mark.parametrize(("hex_bytes", "value"), LONGS)
def test_long_boundaries_on_the_fastavro_path(hex_bytes: str, value: int | None) -> None:
    reader = AvroCodec()
    data = b"\xc3\x01" + reader.register_writer(LONG_SCHEMA) + bytes.fromhex(hex_bytes)
    if value is None:
        with pytest.raises(DecodeError, match="outside the long range"):
            reader.decode_raw(data)
    else:
        assert reader.decode_raw(data) == ("hostile.L", {"n": value})


@pytest.mark.parametrize(("hex_bytes", "value"), LONGS)
def test_long_boundaries_on_the_compiled_path(hex_bytes: str, value: int | None) -> None:
    """``created_ms``, the task's second field, as any long: in range it is read (and the model
    then refuses a time past year 9999), out of range it is corrupt."""
    good = codec().encode(TaskRequest(task_id="t", created_ms=5, prompt="x"))
    assert good[12] == 10  # zig-zag 5, one byte, after the task id's two
    data = good[:12] + bytes.fromhex(hex_bytes) + good[13:]
    if value is None:
        with pytest.raises(DecodeError, match="outside the long range"):
            codec().decode_raw(data)
    else:
        assert codec().decode_raw(data)[1]["created_ms"] == value
        with pytest.raises(DecodeError, match="created_ms"):
            decode_task(data)


# --- JSON intake ----------------------------------------------------------------------------

header_keys = st.one_of(st.none(), st.just("content-type"), st.just("Content-Type"), st.text(max_size=20),
                        st.binary(max_size=20), st.just(b"content-type"), st.integers())
header_values = st.one_of(st.none(), st.just(b"application/json"), st.just("application/json"), st.binary(max_size=30),
                          st.text(max_size=30), st.integers())
headers = st.one_of(
    st.none(),
    st.lists(st.tuples(header_keys, header_values), max_size=4),
    st.dictionaries(st.text(max_size=20) | st.just("content-type"), header_values, max_size=4),
    st.lists(st.one_of(st.integers(), st.tuples(header_keys)), max_size=3),  # not pairs at all
)
bodies = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                   st.just(orjson.dumps({"prompt": "hi"})))
record_keys = st.one_of(st.none(), st.binary(max_size=20), st.text(max_size=20))


@BUDGET
@given(bodies, headers, record_keys)
def test_any_body_headers_and_key_are_a_task_or_a_decode_error(body: bytes, headers: Any, key: Any) -> None:
    try:
        task = decode_task(body, headers, key=key)
    except DecodeError as exc:
        assert str(exc)
    else:
        assert task.prompt.strip()


def test_a_content_type_header_without_a_value_is_absent() -> None:
    body = orjson.dumps({"prompt": "hi"})
    for headers in ([("content-type", None)], {"content-type": None}, [(None, b"application/json")]):
        with pytest.raises(DecodeError, match="marker"):  # not JSON, so Avro: and not Avro either
            decode_task(body, headers)
    task = decode_task(body, [("content-type", None), ("Content-Type", b"application/json")])
    assert task.prompt == "hi"


def test_a_record_key_that_is_not_utf8_is_a_decode_error() -> None:
    body = orjson.dumps({"prompt": "hi"})
    with pytest.raises(DecodeError, match="record key is not UTF-8"):
        decode_task(body, JSON_HEADER, key=b"\xff\xfe")
    assert decode_task(body, JSON_HEADER, key=None).task_id  # generated
    assert decode_task(orjson.dumps({"prompt": "hi", "task_id": "t"}), JSON_HEADER, key=b"\xff").task_id == "t"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_a_clear_decode_error(literal: bytes) -> None:
    with pytest.raises(DecodeError, match="NaN and Infinity are not JSON"):
        decode_task(b'{"prompt": "x", "max_tokens": ' + literal + b"}", JSON_HEADER)
    with pytest.raises(DecodeError, match="infinity"):
        decode_task(b'{"prompt": "x", "max_tokens": 1e999}', JSON_HEADER)


@pytest.mark.parametrize(("body", "shape"), [(b"[1, 2]", "an array"), (b"3", "a number"), (b'"x"', "a string"),
                                             (b"null", "null"), (b"true", "a boolean"), (b"1.5", "a number")])
def test_a_json_task_that_is_not_an_object_is_a_decode_error(body: bytes, shape: str) -> None:
    with pytest.raises(DecodeError, match=f"must be an object, got {shape}"):
        decode_task(body, JSON_HEADER)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100, 1_000, 1_100, 150_000])
def test_json_nested_past_the_limit_is_a_decode_error(depth: int) -> None:
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    with pytest.raises(DecodeError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        decode_task(nested, JSON_HEADER)
    in_a_field = b'{"prompt": "x", "metadata": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    with pytest.raises(DecodeError, match="nested deeper"):
        decode_task(in_a_field, JSON_HEADER)


def test_json_at_the_depth_limit_reaches_the_model() -> None:
    nested = b'{"prompt": "x", "metadata": ' + b'{"a":' * (MAX_JSON_DEPTH - 1) + b"1" + b"}" * MAX_JSON_DEPTH
    with pytest.raises(DecodeError, match="metadata"):
        decode_task(nested, JSON_HEADER)


def test_json_over_the_size_limit_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def parse(_: bytes) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(orjson, "loads", parse)
    with pytest.raises(DecodeError, match="over the limit of 1,048,576"):
        decode_task(b" " * (MAX_JSON_TASK_BYTES + 1), JSON_HEADER)


def test_wide_json_is_refused_by_the_list_limit() -> None:
    labels = b",".join([b'"a"'] * 200_000)
    with pytest.raises(DecodeError, match="labels"):
        decode_task(b'{"prompt": "x", "labels": [' + labels + b"]}", JSON_HEADER)


@BUDGET
@given(st.text(max_size=400))
def test_any_yaml_text_is_a_catalog_or_a_catalog_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "models.yaml"
    path.write_text(text)
    try:
        load_catalog(path)
    except CatalogError as exc:
        assert "models.yaml" in str(exc)
    try:
        load_chains(path, known_models={"a": 8192})
    except ChainsError as exc:
        assert "models.yaml" in str(exc)
