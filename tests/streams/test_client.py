"""SwarmClient's bounded memory and its default topics, without a broker (results are handed to
the client as its reader would: ``_deliver``); the broker-facing part is in tests/e2e."""

from __future__ import annotations

import asyncio

import pytest
from swarmstream.schemas.models import TaskResult
from swarmstream.streams import client as client_module
from swarmstream.streams.app.settings import TopicNames
from swarmstream.streams.client import (
    RecentIds,
    ResultMemory,
    SwarmClient,
    default_topics,
)


def result(task_id: str, answer: str = "4") -> TaskResult:
    return TaskResult(task_id=task_id, status="ok", answer=answer)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- ResultMemory: bounded by count and by age ------------------------------------------------


def test_memory_keeps_the_newest_results_up_to_its_bound() -> None:
    memory = ResultMemory(max_results=3, ttl_s=60)
    for i in range(5):
        memory.add(result(f"t{i}"))
    assert list(memory) == ["t2", "t3", "t4"] and len(memory) == 3
    assert "t0" not in memory and memory["t4"].task_id == "t4"
    with pytest.raises(KeyError):
        memory["t1"]


def test_memory_forgets_results_older_than_its_ttl() -> None:
    clock = Clock()
    memory = ResultMemory(max_results=100, ttl_s=10, clock=clock)
    memory.add(result("old"))
    clock.now = 6
    memory.add(result("new"))
    clock.now = 10.5  # "old" is 10.5 s old, "new" 4.5 s
    assert list(memory) == ["new"] and "old" not in memory
    clock.now = 16.5
    assert len(memory) == 0


def test_memory_refreshes_a_result_added_again_and_discards_on_request() -> None:
    memory = ResultMemory(max_results=2, ttl_s=60)
    memory.add(result("a"))
    memory.add(result("b"))
    memory.add(result("a", answer="5"))  # a is now the newest
    memory.add(result("c"))
    assert list(memory) == ["a", "c"] and memory["a"].answer == "5"
    memory.discard("a")
    memory.discard("missing")
    assert list(memory) == ["c"]


@pytest.mark.parametrize(("max_results", "ttl_s"), [(0, 10), (10, 0), (-1, 5)])
def test_memory_refuses_a_bound_that_keeps_nothing(max_results: int, ttl_s: float) -> None:
    with pytest.raises(ValueError, match="max_results >= 1 and ttl_s > 0"):
        ResultMemory(max_results, ttl_s)


def test_recent_ids_forget_the_oldest_first() -> None:
    ids = RecentIds(max_ids=2)
    for item in ("a", "b", "a", "c"):  # "a" again: it stays where it was first added
        ids.add(item)
    assert "a" not in ids and {"b", "c"} == {i for i in ("a", "b", "c") if i in ids} and len(ids) == 2
    ids.discard("b")
    ids.add("d")
    assert "c" in ids and "d" in ids and len(ids) == 2


# --- the client ------------------------------------------------------------------------------


def test_topics_follow_swarm_topic_prefix_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARM_TOPIC_PREFIX", "acme")
    assert SwarmClient("kafka://127.0.0.1:9092").topics.results == "acme.results"
    assert SwarmClient("127.0.0.1:9092", topics=TopicNames("other")).topics.tasks == "other.tasks"
    monkeypatch.delenv("SWARM_TOPIC_PREFIX")
    assert SwarmClient("127.0.0.1:9092").topics.tasks == "swarm.tasks"
    assert default_topics({"SWARM_TOPIC_PREFIX": "  "}) == TopicNames()  # blank is no prefix


async def test_a_result_is_remembered_streamed_and_a_repeat_counted_once() -> None:
    client = SwarmClient("127.0.0.1:9092", keep_results=10)
    client._deliver(result("t1"))
    client._deliver(result("t1", answer="other"))  # at-least-once repeat
    assert client.duplicates == 1 and client.received["t1"].answer == "4"
    assert (await client.result("t1", timeout_s=1)).answer == "4"
    assert (await anext(client.results())).task_id == "t1"
    client.forget("t1")
    client._deliver(result("t1", answer="again"))  # forgotten: a repeat counts as new
    assert client.duplicates == 1 and client.received["t1"].answer == "again"


async def test_memory_stays_bounded_however_many_results_come() -> None:
    client = SwarmClient("127.0.0.1:9092", keep_results=50)
    for i in range(client_module.STREAM_BACKLOG + 500):
        client._deliver(result(f"t{i}"))
    assert len(client.received) == 50
    assert len(client._stream) == client_module.STREAM_BACKLOG and client.stream_dropped == 500
    assert client.duplicates == 0
    client._deliver(result("t0"))  # beyond the kept results, still known as seen: a repeat
    assert client.duplicates == 1
    assert (await anext(client.results())).task_id == "t500"  # the oldest were dropped, in order


async def test_a_waiter_gets_its_result_and_nothing_is_left_behind() -> None:
    client = SwarmClient("127.0.0.1:9092")
    first = asyncio.ensure_future(client.result("t1", timeout_s=5))
    second = asyncio.ensure_future(client.result("t1", timeout_s=5))
    await asyncio.sleep(0)
    assert len(client._waiters["t1"]) == 2
    client._deliver(result("t1"))
    assert (await first).task_id == (await second).task_id == "t1"
    assert client._waiters == {}


async def test_a_waiter_that_times_out_or_is_cancelled_is_removed() -> None:
    client = SwarmClient("127.0.0.1:9092")
    with pytest.raises(TimeoutError):
        await client.result("never", timeout_s=0.01)
    cancelled = asyncio.ensure_future(client.result("also-never"))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert client._waiters == {}
