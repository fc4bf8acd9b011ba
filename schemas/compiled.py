"""Avro binary encoders and decoders compiled from the schemas, for the hot path.

fastavro interprets a parsed schema on every call: ~8 µs for a 250-byte task, and
with ~15 records encoded and ~12 decoded per consensus task that was a quarter of a
worker's CPU. The schemas here are few and simple (records, arrays, maps, primitives,
and ``["null", X]`` unions), so each one becomes a straight-line Python function,
generated once at import, that reads a model's attributes (no ``model_dump``) or
returns the dict a model validates.

The bytes are the Avro specification's and fastavro's, byte for byte
(``tests/schemas/test_compiled.py`` checks both ways on generated records), and
fastavro stays the reader for a writer schema that differs from ours (schema
resolution), after :func:`wire_checker` has walked the bytes.

Every reader here does work linear in the bytes it is given, whatever they are
(issue 20: a run of ``0xFF`` bytes made the old varint loop build an ever-larger
integer, 256 KiB took 4.5 s): a varint is at most 10 bytes and within int64
(:func:`read_long`), a string's length is at most the bytes left, an array or map block
has at most as many items as bytes left (each item takes at least one; a schema whose
array items can take none is not compiled), and one array or map at most
``MAX_ARRAY_ITEMS`` in all its blocks (``schemas/limits.py``). fastavro checks none of
these (it reads a 20-byte varint, and wraps ``2**63`` to 0), hence the checker before it.
Writing, a number outside int64 is an error (:class:`LongOutOfRange`), not a wrapped value.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from .limits import INT64_MAX, INT64_MIN, MAX_ARRAY_ITEMS

Encoder = Callable[[Any, bytearray], None]
Decoder = Callable[[bytes, int], dict[str, Any]]
Checker = Callable[[bytes, int], int]

MAX_VARINT_BYTES = 10
"""A zig-zagged int64 takes 64 bits, 7 per byte: a longer varint is not an Avro long."""

_PACK_DOUBLE = struct.Struct("<d").pack
_PACK_FLOAT = struct.Struct("<f").pack
_UNPACK_DOUBLE = struct.Struct("<d").unpack_from
_UNPACK_FLOAT = struct.Struct("<f").unpack_from


class Unsupported(ValueError):
    """A schema shape these functions do not compile (a shipped schema that uses one fails the
    codec at import: extend ``_write`` and ``_read`` first)."""


class LongOutOfRange(ValueError):
    """A value to write as an Avro ``int`` or ``long`` that int64 cannot hold (Python ints
    are unbounded; the zig-zag below would silently wrap it)."""

    def __init__(self, value: int) -> None:
        super().__init__(f"{value} is outside the Avro long range [-2**63, 2**63 - 1]")
        self.value = value


def write_long(out: bytearray, n: int) -> None:
    """Zig-zag, then base-128 varint (the Avro ``int`` and ``long`` encoding)."""
    if not INT64_MIN <= n <= INT64_MAX:
        raise LongOutOfRange(n)
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def write_size(out: bytearray, n: int) -> None:
    """A length or an item count (``len`` of a value: never negative, never past int64)."""
    n <<= 1
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; at most :data:`MAX_VARINT_BYTES`
    bytes are read, and one that does not end there or holds more than 64 bits (so is
    outside int64) is a ``ValueError``."""
    byte = data[pos]
    n = byte & 0x7F
    shift = 7
    pos += 1
    while byte & 0x80:
        byte = data[pos]
        n |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
        if shift == 7 * MAX_VARINT_BYTES:  # the 10th byte holds bit 63 alone
            if byte > 1:
                raise ValueError(f"the varint at byte {pos - MAX_VARINT_BYTES} is longer than "
                                 f"{MAX_VARINT_BYTES} bytes or outside the long range")
            break
    return (n >> 1) ^ -(n & 1), pos


def read_size(data: bytes, pos: int) -> tuple[int, int]:
    """A string's or bytes' length, at most the bytes left after it."""
    size, pos = read_long(data, pos)
    if size < 0 or size > len(data) - pos:
        raise ValueError(f"a length of {size} at byte {pos}, with {len(data) - pos} bytes left")
    return size, pos


def read_block(data: bytes, pos: int) -> tuple[int, int]:
    """An array or map block's item count (a negative count is followed by the block's size,
    not needed to read it), unbounded."""
    count, pos = read_long(data, pos)
    if count < 0:
        count = -count
        _, pos = read_long(data, pos)
    return count, pos


def read_count(data: bytes, pos: int) -> tuple[int, int]:
    """A block's item count, at most the bytes left: every item the compiled readers read
    takes at least one byte (``_min_bytes``), so a larger count is corrupt."""
    count, pos = read_block(data, pos)
    if count > len(data) - pos:
        raise ValueError(f"a block of {count} items at byte {pos}, with {len(data) - pos} bytes left")
    return count, pos


_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "string", "bytes"))


class _Source:
    """Generated source: one function per named record, lines indented by block."""

    def __init__(self) -> None:
        self.functions: dict[str, list[str]] = {}
        self.records: dict[str, Any] = {}
        self._vars = 0

    def var(self, stem: str) -> str:
        self._vars += 1
        return f"{stem}{self._vars}"


def _fn(name: str) -> str:
    return name.replace(".", "_")


def _kind(schema: Any) -> str:
    """The schema's type name; ``"union"`` only for ``["null", <primitive>]``, the one union shipped."""
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        return str(schema["type"])
    branches = [b if isinstance(b, str) else b.get("type") for b in schema]
    if len(branches) != 2 or branches[0] != "null" or branches[1] not in _PRIMITIVES:
        raise Unsupported(f"union {branches}")
    return "union"


_FIXED_BYTES = {"null": 0, "boolean": 1, "int": 1, "long": 1, "float": 4, "double": 8, "string": 1, "bytes": 1}


def _min_bytes(schema: Any, records: Mapping[str, Any]) -> int:
    """The fewest bytes a value of ``schema`` takes. An array or map counts its end marker
    only, so a record that contains itself (through an array or a union) is no loop."""
    kind = _kind(schema)
    if kind == "union":
        return 1
    if kind in _FIXED_BYTES:
        return _FIXED_BYTES[kind]
    if kind in records:
        return _min_bytes(records[kind], records)
    if kind in ("array", "map"):
        return 1
    if kind == "record":
        return sum(_min_bytes(field["type"], records) for field in schema["fields"])
    raise Unsupported(f"type {kind!r}")


def _write(src: _Source, schema: Any, value: str, lines: list[str], indent: str, *, attrs: bool) -> None:
    """Lines that append ``value`` (an expression naming a local) encoded as ``schema`` to ``out``."""
    kind = _kind(schema)
    if kind == "union":
        lines += [f"{indent}if {value} is None:", f"{indent}    out.append(0)", f"{indent}else:",
                  f"{indent}    out.append(2)"]
        _write(src, schema[1], value, lines, indent + "    ", attrs=attrs)
    elif kind in src.functions:  # a record named again after its definition
        lines.append(f"{indent}enc_{_fn(kind)}({value}, out)")
    elif kind == "null":
        pass
    elif kind == "boolean":
        lines.append(f"{indent}out.append(1 if {value} else 0)")
    elif kind in ("int", "long"):  # most are small and non-negative: one byte, inline
        lines += [f"{indent}if 0 <= {value} < 64:", f"{indent}    out.append({value} << 1)", f"{indent}else:",
                  f"{indent}    write_long(out, {value})"]
    elif kind == "double":
        lines.append(f"{indent}out += _PACK_DOUBLE({value})")
    elif kind == "float":
        lines.append(f"{indent}out += _PACK_FLOAT({value})")
    elif kind in ("string", "bytes"):
        raw = src.var("b")
        encoded = f"{value}.encode()" if kind == "string" else value
        lines += [f"{indent}{raw} = {encoded}", f"{indent}if len({raw}) < 64:", f"{indent}    out.append(len({raw}) << 1)",
                  f"{indent}else:", f"{indent}    write_size(out, len({raw}))", f"{indent}out += {raw}"]
    elif kind == "array" or kind == "map":
        item = src.var("v")
        lines += [f"{indent}if {value}:", f"{indent}    if len({value}) < 64:",
                  f"{indent}        out.append(len({value}) << 1)", f"{indent}    else:",
                  f"{indent}        write_size(out, len({value}))"]
        if kind == "array":
            lines.append(f"{indent}    for {item} in {value}:")
        else:
            key = src.var("k")
            lines.append(f"{indent}    for {key}, {item} in {value}.items():")
            _write(src, "string", key, lines, indent + "        ", attrs=attrs)
        _write(src, schema["items" if kind == "array" else "values"], item, lines, indent + "        ", attrs=attrs)
        lines.append(f"{indent}out.append(0)")
    elif kind == "record":
        name = schema["name"]
        if name not in src.functions:
            src.functions[name] = []  # claimed first: a record that contains itself recurses
            body = [f"def enc_{_fn(name)}(r, out):"]
            for field in schema["fields"]:
                local = src.var("f")
                body.append(f"    {local} = r.{field['name']}" if attrs else f"    {local} = r[{field['name']!r}]")
                _write(src, field["type"], local, body, "    ", attrs=attrs)
            body.append("    return None")
            src.functions[name] = body
        lines.append(f"{indent}enc_{_fn(name)}({value}, out)")
    else:
        raise Unsupported(f"type {kind!r}")


def _read(src: _Source, schema: Any, target: str, lines: list[str], indent: str) -> None:
    """Lines that decode ``schema`` at ``pos`` of ``data`` into the local ``target``, advancing ``pos``."""
    kind = _kind(schema)
    if kind == "union":
        index = src.var("u")
        lines += [f"{indent}{index} = data[pos]", f"{indent}pos += 1", f"{indent}if {index} == 0:",
                  f"{indent}    {target} = None", f"{indent}elif {index} == 2:"]
        _read(src, schema[1], target, lines, indent + "    ")
        lines += [f"{indent}else:", f"{indent}    raise ValueError('union index out of range')"]
    elif kind in src.functions:
        lines.append(f"{indent}{target}, pos = dec_{_fn(kind)}(data, pos)")
    elif kind == "null":
        lines.append(f"{indent}{target} = None")
    elif kind in ("int", "long"):  # inline: one byte for values in [-64, 64)
        lines += [f"{indent}{target} = data[pos]", f"{indent}if {target} < 0x80:",
                  f"{indent}    {target} = ({target} >> 1) ^ -({target} & 1)", f"{indent}    pos += 1",
                  f"{indent}else:", f"{indent}    {target}, pos = read_long(data, pos)"]
    elif kind in ("string", "bytes"):
        size = src.var("n")
        lines += [f"{indent}{size} = data[pos]", f"{indent}if {size} < 0x80 and not {size} & 1:",
                  f"{indent}    {size} >>= 1", f"{indent}    pos += 1", f"{indent}else:",
                  f"{indent}    {size}, pos = read_size(data, pos)",
                  f"{indent}{target} = data[pos:pos + {size}]{'.decode()' if kind == 'string' else ''}",
                  f"{indent}pos += {size}"]
    elif kind == "boolean":
        lines += [f"{indent}{target} = data[pos]", f"{indent}if {target} > 1:",
                  f"{indent}    raise ValueError(f'boolean byte {{{target}}} at byte {{pos}}')",
                  f"{indent}{target} = {target} == 1", f"{indent}pos += 1"]
    elif kind == "double":
        lines += [f"{indent}{target} = _UNPACK_DOUBLE(data, pos)[0]", f"{indent}pos += 8"]
    elif kind == "float":
        lines += [f"{indent}{target} = _UNPACK_FLOAT(data, pos)[0]", f"{indent}pos += 4"]
    elif kind == "array" or kind == "map":
        if kind == "array" and _min_bytes(schema["items"], src.records) == 0:
            raise Unsupported("an array whose items can take no bytes (its count is not bounded by the bytes)")
        count, item = src.var("n"), src.var("v")
        # the count inline for blocks of fewer than 64 items and the final 0 (every list here):
        # such a count needs no bound, each item reads a byte at least, or fails at the end
        read_count_lines = [f"{indent}{count} = data[pos]", f"{indent}if {count} < 0x80 and not {count} & 1:",
                            f"{indent}    {count} >>= 1", f"{indent}    pos += 1", f"{indent}else:",
                            f"{indent}    {count}, pos = read_count(data, pos)"]
        total = src.var("t")
        lines += [f"{indent}{target} = {'[]' if kind == 'array' else '{}'}", *read_count_lines,
                  f"{indent}{total} = 0", f"{indent}while {count}:", f"{indent}    {total} += {count}",
                  f"{indent}    if {total} > MAX_ARRAY_ITEMS:",
                  f"{indent}        raise ValueError(f'more than {{MAX_ARRAY_ITEMS}} items in one array or map, "
                  f"at byte {{pos}} (MAX_ARRAY_ITEMS in schemas/limits.py)')",
                  f"{indent}    for _ in range({count}):"]
        if kind == "map":
            key = src.var("k")
            _read(src, "string", key, lines, indent + "        ")
        _read(src, schema["items" if kind == "array" else "values"], item, lines, indent + "        ")
        lines.append(f"{indent}        {target}.append({item})" if kind == "array"
                     else f"{indent}        {target}[{key}] = {item}")
        lines += ["    " + line for line in read_count_lines]
    elif kind == "record":
        name = schema["name"]
        if name not in src.functions:
            src.functions[name] = []
            src.records[name] = schema
            body = [f"def dec_{_fn(name)}(data, pos):"]
            fields = []
            for field in schema["fields"]:
                local = src.var("f")
                _read(src, field["type"], local, body, "    ")
                fields.append(f"{field['name']!r}: {local}")
            body.append(f"    return {{{', '.join(fields)}}}, pos")
            src.functions[name] = body
        lines.append(f"{indent}{target}, pos = dec_{_fn(name)}(data, pos)")
    else:
        raise Unsupported(f"type {kind!r}")


_HELPERS = {name: globals()[name] for name in
            ("write_long", "write_size", "read_long", "read_size", "read_count", "_PACK_DOUBLE", "_PACK_FLOAT",
             "_UNPACK_DOUBLE", "_UNPACK_FLOAT", "MAX_ARRAY_ITEMS")}


def _compile(src: _Source, entry: str) -> Callable[..., Any]:
    code = "\n\n".join("\n".join(lines) for lines in src.functions.values())
    namespace: dict[str, Any] = dict(_HELPERS)
    exec(compile(code, f"<avro {entry}>", "exec"), namespace)  # noqa: S102 - source generated from our own schemas
    return namespace[entry]


def compile_encoder(schema: Mapping[str, Any], *, attrs: bool = True) -> Encoder:
    """From a schema as ``fastavro.parse_schema`` returns it (full names, references by name):
    ``encoder(value, out)`` appends ``value`` in Avro binary: ``attrs`` reads fields as
    attributes (a pydantic model), else as keys (a dict). Raises :class:`Unsupported`."""
    src = _Source()
    _write(src, schema, "r", [], "", attrs=attrs)
    return _compile(src, f"enc_{_fn(schema['name'])}")


def compile_decoder(schema: Mapping[str, Any]) -> Decoder:
    """From a parsed schema: ``decoder(data, pos)`` -> the record at ``pos`` as a dict, as fastavro
    reads it with this schema as both writer and reader (bytes after it are ignored, as fastavro
    does). Raises :class:`Unsupported`; the decoder raises ``ValueError`` (``UnicodeDecodeError``
    included), ``IndexError`` (the bytes end early) or ``struct.error`` on corrupt input, after
    work linear in ``len(data)`` (a record that contains itself may also raise ``RecursionError``)."""
    src = _Source()
    _read(src, schema, "value", [], "")
    decode_at = _compile(src, f"dec_{_fn(schema['name'])}")

    def decoder(data: bytes, pos: int) -> dict[str, Any]:
        value, end = decode_at(data, pos)
        if end > len(data):  # a slice past the end is short, not an error: the position tells
            raise IndexError(f"it would end at byte {end} of {len(data)}")
        return value  # type: ignore[no-any-return]

    return decoder


def _named_types(schema: Any, named: dict[str, Any]) -> dict[str, Any]:
    """Every named type (record, enum, fixed) defined anywhere in ``schema``, by full name."""
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, named)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            named.setdefault(schema["name"], schema)
        for field in schema.get("fields", ()):
            _named_types(field["type"], named)
        for key in ("items", "values"):
            if key in schema:
                _named_types(schema[key], named)
        if isinstance(kind, (dict, list)):
            _named_types(kind, named)
    return named


def wire_checker(schema: Any) -> Checker:
    """From a parsed schema (any Avro schema, as ``fastavro.parse_schema`` returns it):
    ``check(data, pos)`` walks the record at ``pos`` without building it and returns the
    position after it, or raises ``ValueError``, ``IndexError`` or ``RecursionError``.

    It runs before fastavro reads another writer's record, so fastavro only ever sees bytes
    whose varints are at most 10 bytes and within int64, whose lengths fit in the bytes left,
    whose arrays and maps hold at most ``MAX_ARRAY_ITEMS`` items each, and at most
    ``len(data) + MAX_ARRAY_ITEMS`` in all: items that take no bytes (nulls) cannot be
    bounded by the bytes left, and arrays nested in arrays would multiply a per-array bound."""
    named = _named_types(schema, {})

    def check(data: bytes, pos: int) -> int:
        items_left = [len(data) + MAX_ARRAY_ITEMS]
        end = _skip(schema, data, pos, named, items_left)
        if end > len(data):
            raise IndexError(f"it would end at byte {end} of {len(data)}")
        return end

    return check


def _skip(schema: Any, data: bytes, pos: int, named: Mapping[str, Any], items_left: list[int]) -> int:
    if isinstance(schema, list):
        index, pos = read_long(data, pos)
        if not 0 <= index < len(schema):
            raise ValueError(f"union index {index} at byte {pos - 1} of a {len(schema)}-branch union")
        return _skip(schema[index], data, pos, named, items_left)
    kind = schema if isinstance(schema, str) else schema["type"]
    if not isinstance(kind, str):  # {"type": {...}}: a type wrapped with attributes
        return _skip(kind, data, pos, named, items_left)
    if kind in named and schema is not named[kind]:
        return _skip(named[kind], data, pos, named, items_left)
    if kind == "null":
        return pos
    if kind == "boolean":
        if data[pos] > 1:
            raise ValueError(f"boolean byte {data[pos]} at byte {pos}")
        return pos + 1
    if kind in ("int", "long"):
        return read_long(data, pos)[1]
    if kind in ("float", "double"):
        return pos + (4 if kind == "float" else 8)  # past the end: the caller's final check
    if kind in ("string", "bytes"):
        size, pos = read_size(data, pos)
        return pos + size
    if kind == "fixed":
        return pos + int(schema["size"])
    if kind == "enum":
        index, after = read_long(data, pos)
        if not 0 <= index < len(schema["symbols"]):
            raise ValueError(f"enum index {index} at byte {pos} of {len(schema['symbols'])} symbols")
        return after
    if kind in ("array", "map"):
        items = schema["items"] if kind == "array" else schema["values"]
        total = 0
        while True:
            count, pos = read_block(data, pos)
            if not count:
                return pos
            total += count
            if total > MAX_ARRAY_ITEMS:
                raise ValueError(f"more than {MAX_ARRAY_ITEMS} items in one array or map, at byte {pos} "
                                 f"(MAX_ARRAY_ITEMS in schemas/limits.py)")
            items_left[0] -= count
            if items_left[0] < 0:
                raise ValueError(f"a block of {count} items at byte {pos}: more items in all than the record "
                                 f"has bytes, plus MAX_ARRAY_ITEMS")
            for _ in range(count):
                if kind == "map":
                    size, pos = read_size(data, pos)
                    pos += size
                pos = _skip(items, data, pos, named, items_left)
    if kind in ("record", "error"):
        for field in schema["fields"]:
            pos = _skip(field["type"], data, pos, named, items_left)
        return pos
    raise ValueError(f"unknown Avro type {kind!r}")
