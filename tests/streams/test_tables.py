"""The task table's indexes, which its timers read instead of scanning every state it keeps:
open tasks by deadline (the deadline sweepers), every entry by creation (expiry)."""

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


def test_expire_forgets_the_entries_past_their_window_by_creation_time() -> None:
    tasks, table = store()
    tasks.set("old", 1_000, state(100, done=True))
    tasks.set("new", 9_000, state(100, done=True))
    table.apply(0, orjson.dumps("restored-old"), orjson.dumps([500, state(100, done=True)]))
    tasks.reindex()
    assert tasks.expire(15_000) == 2  # created before 15,000 - 10,000
    assert "old" not in table and "restored-old" not in table and "new" in table
    assert tasks.expire(15_000) == 0
    assert tasks.expire(19_001) == 1 and len(table) == 0
