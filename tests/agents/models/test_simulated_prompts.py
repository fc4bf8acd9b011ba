"""The prompts a person types, as the simulated fleet reads them: safe arithmetic
(agents/models/simulated/arithmetic.py) and questions (prompts.py). Table-driven, edge cases
first; one test over HTTP shows the fleet answering them."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import aiohttp
import orjson
import pytest
from swarmstream.agents.models.parsing import parse_answer
from swarmstream.agents.models.simulated import SimFleet, SimProfile, serve_forever, solve
from swarmstream.agents.models.simulated.arithmetic import (
    MAX_EXPRESSION_CHARS,
    MAX_NESTING,
    NotArithmetic,
    evaluate,
    format_number,
    is_operation,
)
from swarmstream.agents.models.simulated.prompts import (
    choice_truth,
    offered_labels,
    question_expression,
    understand,
)
from swarmstream.agents.models.simulated.taskset import Truth, demo_tasks

# --- the evaluator ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("6 * 7", 42),
        ("2+2", 4),
        ("12 / 4", 3),
        ("7 / 2", Fraction(7, 2)),
        ("1 / 3", Fraction(1, 3)),
        ("(2 + 3) * 4", 20),
        ("2 + 3 * 4", 14),  # precedence
        ("10 - 4 - 3", 3),  # left to right
        ("2 ^ 10", 1024),
        ("2 ^ 3 ^ 2", 512),  # right to left, as in maths
        ("-2 ^ 2", -4),  # the power binds tighter than the sign
        ("2 ^ -2", Fraction(1, 4)),
        ("-3 - -4", 1),
        ("+5", 5),
        ("0.1 + 0.2", Fraction(3, 10)),  # exact, not 0.30000000000000004
        (".5 * 4", 2),
        ("((((1))))", 1),
    ],
)
def test_evaluate(text: str, value: Fraction | int) -> None:
    assert evaluate(text) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("1 / 0", "division by zero"),
        ("0 ^ -1", "division by zero"),
        ("2 ^ 0.5", "exponent"),
        ("10 ^ 1000000", "exponent"),
        ("99999999 ^ 64", "digits"),
        ("9" * 70, "digits"),
        ("(1 + 2", "ends too early|unbalanced"),
        ("1 + 2)", "unexpected"),
        ("2 3", "unexpected"),
        ("__import__('os').system('true')", "unexpected"),
        ("1 + x", "unexpected"),
        ("2 ** 3", "unexpected"),  # ** is spelled ^ by the time it gets here (prompts.py)
        ("1 +" + " 1 +" * (MAX_EXPRESSION_CHARS // 4) + " 1", "longer than"),
        ("(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1), "nested"),
        ("-" * (MAX_NESTING + 1) + "1", "nested"),
    ],
)
def test_evaluate_refuses_what_is_not_bounded_arithmetic(text: str, why: str) -> None:
    with pytest.raises(NotArithmetic, match=why):
        evaluate(text)


def test_a_refused_power_costs_no_time() -> None:
    started = time.perf_counter()
    for text in ("9 ^ 64 ^ 64", "(99 ^ 64) * (99 ^ 64) * (99 ^ 64)", "2 ^ 64 ^ 64 ^ 64"):
        with pytest.raises(NotArithmetic):
            evaluate(text)
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1 + 1", True), ("(1) * (2)", True), ("2^3", True), ("5", False), ("-5", False), ("(3)", False), ("+", False),
     ("a + b", False)],
)
def test_is_operation(text: str, expected: bool) -> None:
    assert is_operation(text) is expected


@pytest.mark.parametrize(
    ("value", "text"),
    [(Fraction(42), "42"), (Fraction(-7), "-7"), (Fraction(7, 2), "3.5"), (Fraction(1, 3), "0.3333333333333333"),
     (Fraction(2**70), str(2**70))],
)
def test_numbers_are_written_as_the_pipeline_reads_them(value: Fraction, text: str) -> None:
    assert format_number(value) == text
    assert parse_answer(f"Answer: {text}", "number") == parse_answer(text, "number")


# --- arithmetic questions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        ("What is 6 * 7?", "42"),  # the README's JSON example
        ("What is 2 + 2?", "4"),  # the README's `swarmstream submit`
        ("2+2", "4"),
        ("2 + 2 =", "4"),
        ("what's 12 divided by 4", "3"),
        ("Whats 12/4?", "3"),
        ("How much is 7 x 8?", "56"),
        ("What is 6 × 7?", "42"),
        ("What is 6 times 7?", "42"),
        ("what is 9 multiplied by 3", "27"),
        ("What is 10 minus 15?", "-5"),
        ("What is 3 plus 4? Answer with a number.", "7"),
        ("Compute (2 + 3) * 4.", "20"),
        ("Calculate: 2**10", "1024"),
        ("What is 5 squared?", "25"),
        ("What is 2 to the power of 8?", "256"),
        ("What is the sum of 3 and 4?", "7"),
        ("What is the product of 6 and 7?", "42"),
        ("What is 1,000 + 24?", "1024"),
        ("What is 7 / 2?", "3.5"),
        ("What is 17 / 25? Answer with a number.", "0.68"),  # the demo never writes "/", a person does
        ("You are a calculator.\n\nWhat is 3 * 3?", "9"),
    ],
)
def test_arithmetic_questions_are_answered(prompt: str, answer: str) -> None:
    truth = understand(prompt)
    assert truth is not None and truth.answer_type == "number" and truth.category == "math"
    assert truth.answer == answer
    assert answer not in truth.wrong and len(set(truth.wrong)) == 4


@pytest.mark.parametrize(
    "prompt",
    [
        "What is 5?",  # a number, no operation
        "What is 1 / 0?",
        "Released 2024-01-05: what changed?",  # no cue, not only an expression: not a subtraction
        "Version 3.11-2 notes",
        "What is 10 to the power of 1000000?",
        "What is __import__('os')?",
        "Tell me a joke.",
    ],
)
def test_text_that_only_looks_like_arithmetic_is_not_answered(prompt: str) -> None:
    assert question_expression(prompt) is None or understand(prompt) is None
    assert understand(prompt) is None


# --- choices between labels ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "labels"),
    [
        ("Is a salmon an animal or a fruit?", ("animal", "fruit")),  # the README's SwarmClient example
        ("Is salmon an animal, a fruit, or a tool?", ("animal", "fruit", "tool")),
        ("Classify salmon as animal, fruit or tool", ("animal", "fruit", "tool")),
        ("Which is a falcon: animal, color or tool?", ("animal", "color", "tool")),
        ("Classify 'mango' as one of: animal, fruit, color.", ("animal", "fruit", "color")),
        ("Sentiment of 'I loved it' (one of: positive / negative / neutral)", ("positive", "negative", "neutral")),
        ("Answer yes or no: is a fig a fruit?", ("yes", "no")),
        ("Describe a salmon.", ()),
        ("Is a salmon tasty?", ()),
    ],
)
def test_offered_labels(prompt: str, labels: tuple[str, ...]) -> None:
    assert offered_labels(prompt) == labels


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        ("Is a salmon an animal or a fruit?", "animal"),
        ("Is a mango an animal or a fruit?", "fruit"),
        ("Classify 'teal' as one of: tool, color, vehicle", "color"),
        ("Are otters animals or tools?", "animals"),  # plural subject, labels as offered
        ("Which is a tram: vehicle or instrument?", "vehicle"),
    ],
)
def test_a_known_subject_gets_its_label(prompt: str, answer: str) -> None:
    truth = understand(prompt)
    assert truth is not None and truth.answer_type == "label" and truth.category == "factual"
    assert truth.answer == answer and answer not in truth.wrong


@pytest.mark.parametrize(
    "prompt",
    [
        "Classify the sentiment: positive or negative",  # a subject outside the vocabulary
        "Is a salmon a color or a tool?",  # its label is not offered
        "Classify the word 'zebu' as one of: animal, fruit, color, tool. Answer with the label only.",
    ],
)
def test_an_unknown_subject_gets_one_of_the_offered_labels_the_same_every_time(prompt: str) -> None:
    truth = choice_truth(prompt)
    assert truth is not None and truth.answer in offered_labels(prompt)
    assert set(truth.wrong) == set(offered_labels(prompt)) - {truth.answer}
    assert choice_truth(prompt) == truth


def test_the_demo_prompt_shapes_come_first() -> None:
    for task in demo_tasks(40, kinds=("label", "number", "text", "json")):
        assert understand(task.prompt) == solve(task.prompt)
    assert understand("What is 3 + 4? Answer with a number.") == Truth("7", ("8", "6", "17", "-3"), "number")


# --- over HTTP -------------------------------------------------------------------------------


async def test_the_fleet_answers_the_readme_prompts() -> None:
    """Every answer parses as the pipeline would parse it for the task (labels given), so none is ``failed``."""
    cases = [
        ("What is 6 * 7?", "number", [], "42"),
        ("What is 2 + 2?", "number", [], "4"),
        ("Is a salmon an animal or a fruit?", "label", ["animal", "fruit"], "animal"),
    ]
    async with SimFleet({"m": SimProfile(accuracy=1.0, latency_median_ms=0, latency_p99_ms=0)}) as fleet, \
            aiohttp.ClientSession() as session:
        for prompt, answer_type, labels, expected in cases:
            payload = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
            async with session.post(f"{fleet.base_url}/chat/completions", data=orjson.dumps(payload)) as resp:
                body = orjson.loads(await resp.read())
            text = body["choices"][0]["message"]["content"]
            assert parse_answer(text, answer_type, labels=labels) == expected, (prompt, text)
        assert fleet.counters["m"]["unsolved"] == 0


async def test_serve_forever_stops_when_its_stop_event_is_set() -> None:
    stop = asyncio.Event()
    urls: list[str] = []
    ready = asyncio.Event()

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    server = asyncio.create_task(serve_forever({"m": SimProfile()}, "127.0.0.1", 0, on_ready=on_ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 10)
    assert not urls[0].endswith(":0/v1")  # port 0 picked a real one, and the URL says which
    stop.set()
    await asyncio.wait_for(server, 5)
