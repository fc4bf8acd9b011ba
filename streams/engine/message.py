"""The record a handler receives: plain values, whatever client produced it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class InputMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes | None] = field(default_factory=dict)
    """Any client may send a header without a value (None), or one that is not UTF-8."""
    timestamp_ms: int = -1
    """The record's timestamp (producer create time, or the broker's); -1 when unknown."""
