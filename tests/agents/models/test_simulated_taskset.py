"""The demo task set and the pure decisions of the simulated fleet (no sockets)."""

import math
import random
import statistics

import pytest
from swarmstream.agents.models.simulated import (
    SimProfile,
    demo_tasks,
    extract_answer,
    normalise_answer,
    solve,
)
from swarmstream.agents.models.simulated.behaviour import (
    answer_text,
    decide_answer,
    draw_latency_s,
    failure_table,
    pick_failure,
)
from swarmstream.agents.models.simulated.profile import FAILURE_CLASSES, check_profile
from swarmstream.agents.models.simulated.taskset import LABELS, VOCABULARY, Truth

ALL_KINDS = ("label", "number", "text", "json")


# --- taskset --------------------------------------------------------------------------------


def test_demo_tasks_are_reproducible_and_a_longer_list_extends_a_shorter_one():
    assert demo_tasks(200, seed=3, kinds=ALL_KINDS) == demo_tasks(200, seed=3, kinds=ALL_KINDS)
    assert demo_tasks(300, seed=3, kinds=ALL_KINDS)[:200] == demo_tasks(200, seed=3, kinds=ALL_KINDS)
    assert [t.prompt for t in demo_tasks(50, seed=3)] != [t.prompt for t in demo_tasks(50, seed=4)]


def test_demo_tasks_shape():
    tasks = demo_tasks(400, kinds=ALL_KINDS)
    assert [t.answer_type for t in tasks[:8]] == ["label", "number", "text", "json"] * 2
    assert len({t.task_id for t in tasks}) == len(tasks)
    assert {t.category for t in tasks} == {"math", "factual", "extraction"}
    for t in tasks:
        assert {"number": "math", "label": "factual", "text": "factual", "json": "extraction"}[
            t.answer_type
        ] == t.category
        if t.answer_type == "label":
            assert len(t.labels) == 4 and t.answer in t.labels and set(t.labels) <= set(LABELS)
        else:
            assert t.labels == ()
    # label and number prompts do not repeat at this size
    label_number = [t.prompt for t in tasks if t.answer_type in ("label", "number")]
    assert len(set(label_number)) == len(label_number)


def test_default_kinds_are_label_and_number():
    assert {t.answer_type for t in demo_tasks(20)} == {"label", "number"}


@pytest.mark.parametrize("bad", [{"n": -1}, {"n": 3, "kinds": ("essay",)}, {"n": 3, "kinds": ()}])
def test_demo_tasks_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match="demo_tasks"):
        demo_tasks(**bad)


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_solve_recovers_every_generated_answer(seed):
    for task in demo_tasks(1000, seed=seed, kinds=ALL_KINDS):
        truth = solve(task.prompt)
        assert truth is not None, task.prompt
        assert truth.answer == task.answer and truth.answer_type == task.answer_type
        assert truth.wrong and task.answer not in truth.wrong
        assert len(set(truth.wrong)) == len(truth.wrong)
        if task.answer_type == "label":
            assert set(truth.wrong) == set(task.labels) - {task.answer}


@pytest.mark.parametrize(
    ("prompt", "answer", "wrong"),
    [
        ("What is 17 + 25? Answer with a number.", "42", ("43", "41", "52", "32")),
        ("What is 3 - 10? Answer with a number.", "-7", ("-6", "-8", "3", "-17")),
        ("What is 12 * 11? Answer with a number.", "132", ("133", "131", "142", "122")),
        (
            "Classify the word 'salmon' as one of: animal, fruit, color, tool. Answer with the label only.",
            "animal",
            ("fruit", "color", "tool"),
        ),
    ],
)
def test_solve_table(prompt, answer, wrong):
    assert solve(prompt) == Truth(answer, wrong, solve(prompt).answer_type)


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "Tell me a joke.",
        "What is 17 / 25? Answer with a number.",
        # a word outside the vocabulary, and a word whose label is not offered
        "Classify the word 'zebu' as one of: animal, fruit, color, tool. Answer with the label only.",
        "Classify the word 'salmon' as one of: fruit, color, tool, vehicle. Answer with the label only.",
    ],
)
def test_solve_returns_none_for_prompts_it_did_not_write(prompt):
    assert solve(prompt) is None


def test_solve_tolerates_surrounding_text():
    prompt = "You are a careful assistant.\n\nWhat is 2 + 2? Answer with a number.\n"
    assert solve(prompt).answer == "4"


def test_vocabulary_has_enough_words_per_label():
    for label in LABELS:
        assert sum(1 for v in VOCABULARY.values() if v == label) >= 8


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_extract_answer_reads_what_the_simulator_writes(kind):
    for task in demo_tasks(40, kinds=(kind,)):
        truth = solve(task.prompt)
        for answer in (truth.answer, *truth.wrong):
            assert extract_answer(answer_text(kind, answer), kind) == answer
    if kind in ("label", "number", "json"):
        assert extract_answer("I am not sure.", kind) is None


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("number", "The answer is 1,024.", "1024"),
        ("number", " -07 ", "-7"),
        ("label", "  Animal. ", "animal"),
        ("text", "William  Shakespeare.", "william shakespeare"),
        ("json", 'Sure: {"name": "Maria", "city": "Lyon", "age": 34}', '{"age":34,"city":"lyon","name":"maria"}'),
        ("json", "{not json}", None),
        ("number", "no digits", None),
    ],
)
def test_normalise_answer(kind, raw, expected):
    assert normalise_answer(kind, raw) == expected


# --- behaviour (pure decisions) -------------------------------------------------------------


def test_decide_answer_is_a_pure_function_of_seed_model_prompt():
    truth = solve("What is 17 + 25? Answer with a number.")
    a = decide_answer(1, "m", "p", truth, 0.5)
    assert all(decide_answer(1, "m", "p", truth, 0.5) == a for _ in range(5))
    decisions = {decide_answer(s, m, p, truth, 0.5) for s in (1, 2) for m in ("m", "n") for p in ("p", "q")}
    assert len({d.correct for d in decisions}) == 2  # not constant across the inputs


def test_decide_answer_accuracy_and_monotonicity():
    # one task per prompt: the text prompts repeat (a small pool), and a repeated prompt repeats
    # its decision, so rates over repeats would swing by far more than their binomial spread
    tasks = list({t.prompt: t for t in demo_tasks(2000, kinds=ALL_KINDS)}.values())
    low = [decide_answer(0, "m", t.prompt, solve(t.prompt), 0.6) for t in tasks]
    high = [decide_answer(0, "m", t.prompt, solve(t.prompt), 0.9) for t in tasks]
    assert abs(sum(d.correct for d in low) / len(tasks) - 0.6) < 0.04
    assert abs(sum(d.correct for d in high) / len(tasks) - 0.9) < 0.03
    # raising accuracy only turns wrong answers into right ones
    assert all(h.correct for lo, h in zip(low, high, strict=True) if lo.correct)
    for task, d in zip(tasks, low, strict=True):
        assert (d.answer == task.answer) == d.correct
        assert d.confidence_logprob < 0


def test_latency_draw_matches_median_and_p99():
    rng = random.Random(0)
    profile = SimProfile(latency_median_ms=50, latency_p99_ms=200)
    draws = sorted(draw_latency_s(rng, profile) * 1000 for _ in range(20000))
    assert statistics.median(draws) == pytest.approx(50, rel=0.05)
    assert draws[int(0.99 * len(draws))] == pytest.approx(200, rel=0.12)
    assert draw_latency_s(rng, SimProfile(latency_median_ms=0, latency_p99_ms=0)) == 0
    fixed = SimProfile(latency_median_ms=30, latency_p99_ms=30)
    assert draw_latency_s(rng, fixed) == pytest.approx(0.030)


def test_failure_table_spreads_error_rate_over_retryable_errors():
    table = dict(failure_table(SimProfile(error_rate=0.5, failures={"server_error": 0.1, "auth": 0.05})))
    assert table == pytest.approx({"auth": 0.05, "server_error": 0.1 + 0.3, "rate_limited": 0.2})
    assert failure_table(SimProfile()) == ()


@pytest.mark.parametrize(
    ("u", "expected"),
    [(0.0, "auth"), (0.049, "auth"), (0.05, "server_error"), (0.449, "server_error"), (0.45, None), (0.99, None)],
)
def test_pick_failure(u, expected):
    assert pick_failure((("auth", 0.05), ("server_error", 0.4)), u) == expected


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"failures": {"servererror": 0.1}}, "failures: unknown class 'servererror'"),
        ({"script": ["ok", "boom"]}, r"script\[1\]: unknown step 'boom'"),
        ({"accuracy": 1.5}, "accuracy"),
        ({"error_rate": 0.6, "failures": {"auth": 0.6}}, "add up to"),
        ({"latency_median_ms": 100, "latency_p99_ms": 50}, "latency_p99_ms"),
    ],
)
def test_check_profile_names_the_model_and_the_field(profile, message):
    # model_construct skips the catalog's own validators: the fleet checks again on its own
    fields = {**SimProfile().model_dump(), **profile}
    with pytest.raises(ValueError, match=f"simulated model 'm1': .*{message}"):
        check_profile("m1", SimProfile.model_construct(**fields))


def test_outcome_names_match_the_failure_vocabulary():
    failures = pytest.importorskip("swarmstream.agents.models.failures")
    assert set(FAILURE_CLASSES) == {c.value for c in failures.FailureClass}


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_the_pipeline_parser_reads_what_the_simulator_writes(kind):
    parsing = pytest.importorskip("swarmstream.agents.models.parsing")
    for task in demo_tasks(40, kinds=(kind,)):
        truth = solve(task.prompt)
        for answer in (truth.answer, *truth.wrong):
            assert parsing.parse_answer(answer_text(kind, answer), kind, labels=task.labels) == answer


def test_confidence_is_a_log_probability():
    truth = solve("What is 1 + 1? Answer with a number.")
    for model in ("a", "b", "c"):
        assert math.exp(decide_answer(0, model, "x", truth, 0.7).confidence_logprob) <= 1
