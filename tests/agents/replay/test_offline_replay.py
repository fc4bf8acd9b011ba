"""Offline replay on hand-made recordings: exact accuracies, costs, calls, ECE, and live parity."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from swarmstream.agents.consensus.join import decide, open_task, quality_labels
from swarmstream.agents.replay import offline
from swarmstream.agents.replay.offline import (
    ReplayError,
    ReplaySet,
    ReplayTask,
    _ReliabilityFold,
    calibration_bins,
    compare_with_live,
    early_stop_plan,
    expected_calibration_error,
    replay,
    replay_summary,
    replay_tasks,
    simulate_early_stop,
)
from swarmstream.agents.replay.recording import (
    Label,
    Recording,
    read_recording,
    write_recording,
)
from swarmstream.agents.stats.book import ModelBook
from swarmstream.schemas.models import (
    CastVote,
    Failure,
    ModelResponse,
    QualityEvent,
    StepContext,
    TaskRequest,
    TaskResult,
)

MODELS = ["a", "b", "c"]


def task(task_id: str, *, answer_type: str = "label", mode: str = "consensus", created_ms: int = 1_000,
         models: list[str] | None = None) -> TaskRequest:
    return TaskRequest(task_id=task_id, created_ms=created_ms, prompt=f"question {task_id}",
                       answer_type=answer_type, mode=mode, models=MODELS if models is None else models)  # type: ignore[arg-type]


def answer(task_id: str, model: str, text: str, *, latency_ms: int = 50, cost_micros: int = 100,
           answer_type: str = "label", confidence: float | None = None) -> ModelResponse:
    step = StepContext(task_id=task_id, model_id=model, created_ms=1_000, deadline_ms=31_000, answer_type=answer_type,
                       expected_models=MODELS, category="factual")
    return ModelResponse(step=step, text=text, answer=text, latency_ms=latency_ms, cost_micros=cost_micros,
                         confidence=confidence, responded_ms=1_000 + latency_ms)


def failed(task_id: str, model: str, *, final: bool = True, failed_ms: int = 2_000) -> Failure:
    step = StepContext(task_id=task_id, model_id=model, created_ms=1_000, deadline_ms=31_000,
                       expected_models=MODELS, category="factual")
    return Failure(step=step, failure_class="server_error", final=final, failed_ms=failed_ms)


def hand_made() -> Recording:
    """Five labelled consensus tasks, one unlabelled, one select task (module of the test for the truths)."""
    rec = Recording()
    records: list[object] = [
        # t1: 2-1 for the label
        task("t1"), answer("t1", "a", "x"), answer("t1", "b", "x"), answer("t1", "c", "y"), Label("t1", "x"),
        # t2: 2-1 against the label
        task("t2"), answer("t2", "a", "y"), answer("t2", "b", "x"), answer("t2", "c", "y"), Label("t2", "x"),
        # t3: a three-way tie, broken by the lowest latency: c is fastest and right
        task("t3"), answer("t3", "a", "x", latency_ms=90), answer("t3", "b", "y", latency_ms=80),
        answer("t3", "c", "z", latency_ms=10), Label("t3", "z"),
        # t4: b fails for good (a non-final failure of c before its answer does not count)
        task("t4"), answer("t4", "a", "x"), failed("t4", "b"), failed("t4", "c", final=False, failed_ms=1_001),
        answer("t4", "c", "x"), Label("t4", "x"),
        # t5: a number task: median and majority both find 10
        task("t5", answer_type="number"), answer("t5", "a", "10", answer_type="number"),
        answer("t5", "b", "11", answer_type="number"), answer("t5", "c", "10", answer_type="number"),
        Label("t5", "10"),
        # t7: no label
        task("t7"), answer("t7", "a", "x"), answer("t7", "b", "x"), answer("t7", "c", "x"),
        # t6: select mode: not a consensus task
        task("t6", mode="select", models=[]), answer("t6", "b", "x"), Label("t6", "x"),
    ]
    for record in records:
        rec.add(record)  # type: ignore[arg-type]
    return rec


def test_hand_made_recording_gives_exact_numbers() -> None:
    reports = replay(hand_made(), ["majority", "median", "early_stop", "default"], weights="uniform")

    majority = reports["majority"]
    assert (majority.tasks, majority.labelled, majority.correct) == (6, 5, 4)
    assert majority.accuracy == pytest.approx(4 / 5)
    assert majority.cost_usd == pytest.approx(17 * 100 / 1e6)  # 17 answers used
    assert majority.calls_per_task == pytest.approx(18 / 6)  # t4's failed model was asked too
    assert {t: d.answer for t, d in majority.decisions.items()} == {
        "t1": "x", "t2": "y", "t3": "z", "t4": "x", "t5": "10", "t7": "x"}

    median = reports["median"]
    assert (median.tasks, median.accuracy) == (1, 1.0)  # number tasks only

    # early stop, order a, b, c, first batch of 2: t1 stops at 2 unanimous; t2, t3, t5 need c;
    # t4 stops after a's answer and b's failure (Beta rule: P(1 vs 0) = 0.75 > 0.65); t7 at 2.
    early = reports["early_stop"]
    assert early.accuracy == pytest.approx(4 / 5)
    assert early.calls_per_task == pytest.approx((2 + 3 + 3 + 2 + 3 + 2) / 6)
    assert early.cost_usd == pytest.approx((2 + 3 + 3 + 1 + 3 + 2) * 100 / 1e6)
    assert early.decisions["t4"].answer == "x"

    assert reports["default"].decisions["t5"].answer == "10"  # median for the number task


def test_replayed_decisions_are_the_live_joins(tmp_path: Path) -> None:
    """A live result made by join.decide with known weights is reproduced bit for bit."""
    weights = {"a": 0.8, "b": 0.6, "c": 0.55}
    records: list[object] = []
    for i, answers in enumerate([("x", "x", "y"), ("y", "y", "x"), ("x", "y", "z"), ("x", "x", "x")]):
        tid = f"live-{i}"
        t = task(tid, created_ms=1_000 + i)
        outs = [answer(tid, m, a, latency_ms=10 * (j + 1), confidence=0.7 if j == 0 else None)
                for j, (m, a) in enumerate(zip(MODELS, answers, strict=True))]
        state = open_task(t, order=MODELS, asked=MODELS, deadline_ms=31_000)
        state["answers"] = {o.step.model_id: {"answer": o.answer, "confidence": o.confidence,
                                              "latency_ms": o.latency_ms, "cost_micros": o.cost_micros} for o in outs}
        live = decide(state, 0.5, weights)
        records += [t, *outs, live, Label(tid, "x")]
    path = tmp_path / "live.jsonl"
    write_recording(path, records)  # type: ignore[arg-type]
    recording = read_recording(path)

    comparison = compare_with_live(recording)
    assert comparison.identical
    assert comparison.confidence_mismatches == ()
    assert comparison.live_accuracy == comparison.replayed_accuracy == pytest.approx(3 / 4)

    report = replay(recording, ["majority"])["majority"]
    for tid, result in recording.results.items():
        assert report.decisions[tid].answer == result.answer
        assert report.decisions[tid].confidence == result.confidence
        assert report.decisions[tid].agreement == result.agreement


def test_a_live_result_that_differs_is_reported() -> None:
    rec = hand_made()
    rec.results["t2"] = TaskResult(task_id="t2", status="ok", answer="x", confidence=0.9,
                                   votes=[CastVote(model_id=m, answer="x") for m in MODELS])
    comparison = compare_with_live(rec)
    assert not comparison.identical
    assert comparison.answer_mismatches == ("t2",)
    assert (comparison.live_accuracy, comparison.replayed_accuracy) == (1.0, 0.0)


def test_weights_live_use_the_recorded_vote_weights() -> None:
    rec = hand_made()
    rec.results["t1"] = TaskResult(task_id="t1", status="ok", answer="x",
                                   votes=[CastVote(model_id="a", answer="x", weight=0.1),
                                          CastVote(model_id="b", answer="x", weight=0.1),
                                          CastVote(model_id="c", answer="y", weight=0.9)])
    replay_set = ReplaySet.from_recording(rec)
    assert replay_set.weights["t1"] == {"a": 0.1, "b": 0.1, "c": 0.9}
    t1 = next(t for t in replay_set.tasks if t.task_id == "t1")
    assert replay_set.decide(t1, "weighted").answer == "y"  # 0.9 beats 0.2
    assert replay_set.decide(t1, "majority").answer == "x"


def test_reliability_fold_matches_the_model_book() -> None:
    """The fast fold gives the ModelBook's reliabilities bit for bit."""
    rng = random.Random(3)
    fold, book = _ReliabilityFold(), ModelBook()
    for i in range(400):
        category = rng.choice(["math", "factual", None])
        votes = [(m, rng.choice("xyz")) for m in rng.sample("abcde", rng.randint(1, 5))]
        answer_ = rng.choice(["x", "y", None])
        confidence = rng.random()
        result = TaskResult(task_id=f"t{i}", status="ok", answer=answer_, confidence=confidence,
                            votes=[CastVote(model_id=m, answer=a) for m, a in votes])
        for model, reward in quality_labels(result):
            book.add_quality(QualityEvent(model_id=model, category=category, reward=reward, source="consensus",
                                          task_id=f"t{i}", at_ms=i))
        fold.teach(category, answer_, confidence, votes)
        asked = category if i % 2 else rng.choice(["math", "factual", "other", None])
        assert fold.reliability(list("abcdef"), asked) == book.reliability(list("abcdef"), asked)


@pytest.mark.parametrize("seed", range(5))
def test_early_stop_pattern_cache_matches_the_direct_plan(seed: int) -> None:
    rng = random.Random(seed)
    for i in range(300):
        n = rng.randint(1, 6)
        order = tuple(f"m{j}" for j in range(n))
        answers, failures = {}, {}
        for model in order:
            kind = rng.random()
            if kind < 0.75:
                answers[model] = {"answer": rng.choice(["x", "y", " x", "z", ""]), "confidence": None,
                                  "latency_ms": 1, "cost_micros": 1}
            elif kind < 0.9:
                failures[model] = {"class": "timeout", "latency_ms": 1}
        t = ReplayTask(task_id=f"t{i}", answer_type="label", strategy=None, category=None, created_ms=0, order=order,
                       answers=answers, failures=failures, label=None, live=None)
        for threshold in (0.65, 0.95):
            asked, unknown = early_stop_plan(t, threshold=threshold)
            assert asked == simulate_early_stop(t, threshold=threshold)
            assert unknown == sum(m not in answers and m not in failures for m in asked)


def test_order_comes_from_expected_models_without_a_task_record() -> None:
    rec = Recording()
    for model, text in zip(MODELS, "xxy", strict=True):
        rec.add(answer("orphan", model, text))
    [t] = replay_tasks(rec)
    assert t.order == tuple(MODELS)
    assert (t.answer_type, t.category) == ("label", "factual")


@pytest.mark.parametrize(
    ("confidences", "correct", "expected"),
    [
        ([], [], None),
        ([0.95, 0.95, 0.15, 0.55], [True, False, False, True], 0.5 * 0.45 + 0.25 * 0.15 + 0.25 * 0.45),
        ([1.0, 1.0], [True, True], 0.0),
        ([0.0, 0.0], [False, False], 0.0),
        ([0.7] * 10, [True] * 7 + [False] * 3, 0.0),
    ],
)
def test_expected_calibration_error(confidences: list[float], correct: list[bool], expected: float | None) -> None:
    ece = expected_calibration_error(confidences, correct)
    assert ece == (None if expected is None else pytest.approx(expected))


def test_calibration_bins_put_one_in_the_last_bin() -> None:
    bins = calibration_bins([1.0, 0.9, 0.05], [True, False, True])
    assert [(b.low, b.count) for b in bins] == [(0.0, 1), (0.9, 2)]
    assert bins[1].accuracy == 0.5


def test_unknown_strategy_and_weights_are_errors() -> None:
    with pytest.raises(ReplayError, match="unknown strategy 'nope'"):
        replay(hand_made(), ["nope"])
    with pytest.raises(ReplayError, match="unknown weights"):
        replay(hand_made(), ["majority"], weights="bogus")  # type: ignore[arg-type]


def test_summary_is_json_with_the_cli_keys() -> None:
    summary = replay_summary(hand_made(), weights="uniform")
    assert set(summary["strategies"]) == {"default", "majority", "weighted", "median", "trimmed_mean",
                                          "weighted_mean", "early_stop"}
    for numbers in summary["strategies"].values():
        assert {"accuracy", "cost_usd", "calls_per_task", "ece"} <= set(numbers)
    assert "live" not in summary
    assert "majority" in offline.render(summary)
