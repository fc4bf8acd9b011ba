"""Intake under hostile input (property-based): whatever a record holds, intake answers it.

For any value, key and headers (null values, non-UTF-8 bytes, JSON of any shape), the
intake handler neither raises nor stays silent: it sends the task's model requests, forwards
it to its home partition, or sends exactly one dead letter with a reason. A repeated task
id is answered once; one that names another task is refused, whatever the modes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swarmstream.agents.dispatch.agent import Dispatcher
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import DeadLetter, ModelRequest, Record, TaskRequest
from swarmstream.streams.engine import InputMessage

from tests.agents.memory_store import MemoryStore

BUDGET = settings(max_examples=300, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
task_like = st.fixed_dictionaries(
    {"prompt": st.text(max_size=40)},
    optional={"answer_type": st.sampled_from(["label", "number", "json", "text", "vote", 3]),
              "mode": st.sampled_from(["consensus", "single", "chain", "select", "x"]),
              "models": st.lists(st.sampled_from(["a", "b", "zz"]), max_size=3),
              "labels": st.lists(st.text(max_size=5), max_size=3),
              "created_ms": st.integers(min_value=-(2**64), max_value=2**64),
              "timeout_ms": st.integers(min_value=-(2**40), max_value=2**40) | st.floats(),
              "task_id": st.text(max_size=10) | st.integers()},
)
header_values = st.none() | st.binary(max_size=20) | st.just(b"application/json")
headers = st.dictionaries(st.sampled_from(["content-type", "Content-Type", "traceparent", "x"]), header_values,
                          max_size=3)


def dumps(value: Any) -> bytes:
    """Python's writer: big integers and NaN as they are (orjson refuses both)."""
    return json.dumps(value).encode()


values = st.none() | st.binary(max_size=200) | json_values.map(dumps) | task_like.map(dumps)


class Intake:
    def __init__(self, home: int = 0) -> None:
        self.sent: list[tuple[str, Record]] = []
        self.forwarded: list[tuple[TaskRequest, int]] = []
        self.store = MemoryStore()

        async def emit(topic: str, key: str, record: Record, headers: Mapping[str, bytes] | None = None) -> None:
            codec().encode(record)  # what is emitted must be writable
            self.sent.append((topic, record))

        async def forward(task: TaskRequest, partition: int) -> None:
            self.forwarded.append((task, partition))

        self.dispatcher = Dispatcher(emit=emit, store=self.store, model_topic=lambda m: f"model.{m}",
                                     dead_letter_topic="dead", families={"a": "fa", "b": "fb"},
                                     default_models=["a", "b"], home=lambda task_id: home, forward=forward)

    def handle(self, value: bytes | None, key: bytes | None = None, headers: Mapping[str, Any] | None = None,
               partition: int = 0) -> None:
        asyncio.run(self.dispatcher.handle(InputMessage("tasks", partition, 7, key, value, dict(headers or {}))))

    def dead(self) -> list[DeadLetter]:
        return [r for t, r in self.sent if isinstance(r, DeadLetter)]

    def requests(self) -> list[ModelRequest]:
        return [r for t, r in self.sent if isinstance(r, ModelRequest)]


@BUDGET
@given(values, st.none() | st.binary(max_size=12), headers)
def test_any_record_gets_requests_or_one_dead_letter(value: bytes | None, key: bytes | None,
                                                     hdrs: dict[str, bytes | None]) -> None:
    intake = Intake()
    intake.handle(value, key, hdrs)

    dead = intake.dead()
    if dead:
        assert len(dead) == 1 and len(intake.sent) == 1
        assert dead[0].reason and dead[0].value_length == (len(value) if value is not None else -1)
    else:
        assert intake.requests(), f"neither requests nor a dead letter for {value!r}"


@BUDGET
@given(task_like.map(dumps))
def test_a_task_elsewhere_than_its_home_is_forwarded_before_any_state(value: bytes) -> None:
    intake = Intake(home=3)
    intake.handle(value, headers={"content-type": b"application/json"}, partition=1)

    assert intake.store.states == {}
    assert len(intake.forwarded) + len(intake.dead()) == 1
    for task, partition in intake.forwarded:
        assert partition == 3


def test_a_redelivered_task_is_answered_once_and_another_under_its_id_is_refused() -> None:
    intake = Intake()
    task = TaskRequest(task_id="t-1", prompt="What is 2 + 2?", answer_type="number", models=["a"])
    intake.handle(codec().encode(task))
    intake.handle(codec().encode(task))  # redelivered: the request again (at-least-once), no new state
    assert [r.model_id for r in intake.requests()] == ["a", "a"] and not intake.dead()

    for other in (task.model_copy(update={"mode": "chain", "chain": "c"}),
                  task.model_copy(update={"prompt": "What is 3 + 3?"}),
                  task.model_copy(update={"mode": "select"})):
        intake.handle(codec().encode(other))
        assert "already taken by another task" in intake.dead()[-1].reason
    assert len(intake.requests()) == 2
