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

No record stops a worker (issue 20): a value over the size limits of
``schemas/limits.py`` is refused before a byte of it is read, every decoder's work is
linear in the bytes (``compiled.py``), and whatever the bytes, a decode either returns a
record or raises :class:`DecodeError` saying why.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import compress
from typing import Any, TypeVar

import fastavro
import orjson
from fastavro.schema import to_parsing_canonical_form
from pydantic import ValidationError

from .compiled import Checker, Decoder, Encoder, LongOutOfRange, compile_decoder, compile_encoder, wire_checker
from .limits import MAX_JSON_DEPTH, MAX_JSON_TASK_BYTES, MAX_RECORD_BYTES, MAX_TASK_RECORD_BYTES
from .models import RECORDS, Record, TaskRequest

MAGIC = b"\xc3\x01"
HEADER_BYTES = 10
JSON_CONTENT_TYPE = "application/json"

R = TypeVar("R", bound=Record)


class DecodeError(ValueError):
    """An event that cannot become a record: the reason names what is wrong."""


class EncodeError(ValueError):
    """A record that cannot be written (a number outside its Avro type): the reason names the field."""


_CORRUPT = (ValueError, IndexError, struct.error, RecursionError)
"""What a compiled reader or :func:`~.compiled.wire_checker` raises on bytes that are not
a record (``compile_decoder``'s docstring): each becomes a :class:`DecodeError`."""


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
    checker: Checker | None = None  # another writer's: walks the bytes before fastavro reads them


class AvroCodec:
    """Encodes records with the shipped schemas; decodes any known writer schema.

    The shipped schemas go through functions compiled from them (``compiled.py``, ~3x
    faster than fastavro on the pipeline's records), and what they reject is corrupt (they
    check more than fastavro: varint length, long range, lengths against the bytes left).
    fastavro resolves other writers' schemas, reading only bytes their
    :func:`~.compiled.wire_checker` has walked."""

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
        parsed = fastavro.parse_schema(dict(schema), named_schemas={})
        self._writers[fp] = _Writer(name, parsed, checker=wire_checker(parsed))
        return fp

    def encode(self, record: Record) -> bytes:
        """Raises :class:`EncodeError` for a number outside int64 (a model field without
        bounds set past them), rather than writing a wrapped value, and for text that
        UTF-8 cannot hold."""
        name = record.avro_name
        out = bytearray(MAGIC)
        out += self._writer_fp[name]
        try:
            self._encoders[name](record, out)
        except LongOutOfRange as exc:
            raise EncodeError(f"cannot encode {name}: {_path_of(record, exc.value) or 'a field'} = {exc}") from None
        except UnicodeEncodeError as exc:  # a lone surrogate: no decoder of ours makes one
            raise EncodeError(f"cannot encode {name}: a string is not UTF-8 ({exc.reason})") from None
        return bytes(out)

    def decode_raw(self, data: bytes, *, max_bytes: int = MAX_RECORD_BYTES) -> tuple[str, dict[str, Any]]:
        """Bytes -> (record name, dict in this reader's schema). A value over ``max_bytes``
        is refused unread: no producer of ours writes one."""
        if len(data) > max_bytes:
            raise DecodeError(f"record is {len(data):,} bytes, over the limit of {max_bytes:,} "
                              f"(schemas/limits.py)")
        if len(data) < HEADER_BYTES or data[:2] != MAGIC:
            raise DecodeError("not Avro single-object encoding (missing C3 01 marker)")
        writer = self._writers.get(data[2:HEADER_BYTES])
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {data[2:HEADER_BYTES].hex()}")
        if writer.compiled is not None:
            try:
                return writer.name, writer.compiled(data, HEADER_BYTES)
            except _CORRUPT as exc:
                raise DecodeError(f"corrupt {writer.name} record: {_reason(exc)}") from None
        reader = self._readers.get(writer.name)
        try:
            if writer.checker is not None:
                writer.checker(data, HEADER_BYTES)
            value = fastavro.schemaless_reader(
                io.BytesIO(data[HEADER_BYTES:]),
                writer.parsed,
                None if reader is writer.parsed else reader,
            )
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"corrupt {writer.name} record: {_reason(exc)}") from None
        return writer.name, value  # type: ignore[return-value]

    def decode(self, data: bytes, *, max_bytes: int = MAX_RECORD_BYTES) -> Record:
        name, value = self.decode_raw(data, max_bytes=max_bytes)
        model = self._models.get(name)
        if model is None:
            raise DecodeError(f"no model for record {name}")
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise DecodeError(_describe(exc, name)) from None

    def decode_as(self, data: bytes, model: type[R], *, max_bytes: int = MAX_RECORD_BYTES) -> R:
        record = self.decode(data, max_bytes=max_bytes)
        if not isinstance(record, model):
            raise DecodeError(f"expected {model.avro_name}, got {record.avro_name}")
        return record


def _reason(exc: BaseException) -> str:
    """A reader's exception as the reason a record is corrupt."""
    if isinstance(exc, UnicodeDecodeError):
        return f"a string is not UTF-8 ({exc.reason} at byte {exc.start} of it)"
    if isinstance(exc, (IndexError, struct.error)):
        return f"the bytes end before the record does ({exc})"
    if isinstance(exc, RecursionError):
        return "nested deeper than Python's recursion limit"
    if type(exc) is ValueError:  # the readers' own: the message says it all
        return str(exc)
    return f"{type(exc).__name__}: {exc}"  # fastavro's


def _path_of(value: Any, target: int, path: str = "") -> str | None:
    """Where in a record ``target`` (an int) is, as ``field.sub[2]``: walked only when an
    encode has failed, so the error can name the field."""
    if type(value) is int and value == target:
        return path
    if isinstance(value, Record):
        items: Any = ((f"{path}.{k}" if path else k, v) for k, v in value.__dict__.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    elif isinstance(value, dict):
        items = ((f"{path}[{k!r}]", v) for k, v in value.items())
    else:
        return None
    for where, item in items:
        found = _path_of(item, target, where)
        if found:
            return found
    return None


def _describe(exc: ValidationError, where: str) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"]
        else err["msg"].removeprefix("Value error, ")  # a model-wide check: its message names the field
        for err in exc.errors()[:5]
    )
    return f"invalid {where}: {problems}"


_default = AvroCodec()


def codec() -> AvroCodec:
    """The process-wide codec (schemas are parsed once)."""
    return _default


def content_type(headers: Mapping[str, bytes | None] | Any) -> str | None:
    """The ``content-type`` header of a Kafka record, whatever shape headers come in (a
    mapping or ``(key, value)`` pairs, as aiokafka gives them). A header without a value,
    or whose key or value is neither text nor bytes, counts as absent: a ``None`` value is
    not the content type ``"None"``."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            continue
        key, value = item
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if not isinstance(key, str) or key.lower() != "content-type":
            continue
        if isinstance(value, bytes):
            return value.decode("latin-1")
        if isinstance(value, str):
            return value
    return None


def decode_task(data: bytes | None, headers: Any = None, *, key: bytes | None = None) -> TaskRequest:
    """A task from ``swarm.tasks``: Avro, or JSON when the header says so.

    A JSON task may leave out ``task_id`` (the record key is used, else one is
    generated) and ``created_ms`` (now). Whatever the bytes, headers and key, the result
    is a task within the limits of ``schemas/limits.py`` or a :class:`DecodeError`.
    """
    if data is None:
        raise DecodeError("empty value (tombstone) on the task topic")
    ctype = content_type(headers)
    if ctype is not None and ctype.split(";")[0].strip().lower() == JSON_CONTENT_TYPE:
        return _json_task(data, key)
    return _default.decode_as(data, TaskRequest, max_bytes=MAX_TASK_RECORD_BYTES)


def _json_task(data: bytes, key: bytes | None) -> TaskRequest:
    if len(data) > MAX_JSON_TASK_BYTES:
        raise DecodeError(f"JSON task is {len(data):,} bytes, over the limit of {MAX_JSON_TASK_BYTES:,} "
                          f"(MAX_JSON_TASK_BYTES in schemas/limits.py)")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(_json_error(data, exc)) from None
    if not isinstance(value, dict):
        raise DecodeError(f"a JSON task must be an object, got {_json_type(value)}")
    # a document with no more brackets than the limit cannot nest past it (memchr-fast: most tasks)
    if data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
        raise DecodeError(f"JSON task nested deeper than {MAX_JSON_DEPTH} levels "
                          f"(MAX_JSON_DEPTH in schemas/limits.py; a task is 2 deep)")
    if "task_id" not in value and key:
        value["task_id"] = _key_text(key)
    try:
        return TaskRequest.model_validate(value)
    except ValidationError as exc:
        raise DecodeError(_describe(exc, "TaskRequest")) from None


def _json_error(data: bytes, exc: orjson.JSONDecodeError) -> str:
    """orjson's reason, with what it does not say: NaN and Infinity are not JSON (Python's
    ``json.dumps`` writes them), and its depth cap is our nesting limit."""
    if "depth limit" in str(exc):
        return f"JSON task nested deeper than {MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH in schemas/limits.py)"
    at = data[exc.pos:exc.pos + 9] if isinstance(exc.pos, int) else b""
    if at.startswith((b"NaN", b"Infinity", b"-Infinity")):
        return f"invalid JSON: NaN and Infinity are not JSON numbers (at char {exc.pos})"
    return f"invalid JSON: {exc}"


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__)


_CONTAINER = frozenset((dict, list)).__contains__


def _deeper_than(value: Any, depth: int) -> bool:
    """Whether a parsed JSON document nests more than ``depth`` levels, a level at a time:
    linear in its containers' items (picked out in C: ``compress`` over ``map(type, ...)``,
    ~3x faster than a comprehension: 8 ms for 260,000 labels), and stops at the level past ``depth``."""
    level = [value]
    for _ in range(depth):
        deeper: list[Any] = []
        for node in level:
            children = list(node.values()) if isinstance(node, dict) else node
            deeper += compress(children, map(_CONTAINER, map(type, children)))
        if not deeper:
            return False
        level = deeper
    return True


def _key_text(key: Any) -> str:
    """The record key as a task id: it must be UTF-8 (a task id with replacement characters
    would not be the caller's id, and the result could not be matched to it)."""
    if isinstance(key, str):
        return key
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise DecodeError(f"record key of type {type(key).__name__}: send task_id in the body")
    try:
        return bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("record key is not UTF-8: send task_id in the body") from None
