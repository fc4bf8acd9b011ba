"""A finished task's table entry in ~120 bytes instead of ~290 (issue 21: state sized by what
it must remember).

The task table keeps every finished task for its window (2 h: hundreds of thousands of
entries), and each is read rarely (a redelivered event, a late outcome, feedback). As JSON,
``[created_ms, {"done":true,...}]``, the digests alone were 2 x 32 hex characters and every
key name was spelled out; here the digests are their 16 bytes and the rest is positional::

    0   1   MAGIC (no JSON text starts with it: an entry written as JSON starts with '[')
    1   8   the entry's created_ms (its window), int64 little-endian
    9   8   the record's created_ms
    17  1   flags: HAS_TASK_DIGEST, HAS_CATEGORY
    18  16  result_digest
    34  16  task_digest, when flagged
    ..      status, mode, category when flagged: each a u16 length and UTF-8
    ..      u16 count of agreed models, then each: u16 length, UTF-8 name, u8 (0 or 1)

A record this cannot hold exactly (a digest that is not 16 bytes of hex, an agreement that is
not 0 or 1) stays JSON: :func:`encode_done` returns None and the store writes JSON as before.
"""

from __future__ import annotations

import struct

from swarmstream.agents.taskstate import DIGEST_BYTES, DoneRecord

MAGIC = 0x01
HAS_TASK_DIGEST = 0x01
HAS_CATEGORY = 0x02

_HEAD = struct.Struct(f"<Bqq B{DIGEST_BYTES}s")
_U16 = struct.Struct("<H")


def is_done_entry(raw: bytes) -> bool:
    return bool(raw) and raw[0] == MAGIC


def created_of(raw: bytes) -> int:
    """The entry's created_ms, without decoding the rest."""
    return int.from_bytes(raw[1:9], "little", signed=True)


def _digest(value: str) -> bytes | None:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == DIGEST_BYTES else None


def _text(value: str) -> bytes | None:
    raw = value.encode()
    return _U16.pack(len(raw)) + raw if len(raw) <= 0xFFFF else None


def encode_done(created_ms: int, record: DoneRecord) -> bytes | None:
    """The entry ``[created_ms, record]`` in the compact form; None when it cannot hold it exactly."""
    result_digest = _digest(record["result_digest"])
    task_digest = _digest(record["task_digest"]) if "task_digest" in record else b""
    category = record["category"]
    agreed = record["agreed"]
    if result_digest is None or task_digest is None or any(v not in (0, 1) for v in agreed.values()):
        return None
    flags = (HAS_TASK_DIGEST if task_digest else 0) | (HAS_CATEGORY if category is not None else 0)
    parts = [_HEAD.pack(MAGIC, created_ms, record["created_ms"], flags, result_digest), task_digest,
             _text(record["status"]), _text(record["mode"]), _text(category) if category is not None else b"",
             _U16.pack(len(agreed))]
    for model, bit in agreed.items():
        parts += [_text(model), bytes((bit,))]
    if any(part is None for part in parts):
        return None
    return b"".join(parts)  # type: ignore[arg-type]  # None ruled out above


def decode_done(raw: bytes) -> tuple[int, DoneRecord]:
    """``(created_ms, record)`` of an entry :func:`encode_done` wrote."""
    _, created_ms, record_created_ms, flags, result_digest = _HEAD.unpack_from(raw)
    at = _HEAD.size

    def text() -> str:
        nonlocal at
        (size,) = _U16.unpack_from(raw, at)
        at += 2 + size
        return raw[at - size:at].decode()

    task_digest = None
    if flags & HAS_TASK_DIGEST:
        task_digest = raw[at:at + DIGEST_BYTES].hex()
        at += DIGEST_BYTES
    status, mode = text(), text()
    category = text() if flags & HAS_CATEGORY else None
    (count,) = _U16.unpack_from(raw, at)
    at += 2
    agreed: dict[str, int] = {}
    for _ in range(count):
        model = text()
        agreed[model] = raw[at]
        at += 1
    record: DoneRecord = {"done": True, "status": status, "mode": mode, "created_ms": record_created_ms,
                          "result_digest": result_digest.hex(), "category": category, "agreed": agreed}
    if task_digest is not None:
        record["task_digest"] = task_digest
    return created_ms, record
