"""Judge strategies' pure parts: slots, what a judge is shown, verdicts, the split rule, the phase."""

from __future__ import annotations

from typing import Any

import pytest
from swarmstream.agents.consensus.join import apply, open_task
from swarmstream.agents.consensus.judge_phase import Judging
from swarmstream.agents.consensus.judging import (
    InvalidVerdict,
    parse_verdict,
    show,
    split,
)
from swarmstream.agents.consensus.slots import Slot, candidate_slots, parse_slot
from swarmstream.agents.models.dedupe import request_counted
from swarmstream.schemas.models import (
    Failure,
    ModelRequest,
    ModelResponse,
    StepContext,
    TaskRequest,
)


@pytest.mark.parametrize(("key", "slot"), [
    ("gpt-4o", Slot("gpt-4o")),
    ("gpt-4o#3", Slot("gpt-4o", sample=3)),
    ("gpt-4o#judge", Slot("gpt-4o", role="judge")),
    ("gpt-4o#fuse", Slot("gpt-4o", role="fuse")),
    ("odd#name", Slot("odd#name")),  # an unknown suffix is part of the model id
    ("#3", Slot("#3")),
])
def test_slot_keys_round_trip(key: str, slot: Slot) -> None:
    assert parse_slot(key) == slot
    assert slot.key == key


def test_samples_come_round_by_round_so_a_first_batch_spans_models() -> None:
    assert candidate_slots(["a", "b"], 3) == ["a", "b", "a#1", "b#1", "a#2", "b#2"]
    assert candidate_slots(["a"], 1) == ["a"]


def test_the_judge_sees_distinct_answers_in_a_seeded_order_whatever_the_arrival() -> None:
    answers = [("a", "paris"), ("b", "lyon"), ("c", "paris"), ("d", "nice")]
    shown = show(answers, seed=7)

    assert sorted(shown.answers) == ["lyon", "nice", "paris"]
    assert show(list(reversed(answers)), seed=7) == shown
    assert dict(zip(shown.answers, shown.slots, strict=True))["paris"] == ("a", "c")
    assert len({show(answers, seed=s).answers for s in range(20)}) > 1  # the seed does shuffle


@pytest.mark.parametrize(("reply", "index"), [
    ('{"index": 2, "rationale": "right"}', 2),
    ('{"index": 1}', 1),
    ('```json\n{"index": 3, "rationale": "x"}\n```', 3),
])
def test_valid_verdicts(reply: str, index: int) -> None:
    assert parse_verdict(reply, 3).index == index


@pytest.mark.parametrize(("reply", "why"), [
    ("I am not sure.", "reply"),
    ('The answer is {"index": 1}', "reply"),
    ('{"index": 0, "rationale": "x"}', "index"),
    ('{"index": 4, "rationale": "x"}', "candidate 4 of 3"),
    ('{"index": 1, "rationale": "x", "score": 9}', "score"),
    ('{"index": "first"}', "index"),
    ("[1]", "reply"),
])
def test_invalid_verdicts_say_why(reply: str, why: str) -> None:
    with pytest.raises(InvalidVerdict, match=why):
        parse_verdict(reply, 3)


@pytest.mark.parametrize(("agreement", "judged"), [(1.0, False), (0.8, False), (0.75, False), (2 / 3, True), (0.5, True)])
def test_only_a_split_vote_goes_to_the_judge(agreement: float, judged: bool) -> None:
    assert split(agreement) is judged


# --- the phase, through join.apply --------------------------------------------------------------

def _task(**fields: Any) -> TaskRequest:
    fields = {"models": ["a", "b", "c"], **fields}
    return TaskRequest(task_id="t", created_ms=1_700_000_000_000, prompt="Is a salmon an animal or a fruit?",
                       labels=["animal", "fruit"], **fields)


def _step(task: TaskRequest, model: str, **extra: Any) -> StepContext:
    return StepContext(task_id=task.task_id, model_id=model, created_ms=task.created_ms,
                       deadline_ms=task.created_ms + 30_000, strategy=task.strategy, **extra)


def _answer(task: TaskRequest, model: str, answer: str, cost: int = 10, **extra: Any) -> ModelResponse:
    return ModelResponse(step=_step(task, model, **extra), text=answer, answer=answer, cost_micros=cost)


def _fail(task: TaskRequest, model: str, cls: str = "server_error", **extra: Any) -> Failure:
    return Failure(step=_step(task, model, **extra), failure_class=cls)


def _candidates(task: TaskRequest, answers: dict[str, str], judging: Judging) -> Any:
    state = open_task(task, order=list(answers), asked=list(answers), deadline_ms=task.created_ms + 30_000)
    step = None
    for model, answer in answers.items():
        step = apply(state, _answer(task, model, answer), review_threshold=0.5, judging=judging)
        state = step.state
    return step


def test_a_judge_task_asks_its_chain_in_turn_and_ends_with_the_pick() -> None:
    task = _task(strategy="judge", judge="chain")
    judging = Judging(links=lambda name: ["j1", "j2", "j3"])
    step = _candidates(task, {"a": "fruit", "b": "fruit", "c": "animal"}, judging)
    assert step.result is None and step.judge.model_id == "j1" and step.judge.role == "judge"
    assert "## Candidate 2" in step.judge.prompt and "a" not in step.judge.prompt.split("## Candidate")[1][:3]

    step = apply(step.state, _fail(task, "j1", role="judge"), review_threshold=0.5, judging=judging)
    assert step.judge.model_id == "j2"
    late = apply(step.state, _fail(task, "j1", role="judge"), review_threshold=0.5, judging=judging)
    assert late.duplicate  # the earlier link's outcome again
    step = apply(step.state, _answer(task, "j2", "not json", role="judge"), review_threshold=0.5, judging=judging)
    assert step.judge.model_id == "j3"
    shown = step.state["judge"]["answers"]
    pick = shown.index("animal") + 1
    verdict = f'{{"index": {pick}, "rationale": "salmon swim"}}'
    step = apply(step.state, _answer(task, "j3", verdict, cost=7, role="judge"), review_threshold=0.5,
                 judging=judging)

    result = step.result
    assert (result.answer, result.judged_by, result.judge_pick, result.judge_calls) == ("animal", "j3", pick, 3)
    assert result.judge_rationale == "salmon swim"
    assert (result.judge_cost_micros, result.cost_micros) == (17, 47)  # the bad verdict was paid for too
    assert result.agreement == pytest.approx(1 / 3)


def test_with_no_judge_left_the_vote_stands_and_says_why() -> None:
    task = _task(strategy="judge", judge="j1")
    step = _candidates(task, {"a": "fruit", "b": "fruit", "c": "animal"}, Judging())
    step = apply(step.state, _fail(task, "j1", "timeout", role="judge"), review_threshold=0.5)

    assert step.result.answer == "fruit" and step.result.judged_by is None
    assert "no judge left (j1: timeout)" in step.result.reason


def test_vote_then_judge_asks_no_judge_when_the_vote_agrees() -> None:
    task = _task(strategy="vote_then_judge", judge="j1")
    step = _candidates(task, {"a": "animal", "b": "animal", "c": "animal"}, Judging())

    assert step.judge is None and step.result.answer == "animal" and step.result.judge_calls == 0
    assert "no judge needed" in step.result.reason


@pytest.mark.parametrize(("cap", "asked"), [(0, True), (1_000, True), (600, False)])
def test_a_judge_call_is_reserved_against_the_task_budget(cap: int, asked: bool) -> None:
    task = _task(strategy="judge", judge="j1", max_cost_micros=cap)
    judging = Judging(forecast_micros=lambda model, chars, tokens: 600)
    step = _candidates(task, {"a": "fruit", "b": "fruit", "c": "animal"}, judging)  # candidates spent 30

    assert (step.judge is not None) is asked
    if not asked:
        assert "budget_exceeded" in step.result.reason and step.result.answer == "fruit"


def test_an_open_breaker_passes_a_judge_over() -> None:
    task = _task(strategy="fuse", judge="chain")
    judging = Judging(links=lambda name: ["down", "up"], admits=lambda model: model != "down")
    step = _candidates(task, {"a": "fruit", "b": "animal", "c": "animal"}, judging)
    assert (step.judge.model_id, step.judge.role) == ("up", "fuse")

    step = apply(step.state, _answer(task, "up", "animal", role="fuse"), review_threshold=0.5, judging=judging)
    assert (step.result.answer, step.result.judged_by, step.result.strategy) == ("animal", "up", "fuse")
    assert len(step.result.votes) == 3


def test_samples_are_steps_of_their_own_and_labels_count_a_model_once() -> None:
    task = _task(models=["a"], samples=3)
    slots = candidate_slots(["a"], 3)
    state = open_task(task, order=slots, asked=slots, deadline_ms=task.created_ms + 30_000)
    request = ModelRequest(task=task, model_id="a", sample=2, deadline_ms=task.created_ms + 30_000)
    for sample, answer in enumerate(["animal", "fruit", "animal"]):
        assert not request_counted(state, request) or sample > 2
        step = apply(state, _answer(task, "a", answer, sample=sample), review_threshold=0.5)
        state = step.state
    assert request_counted({**state, "done": False}, request)
    assert step.result.answer == "animal" and step.result.agreement == pytest.approx(2 / 3)
    assert [(v.model_id, v.sample) for v in step.result.votes] == [("a", 0), ("a", 1), ("a", 2)]


def test_intake_asks_every_sample_of_every_model_and_refuses_samples_with_tools() -> None:
    from swarmstream.agents.dispatch.intake import InvalidTask, plan_task

    families = {"a": "fa", "b": "fb"}
    plan = plan_task(_task(models=["a", "b"], samples=2), families=families, default_models=["a"])
    assert plan.ask == plan.order == ["a", "b", "a#1", "b#1"]
    with pytest.raises(InvalidTask, match="samples > 1 with tools"):
        plan_task(_task(models=["a"], samples=2, tools=["calculator"]), families=families, default_models=["a"])


def test_the_sweeper_ends_a_judge_call_that_never_answered() -> None:
    from swarmstream.agents.taskstate import SWEEP_GRACE_MS, overdue

    task = _task(strategy="judge", judge="chain")
    judging = Judging(links=lambda name: ["j1", "j2"])
    step = _candidates(task, {"a": "fruit", "b": "fruit", "c": "animal"}, judging)
    late = step.state["deadline_ms"] + SWEEP_GRACE_MS + 1
    [(slot, attempt)] = overdue(step.state, late)
    assert (slot, attempt) == ("j1#judge", 0)

    swept = Failure(step=_step(task, slot), failure_class="timeout")  # as the sweeper writes it: the slot as model
    step = apply(step.state, swept, review_threshold=0.5, judging=judging)
    assert step.judge.model_id == "j2"


def test_free_text_clusters_lexically_unless_an_embedder_is_given_and_the_result_says_which() -> None:
    task = TaskRequest(task_id="t", created_ms=1_700_000_000_000, prompt="Capital of France?", answer_type="text",
                       models=["a", "b"])
    state = open_task(task, order=["a", "b"], asked=["a", "b"], deadline_ms=task.created_ms + 30_000)
    state = apply(state, _answer(task, "a", "Paris"), review_threshold=0.5).state
    last = _answer(task, "b", "It is Paris")

    assert apply(state, last, review_threshold=0.5).result.embedder == "hashed-ngram"

    class Named:
        name, default_threshold = "semantic", 0.5

        def embed(self, texts: list[str]) -> Any:
            import numpy as np
            return np.ones((len(texts), 2))

    assert apply(state, last, review_threshold=0.5, embedder=Named()).result.embedder == "semantic"
