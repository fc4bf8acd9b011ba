"""Admission by time: what a new task waited and would wait, against its own timeout
(``agents/dispatch/shedding.py``), and the dispatcher's use of it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from swarmstream.agents.dispatch.agent import Dispatcher
from swarmstream.agents.dispatch.shedding import (
    ADMIT,
    Action,
    Admission,
    QueueingLimits,
    Waiting,
    by_queueing,
    worst,
)
from swarmstream.agents.taskstate import Finisher
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import TaskRequest, TaskResult, now_ms
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.engine import InputMessage

from tests.agents.memory_store import MemoryStore

LIMITS = QueueingLimits(share=0.25, max_delay_ms=1000)  # 30 s timeout: allowance 7.5 s, slow from 3.75 s
T = 30_000


@pytest.mark.parametrize(
    ("age_ms", "timeout_ms", "ahead", "action", "delay_ms"),
    [
        (0, T, {}, Action.ADMIT, 0),
        (7_000, T, {}, Action.ADMIT, 0),  # a long wait before intake alone never slows intake: it is its own queue
        (7_500, T, {}, Action.ADMIT, 0),  # at the allowance: still admitted
        (7_501, T, {}, Action.REJECT, 0),
        (0, T, {"model 'a'": 3_750}, Action.ADMIT, 0),  # queued ahead, half the allowance: not slowed yet
        (0, T, {"model 'a'": 5_625}, Action.SLOW, 500),  # three quarters of it: half the longest wait
        (1_000, T, {"model 'a'": 6_000}, Action.SLOW, 500),  # 600 ms on the line, capped: never past the allowance
        (1_000, T, {"model 'a'": 7_000}, Action.REJECT, 0),  # waited little, but would queue long
        (1_000, T, {"model 'a'": 2_000, "outcomes": 1_000}, Action.ADMIT, 0),
        (1_000, T, {"model 'a'": 4_000, "outcomes": 3_000}, Action.REJECT, 0),  # the stages add up
        (0, T, {"model 'a'": 1_000, "outcomes": 4_625}, Action.SLOW, 500),
        (1_000, T, {"model 'a'": None}, Action.ADMIT, 0),  # nothing waits there
        (-5_000, T, {}, Action.ADMIT, 0),  # a client clock ahead of the worker's: no wait, not a negative one
        (29_999, T, {}, Action.REJECT, 0),  # overloaded
        (30_000, T, {}, Action.REJECT, 0),  # expired
        (20_000, T, {"model 'a'": 10_000}, Action.REJECT, 0),
        (3_600_000, T, {}, Action.REJECT, 0),  # a replay of an hour-old topic
        (600_000, 3_600_000, {}, Action.ADMIT, 0),  # ten minutes of an hour's timeout: 17%, admitted
        (0, 3_600_000, {"outcomes": 600_000}, Action.SLOW, 333),
        # a short timeout is judged against the 1 s floor, not a quarter of 400 ms
        (900, 400, {}, Action.ADMIT, 0),
        (1_000, 400, {}, Action.REJECT, 0),
        (100, 400, {"model 'a'": 950}, Action.REJECT, 0),
        (100, 400, {"model 'a'": 600}, Action.SLOW, 200),
        (350, 400, {"model 'a'": 600}, Action.SLOW, 50),  # what is left of the 1 s
    ],
)
def test_by_queueing(age_ms: int, timeout_ms: int, ahead: dict[str, int | None], action: Action,
                     delay_ms: int) -> None:
    decision = by_queueing(Waiting(age_ms=age_ms, timeout_ms=timeout_ms, ahead_ms=ahead), LIMITS)
    assert (decision.action, decision.delay_ms) == (action, delay_ms), decision.reason


@pytest.mark.parametrize(
    ("age_ms", "waited_ms", "ahead", "action", "kind"),
    [
        # a worker that took the partition 2 s ago (a restart, a rebalance): the outage before is not overload
        (20_000, 2_000, {}, Action.ADMIT, ""),
        (20_000, 2_000, {"model 'a'": 6_000}, Action.REJECT, "overloaded"),  # its own queue is
        (25_000, 1_000, {"model 'a'": 5_000}, Action.REJECT, "late"),  # it would be late before its turn
        (31_000, 0, {}, Action.REJECT, "expired"),
        (5_000, 9_000, {}, Action.ADMIT, ""),  # never more than its age
    ],
)
def test_only_the_wait_for_this_worker_counts_as_overload(age_ms: int, waited_ms: int, ahead: dict[str, int],
                                                          action: Action, kind: str) -> None:
    decision = by_queueing(Waiting(age_ms=age_ms, waited_ms=waited_ms, timeout_ms=T, ahead_ms=ahead), LIMITS)
    assert decision.action is action and decision.reason.startswith(kind), decision.reason


def test_an_expired_task_is_told_so() -> None:
    decision = by_queueing(Waiting(age_ms=95_000, timeout_ms=T), LIMITS)
    assert decision.reason.startswith("expired: created 95.0 s before intake saw it, past its 30.0 s timeout")


def test_an_overloaded_refusal_names_the_stage_its_wait_and_the_limit() -> None:
    decision = by_queueing(Waiting(age_ms=2_000, timeout_ms=T, ahead_ms={"model 'slow-one'": 6_500,
                                                                             "outcomes": 300}), LIMITS)
    assert decision.action is Action.REJECT
    assert decision.reason.startswith("overloaded: waited 2.0 s before intake + 6.5 s queued at model 'slow-one' "
                                      "+ 300 ms queued at outcomes, 29% of its 30.0 s timeout (limit 25%, at least 1.0 s)")


def test_a_share_of_zero_turns_the_time_rule_off() -> None:
    off = QueueingLimits(share=0)
    assert by_queueing(Waiting(age_ms=10**9, timeout_ms=T, ahead_ms={"x": 10**9}), off) == ADMIT


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_0_1_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="within 0..1"):
        QueueingLimits(share=share)
    with pytest.raises(ValidationError):
        Settings(admit_queue_share=share)


SLOW_100 = Admission(Action.SLOW, delay_ms=100)
SLOW_900 = Admission(Action.SLOW, delay_ms=900)
REJECT = Admission(Action.REJECT, reason="r")


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        ((), ADMIT),
        ((ADMIT, ADMIT), ADMIT),
        ((ADMIT, SLOW_100), SLOW_100),
        ((SLOW_900, SLOW_100), SLOW_900),  # of two waits, the longer
        ((SLOW_900, REJECT, ADMIT), REJECT),
    ],
)
def test_worst(decisions: tuple[Admission, ...], expected: Admission) -> None:
    assert worst(*decisions) == expected


# --- the dispatcher: only new tasks are judged; a refusal is one result and no model call ------


def _dispatcher(decision: list[Admission]) -> tuple[Dispatcher, MemoryStore, list[tuple[str, object]], list[str]]:
    """``decision[0]`` is what admission says, whenever it is asked."""
    sent: list[tuple[str, object]] = []
    judged: list[str] = []

    async def emit(topic: str, key: str, record: object, headers: object = None) -> None:
        sent.append((topic, record))

    def shedding(task: TaskRequest, models: list[str], partition: int) -> Admission:
        judged.append(task.task_id)
        return decision[0]

    store = MemoryStore()
    finisher = Finisher(store=store, emit=emit, results_topic="results", review_topic="review", review_threshold=0.5)
    dispatcher = Dispatcher(emit=emit, store=store, model_topic=lambda m: f"model.{m}", dead_letter_topic="dead",
                            families={"a": "fa", "b": "fb"}, default_models=["a", "b"], shedding=shedding,
                            finisher=finisher)
    return dispatcher, store, sent, judged


def _message(task: TaskRequest) -> InputMessage:
    return InputMessage("tasks", 0, 0, task.task_id.encode(), codec().encode(task), {}, now_ms())


async def test_a_refused_task_ends_with_one_rejected_result_and_calls_no_model() -> None:
    dispatcher, store, sent, judged = _dispatcher([Admission(Action.REJECT, reason="overloaded: test")])
    task = TaskRequest(prompt="2 + 2?", answer_type="number", models=["a", "b"])
    await dispatcher.handle(_message(task))
    assert judged == [task.task_id]
    assert [topic for topic, _ in sent] == ["results"]
    result = sent[0][1]
    assert isinstance(result, TaskResult)
    assert (result.status, result.reason) == ("rejected", "overloaded: test")
    assert store.states[task.task_id]["done"]

    await dispatcher.handle(_message(task))  # redelivered: done, nothing more
    assert len(sent) == 1 and judged == [task.task_id]


async def test_a_task_with_state_is_not_judged_again_whatever_its_age() -> None:
    """A task redelivered after a crash (its intake ran, the commit did not) goes on: admission is
    for new work, and this one's model calls may be answered already."""
    decision = [ADMIT]
    dispatcher, store, sent, judged = _dispatcher(decision)
    task = TaskRequest(prompt="2 + 2?", answer_type="number", models=["a", "b"], created_ms=now_ms() - 3_600_000)
    await dispatcher.handle(_message(task))
    assert judged == [task.task_id]
    assert sorted(topic for topic, _ in sent) == ["model.a", "model.b"]

    decision[0] = Admission(Action.REJECT, reason="would refuse")
    await dispatcher.handle(_message(task))  # redelivered: its requests again, not a refusal
    assert sorted(topic for topic, _ in sent) == ["model.a", "model.a", "model.b", "model.b"]
