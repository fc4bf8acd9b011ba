"""Checkpoints: a table partition's live entries written as a few large records, so that a
restore reads them and the changelog's tail, not every record since the restore horizon.

The horizon (``streams/engine/horizon.py``) moves only when the oldest live key is written again
or deleted. When every key is inside its window (the task table keeps each task 2 h) a restore
from it still reads every record written since the oldest live task: each task's open state and
its done record, hundreds of thousands of small records (issue 21's restart: 228,095 records,
9.4 s). A checkpoint is the partition's entries as memory holds them, each with the offset of
the changelog record that wrote it, packed into chunk records of :data:`CHUNK_BYTES` on the app's
checkpoints topic (one partition per table partition number, like the horizons topic), plus
``tail``: the changelog offset from which a restore reads on. Its reference (:class:`CheckpointRef`)
rides on the partition's marker in the horizons topic, so the newest marker says both where the
horizon is and which checkpoint is current.

Why it is exact: a checkpoint entry is a changelog record (the key's newest acknowledged value,
held unchanged in memory: a table never changes a held value in place), and every key left out
whose newest record might still matter (a write on its way, a tombstone on its way) pulls
``tail`` down to that record. A restore applies the entries, then the changelog from ``tail``,
skipping any record older than the entry it already holds for the key
(:meth:`~swarmstream.streams.engine.changelog.Table.apply`): each key ends as its newest record
says, as a restore from offset 0 would leave it. A checkpoint written by an owner that has since
lost the partition is as true (its entries are records, its tail covers what it left out); the
new owner's later records are in the tail.

A compacting broker keeps each chunk under a key of its own (table, partition, checkpoint,
index) until the owner's next checkpoint is referenced by a marker; then the previous one's
chunks get tombstones. Tansu keeps them all (it never compacts): each checkpoint adds the live
entries' bytes to the topic, which :data:`CHECKPOINT_BEHIND_PER_LIVE` bounds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

CHUNK_BYTES = 192 * 1024
"""Entries packed per chunk record: under the engine's producer batch (256 KiB, ``PRODUCER_BATCH_BYTES``),
so a chunk goes out in the batched path like any record, and ~700 done tasks (~270 bytes each) per
record: 100,000 entries are ~150 records to fetch instead of 100,000."""

CHECKPOINT_MIN_BEHIND = 10_000
"""Changelog records past the current restore start (the newer of the horizon and the last
checkpoint's tail) below which no checkpoint is written: the horizon's own floor
(``REWRITE_MIN_BEHIND``), 10,000 records a restore reads in 0.1-0.2 s, while a checkpoint costs a
write of every live entry."""

CHECKPOINT_BEHIND_PER_LIVE = 0.5
"""A checkpoint is written once more than this many records per live entry were written past the
restore start (and :data:`CHECKPOINT_MIN_BEHIND`): a restore then reads the live entries in chunks
and at most half as many records again; the checkpoints cost at most two entries written per
changelog record, and on a broker that never compacts they add that much to the checkpoints topic
(~270 bytes per entry of the task table)."""

ENTRIES_PER_SLICE = 5_000
"""Entries gathered between two yields to the event loop while a checkpoint is taken (~5 ms):
a partition of 125,000 tasks is never one pause of a tenth of a second."""

CHUNKS_PER_SLICE = 8
"""Chunks encoded between two yields to the event loop (~1.5 MB, a few ms)."""

FORMAT = b"C1"
"""A chunk's first bytes; then per entry: key length (4 bytes), offset (8), value length (4), key,
value (the key and value exactly as the changelog record has them)."""

_ENTRY = struct.Struct(">IQI")

Entry = tuple[bytes, bytes, int]
"""(key, value, offset) as the changelog record at ``offset`` wrote them."""


def checkpoints_topic(app_id: str) -> str:
    """The app's checkpoints: compacted (the ``-changelog`` suffix, ``streams/engine/broker.py``), one
    partition per table partition number, written by that partition's owner."""
    return f"{app_id}-table-checkpoints-changelog"


@dataclass(frozen=True)
class CheckpointRef:
    """Where a table partition's checkpoint is: chunks ``first``..``last`` (offsets in the
    checkpoints ``topic``'s partition of the same number) whose keys begin with
    :func:`chunk_prefix` of ``id``, ``chunks`` of them, ``entries`` in all; a restore then reads
    the changelog from ``tail``."""

    topic: str
    id: int
    first: int
    last: int
    chunks: int
    entries: int
    tail: int

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "id": self.id, "first": self.first, "last": self.last,
                "chunks": self.chunks, "entries": self.entries, "tail": self.tail}

    @classmethod
    def from_json(cls, value: object) -> CheckpointRef | None:
        """None for anything that is not a well-formed reference (a marker of an older worker has none)."""
        if not isinstance(value, dict):
            return None
        try:
            ref = cls(topic=str(value["topic"]), id=int(value["id"]), first=int(value["first"]),
                      last=int(value["last"]), chunks=int(value["chunks"]), entries=int(value["entries"]),
                      tail=int(value["tail"]))
        except (KeyError, TypeError, ValueError):
            return None
        return ref if 0 <= ref.first <= ref.last and ref.chunks > 0 and ref.tail >= 0 else None


def chunk_prefix(changelog: str, partition: int, checkpoint_id: int) -> bytes:
    return orjson.dumps(f"{changelog}|{partition}|{checkpoint_id}")[:-1] + b"|"


def chunk_key(changelog: str, partition: int, checkpoint_id: int, index: int) -> bytes:
    """``"<changelog>|<partition>|<id>|<index>"`` as JSON: a key per chunk, so a compacting broker keeps
    every chunk of a checkpoint until it is tombstoned."""
    return orjson.dumps(f"{changelog}|{partition}|{checkpoint_id}|{index}")


def encode_chunks(entries: Iterable[Entry], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The entries packed into chunks of about ``chunk_bytes`` (one larger entry is a chunk alone)."""
    parts: list[bytes] = [FORMAT]
    size = len(FORMAT)
    pack = _ENTRY.pack
    for key, value, offset in entries:
        entry_size = _ENTRY.size + len(key) + len(value)
        if size + entry_size > chunk_bytes and len(parts) > 1:
            yield b"".join(parts)
            parts, size = [FORMAT], len(FORMAT)
        parts += (pack(len(key), offset, len(value)), key, value)
        size += entry_size
    if len(parts) > 1:
        yield b"".join(parts)


def decode_chunk(chunk: bytes) -> list[Entry]:
    """The entries of a chunk; ValueError for anything else (a chunk of an unknown format)."""
    if not chunk.startswith(FORMAT):
        raise ValueError(f"not a checkpoint chunk of format {FORMAT!r}")
    out: list[Entry] = []
    view = memoryview(chunk)
    unpack = _ENTRY.unpack_from
    header = _ENTRY.size
    pos = len(FORMAT)
    end = len(chunk)
    while pos < end:
        key_len, offset, value_len = unpack(chunk, pos)
        pos += header
        key = bytes(view[pos:pos + key_len])
        pos += key_len
        value = bytes(view[pos:pos + value_len])  # a copy of its own size: the chunk is not held
        pos += value_len
        if pos > end:
            raise ValueError("a truncated checkpoint chunk")
        out.append((key, value, offset))
    return out
