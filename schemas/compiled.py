"""Avro binary encoders and decoders compiled from the schemas, for the hot path.

fastavro interprets a parsed schema on every call: ~8 µs for a 250-byte task, and
with ~15 records encoded and ~12 decoded per consensus task that was a quarter of a
worker's CPU. The schemas here are few and simple (records, arrays, maps, primitives,
and ``["null", X]`` unions), so each one becomes a straight-line Python function,
generated once at import, that reads a model's attributes (no ``model_dump``) or
returns the dict a model validates.

The bytes are the Avro specification's and fastavro's, byte for byte
(``tests/schemas/test_compiled.py`` checks both ways on generated records), and
fastavro stays the reader for anything else: a writer schema that differs from ours
(schema resolution), and input these functions reject.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

Encoder = Callable[[Any, bytearray], None]
Decoder = Callable[[bytes, int], dict[str, Any]]

_PACK_DOUBLE = struct.Struct("<d").pack
_PACK_FLOAT = struct.Struct("<f").pack
_UNPACK_DOUBLE = struct.Struct("<d").unpack_from
_UNPACK_FLOAT = struct.Struct("<f").unpack_from


class Unsupported(ValueError):
    """A schema shape these functions do not compile (a shipped schema that uses one fails the
    codec at import: extend ``_write`` and ``_read`` first)."""


def write_long(out: bytearray, n: int) -> None:
    """Zig-zag, then base-128 varint (the Avro ``int`` and ``long`` encoding)."""
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    n = byte & 0x7F
    shift = 7
    pos += 1
    while byte & 0x80:
        byte = data[pos]
        n |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
    return (n >> 1) ^ -(n & 1), pos


def read_size(data: bytes, pos: int) -> tuple[int, int]:
    size, pos = read_long(data, pos)
    if size < 0:
        raise ValueError(f"negative length {size}")
    return size, pos


def read_count(data: bytes, pos: int) -> tuple[int, int]:
    """An array or map block's item count (a negative count is followed by the block's size)."""
    count, pos = read_long(data, pos)
    if count < 0:  # the block's size in bytes follows: not needed to read it
        count = -count
        _, pos = read_long(data, pos)
    return count, pos


_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "string", "bytes"))
_BOOLEAN = (False, True)


class _Source:
    """Generated source: one function per named record, lines indented by block."""

    def __init__(self) -> None:
        self.functions: dict[str, list[str]] = {}
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
                  f"{indent}else:", f"{indent}    write_long(out, len({raw}))", f"{indent}out += {raw}"]
    elif kind == "array" or kind == "map":
        item = src.var("v")
        lines += [f"{indent}if {value}:", f"{indent}    write_long(out, len({value}))"]
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
        lines += [f"{indent}{target} = _BOOLEAN[data[pos]]", f"{indent}pos += 1"]
    elif kind == "double":
        lines += [f"{indent}{target} = _UNPACK_DOUBLE(data, pos)[0]", f"{indent}pos += 8"]
    elif kind == "float":
        lines += [f"{indent}{target} = _UNPACK_FLOAT(data, pos)[0]", f"{indent}pos += 4"]
    elif kind == "array" or kind == "map":
        count, item = src.var("n"), src.var("v")
        lines += [f"{indent}{target} = {'[]' if kind == 'array' else '{}'}",
                  f"{indent}{count}, pos = read_count(data, pos)", f"{indent}while {count}:",
                  f"{indent}    for _ in range({count}):"]
        if kind == "map":
            key = src.var("k")
            _read(src, "string", key, lines, indent + "        ")
        _read(src, schema["items" if kind == "array" else "values"], item, lines, indent + "        ")
        lines.append(f"{indent}        {target}.append({item})" if kind == "array"
                     else f"{indent}        {target}[{key}] = {item}")
        lines.append(f"{indent}    {count}, pos = read_count(data, pos)")
    elif kind == "record":
        name = schema["name"]
        if name not in src.functions:
            src.functions[name] = []
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
            ("write_long", "read_long", "read_size", "read_count", "_PACK_DOUBLE", "_PACK_FLOAT", "_UNPACK_DOUBLE",
             "_UNPACK_FLOAT", "_BOOLEAN")}


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
    included), ``IndexError`` or ``struct.error`` on corrupt input."""
    src = _Source()
    _read(src, schema, "value", [], "")
    decode_at = _compile(src, f"dec_{_fn(schema['name'])}")

    def decoder(data: bytes, pos: int) -> dict[str, Any]:
        value, end = decode_at(data, pos)
        if end > len(data):  # a slice past the end is short, not an error: the position tells
            raise ValueError("the record runs past the end of its bytes")
        return value  # type: ignore[no-any-return]

    return decoder
