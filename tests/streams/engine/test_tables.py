"""The stores over changelog tables: the task table's indexes, which its timers read instead of
scanning every state it keeps (open tasks by deadline for the deadline sweepers, finished tasks
by their window's end in the settled file), finished tasks held small and then out of memory,
and every table's retention: an entry past its time goes with a tombstone on its changelog
partition."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from swarmstream.agents.selection.budget import window_end_ms
from swarmstream.agents.taskstate import State
from swarmstream.streams.app.stores import WindowedStore, hold_task_entry
from swarmstream.streams.app.tools import kept_from
from swarmstream.streams.app.topology import SPEND_KEPT_MS, spend_expiry
from swarmstream.streams.engine.changelog import Table
from swarmstream.streams.engine.tables import ExpiryIndex, Retained


class Changelog:
    """The records a table wrote: by handlers (``send``, to the partition being handled) and
    outside them (``send_now``, a timer's tombstones)."""

    def __init__(self) -> None:
        self.partition = 0  # the partition of the event "being handled"
        self.records: list[tuple[int, str, bytes | None]] = []
        self.unacked: list[tuple[int, Callable[[int], None]]] = []

    def send(self, topic: str, key: bytes, value: bytes | None, on_ack: Callable[[int], None] | None) -> int:
        self.records.append((self.partition, orjson.loads(key), value))
        if on_ack is not None:
            self.unacked.append((len(self.records) - 1, on_ack))
        return self.partition

    async def send_now(self, topic: str, key: bytes, value: bytes | None, partition: int,
                       on_ack: Callable[[int], None]) -> None:
        self.records.append((partition, orjson.loads(key), value))
        on_ack(len(self.records) - 1)

    def ack(self) -> None:
        """The broker has every record sent (offsets: the records' places in the log)."""
        unacked, self.unacked = self.unacked, []
        for offset, on_ack in unacked:
            on_ack(offset)

    def tombstones(self) -> list[tuple[int, str]]:
        return [(p, key) for p, key, value in self.records if value is None]

    def replay(self, table: Table) -> None:
        """What a restore of this changelog gives ``table``."""
        for offset, (partition, key, value) in enumerate(self.records):
            table.apply(partition, orjson.dumps(key), value, offset)


def store(expires_ms: int = 10_000) -> tuple[WindowedStore, Table, Changelog]:
    log = Changelog()
    table = Table("t-changelog", log.send, send_now=log.send_now)
    return WindowedStore(table, expires_ms=expires_ms), table, log


def state(deadline_ms: int, *, done: bool = False) -> State:
    return {"task": {}, "asked": ["a"], "answers": {}, "failures": {}, "done": done, "deadline_ms": deadline_ms}


DONE = {"done": True, "status": "ok", "mode": "consensus", "created_ms": 1, "task_digest": "d" * 32,
        "result_digest": "e" * 32, "category": "math", "agreed": {"a": 1, "b": 1, "c": 0}}


async def test_past_deadline_names_the_open_tasks_due_and_names_them_again_until_they_end() -> None:
    tasks, _, _ = store()
    tasks.set("early", 1, state(100))
    tasks.set("late", 1, state(200))
    tasks.set("finished", 1, DONE)
    tasks.set("early", 1, state(100))  # written again while open: still one entry

    assert [task_id for task_id, _ in tasks.past_deadline(150)] == ["early"]
    assert [task_id for task_id, _ in tasks.past_deadline(150)] == ["early"]  # still open: again
    tasks.set("early", 1, DONE)
    assert tasks.past_deadline(150) == []
    assert [task_id for task_id, _ in tasks.past_deadline(250)] == ["late"]
    assert [task_id for task_id, _ in tasks.past_deadline(10**9)] == ["late"]  # open: past its window too
    tasks.set("late", 1, DONE)
    assert tasks.past_deadline(10**9) == []


def test_open_tasks_a_restore_brings_are_found_after_reindex() -> None:
    tasks, table, _ = store()
    table.apply(0, orjson.dumps("restored"), orjson.dumps([1, state(100)]), 0)  # as restore_tables writes
    table.apply(0, orjson.dumps("restored-done"), orjson.dumps([1, DONE]), 1)
    table.apply(1, orjson.dumps("other-partition"), orjson.dumps([1, state(100)]), 0)
    assert tasks.past_deadline(150) == []  # not written through the store: not indexed yet
    tasks.reindex([0])
    assert [task_id for task_id, _ in tasks.past_deadline(150)] == ["restored"]


def test_a_finished_task_is_held_as_its_bytes_and_read_back_as_its_record() -> None:
    """Bytes are never tracked by the garbage collector: 2 h of finished tasks held as dicts were
    millions of containers each full collection walked (DESIGN.md, "State")."""
    tasks, table, log = store()
    tasks.set("t", 1, state(100))
    tasks.set("t", 1, DONE)
    assert type(table.get("t")) is bytes and table.in_memory("t") is not None
    log.ack()
    assert table.in_memory("t") is None  # acknowledged: settled, out of memory
    assert type(table.get("t")) is bytes and "t" in table and len(table) == 1
    assert tasks.get("t", 1) == DONE
    assert len(log.records[-1][2] or b"") < 100  # the changelog record is small too (agents/donecodec.py)
    restored = Table("t-changelog", log.send, hold=hold_task_entry)
    log.replay(restored)
    assert restored.get("t") == table.get("t")  # a restore holds it the same way
    # a full state marked done, as written before the DoneRecord: held as bytes as well
    legacy = orjson.dumps([1, {**state(100), "done": True, "answer": "x"}])
    assert hold_task_entry(legacy) is legacy
    assert hold_task_entry(orjson.dumps([1, state(100)])) == [1, state(100)]


async def test_expire_deletes_the_entries_past_their_window_with_a_tombstone_on_their_partition() -> None:
    tasks, table, log = store()
    tasks.set("old", 1_000, DONE)
    log.partition = 2
    tasks.set("new", 9_000, DONE)
    log.ack()
    table.apply(3, orjson.dumps("restored-old"), orjson.dumps([500, DONE]), 0)
    tasks.reindex([3])
    assert await tasks.expire(15_000) == 2  # created before 15,000 - 10,000
    assert "old" not in table and "restored-old" not in table and "new" in table
    assert sorted(log.tombstones()) == [(0, "old"), (3, "restored-old")]
    assert table.keys_of([0, 2, 3]) == [] and table.partition_of("new") == 2  # settled: out of memory
    assert await tasks.expire(15_000) == 0
    assert await tasks.expire(19_001) == 1 and len(table) == 0
    assert log.tombstones()[-1] == (2, "new")


async def test_an_entry_written_again_with_a_later_time_is_kept_and_expires_at_that_time() -> None:
    log = Changelog()
    cache = Retained(Table("c-changelog", log.send, send_now=log.send_now),
                     expiry=lambda key, value: value["expires_ms"], default_ms=0, clock=lambda: 0)
    cache["k"] = {"expires_ms": 100}
    cache["k"] = {"expires_ms": 300}  # refreshed
    assert await cache.expire(200) == 0 and "k" in cache
    assert await cache.expire(300) == 1 and "k" not in cache
    assert log.tombstones() == [(0, "k")]


async def test_a_restore_after_tombstones_rebuilds_what_memory_holds() -> None:
    tasks, table, log = store()
    for i in range(20):
        log.partition = i % 3
        tasks.set(f"t{i}", 1_000 * i, state(10**9) if i % 2 else DONE)
    log.ack()
    assert await tasks.expire(10_000 + 9_500) == 5  # the finished ones of t0..t9 (an open task ends at its deadline)
    restored = Table("t-changelog", log.send)
    WindowedStore(restored, expires_ms=10_000)
    log.replay(restored)
    assert dict(restored.items()) == dict(table.items())
    assert sorted(restored.keys_of([0, 1, 2])) == sorted(table.keys_of([0, 1, 2]))  # the open ones
    assert all(restored.partition_of(key) == table.partition_of(key) for key, _ in table.items())


def test_forget_drop_and_delete_keep_each_partitions_keys() -> None:
    log = Changelog()
    table = Table("t-changelog", log.send)
    for key, partition in (("a", 0), ("b", 0), ("c", 1)):
        log.partition = partition
        table[key] = 1
    table.forget(["a"])
    assert table.keys_of([0]) == ["b"] and table.partition_of("a") is None
    log.partition = 0
    del table["b"]
    assert table.keys_of([0]) == [] and "b" not in table
    table.drop(1)
    assert table.keys_of([1]) == [] and len(table) == 0
    table.apply(1, orjson.dumps("c"), b"1", 0)
    table.apply(1, orjson.dumps("c"), None, 1)
    assert table.keys_of([1]) == [] and "c" not in table


def test_expiry_index_skips_keys_gone_and_puts_back_keys_not_due() -> None:
    index = ExpiryIndex()
    times = {"due": 5, "later": 50}
    for key in ("due", "later", "gone"):
        index.add(10, key)
    assert index.due(10, times.get) == ["due"]
    assert len(index) == 1 and index.due(49, times.get) == [] and index.due(50, times.get) == ["later"]


def test_coarse_expiry_index_is_never_early_at_most_a_bucket_late_and_puts_back_keys_not_due() -> None:
    index = ExpiryIndex(bucket_ms=1_000)
    times = {"due": 1_001, "later": 5_500, "exact": 3_000}
    for key in ("due", "later", "gone", "exact"):
        index.add(times.get(key, 1_200), key)
    assert len(index) == 4
    assert index.due(1_999, times.get) == [] and index.due(2_000, times.get) == ["due"]  # its second's end
    assert index.due(3_000, times.get) == ["exact"] and len(index) == 1
    times["later"] = 9_000  # written again with a later time: back in at that time
    assert index.due(6_000, times.get) == [] and len(index) == 1 and index.due(9_000, times.get) == ["later"]
    assert len(index) == 0


def test_spend_counters_go_a_day_after_their_window() -> None:
    assert spend_expiry("acme|2026-11-25", 5) == window_end_ms("2026-11-25") + SPEND_KEPT_MS
    assert spend_expiry("a|b|2026-11", 5) == window_end_ms("2026-11") + SPEND_KEPT_MS  # a tenant with a bar
    assert spend_expiry("acme|someday", 5) is None


async def test_an_entry_without_a_time_of_its_own_goes_the_default_after_it_was_first_seen() -> None:
    log = Changelog()
    now = [1_000]
    approvals = Retained(Table("a-changelog", log.send, send_now=log.send_now),
                         expiry=kept_from("received_ms", 500), default_ms=2_000, clock=lambda: now[0])
    approvals.set("t|tool|", {"approved": True, "received_ms": 1_000})
    approvals.set("legacy", {"approved": True})  # written before entries carried their time
    assert await approvals.expire(1_499) == 0
    assert await approvals.expire(1_500) == 1 and "legacy" in approvals
    assert await approvals.expire(3_000) == 1 and len(approvals) == 0


async def test_expire_asks_the_settled_file_again_until_nothing_is_due(monkeypatch) -> None:
    monkeypatch.setattr("swarmstream.streams.app.stores.EXPIRE_AT_ONCE", 3)
    tasks, table, log = store()
    for i in range(7):
        tasks.set(f"t{i}", 1_000 + i, DONE)
    tasks.set("later", 50_000, DONE)
    log.ack()
    assert await tasks.expire(20_000) == 7 and len(log.tombstones()) == 7
    assert list(table.items()) == [("later", table.get("later"))]
