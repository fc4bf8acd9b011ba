"""The deadline sweeper's rule: which outcomes an overdue task still waits for."""

from __future__ import annotations

import pytest
from swarmstream.agents.taskstate import SWEEP_GRACE_MS, overdue

from tests.agents.memory_store import MemoryStore

DEADLINE = 10_000


def consensus(**extra: object) -> dict:
    return {"task": {}, "asked": ["a", "b", "c"], "answers": {"a": {}}, "failures": {"b": {}}, "done": False,
            "deadline_ms": DEADLINE, **extra}


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        (consensus(), DEADLINE, []),  # not overdue yet
        (consensus(), DEADLINE + SWEEP_GRACE_MS - 1, []),
        (consensus(), DEADLINE + SWEEP_GRACE_MS, [("c", 0)]),  # only the missing model
        (consensus(done=True), DEADLINE * 10, []),  # finished tasks are left alone
        (consensus(asked=[], answers={}, failures={}), DEADLINE * 10, [("(selector)", 0)]),  # select: none chosen
        ({"task": {}, "done": False, "deadline_ms": DEADLINE,
          "chain": {"links": ["x", "y"], "index": 1, "awaiting_attempt": 3}}, DEADLINE * 10, [("y", 3)]),
        ({"task": {}, "done": False, "deadline_ms": DEADLINE,
          "chain": {"links": ["x"], "index": 0, "awaiting_attempt": None}}, DEADLINE * 10, []),
    ],
)
def test_overdue(state: dict, now: int, expected: list) -> None:
    assert overdue(state, now) == expected


@pytest.mark.parametrize("already_published", [False, True])
async def test_finisher_publishes_once_then_marks_done(already_published: bool) -> None:
    """A result already on the results topic (a crash lost its done mark) is not published
    again; the done mark is written either way."""
    from swarmstream.agents.taskstate import Finisher
    from swarmstream.schemas.models import TaskResult

    sent: list[tuple[str, str]] = []

    async def emit(topic: str, key: str, record: object, headers: object = None) -> None:
        sent.append((topic, key))

    store = MemoryStore()
    finisher = Finisher(store=store, emit=emit, results_topic="results", review_topic="review", review_threshold=0.5,
                        published=lambda task_id: already_published and task_id == "t1")
    state = {"task": {"task_id": "t1", "created_ms": 1, "prompt": "p"}, "done": False}
    await finisher.finish(state, TaskResult(task_id="t1", mode="consensus", status="low_consensus", answer="a",
                                            created_ms=1, completed_ms=2))
    assert sent == ([] if already_published else [("review", "t1"), ("results", "t1")])
    assert store.states["t1"]["done"] is True


def test_a_finished_consensus_task_shrinks_to_its_done_record() -> None:
    """What idempotence and the readers of a finished state need, ~200 bytes: not the task."""
    import orjson
    from swarmstream.agents.consensus.join import apply, open_task
    from swarmstream.agents.stats.feedback import rewards
    from swarmstream.agents.taskstate import done_record, result_digest, task_digest
    from swarmstream.schemas.models import ModelResponse, StepContext, TaskRequest

    task = TaskRequest(prompt="Sentiment of: 'late, but works as described' " * 20, answer_type="label",
                       labels=["positive", "negative"], category="sentiment", models=["a", "b", "c"])
    state = open_task(task, order=["a", "b", "c"], asked=["a", "b", "c"], deadline_ms=task.created_ms + 30_000)
    for model, answer in (("a", "positive"), ("b", "positive"), ("c", "negative")):
        step = StepContext(task_id=task.task_id, model_id=model, created_ms=task.created_ms,
                           deadline_ms=state["deadline_ms"], mode="consensus", answer_type="label",
                           expected_models=["a", "b", "c"], category="sentiment")
        decided = apply(state, ModelResponse(step=step, text=answer, answer=answer), review_threshold=0.5)
        state = decided.state
    assert decided.result is not None
    record = done_record(state, decided.result)
    assert record == {"done": True, "status": decided.result.status, "mode": "consensus",
                      "created_ms": task.created_ms, "task_digest": task_digest(task),
                      "result_digest": result_digest(decided.result), "category": "sentiment",
                      "agreed": {"a": 1, "b": 1, "c": 0}}
    assert len(orjson.dumps(record)) < 250 < len(orjson.dumps(state))
    assert rewards(record, 0.9) == [("a", 0.9), ("b", 0.9), ("c", pytest.approx(0.1))]  # feedback still scores
    # the same task redelivered has the same digest, whatever intake fills in; another task has another
    assert task_digest(task.model_copy(update={"category": None, "created_ms": 5})) == record["task_digest"]
    assert task_digest(task.model_copy(update={"prompt": "another"})) != record["task_digest"]
    assert task_digest(task) == task_digest(state["task"])  # from the model or from the state's dict


def test_a_done_record_of_a_chain_names_the_model_that_answered_and_an_adopted_state_no_digest() -> None:
    from swarmstream.agents.taskstate import done_record
    from swarmstream.schemas.models import TaskResult

    chain = {"task": {"task_id": "t", "created_ms": 1, "prompt": "p", "category": None}, "done": False,
             "chain": {"attempts": [{"model": "x", "failure_class": "timeout"}, {"model": "y"}]}}
    result = TaskResult(task_id="t", mode="chain", status="ok", answer="4", created_ms=1, completed_ms=2)
    assert done_record(chain, result)["agreed"] == {"y": 1}
    adopted = {"task": {"task_id": "t", "created_ms": 1, "mode": "consensus"}, "answers": {}, "done": False}
    assert "task_digest" not in done_record(adopted, result)  # it never knew the task: intake cannot tell


async def test_the_finisher_writes_the_done_record() -> None:
    from swarmstream.agents.taskstate import Finisher, done_record
    from swarmstream.schemas.models import TaskResult

    async def emit(topic: str, key: str, record: object, headers: object = None) -> None:
        return None

    store = MemoryStore()
    finisher = Finisher(store=store, emit=emit, results_topic="results", review_topic="review", review_threshold=0.5)
    state = {"task": {"task_id": "t1", "created_ms": 1, "prompt": "p"}, "answers": {"a": {"answer": "x"}},
             "done": False}
    result = TaskResult(task_id="t1", mode="consensus", status="ok", answer="x", created_ms=1, completed_ms=2)
    await finisher.finish(state, result)
    assert store.states["t1"] == done_record(state, result)


async def test_a_result_too_large_to_publish_ends_the_task_failed_saying_why() -> None:
    from swarmstream.agents.taskstate import Finisher
    from swarmstream.schemas.models import CastVote, TaskResult

    sent: list[tuple[str, object]] = []
    limit = 10_000

    async def emit(topic: str, key: str, record: object, headers: object = None) -> None:
        size = len(record.model_dump_json())  # type: ignore[attr-defined]
        if size > limit:  # what the engine's RecordTooLarge (a ValueError) does
            raise ValueError(f"a record of {size} bytes for {topic} is over the {limit}-byte limit")
        sent.append((topic, record))

    store = MemoryStore()
    finisher = Finisher(store=store, emit=emit, results_topic="results", review_topic="review", review_threshold=0.5)
    state = {"task": {"task_id": "t1", "created_ms": 1, "prompt": "p"}, "done": False}
    votes = [CastVote(model_id=m, answer="word " * 5_000, weight=1.0) for m in ("a", "b")]
    await finisher.finish(state, TaskResult(task_id="t1", mode="consensus", status="low_consensus", answer="x",
                                            votes=votes, created_ms=1, completed_ms=2))

    assert [topic for topic, _ in sent] == ["results"]  # the review item was too large as well
    result = sent[0][1]
    assert result.status == "failed" and "could not be published" in result.reason and result.votes == []  # type: ignore[attr-defined]
    assert store.states["t1"]["done"] is True and store.states["t1"]["status"] == "failed"


def test_a_swept_outcome_is_swept_again_only_with_a_doubling_backoff_until_its_task_ends() -> None:
    from swarmstream.agents.taskstate import RESWEEP_FIRST_MS, Resweeps

    resweeps = Resweeps()
    sweeps = [now for now in range(0, 60_000, 1_000) if resweeps.due("t1", "m", 0, now)]
    assert sweeps == [0, RESWEEP_FIRST_MS, 3 * RESWEEP_FIRST_MS, 7 * RESWEEP_FIRST_MS]  # not every second
    assert resweeps.repeated("t1", "m", 0)

    resweeps.keep_only(set())  # the task ended
    assert resweeps.due("t1", "m", 0, 61_000) and not resweeps.repeated("t1", "m", 0)


@pytest.mark.parametrize(("reply_to", "sent_to"), [
    ("results.gw-a", ["results.gw-a", "results"]),  # a reply topic: first the reply, then the log
    (None, ["results"]),
    ("audit", ["results"]),  # not under the results topic: ignored
    ("results.gw/../x", ["results"]),
    ("results.", ["results"]),
])
async def test_a_result_also_goes_to_the_task_s_reply_topic_and_only_to_one(reply_to: str | None,
                                                                            sent_to: list[str]) -> None:
    from swarmstream.agents.taskstate import Finisher
    from swarmstream.schemas.models import TaskResult

    sent: list[str] = []

    async def emit(topic: str, key: str, record: object, headers: object = None) -> None:
        sent.append(topic)

    finisher = Finisher(store=MemoryStore(), emit=emit, results_topic="results", review_topic="review",
                        review_threshold=0.5)
    state = {"task": {"task_id": "t1", "created_ms": 1, "prompt": "p", "reply_to": reply_to}, "done": False}
    await finisher.finish(state, TaskResult(task_id="t1", status="ok", answer="a", created_ms=1, completed_ms=2))
    assert sent == sent_to


async def test_a_result_published_before_a_crash_gets_its_reply_again() -> None:
    from swarmstream.agents.taskstate import Finisher
    from swarmstream.schemas.models import TaskResult

    sent: list[str] = []

    async def emit(topic: str, key: str, record: object, headers: object = None) -> None:
        sent.append(topic)

    finisher = Finisher(store=MemoryStore(), emit=emit, results_topic="results", review_topic="review",
                        review_threshold=0.5, published=lambda task_id: True)
    state = {"task": {"task_id": "t1", "created_ms": 1, "prompt": "p", "reply_to": "results.gw-a"}, "done": False}
    await finisher.finish(state, TaskResult(task_id="t1", status="ok", answer="a", created_ms=1, completed_ms=2))
    assert sent == ["results.gw-a"]  # not the results topic again
