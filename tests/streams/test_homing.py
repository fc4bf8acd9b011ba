"""Feedback and approvals from outside are handled on their task's home partition (``streams/app/homing.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import Approval, Feedback
from swarmstream.streams.app.homing import homed, task_id_in
from swarmstream.streams.engine import InputMessage


class FakeEngine:
    def __init__(self, home: int) -> None:
        self._home = home
        self.sent: list[tuple[str, bytes | None, bytes | None, Mapping[str, Any] | None, int | None]] = []

    def home(self, key: bytes) -> int:
        return self._home

    async def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None,
                   partition: int | None = None) -> None:
        self.sent.append((topic, key, value, headers, partition))


FEEDBACK = codec().encode(Feedback(task_id="t-7", score=1.0, source="person", created_ms=1))


async def test_a_record_away_from_home_is_forwarded_as_it_is_under_its_task_id() -> None:
    engine = FakeEngine(home=2)
    handled: list[InputMessage] = []

    async def handler(message: InputMessage) -> None:
        handled.append(message)

    handle = homed(engine, handler, task_id_in(Feedback))  # type: ignore[arg-type]
    await handle(InputMessage("fb", 0, 5, b"customer-9", FEEDBACK, {"x": None}))
    await handle(InputMessage("fb", 2, 6, b"t-7", FEEDBACK, {}))

    assert engine.sent == [("fb", b"t-7", FEEDBACK, {"x": None}, 2)]
    assert [m.offset for m in handled] == [6]


async def test_a_record_without_a_readable_task_id_goes_to_its_handler_to_be_dead_lettered() -> None:
    engine = FakeEngine(home=2)
    handled: list[bytes | None] = []

    async def handler(message: InputMessage) -> None:
        handled.append(message.value)

    handle = homed(engine, handler, task_id_in(Approval))  # type: ignore[arg-type]
    for value in (b"junk", None, FEEDBACK):  # FEEDBACK: a record, but not an Approval
        await handle(InputMessage("approvals", 0, 1, None, value, {}))

    assert engine.sent == [] and handled == [b"junk", None, FEEDBACK]
