"""The confidence formula: A ** 0.5 * R ** 0.25 * Q ** 0.25, missing pieces rescaled."""

from __future__ import annotations

import math

import pytest
from swarmstream.agents.consensus.confidence import confidence
from swarmstream.agents.consensus.votes import (
    Decision,
    Vote,
    clean_confidence,
    clean_weight,
    usable_votes,
)


@pytest.mark.parametrize(
    "agreement, reliabilities, answer_confidences, expected",
    [
        # edge cases first
        (0.0, [1.0], [1.0], 0.0),
        (1.0, [0.0], [1.0], 0.0),
        (1.0, [1.0], [0.0], 0.0),
        (1.0, [], [], 1.0),
        (0.64, [], [], 0.64),  # only agreement: its exponent is rescaled to 1
        (math.nan, [1.0], [None], 0.0),
        (1.5, [2.0], [3.0], 1.0),  # clamped to [0, 1]
        (-1.0, [1.0], [1.0], 0.0),
        # all three pieces
        (0.8, [0.9], [0.7], 0.8**0.5 * 0.9**0.25 * 0.7**0.25),
        (1.0, [0.5, 1.0], [0.6, 0.8], 0.75**0.25 * 0.7**0.25),  # means of the supporters
        # missing answer confidences: A ** (2/3) * R ** (1/3)
        (0.5, [0.8], [None, None], 0.5 ** (2 / 3) * 0.8 ** (1 / 3)),
        # missing reliabilities: A ** (2/3) * Q ** (1/3)
        (0.5, [], [0.9], 0.5 ** (2 / 3) * 0.9 ** (1 / 3)),
        # NaN answer confidences count as missing, None ones are skipped in the mean
        (1.0, [1.0], [math.nan, None, 0.5], 0.5**0.25),
    ],
)
def test_confidence_formula(agreement, reliabilities, answer_confidences, expected):
    assert confidence(agreement, reliabilities, answer_confidences) == pytest.approx(expected)


@pytest.mark.parametrize("weak", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_one_weak_piece_pulls_confidence_below_the_weighted_arithmetic_mean(weak, position):
    pieces = [1.0, 1.0, 1.0]
    pieces[position] = weak
    blended = confidence(pieces[0], [pieces[1]], [pieces[2]])
    assert blended < 0.5 * pieces[0] + 0.25 * pieces[1] + 0.25 * pieces[2]


def test_confidence_grows_with_each_piece():
    base = confidence(0.6, [0.6], [0.6])
    assert confidence(0.7, [0.6], [0.6]) > base
    assert confidence(0.6, [0.7], [0.6]) > base
    assert confidence(0.6, [0.6], [0.7]) > base
    # agreement weighs most
    assert confidence(0.7, [0.6], [0.6]) > confidence(0.6, [0.7], [0.6])


@pytest.mark.parametrize(
    "raw, expected",
    [(math.nan, 0.0), (math.inf, 0.0), (-0.5, 0.0), (0.0, 0.0), (0.7, 0.7), (3.0, 3.0)],
)
def test_clean_weight(raw, expected):
    assert clean_weight(raw) == expected


@pytest.mark.parametrize("raw, expected", [(None, None), (math.nan, None), (-1.0, 0.0), (0.4, 0.4), (9.0, 1.0)])
def test_clean_confidence(raw, expected):
    assert clean_confidence(raw) == expected


def test_usable_votes_drops_empty_answers_and_normalises_the_rest():
    kept, dropped = usable_votes(
        [Vote("a", "  "), Vote("b", " cafe\u0301 ", weight=math.nan, confidence=7.0), Vote("c", "")]
    )
    assert dropped == 2
    assert kept == [Vote("b", "café", weight=0.0, confidence=1.0)]


def test_empty_decision():
    decision = Decision.empty("majority")
    assert (decision.answer, decision.agreement, decision.confidence, decision.tie) == (None, 0.0, 0.0, False)
    assert (decision.support, decision.interval, decision.clusters) == ((), None, None)
