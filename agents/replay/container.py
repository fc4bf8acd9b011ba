"""The recording as an Avro object container file: one file, records of every kind, schema inside.

The file's schema is one record, ``swarmstream.replay.Entry``, whose only field
``record`` is a union of every kind a recording holds (the same Avro records as
on the topics, ``schemas/*.avsc``, plus ``swarmstream.replay.Label``); the branch
name says the kind. The container embeds that schema in its header, so a reader
years later needs nothing but the file (``fastavro``, ``avro-tools tojson`` or
any Avro library), and blocks are deflate-compressed (~8x smaller than JSON Lines).

Why both this and JSON Lines (``recording.py``): Avro is the contract of every
topic, so a recording in Avro is typed, compact and readable by the same tools
as the topics (the issue asks for it); JSON Lines stays for ``grep``/``jq`` and
for appending by hand. The path's suffix picks (``.avro``: this module).

Reading resolves old and new writers the Avro way where it can: a record kind
this reader does not know is skipped and counted (as in JSON Lines), and
fields a newer writer added are dropped when the writer's schema differs from
the reader's (the pydantic models forbid unknown fields).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import IO, Any

import fastavro
from fastavro.schema import to_parsing_canonical_form
from swarmstream.schemas.codec import shipped_schemas

ENTRY = "swarmstream.replay.Entry"
LABEL_NAME = "swarmstream.replay.Label"
LABEL_SCHEMA: dict[str, Any] = {
    "type": "record", "name": "Label", "namespace": "swarmstream.replay",
    "doc": "The right answer of one task, for scoring a replay (a labelled task set, a review).",
    "fields": [{"name": "task_id", "type": "string"}, {"name": "answer", "type": "string"}],
}
CODEC = "deflate"
"""Standard in every Avro implementation (snappy and zstd need extra libraries)."""
SYNC_INTERVAL_BYTES = 64 * 1024
"""Records per block are buffered up to this size: fastavro's default is 16 KB; 64 KB
compresses ~10% better and a killed recorder still loses at most one block."""


def _dedupe(node: Any, namespace: str, defined: set[str]) -> Any:
    """The shipped schemas each inline the named types they use (``StepContext`` in
    both ``ModelResponse`` and ``Failure``); one Avro schema may define a name once,
    so every later definition becomes a reference by full name."""
    if isinstance(node, list):
        return [_dedupe(item, namespace, defined) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in ("record", "enum", "fixed"):
        ns = node.get("namespace", namespace)
        full = node["name"] if "." in node["name"] else f"{ns}.{node['name']}"
        if full in defined:
            return full
        defined.add(full)
        out = dict(node)
        if kind == "record":
            out["fields"] = [{**f, "type": _dedupe(f["type"], ns, defined)} for f in node["fields"]]
        return out
    return {k: (_dedupe(v, namespace, defined) if k in ("type", "items", "values") else v) for k, v in node.items()}


@cache
def entry_schema(kind_names: tuple[str, ...]) -> dict[str, Any]:
    """The container's schema for records named ``kind_names`` (Avro full names, label last)."""
    shipped = shipped_schemas()
    defined: set[str] = set()
    branches = [_dedupe(shipped[name] if name != LABEL_NAME else LABEL_SCHEMA, "swarmstream", defined)
                for name in kind_names]
    return {
        "type": "record", "name": "Entry", "namespace": "swarmstream.replay",
        "doc": "One record of a swarmstream recording; the union branch is its kind.",
        "fields": [{"name": "record", "type": branches}],
    }


@cache
def _parsed(kind_names: tuple[str, ...]) -> Any:
    return fastavro.parse_schema(entry_schema(kind_names), named_schemas={})


@cache
def _canonical(kind_names: tuple[str, ...]) -> str:
    return str(to_parsing_canonical_form(_parsed(kind_names)))


class ContainerWriter:
    """Appends ``(avro name, fields)`` entries to an open binary file."""

    def __init__(self, handle: IO[bytes], kind_names: tuple[str, ...]) -> None:
        self._writer = fastavro.write.Writer(handle, _parsed(kind_names), codec=CODEC,
                                             sync_interval=SYNC_INTERVAL_BYTES)

    def write(self, avro_name: str, fields: dict[str, Any]) -> None:
        self._writer.write({"record": (avro_name, fields)})

    def close(self) -> None:
        self._writer.flush()


def read_entries(handle: IO[bytes], kind_names: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(avro name, fields)`` per entry, in file order. Fields of a kind whose writer
    schema differs from this reader's keep only the names this reader knows."""
    reader = fastavro.reader(handle, return_record_name=True)
    writer_schema = reader.writer_schema
    same = writer_schema is not None and str(to_parsing_canonical_form(
        fastavro.parse_schema(writer_schema, named_schemas={}))) == _canonical(kind_names)
    known: dict[str, frozenset[str]] = {}
    if not same:
        for branch in entry_schema(kind_names)["fields"][0]["type"]:
            if isinstance(branch, dict):
                known[f"{branch.get('namespace', 'swarmstream')}.{branch['name']}"] = frozenset(
                    f["name"] for f in branch["fields"])
    for entry in reader:
        value = entry["record"]  # type: ignore[index,call-overload]
        if not isinstance(value, tuple):
            raise TypeError(f"entry is not a named record: {json.dumps(value, default=str)[:200]}")
        name, fields = value
        if not same and name in known:
            names = known[name]
            fields = {k: v for k, v in fields.items() if k in names}
        yield name, fields


def is_container(path: str | Path) -> bool:
    """Whether ``path`` names an Avro container recording (by suffix: ``.avro``)."""
    return str(path).endswith(".avro")
