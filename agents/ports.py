"""What a capability's handlers see of the stream: plain values, no Faust.

``streams/engine/engine.py`` turns each consumed record into an :class:`InputMessage`
and gives handlers an :class:`Emit`. Inside a handler an emit is queued and
returns at once; the handler's records go out together when it returns, and
its input is committed only once the broker has every one of them. A handler
that must be seen before it waits on the world (a request for approval) is
given a ``flush`` that sends what it queued so far.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Mapping
from typing import Protocol, TypeVar

from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.limits import DEAD_LETTER_PREFIX_BYTES
from swarmstream.schemas.models import DeadLetter, Record, now_ms


class InputMessage(Protocol):
    """One consumed record, as the engine hands it to a handler
    (:class:`swarmstream.streams.engine.InputMessage` is the concrete class). A protocol, so
    that capabilities depend on the shape and never import the engine."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Mapping[str, bytes | None]:
        """Any client may send a header without a value (None), or one that is not UTF-8."""
        ...
    @property
    def timestamp_ms(self) -> int:
        """The record's timestamp (producer create time, or the broker's); -1 when unknown."""
        ...


class Emit(Protocol):
    def __call__(
        self, topic: str, key: str, record: Record, headers: Mapping[str, bytes] | None = None
    ) -> Awaitable[None]:
        """Write ``record`` to ``topic``: queued inside a handler (sent when it returns),
        acknowledged by the broker before the awaitable completes anywhere else. Raises
        ValueError, before anything is queued, for a record that cannot be sent: over the
        size limit, or with a value its schema cannot hold."""
        ...


DEAD_LETTER_VALUE_BYTES = DEAD_LETTER_PREFIX_BYTES
"""A dead letter keeps this much of the original value (``schemas/limits.py`` says why);
length, SHA-256 and the source offset let an operator fetch the rest."""

DEAD_LETTER_KEY_BYTES = 1024
DEAD_LETTER_HEADER_BYTES = 1024
DEAD_LETTER_HEADERS = 64
"""Keys and headers are bounded for the same reason: a record's key or headers may be as
large as its value."""


def dead_letter(message: InputMessage, reason: str, error: BaseException | None = None) -> DeadLetter:
    value = message.value
    return DeadLetter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key[:DEAD_LETTER_KEY_BYTES] if message.key is not None else None,
        value=value[:DEAD_LETTER_VALUE_BYTES] if value is not None else None,
        value_length=len(value) if value is not None else -1,
        value_sha256=hashlib.sha256(value).hexdigest() if value is not None else "",
        value_truncated=value is not None and len(value) > DEAD_LETTER_VALUE_BYTES,
        headers={k[:DEAD_LETTER_HEADER_BYTES]: header_text(v)[:DEAD_LETTER_HEADER_BYTES]
                 for k, v in list(message.headers.items())[:DEAD_LETTER_HEADERS]},
        reason=reason[:2000],
        error_type=type(error).__name__ if error else "",
        received_ms=now_ms(),
    )


def header_text(value: bytes | None) -> str:
    """A header's value as text: a header without a value reads as empty."""
    return value.decode("utf-8", "replace") if value is not None else ""


def key_text(message: InputMessage) -> str:
    """The record's key as text (a null key reads as empty; bytes that are not UTF-8 are replaced)."""
    return (message.key or b"")[:DEAD_LETTER_KEY_BYTES].decode("utf-8", "replace")


R = TypeVar("R", bound=Record)


class DeadLetters:
    """Where a handler sends what it cannot use: the reason and the original bytes."""

    def __init__(self, emit: Emit, topic: str) -> None:
        self._emit = emit
        self._topic = topic

    async def send(self, message: InputMessage, reason: str, error: BaseException | None = None) -> None:
        await self._emit(self._topic, key_text(message), dead_letter(message, reason, error))

    async def decode(self, message: InputMessage, *types: type[R]) -> R | None:
        """The record in ``message`` if it is one of ``types``; else dead-lettered, and None."""
        try:
            record = codec().decode(message.value or b"")
            if not isinstance(record, types):
                raise DecodeError(f"expected {' or '.join(t.__name__ for t in types)}, got {record.avro_name}")
        except DecodeError as exc:
            await self.send(message, str(exc), exc)
            return None
        return record
