"""The task table's index of open tasks by deadline, which the deadline sweepers read
instead of scanning every state the table keeps."""

from __future__ import annotations

import orjson
from swarmstream.agents.taskstate import State
from swarmstream.streams.changelog import Table
from swarmstream.streams.tables import WindowedStore


def store() -> tuple[WindowedStore, Table]:
    table = Table("t-changelog", lambda topic, key, value, on_ack: 0)  # the changelog send: partition 0
    return WindowedStore(table, expires_ms=10_000), table


def state(deadline_ms: int, *, done: bool = False) -> State:
    return {"task": {}, "asked": ["a"], "answers": {}, "failures": {}, "done": done, "deadline_ms": deadline_ms}


def test_past_deadline_names_the_open_tasks_due_and_names_them_again_until_they_end() -> None:
    tasks, _ = store()
    tasks.set("early", 1, state(100))
    tasks.set("late", 1, state(200))
    tasks.set("finished", 1, state(50, done=True))
    tasks.set("early", 1, state(100))  # written again while open: still one entry

    assert [task_id for task_id, _ in tasks.past_deadline(150)] == ["early"]
    assert [task_id for task_id, _ in tasks.past_deadline(150)] == ["early"]  # still open: again
    tasks.set("early", 1, state(100, done=True))
    assert tasks.past_deadline(150) == []
    assert [task_id for task_id, _ in tasks.past_deadline(250)] == ["late"]
    tasks.expire(20_000)  # forgotten states are not named either
    assert tasks.past_deadline(10**9) == []


def test_open_tasks_a_restore_brings_are_found_after_reindex() -> None:
    tasks, table = store()
    table.apply(0, orjson.dumps("restored"), orjson.dumps([1, state(100)]))  # as restore_tables writes
    table.apply(0, orjson.dumps("restored-done"), orjson.dumps([1, state(100, done=True)]))
    assert tasks.past_deadline(150) == []  # not written through the store: not indexed yet
    tasks.reindex()
    assert [task_id for task_id, _ in tasks.past_deadline(150)] == ["restored"]
