"""The Avro wire format: single-object encoding, so no registry is needed.

Every value on a swarmstream topic is ``C3 01`` + the writer schema's
CRC-64-AVRO fingerprint (8 bytes, little-endian) + the Avro binary record, as
the Avro specification's "single object encoding" defines it. A reader looks
the fingerprint up among the schemas it knows (every ``.avsc`` shipped here,
plus any it is given with :meth:`AvroCodec.register_writer`) and resolves the
writer's schema into its own, so old and new schema versions coexist on one
topic.

``swarm.tasks`` also accepts JSON when the record carries the header
``content-type: application/json`` (see :func:`decode_task`), so a service in
any language can publish a task with a plain Kafka client.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import fastavro
import orjson
from fastavro.schema import to_parsing_canonical_form
from pydantic import ValidationError

from .compiled import Decoder, Encoder, compile_decoder, compile_encoder
from .models import RECORDS, Record, TaskRequest

MAGIC = b"\xc3\x01"
HEADER_BYTES = 10
JSON_CONTENT_TYPE = "application/json"

R = TypeVar("R", bound=Record)


class DecodeError(ValueError):
    """An event that cannot become a record: the reason names what is wrong."""


def _fingerprint_table() -> list[int]:
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    return table


_FP_TABLE = _fingerprint_table()


def crc64_avro(data: bytes) -> int:
    """The Rabin fingerprint the Avro spec names CRC-64-AVRO."""
    fp = 0xC15D213AA4D7A795
    for byte in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def fingerprint(schema: Mapping[str, Any]) -> bytes:
    """The 8 bytes that follow the marker: fingerprint of the parsing canonical form."""
    canonical = to_parsing_canonical_form(fastavro.parse_schema(dict(schema), named_schemas={}))
    return crc64_avro(canonical.encode()).to_bytes(8, "little")


def _expand(node: Any, defs: Mapping[str, Any], seen: set[str]) -> Any:
    """Inline named types defined in sibling files, so each schema stands alone
    (a fingerprint must cover everything the writer used)."""
    if isinstance(node, str):
        if node in defs and node not in seen:
            seen.add(node)
            return _expand(defs[node], defs, seen)
        return node
    if isinstance(node, list):
        return [_expand(item, defs, seen) for item in node]
    if isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed"):
            seen.add(f"{node.get('namespace', 'swarmstream')}.{node['name']}")
        return {key: _expand(value, defs, seen) if key in ("type", "fields", "items", "values") else value
                for key, value in node.items()}
    return node


@cache
def shipped_schemas() -> dict[str, dict[str, Any]]:
    """Every ``.avsc`` in this package, by full name, with references inlined."""
    raw: dict[str, Any] = {}
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith(".avsc"):
            schema = json.loads(entry.read_text())
            raw[f"{schema['namespace']}.{schema['name']}"] = schema
    return {name: _expand(schema, raw, {name}) for name, schema in raw.items()}


@dataclass(frozen=True)
class _Writer:
    name: str
    parsed: Any
    compiled: Decoder | None = None  # a shipped schema's: writer and reader are one


class AvroCodec:
    """Encodes records with the shipped schemas; decodes any known writer schema.

    The shipped schemas go through functions compiled from them (``compiled.py``, ~3x
    faster than fastavro on the pipeline's records); fastavro resolves other writers'
    schemas and has the last word on bytes the compiled reader rejects."""

    def __init__(self) -> None:
        self._readers: dict[str, Any] = {}
        self._writer_fp: dict[str, bytes] = {}
        self._writers: dict[bytes, _Writer] = {}
        self._encoders: dict[str, Encoder] = {}
        self._models: dict[str, type[Record]] = {cls.avro_name: cls for cls in RECORDS}
        for name, schema in shipped_schemas().items():
            parsed = fastavro.parse_schema(schema, named_schemas={})
            fp = fingerprint(schema)
            self._readers[name] = parsed
            self._writer_fp[name] = fp
            self._encoders[name] = compile_encoder(parsed)  # a shape it does not know fails here, at import
            self._writers[fp] = _Writer(name, parsed, compile_decoder(parsed))

    def register_writer(self, schema: Mapping[str, Any]) -> bytes:
        """Teach this reader another version of a schema (for example a newer one
        a producer elsewhere writes); returns its fingerprint."""
        fp = fingerprint(schema)
        name = f"{schema.get('namespace', 'swarmstream')}.{schema['name']}"
        self._writers[fp] = _Writer(name, fastavro.parse_schema(dict(schema), named_schemas={}))
        return fp

    def encode(self, record: Record) -> bytes:
        name = record.avro_name
        out = bytearray(MAGIC)
        out += self._writer_fp[name]
        self._encoders[name](record, out)
        return bytes(out)

    def decode_raw(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Bytes -> (record name, dict in this reader's schema)."""
        if len(data) < HEADER_BYTES or data[:2] != MAGIC:
            raise DecodeError("not Avro single-object encoding (missing C3 01 marker)")
        writer = self._writers.get(data[2:HEADER_BYTES])
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {data[2:HEADER_BYTES].hex()}")
        if writer.compiled is not None:
            try:
                return writer.name, writer.compiled(data, HEADER_BYTES)
            except (ValueError, IndexError, struct.error):
                pass  # corrupt: fastavro reads it below and says why
        reader = self._readers.get(writer.name)
        try:
            value = fastavro.schemaless_reader(
                io.BytesIO(data[HEADER_BYTES:]),
                writer.parsed,
                None if reader is writer.parsed else reader,
            )
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"corrupt {writer.name} record: {type(exc).__name__}: {exc}") from None
        return writer.name, value  # type: ignore[return-value]

    def decode(self, data: bytes) -> Record:
        name, value = self.decode_raw(data)
        model = self._models.get(name)
        if model is None:
            raise DecodeError(f"no model for record {name}")
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise DecodeError(_describe(exc, name)) from None

    def decode_as(self, data: bytes, model: type[R]) -> R:
        record = self.decode(data)
        if not isinstance(record, model):
            raise DecodeError(f"expected {model.avro_name}, got {record.avro_name}")
        return record


def _describe(exc: ValidationError, where: str) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:5]
    )
    return f"invalid {where}: {problems}"


_default = AvroCodec()


def codec() -> AvroCodec:
    """The process-wide codec (schemas are parsed once)."""
    return _default


def content_type(headers: Mapping[str, bytes] | Any) -> str | None:
    """The ``content-type`` header of a Kafka record, whatever shape headers come in."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for key, value in items:
        if key.lower() == "content-type":
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def decode_task(data: bytes | None, headers: Any = None, *, key: bytes | None = None) -> TaskRequest:
    """A task from ``swarm.tasks``: Avro, or JSON when the header says so.

    A JSON task may leave out ``task_id`` (the record key is used, else one is
    generated) and ``created_ms`` (now).
    """
    if data is None:
        raise DecodeError("empty value (tombstone) on the task topic")
    ctype = content_type(headers)
    if ctype is not None and ctype.split(";")[0].strip().lower() == JSON_CONTENT_TYPE:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"invalid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise DecodeError(f"a JSON task must be an object, got {type(value).__name__}")
        if "task_id" not in value and key:
            value["task_id"] = key.decode("utf-8", "replace")
        try:
            return TaskRequest.model_validate(value)
        except ValidationError as exc:
            raise DecodeError(_describe(exc, "TaskRequest")) from None
    return _default.decode_as(data, TaskRequest)
