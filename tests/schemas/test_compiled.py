"""The compiled Avro functions write and read exactly what fastavro does, on every shipped schema.

Values are generated from each schema (every field, null and non-null branches, empty and
long arrays, multi-byte varints, non-ASCII text), so a schema added later is covered too."""

from __future__ import annotations

import io
import struct
from types import SimpleNamespace
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from swarmstream.schemas.codec import HEADER_BYTES, codec, shipped_schemas
from swarmstream.schemas.compiled import (
    LongOutOfRange,
    Unsupported,
    compile_decoder,
    compile_encoder,
    read_count,
    read_long,
    read_size,
    wire_checker,
    write_long,
)
from swarmstream.schemas.limits import MAX_ARRAY_ITEMS
from swarmstream.schemas.models import (
    CastVote,
    ModelRequest,
    ModelResponse,
    StepContext,
    StepOutput,
    TaskRequest,
    TaskResult,
)

BUDGET = settings(max_examples=60, deadline=None, derandomize=True)
PARSED = {name: fastavro.parse_schema(schema, named_schemas={}) for name, schema in shipped_schemas().items()}


def values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any value of ``schema`` as fastavro takes it (a dict per record)."""
    if isinstance(schema, list):
        return st.one_of(*(values(branch, named) for branch in schema))
    kind = schema if isinstance(schema, str) else schema["type"]
    primitives: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(), "boolean": st.booleans(), "int": st.integers(-2**31, 2**31 - 1),
        "long": st.integers(-2**63, 2**63 - 1), "double": st.floats(allow_nan=False),
        "float": st.floats(allow_nan=False, width=32), "string": st.text(max_size=80), "bytes": st.binary(max_size=80),
    }
    if kind in primitives:
        return primitives[kind]
    if kind in named:
        return st.deferred(lambda: named[kind])
    if kind == "array":
        return st.lists(values(schema["items"], named), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), values(schema["values"], named), max_size=3)
    assert kind == "record", kind
    record = st.fixed_dictionaries({f["name"]: values(f["type"], named) for f in schema["fields"]})
    named[schema["name"]] = record
    return record


def fastavro_bytes(schema: Any, value: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, value)
    return out.getvalue()


def as_attributes(schema: Any, value: Any, named: dict[str, Any]) -> Any:
    """The dict value with every record turned into an object with attributes (as a model has)."""
    if value is None:
        return None
    if isinstance(schema, list):
        branch = next(b for b in schema if b != "null")
        return as_attributes(branch, value, named)
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind in named:
        return as_attributes(named[kind], value, named)
    if kind == "array":
        return [as_attributes(schema["items"], v, named) for v in value]
    if kind == "map":
        return {k: as_attributes(schema["values"], v, named) for k, v in value.items()}
    if kind == "record":
        named[schema["name"]] = schema
        return SimpleNamespace(**{f["name"]: as_attributes(f["type"], value[f["name"]], named) for f in schema["fields"]})
    return value


@pytest.mark.parametrize("name", sorted(PARSED))
def test_every_shipped_schema_compiles(name: str) -> None:
    compile_encoder(PARSED[name])
    compile_decoder(PARSED[name])


@pytest.mark.parametrize("name", sorted(PARSED))
def test_bytes_and_values_match_fastavro(name: str) -> None:
    schema = PARSED[name]
    encode_dict, encode_attrs, decode = compile_encoder(schema, attrs=False), compile_encoder(schema), compile_decoder(schema)

    @BUDGET
    @given(values(schema, {}))
    def check(value: dict[str, Any]) -> None:
        expected = fastavro_bytes(schema, value)
        out = bytearray(b"head")
        encode_dict(value, out)
        assert bytes(out) == b"head" + expected
        out = bytearray()
        encode_attrs(as_attributes(schema, value, {}), out)
        assert bytes(out) == expected
        assert decode(b"head" + expected, 4) == fastavro.schemaless_reader(io.BytesIO(expected), schema, None)

    check()


@BUDGET
@given(st.integers(-2**63, 2**63 - 1))
def test_a_long_reads_back_as_written(n: int) -> None:
    out = bytearray()
    write_long(out, n)
    assert read_long(bytes(out), 0) == (n, len(out))
    assert bytes(out) == fastavro_bytes("long", n)


@BUDGET
@given(st.binary(max_size=64), st.integers(0, 300))
def test_on_corrupt_bytes_the_compiled_reader_fails_or_agrees_with_fastavro(noise: bytes, cut: int) -> None:
    """The codec falls back to fastavro when the compiled reader raises one of these; where it
    does not raise, it must have read what fastavro reads."""
    schema = PARSED["swarmstream.ModelRequest"]
    good = codec().encode(request())[HEADER_BYTES:]
    data = good[:cut] + noise
    try:
        ours = compile_decoder(schema)(data, 0)
    except (ValueError, IndexError, struct.error):  # what the codec falls back on
        return
    assert ours == fastavro.schemaless_reader(io.BytesIO(data), schema, None)


def request() -> ModelRequest:
    task = TaskRequest(task_id="t-ü-1", prompt="Is 7 prime? " * 20, labels=["yes", "no"], models=["a", "b", "c"],
                       created_ms=1_780_000_000_000, max_tokens=300, category="math")
    return ModelRequest(task=task, model_id="a", deadline_ms=task.created_ms + 30_000, expected_models=["a", "b", "c"])


def test_the_codec_writes_models_as_fastavro_writes_their_dump() -> None:
    req = request()
    step = StepContext.of(req)
    records = [
        req.task,
        req,
        ModelResponse(step=step, text="yes", answer="yes", confidence=0.25, latency_ms=-5, cost_micros=2**40),
        TaskResult(task_id="t", status="ok", votes=[CastVote(model_id="a", answer="yes", weight=0.5)],
                   steps=[StepOutput(step="s", kind="model", answer=None, child_task_id="c")], path=["a", "b"]),
    ]
    for record in records:
        data = codec().encode(record)
        assert data[HEADER_BYTES:] == fastavro_bytes(PARSED[record.avro_name], record.model_dump())
        assert codec().decode(data) == record


def test_a_union_other_than_null_and_a_primitive_is_left_to_fastavro() -> None:
    schema = fastavro.parse_schema({"type": "record", "name": "x.U", "fields": [
        {"name": "v", "type": ["null", "string", "long"]}]}, named_schemas={})
    with pytest.raises(Unsupported):
        compile_encoder(schema)
    with pytest.raises(Unsupported):
        compile_decoder(schema)


VARINTS: list[tuple[str, int | None]] = [
    # (bytes in hex, the long they hold; None: not a long)
    ("00", 0),
    ("01", -1),
    ("feffffffffffffffff01", 2**63 - 1),
    ("ffffffffffffffffff01", -(2**63)),
    ("80808080808080808002", None),  # 2**63: zig-zag 2**64, one bit past int64 (fastavro reads 0)
    ("81808080808080808002", None),  # -2**63 - 1 (fastavro reads -1)
    ("ffffffffffffffffff7f", None),  # bits 64..69 set
    ("ffffffffffffffffffff01", None),  # 11 bytes
    ("80808080808080808000", 0),  # 10 bytes, not the shortest form: still a long
]


@pytest.mark.parametrize(("hex_bytes", "value"), VARINTS)
def test_a_varint_is_at_most_10_bytes_and_within_int64(hex_bytes: str, value: int | None) -> None:
    data = bytes.fromhex(hex_bytes)
    if value is None:
        with pytest.raises(ValueError, match="longer than 10 bytes or outside the long range"):
            read_long(data, 0)
    else:
        assert read_long(data, 0) == (value, len(data))


def test_a_run_of_continuation_bytes_is_refused_at_its_11th_byte() -> None:
    """The quadratic case of issue 20: the reader stops after 10 bytes, however long the run."""
    with pytest.raises(ValueError, match="the varint at byte 3 "):
        read_long(b"abc" + b"\xff" * (1024 * 1024), 3)


@pytest.mark.parametrize("n", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_the_writer_refuses_a_long_outside_int64(n: int) -> None:
    with pytest.raises(LongOutOfRange, match=str(n)):
        write_long(bytearray(), n)


def test_a_length_is_at_most_the_bytes_left() -> None:
    out = bytearray()
    write_long(out, 5)
    assert read_size(bytes(out) + b"12345", 0) == (5, 1)
    with pytest.raises(ValueError, match="a length of 5 at byte 1, with 4 bytes left"):
        read_size(bytes(out) + b"1234", 0)
    with pytest.raises(ValueError, match="a length of -1"):
        read_size(b"\x01", 0)


def test_a_block_count_is_at_most_the_bytes_left() -> None:
    out = bytearray()
    write_long(out, 2**40)
    with pytest.raises(ValueError, match="a block of 1099511627776 items"):
        read_count(bytes(out) + b"\x00" * 100, 0)
    out = bytearray()
    write_long(out, -3)  # a negative count: the block's size in bytes follows
    write_long(out, 3)
    assert read_count(bytes(out) + b"abc", 0) == (3, 2)


def test_an_array_longer_than_the_limit_is_refused_over_many_blocks() -> None:
    schema = fastavro.parse_schema({"type": "record", "name": "x.A", "fields": [
        {"name": "v", "type": {"type": "array", "items": "long"}}]}, named_schemas={})
    block = bytes([63 << 1]) + b"\x00" * 63
    fits = block * (MAX_ARRAY_ITEMS // 63) + b"\x00"
    assert len(compile_decoder(schema)(fits, 0)["v"]) == MAX_ARRAY_ITEMS // 63 * 63
    assert wire_checker(schema)(fits, 0) == len(fits)
    past = block * (MAX_ARRAY_ITEMS // 63 + 1) + b"\x00"
    for reader in (compile_decoder(schema), wire_checker(schema)):
        with pytest.raises(ValueError, match="MAX_ARRAY_ITEMS"):
            reader(past, 0)


def test_a_boolean_is_one_byte_of_0_or_1() -> None:
    schema = fastavro.parse_schema({"type": "record", "name": "x.B", "fields": [
        {"name": "v", "type": "boolean"}]}, named_schemas={})
    assert compile_decoder(schema)(b"\x01", 0) == {"v": True}
    for reader in (compile_decoder(schema), wire_checker(schema)):
        with pytest.raises(ValueError, match="boolean byte 2"):
            reader(b"\x02", 0)


def test_an_array_whose_items_take_no_bytes_is_left_to_fastavro() -> None:
    """Its count cannot be bounded by the bytes left, so the compiled readers refuse the schema."""
    schema = fastavro.parse_schema({"type": "record", "name": "x.N", "fields": [
        {"name": "v", "type": {"type": "array", "items": "null"}}]}, named_schemas={})
    with pytest.raises(Unsupported, match="no bytes"):
        compile_decoder(schema)
    check = wire_checker(schema)
    ten = bytes([10 << 1]) + b"\x00"
    assert check(ten, 0) == len(ten)
    with pytest.raises(ValueError, match="MAX_ARRAY_ITEMS"):  # a million nulls in three bytes
        check(b"\x80\x89\x7a\x00", 0)


def test_arrays_nested_in_arrays_cannot_multiply_the_per_array_bound() -> None:
    """4,096 arrays of 4,096 nulls would be 16 million items from 12 KiB: the record-wide
    allowance (its bytes plus MAX_ARRAY_ITEMS) stops it after the first."""
    schema = fastavro.parse_schema({"type": "record", "name": "x.M", "fields": [
        {"name": "v", "type": {"type": "array", "items": {"type": "array", "items": "null"}}}]}, named_schemas={})
    inner = bytearray()
    write_long(inner, MAX_ARRAY_ITEMS)
    inner += b"\x00"
    outer = bytearray()
    write_long(outer, MAX_ARRAY_ITEMS)
    data = bytes(outer) + bytes(inner) * MAX_ARRAY_ITEMS + b"\x00"
    with pytest.raises(ValueError, match="more items in all"):
        wire_checker(schema)(data, 0)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_the_wire_checker_walks_what_the_compiled_reader_reads(name: str) -> None:
    schema = PARSED[name]
    check = wire_checker(schema)

    @BUDGET
    @given(values(schema, {}))
    def walk(value: dict[str, Any]) -> None:
        data = b"head" + fastavro_bytes(schema, value)
        assert check(data, 4) == len(data)

    walk()


@BUDGET
@given(st.binary(max_size=64), st.integers(0, 300))
def test_the_wire_checker_passes_only_bytes_fastavro_reads_the_same_way(noise: bytes, cut: int) -> None:
    schema = PARSED["swarmstream.ModelRequest"]
    good = codec().encode(request())[HEADER_BYTES:]
    data = good[:cut] + noise
    try:
        end = wire_checker(schema)(data, 0)
    except (ValueError, IndexError):
        return
    try:
        ours = compile_decoder(schema)(data, 0)
    except UnicodeDecodeError:  # the checker does not decode text: fastavro says that
        return
    assert end <= len(data)
    assert ours == fastavro.schemaless_reader(io.BytesIO(data), schema, None)
