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
    Unsupported,
    compile_decoder,
    compile_encoder,
    read_long,
    write_long,
)
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
