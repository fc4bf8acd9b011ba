"""Task features: token estimate, the rule-based category classifier, stated categories."""

from __future__ import annotations

import pytest
from swarmstream.agents.models.simulated.taskset import demo_tasks
from swarmstream.agents.selection import features
from swarmstream.agents.selection.features import (
    CATEGORIES,
    FeatureExtractor,
    RuleBasedExtractor,
    TaskFeatures,
    classify_category,
    estimate_tokens,
    estimate_tokens_heuristic,
    extract_features,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n\t ", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("hello world", 3),  # 11 chars -> ceil(11 / 4)
        ("hello      world", 3),  # a whitespace run counts as one space
        ("hello\n\n\n    world", 3),
        ("x" * 400, 100),
    ],
)
def test_heuristic_token_estimate(text: str, tokens: int) -> None:
    assert estimate_tokens_heuristic(text) == tokens


def test_estimate_tokens_uses_a_tokenizer_or_the_documented_estimate() -> None:
    text = "Extract the person's name, age and city from the text below."
    count = estimate_tokens(text)
    if features.tokenizer_name().startswith("estimate"):
        assert count == estimate_tokens_heuristic(text)
    else:  # a real BPE count is in the same ballpark
        assert 0.5 * estimate_tokens_heuristic(text) <= count <= 2 * estimate_tokens_heuristic(text)


@pytest.mark.parametrize(
    ("prompt", "answer_type", "category"),
    [
        # edge cases first
        ("", "text", "general"),
        ("hello there", "text", "general"),
        ("ok", "number", "general"),  # the answer type alone is not evidence
        ("Meet me on 2026-11-25 at 10/12", "text", "general"),  # dates are not arithmetic
        # math
        ("What is 12 + 30? Answer with a number.", "number", "math"),
        ("What is 57 - 23?", "number", "math"),
        ("Compute the derivative of x^2", "text", "math"),
        ("What is the probability of two heads in a row?", "text", "math"),
        # code
        ("```python\nprint(1)\n```\nWhy does this print 1?", "text", "code"),
        ("Write a function in Python that reverses a list", "text", "code"),
        ("Here is a traceback from my Rust program, what is wrong?", "text", "code"),
        ("def add(a, b):\n    return a - b\nfix the bug", "text", "code"),
        # extraction
        ("Extract the person's name, age and city from: 'Maria is 34'", "json", "extraction"),
        ("Parse the invoice number and total from the following text", "json", "extraction"),
        # summarization / translation
        ("Summarize this article in three sentences", "text", "summarization"),
        ("TL;DR of the meeting notes please", "text", "summarization"),
        ("Translate 'good morning' into French", "text", "translation"),
        # creative
        ("Write a haiku about autumn leaves", "text", "creative"),
        ("Brainstorm a slogan for a bakery", "text", "creative"),
        # analytical
        ("Compare the pros and cons of renting versus buying", "text", "analytical"),
        ("Analyze the root cause of the outage and explain why it spread", "text", "analytical"),
        # factual
        ("Who wrote Hamlet? Answer with the name only.", "text", "factual"),
        ("What is the capital of Peru?", "text", "factual"),
        ("Classify the word 'otter' as one of: animal, fruit, tool, color.", "label", "factual"),
        ("When did the Berlin wall fall?", "text", "factual"),
    ],
)
def test_classifier_table(prompt: str, answer_type: str, category: str) -> None:
    assert classify_category(prompt, answer_type) == category
    assert category in CATEGORIES


def test_classifier_agrees_with_the_demo_task_set() -> None:
    tasks = demo_tasks(200, kinds=("label", "number", "text", "json"))
    wrong = [(t.prompt, t.category) for t in tasks if classify_category(t.prompt, t.answer_type) != t.category]
    assert wrong == []


def test_stated_category_wins() -> None:
    got = extract_features("What is 2 + 2?", "number", "creative")
    assert got.category == "creative"
    assert extract_features("What is 2 + 2?", "number", None).category == "math"
    assert extract_features("What is 2 + 2?", "number", "  ").category == "math"  # blank is not a statement


def test_extract_features_fields() -> None:
    got = extract_features("Who wrote Hamlet?", "text")
    assert isinstance(got, TaskFeatures)
    assert got.input_tokens == estimate_tokens("Who wrote Hamlet?")
    assert got.answer_type == "text"
    assert 0.0 <= got.complexity <= 1.0
    assert got.to_dict() == {
        "input_tokens": got.input_tokens,
        "answer_type": "text",
        "category": "factual",
        "complexity": got.complexity,
    }


def test_complexity_grows_with_size_and_steps() -> None:
    short = extract_features("What is the capital of Peru?", "text").complexity
    long = extract_features("Explain step by step, then prove it. " + "word " * 2000, "text").complexity
    assert short < 0.3 < long <= 1.0


def test_extractor_is_replaceable() -> None:
    class Constant:
        def extract(self, prompt: str, answer_type: str, category: str | None = None) -> TaskFeatures:
            return TaskFeatures(1, answer_type, category or "math", 0.0)

    extractor: FeatureExtractor = Constant()
    assert extractor.extract("anything", "text").category == "math"
    default: FeatureExtractor = RuleBasedExtractor()
    assert default.extract("Who wrote Hamlet?", "text") == extract_features("Who wrote Hamlet?", "text")


def test_huge_prompt_is_classified_from_its_start() -> None:
    prompt = "Translate this into German: " + "lorem ipsum " * 100_000
    assert classify_category(prompt, "text") == "translation"
