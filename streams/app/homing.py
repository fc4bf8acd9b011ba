"""Events keyed by task id that come from outside land on their task's home partition.

A task's state lives on the partition the engine's hash gives its task id
(``Engine.home``). Feedback and approvals are written by people and other services,
with whatever client and partitioner they use (librdkafka's CRC32, an explicit
partition, a key that is not the task id): one that lands elsewhere is forwarded
home, as it is, before its handler reads any state (intake does the same for tasks,
``agents/dispatch/agent.py``). A record whose task id cannot be read goes to its
handler, which dead-letters it.
"""

from __future__ import annotations

from collections.abc import Callable

from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import Record
from swarmstream.streams.engine import Engine, Handler, InputMessage


def homed(engine: Engine, handler: Handler, task_id_of: Callable[[InputMessage], str | None]) -> Handler:
    async def handle(message: InputMessage) -> None:
        task_id = task_id_of(message)
        if task_id is not None:
            key = task_id.encode()
            home = engine.home(key)
            if home != message.partition:
                await engine.send(message.topic, key, message.value, message.headers, partition=home)  # type: ignore[arg-type]
                return
        await handler(message)

    return handle


def task_id_in(*types: type[Record]) -> Callable[[InputMessage], str | None]:
    """The ``task_id`` of a record of one of ``types`` (None when it is not one)."""

    def read(message: InputMessage) -> str | None:
        try:
            record = codec().decode(message.value or b"")
        except DecodeError:
            return None
        return getattr(record, "task_id", None) if isinstance(record, types) else None

    return read
