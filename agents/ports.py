"""What a capability's handlers see of the stream: plain values, no Faust.

``streams/engine.py`` turns each consumed record into an :class:`InputMessage`
and gives handlers an :class:`Emit`. Inside a handler an emit is queued and
returns at once; the handler's records go out together when it returns, and
its input is committed only once the broker has every one of them. A handler
that must be seen before it waits on the world (a request for approval) is
given a ``flush`` that sends what it queued so far.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import DeadLetter, Record, now_ms


@dataclass(frozen=True, slots=True)
class InputMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes] = field(default_factory=dict)


class Emit(Protocol):
    def __call__(
        self, topic: str, key: str, record: Record, headers: Mapping[str, bytes] | None = None
    ) -> Awaitable[None]:
        """Write ``record`` to ``topic``: queued inside a handler (sent when it returns),
        acknowledged by the broker before the awaitable completes anywhere else."""
        ...


def dead_letter(message: InputMessage, reason: str, error: BaseException | None = None) -> DeadLetter:
    return DeadLetter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers={k: v.decode("utf-8", "replace") for k, v in message.headers.items()},
        reason=reason[:2000],
        error_type=type(error).__name__ if error else "",
        received_ms=now_ms(),
    )


R = TypeVar("R", bound=Record)


class DeadLetters:
    """Where a handler sends what it cannot use: the reason and the original bytes."""

    def __init__(self, emit: Emit, topic: str) -> None:
        self._emit = emit
        self._topic = topic

    async def send(self, message: InputMessage, reason: str, error: BaseException | None = None) -> None:
        key = (message.key or b"").decode("utf-8", "replace")
        await self._emit(self._topic, key, dead_letter(message, reason, error))

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
