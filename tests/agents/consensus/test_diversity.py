"""Which models and how many: family diversity first, then reliability."""

from __future__ import annotations

import math

import pytest
from swarmstream.agents.consensus.diversity import (
    models_for_complexity,
    pick_models,
    prompt_complexity,
)

CATALOG = [
    ("gpt-a", "openai", 0.90),
    ("gpt-b", "openai", 0.95),
    ("claude-a", "anthropic", 0.92),
    ("claude-b", "anthropic", 0.80),
    ("llama", "meta", 0.70),
]


@pytest.mark.parametrize(
    "catalog, n, expected",
    [
        # edge cases first
        ([], 3, []),
        (CATALOG, 0, []),
        (CATALOG, -1, []),
        # one per family first, most reliable family member, families by reliability
        (CATALOG, 1, ["gpt-b"]),
        (CATALOG, 3, ["gpt-b", "claude-a", "llama"]),
        # then the second round
        (CATALOG, 4, ["gpt-b", "claude-a", "llama", "gpt-a"]),
        (CATALOG, 10, ["gpt-b", "claude-a", "llama", "gpt-a", "claude-b"]),
        # duplicates count once; NaN reliability sorts last; equal reliability by id
        ([("x", "f", 0.5), ("x", "g", 0.9), ("y", "g", math.nan), ("z", "h", 0.5)], 3, ["x", "z", "y"]),
        ([("b", "f1", 0.5), ("a", "f2", 0.5)], 2, ["a", "b"]),
        # a single family: by reliability
        ([("m1", "solo", 0.1), ("m2", "solo", 0.9), ("m3", "solo", 0.5)], 2, ["m2", "m3"]),
    ],
)
def test_pick_models(catalog, n, expected):
    assert pick_models(catalog, n) == expected


def test_pick_models_is_independent_of_catalog_order():
    assert pick_models(list(reversed(CATALOG)), 4) == pick_models(CATALOG, 4)


LONG_REASONING = (
    "Explain step by step why the sum of the first n odd numbers is n^2, prove it by induction, "
    "then compare with a geometric argument and calculate 17 * 23 + 4 = ? Why does it hold? How many cases? "
) * 20


@pytest.mark.parametrize(
    "prompt, answer_type, min_models, max_models, expected",
    [
        ("Sentiment: great!", "label", 1, 5, 1),
        ("Sentiment: great!", "label", 3, 3, 3),
        ("How old is the Eiffel tower?", "number", 1, 7, 3),  # numbers want 3 for outlier rejection
        ("Say hi", "text", 1, 2, 2),  # ... unless max_models is smaller
        (LONG_REASONING, "text", 1, 7, 7),
        (LONG_REASONING, "label", 2, 5, 5),
    ],
)
def test_models_for_complexity(prompt, answer_type, min_models, max_models, expected):
    assert models_for_complexity(prompt, answer_type, min_models, max_models) == expected


@pytest.mark.parametrize("answer_type", ["label", "number", "json", "text", "unknown"])
@pytest.mark.parametrize("prompt", ["", "x", "Why?", LONG_REASONING, "東京はどこ\uff1f" * 50])
def test_models_for_complexity_stays_within_bounds(prompt, answer_type):
    count = models_for_complexity(prompt, answer_type, 2, 6)
    assert 2 <= count <= 6
    assert 0.0 <= prompt_complexity(prompt, answer_type) <= 1.0


def test_harder_prompts_get_at_least_as_many_models():
    easy = models_for_complexity("Is this spam?", "label", 1, 9)
    hard = models_for_complexity(LONG_REASONING, "label", 1, 9)
    assert easy < hard


@pytest.mark.parametrize("min_models, max_models", [(0, 3), (4, 3)])
def test_models_for_complexity_rejects_bad_bounds(min_models, max_models):
    with pytest.raises(ValueError):
        models_for_complexity("x", "label", min_models, max_models)
