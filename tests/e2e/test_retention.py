"""Tables sized by what they must remember, on the real broker: a finished task's state shrinks
at once to its done record (a small changelog record) and leaves memory for the task table's
settled file (the expiry timer finds due tasks only there), and at the end of its window every
entry the task left (its state, its tool ledger and conversations) is deleted with a tombstone on
the changelog partition that held it, so a restarted worker does not bring it back."""

from __future__ import annotations

import orjson
from aiokafka import ConsumerRecord
from swarmstream.agents.donecodec import decode_done
from swarmstream.agents.taskstate import task_digest
from swarmstream.schemas.models import TaskRequest

from tests.conftest import read_raw

WINDOW_S = 3
"""A task's window here (``SWARM_CONSENSUS_EXPIRES_S``): long enough for a task to finish in it."""


async def changelog_of(stack, table: str, task_id: str, *, until_tombstones: int) -> list[ConsumerRecord]:
    return await read_raw(stack.broker_url, f"{stack.settings.app_id}-{table}-changelog",
                          keep=lambda r: orjson.loads(r.key).startswith(task_id),
                          until=lambda rs: sum(r.value is None for r in rs) >= until_tombstones,
                          timeout_s=WINDOW_S + 20)


async def test_a_finished_task_shrinks_to_its_done_record_and_its_window_ends_in_a_tombstone(make_stack) -> None:
    async with make_stack(consensus_expires_s=WINDOW_S, expire_interval_s=0.5) as stack:
        task = TaskRequest(prompt="Is 7 a prime number? Answer yes or no. " * 30, answer_type="label",
                           labels=["yes", "no"], models=["fast-a", "fast-b", "fast-c"])
        result = await stack.client.result(await stack.client.submit(task), timeout_s=30)
        records = await changelog_of(stack, "tasks", task.task_id, until_tombstones=1)

    *states, tombstone = records
    assert tombstone.value is None, "the task's window ends in a tombstone"
    assert {r.partition for r in records} == {tombstone.partition}, "on the partition that held the task"
    done = decode_done(states[-1].value)
    assert len(states[-1].value) < 120 < 1000 < len(states[0].value), "the finished task's record is small"
    assert done == (task.created_ms, {
        "done": True, "status": result.status, "mode": "consensus", "created_ms": task.created_ms,
        "task_digest": task_digest(task), "result_digest": done[1]["result_digest"],
        "category": done[1]["category"], "agreed": {"fast-a": 1, "fast-b": 1, "fast-c": 1}})


async def test_a_tool_tasks_ledger_and_conversation_entries_are_deleted_after_its_window(make_stack) -> None:
    async with make_stack(consensus_expires_s=WINDOW_S, expire_interval_s=0.5) as stack:
        task = TaskRequest(prompt="What is (17 * 23) + 5? Use the calculator. Answer with a number.",
                           answer_type="number", mode="single", models=["tool-a"], tools=["calculator"])
        result = await stack.client.result(await stack.client.submit(task), timeout_s=30)
        assert result.status == "ok"
        ledger = await changelog_of(stack, "tool-ledger", task.task_id, until_tombstones=2)  # two calls, two turns
        conversations = await changelog_of(stack, "tool-conversations", task.task_id, until_tombstones=1)

    for records in (ledger, conversations):
        live = {}
        for r in records:
            live[r.key] = r.value
        assert records and all(value is None for value in live.values()), "every entry ends in a tombstone"
