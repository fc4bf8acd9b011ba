"""Aggregation strategies: table-driven, edge cases first."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import orjson
import pytest
from swarmstream.agents.consensus import strategies
from swarmstream.agents.consensus.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    StrategyError,
    StrategyLoadError,
    aggregate,
    canonical_json,
    format_number,
    load_custom,
    parse_number,
    register_strategy,
)
from swarmstream.agents.consensus.votes import Decision, Vote

BUILT_IN = ("majority", "weighted", "median", "trimmed_mean", "weighted_mean", "cluster", "json_fields")


@pytest.fixture(autouse=True)
def _restore_registry():
    """Tests register strategies; give every test the built-in registry back."""
    saved = dict(STRATEGIES)
    yield
    STRATEGIES.clear()
    STRATEGIES.update(saved)


def votes(*answers: str, latencies: Sequence[int] | None = None) -> list[Vote]:
    latencies = latencies or [0] * len(answers)
    return [
        Vote(f"m{i}", answer, latency_ms=latency)
        for i, (answer, latency) in enumerate(zip(answers, latencies, strict=True))
    ]


# A custom strategy loaded by dotted path from this very module.
def tiny_strategy(votes: Sequence[Vote], *, suffix: str = "") -> Decision:
    first = votes[0]
    return Decision(first.answer + suffix, 1.0, 1.0, False, "tiny", (first.model_id,), None, None, "first vote wins")


def not_a_decision(votes: Sequence[Vote]) -> str:
    return "oops"


NOT_CALLABLE = 42


# --------------------------------------------------------------------------- every strategy


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_strategy_with_no_votes_gives_an_empty_decision(name):
    decision = STRATEGIES[name]([])
    assert (decision.answer, decision.agreement, decision.confidence, decision.support) == (None, 0.0, 0.0, ())
    assert decision.strategy == name
    assert decision.tie is False


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("answers", [("",), ("", "   ", "\n\t")], ids=["one-empty", "all-blank"])
def test_every_strategy_with_only_empty_answers_gives_an_empty_decision(name, answers):
    decision = STRATEGIES[name](votes(*answers))
    assert decision.answer is None and decision.agreement == 0.0 and decision.confidence == 0.0
    assert "empty" in decision.reason


@pytest.mark.parametrize(
    "name, answer, expected",
    [
        ("majority", "positive", "positive"),
        ("weighted", "positive", "positive"),
        ("median", "42", "42"),
        ("trimmed_mean", "3.5", "3.5"),
        ("weighted_mean", "-7", "-7"),
        ("cluster", "Paris is the capital.", "Paris is the capital."),
        ("json_fields", '{"a":1}', '{"a":1}'),
    ],
)
def test_every_strategy_with_one_answer_takes_it_with_full_agreement(name, answer, expected):
    decision = STRATEGIES[name]([Vote("solo", answer, weight=0.8, confidence=0.9, latency_ms=12)])
    assert decision.answer == expected
    assert decision.agreement == pytest.approx(1.0)
    assert decision.support == ("solo",)
    assert decision.tie is False
    assert 0.0 < decision.confidence <= 1.0


@pytest.mark.parametrize(
    "name, answers",
    [
        ("majority", ["b", "a", "a", "c", "b", "a"]),
        ("weighted", ["b", "a", "a", "c", "b", "a"]),
        ("median", ["1", "2", "3", "100", "2.5", "x"]),
        ("trimmed_mean", ["10", "10", "11", "12", "16"]),
        ("weighted_mean", ["1", "2", "3", "100", "2.5"]),
        ("cluster", ["Paris is the capital of France.", "The capital of France is Paris.", "Berlin.", "Rome."]),
        ("json_fields", ['{"a":1,"b":2}', '{"a":1}', '{"a":2,"b":2}', "not json"]),
    ],
)
def test_every_strategy_is_independent_of_vote_order(name, answers):
    base = votes(*answers, latencies=[10 * (i + 1) for i in range(len(answers))])
    decisions = {STRATEGIES[name](list(order)) for order in itertools.islice(itertools.permutations(base), 60)}
    # support lists models in vote order; everything else must be identical
    outcomes = {
        (d.answer, d.agreement, d.confidence, d.tie, d.interval, d.clusters, frozenset(d.support)) for d in decisions
    }
    assert len(outcomes) == 1


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_strategy_keeps_agreement_and_confidence_in_unit_interval(name):
    mixed = [
        Vote("a", "1", weight=math.nan, confidence=math.inf),
        Vote("b", '{"x": "ü"}', weight=-3.0, confidence=-1.0),
        Vote("c", "東京", weight=5.0, confidence=2.0),
        Vote("d", "nan"),
    ]
    decision = STRATEGIES[name](mixed)
    assert 0.0 <= decision.agreement <= 1.0
    assert 0.0 <= decision.confidence <= 1.0


# --------------------------------------------------------------------------- majority and weighted


@pytest.mark.parametrize(
    "answers, latencies, expected, tie, reason_has",
    [
        (["a", "b"], [100, 50], "b", True, "lowest total latency"),
        (["b", "a"], [50, 100], "b", True, "lowest total latency"),
        (["b", "a"], [70, 70], "a", True, "lexicographic"),
        (["a", "a", "b", "b", "c"], [10, 10, 5, 5, 1], "b", True, "lowest total latency"),
        (["a", "a", "b"], [500, 500, 1], "a", False, "2 of 3"),
    ],
)
def test_majority_ties_are_broken_deterministically_and_reported(answers, latencies, expected, tie, reason_has):
    decision = STRATEGIES["majority"](votes(*answers, latencies=latencies))
    assert decision.answer == expected
    assert decision.tie is tie
    assert reason_has in decision.reason


@pytest.mark.parametrize(
    "answers, expected, agreement",
    [
        (["café", "cafe\u0301", "tea"], "café", 2 / 3),  # NFC and NFD spellings are one answer
        (["  yes ", "yes\n", "no"], "yes", 2 / 3),
        (["東京", "東京", "大阪"], "東京", 2 / 3),
        (["😀", "😀"], "😀", 1.0),
        (["yes", "", "no", "yes"], "yes", 2 / 3),  # the empty answer is dropped, not counted
    ],
)
def test_majority_counts_normalised_answers(answers, expected, agreement):
    decision = STRATEGIES["majority"](votes(*answers))
    assert decision.answer == expected
    assert decision.agreement == pytest.approx(agreement)


def test_weighted_beats_majority_when_a_reliable_minority_is_right():
    cast = [
        Vote("weak-1", "cat", weight=0.2),
        Vote("weak-2", "cat", weight=0.2),
        Vote("weak-3", "cat", weight=0.2),
        Vote("strong-1", "dog", weight=0.9),
        Vote("strong-2", "dog", weight=0.9),
    ]
    assert aggregate(cast, answer_type="label").answer == "cat"
    decision = aggregate(cast, answer_type="label", strategy="weighted")
    assert decision.answer == "dog"
    assert decision.support == ("strong-1", "strong-2")
    assert decision.agreement == pytest.approx(1.8 / 2.4)


@pytest.mark.parametrize(
    "cast, expected, agreement, reason_has",
    [
        # answer confidence multiplies the weight
        ([Vote("a", "x", 1.0, 0.2), Vote("b", "y", 1.0, 0.9)], "y", 0.9 / 1.1, "weight"),
        # a missing confidence counts as 1
        ([Vote("a", "x", 0.5, None), Vote("b", "y", 1.0, 0.4)], "x", 0.5 / 0.9, "weight"),
        # NaN and negative weights count as 0
        ([Vote("a", "x", math.nan), Vote("b", "x", -1.0), Vote("c", "y", 0.1)], "y", 1.0, "weight"),
        # every weight 0: plain counts, and the reason says so
        ([Vote("a", "x", 0.0), Vote("b", "x", 0.0), Vote("c", "y", 0.0)], "x", 2 / 3, "all weights are 0"),
        # equal scores: a reported tie, broken by latency
        ([Vote("a", "x", 0.5, latency_ms=9), Vote("b", "y", 0.5, latency_ms=3)], "y", 0.5, "lowest total latency"),
    ],
)
def test_weighted_scores_weight_times_confidence(cast, expected, agreement, reason_has):
    decision = STRATEGIES["weighted"](cast)
    assert decision.answer == expected
    assert decision.agreement == pytest.approx(agreement)
    assert reason_has in decision.reason


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", None),
        ("abc", None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-Infinity", None),
        ("1,000", None),
        ("1e999", None),  # overflows to inf
        ("42", 42.0),
        ("-3.5", -3.5),
        ("1e3", 1000.0),
        (" 7 ", 7.0),
        ("٣", 3.0),  # Arabic-Indic digit: Python's float accepts Unicode digits
    ],
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (42.0, "42"),
        (-0.0, "0"),
        (3.5, "3.5"),
        (0.1 + 0.2, "0.3"),
        (-7.000000000000001, "-7"),
        (1 / 3, "0.333333333333333"),
        (1e20, "1e+20"),
        (-7.0, "-7"),
    ],
)
def test_format_number_is_canonical(value, expected):
    assert format_number(value) == expected


@pytest.mark.parametrize(
    "name, answers, expected, interval, reason_has",
    [
        # NaN, inf and non-numbers are dropped and reported
        ("median", ["nan", "inf", "-inf", "abc"], None, None, "no numeric answers"),
        ("median", ["5", "nan", "inf", "five"], "5", (5.0, 5.0), "non-numeric"),
        # two values: nothing to measure outliers against, the median is the midpoint
        ("median", ["10", "20"], "15", (10.0, 20.0), "median of 2"),
        # a far value is rejected by the modified z-score
        ("median", ["1", "2", "3", "100"], "2", (1.0, 3.0), "rejected 1 outlier(s) (100)"),
        ("median", ["-1e6", "10", "11", "12"], "11", (10.0, 12.0), "outlier"),
        # MAD == 0: more than half agree exactly; every other value is rejected
        ("median", ["42", "42", "42", "43"], "42", (42.0, 42.0), "rejected 1 outlier(s) (43)"),
        # trimmed mean: outlier rejection first, then 20% cut from each end
        ("trimmed_mean", ["10", "10", "11", "12", "16"], "11", (10.0, 16.0), "20%-trimmed mean of 5"),
        ("trimmed_mean", ["1", "2", "3", "1000"], "2", (1.0, 3.0), "outlier"),
        ("weighted_mean", ["2", "4"], "3", (2.0, 4.0), "weighted mean of 2"),
    ],
)
def test_numeric_strategies(name, answers, expected, interval, reason_has):
    decision = STRATEGIES[name](votes(*answers))
    assert decision.answer == expected
    assert decision.interval == interval
    assert reason_has in decision.reason
    assert decision.tie is False


def test_weighted_mean_uses_weight_times_confidence_and_counts_weight_in_agreement():
    cast = [Vote("a", "10", weight=1.0), Vote("b", "20", weight=1.0, confidence=0.5), Vote("c", "n/a", weight=2.0)]
    decision = STRATEGIES["weighted_mean"](cast)
    # weights 1 and 0.5 -> (10 + 10) / 1.5
    assert float(decision.answer) == pytest.approx(40 / 3)
    kept_share = 1.5 / 3.5  # "n/a" backs nothing and carries weight 2
    spread = (1.0 * abs(10 - 40 / 3) + 0.5 * abs(20 - 40 / 3)) / 1.5 / 15.0
    assert decision.agreement == pytest.approx(kept_share * math.exp(-spread / 0.10))


def test_weighted_mean_with_all_weights_zero_uses_equal_weights():
    decision = STRATEGIES["weighted_mean"]([Vote("a", "1", weight=0.0), Vote("b", "3", weight=0.0)])
    assert decision.answer == "2"
    assert "equal weights" in decision.reason


@pytest.mark.parametrize(
    "answers, agreement",
    [
        (["7", "7", "7"], 1.0),
        (["0", "0"], 1.0),
        # spread 5 around 105: exp(-(5 / 105) / 0.10)
        (["100", "110"], math.exp(-(5 / 105) / 0.10)),
        # a non-number is a voice that backs nothing
        (["7", "7", "seven"], 2 / 3),
        # the value 0 does not divide by zero: the scale falls back to mean |x|
        (["0", "0.1", "-0.1"], math.exp(-((0.2 / 3) / (0.2 / 3)) / 0.10)),
    ],
)
def test_median_agreement_formula(answers, agreement):
    assert STRATEGIES["median"](votes(*answers)).agreement == pytest.approx(agreement)


def test_numeric_support_is_the_kept_values():
    decision = STRATEGIES["median"](votes("1", "2", "3", "100", "x"))
    assert decision.support == ("m0", "m1", "m2")


def test_trimmed_mean_rejects_a_proportion_outside_zero_to_half():
    with pytest.raises(StrategyError, match="proportion"):
        aggregate(votes("1"), answer_type="number", strategy="trimmed_mean", options={"proportion": 0.5})


# --------------------------------------------------------------------------- free text


def test_cluster_groups_paraphrases_and_separates_different_answers():
    cast = votes(
        "The capital of France is Paris.",
        "Paris is the capital of France.",
        "France's capital city is Paris.",
        "Berlin.",
        latencies=[30, 20, 10, 5],
    )
    decision = aggregate(cast, answer_type="text")
    assert decision.strategy == "cluster"
    assert decision.clusters == 2
    assert set(decision.support) == {"m0", "m1", "m2"}
    assert decision.answer in {v.answer for v in cast[:3]}
    assert decision.agreement == pytest.approx(0.75)
    assert decision.tie is False


@pytest.mark.parametrize(
    "answers, latencies, expected, tie",
    [
        # two different answers, one each: a reported tie, the faster wins
        (["Water boils at 100 °C.", "The Eiffel Tower is in Paris."], [50, 40], "The Eiffel Tower is in Paris.", True),
        (["Water boils at 100 °C.", "The Eiffel Tower is in Paris."], [40, 40], "The Eiffel Tower is in Paris.", True),
        # identical answers are one cluster
        (["Same answer.", "Same answer.", "Other thing entirely."], [0, 0, 0], "Same answer.", False),
        # case and spacing do not matter to the embedding
        (["the answer is yes", "The  answer is YES", "no"], [0, 0, 0], "The  answer is YES", False),
        # unicode
        (
            ["Die Hauptstadt Japans ist Tokio.", "Tokio ist die Hauptstadt von Japan.", "東京"],
            [0, 0, 0],
            "Die Hauptstadt Japans ist Tokio.",
            False,
        ),
    ],
)
def test_cluster_cases(answers, latencies, expected, tie):
    decision = STRATEGIES["cluster"](votes(*answers, latencies=latencies))
    assert decision.answer == expected
    assert decision.tie is tie


class FixedEmbedder:
    """Embeds by a lookup table: lets a test decide similarities exactly."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def embed(self, texts):
        return np.array([self.table[t] for t in texts], dtype=np.float64)


def test_cluster_takes_a_pluggable_embedder_and_threshold_through_options():
    table = {"a": [1.0, 0.0], "b": [0.8, 0.6], "c": [0.0, 1.0]}  # cos(a,b)=0.8, cos(b,c)=0.6, cos(a,c)=0
    cast = votes("a", "b", "c")
    tight = aggregate(cast, answer_type="text", options={"embedder": FixedEmbedder(table), "threshold": 0.9})
    loose = aggregate(cast, answer_type="text", options={"embedder": FixedEmbedder(table), "threshold": 0.7})
    chained = aggregate(cast, answer_type="text", options={"embedder": FixedEmbedder(table), "threshold": 0.5})
    assert (tight.clusters, loose.clusters, chained.clusters) == (3, 2, 1)
    assert loose.answer in {"a", "b"} and set(loose.support) == {"m0", "m1"}
    assert chained.answer == "b"  # the medoid: most similar to the rest


def test_cluster_rejects_an_embedder_that_returns_the_wrong_number_of_rows():
    class Broken:
        def embed(self, texts):
            return np.zeros((1, 3))

    with pytest.raises(StrategyError, match="returned 1 vectors for 2 answers"):
        STRATEGIES["cluster"](votes("x", "y"), embedder=Broken())


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    "answers, expected, agreement, tie",
    [
        # invalid JSON only
        (["{not json", "nope", '{"a": }'], None, 0.0, False),
        # one valid object among invalid ones: invalid answers count against every field
        (['{"a":1}', "{broken", "[1,"], '{"a":1}', 1 / 3, False),
        # field-by-field majority: the winner need not be any single answer
        (['{"a":1,"b":"x"}', '{"a":1,"b":"y"}', '{"a":2,"b":"y"}'], '{"a":1,"b":"y"}', 2 / 3, False),
        # key order in the input does not matter
        (['{"b":1,"a":2}', '{"a":2,"b":1}'], '{"a":2,"b":1}', 1.0, False),
        # a field most answers leave out is left out
        (['{"a":1}', '{"a":1,"x":5}', '{"a":1}'], '{"a":1}', (1 + 2 / 3) / 2, False),
        # nested values are compared whole
        (['{"p":{"q":[1,2]}}', '{"p":{"q":[1,2]}}', '{"p":{"q":[2,1]}}'], '{"p":{"q":[1,2]}}', 2 / 3, False),
        # unicode values survive canonicalisation
        (['{"city":"東京"}', '{"city":"東京"}', '{"city":"大阪"}'], '{"city":"東京"}', 2 / 3, False),
        # empty objects
        (["{}", "{}", "oops"], "{}", 2 / 3, False),
        # a split field is a reported tie: present value beats absent, then lexicographic
        (['{"a":1,"b":2}', '{"a":1}'], '{"a":1,"b":2}', (1 + 1 / 2) / 2, True),
        (['{"a":"y"}', '{"a":"x"}'], '{"a":"x"}', 0.5, True),
        # no objects at all, but valid JSON: whole values voted
        (["[1,2]", "[1, 2]", "[3]", "bad"], "[1,2]", 2 / 4, False),
    ],
)
def test_json_fields(answers, expected, agreement, tie):
    decision = STRATEGIES["json_fields"](votes(*answers))
    assert decision.answer == expected
    assert decision.agreement == pytest.approx(agreement)
    assert decision.tie is tie
    if expected is not None:
        assert canonical_json(orjson.loads(decision.answer)) == decision.answer


def test_json_fields_reports_invalid_answers_and_tied_fields():
    decision = STRATEGIES["json_fields"](votes('{"a":1,"b":2}', '{"a":1,"b":3}', "nope"))
    assert "1 answer(s) not valid JSON" in decision.reason
    assert "field 'b'" in decision.reason
    assert decision.support == ("m0", "m1")


# --------------------------------------------------------------------------- aggregate and the registry


@pytest.mark.parametrize("answer_type, strategy", sorted(DEFAULT_STRATEGY.items()))
def test_aggregate_picks_the_default_strategy_per_answer_type(answer_type, strategy):
    assert aggregate(votes("1"), answer_type=answer_type).strategy == strategy


def test_aggregate_with_no_votes_names_the_strategy_and_does_not_call_it():
    register_strategy("explodes", lambda votes: 1 / 0)
    decision = aggregate([], answer_type="label", strategy="explodes")
    assert (decision.answer, decision.strategy, decision.agreement) == (None, "explodes", 0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"answer_type": "colour"}, "unknown answer_type 'colour' (known: label, number, json, text)"),
        ({"answer_type": "label", "strategy": "majorty"}, "unknown consensus strategy 'majorty' (known: cluster,"),
        ({"answer_type": "label", "options": {"threshold": 0.5}}, "'majority' does not accept options ['threshold']"),
    ],
)
def test_aggregate_errors_say_what_is_wrong(kwargs, message):
    with pytest.raises(StrategyError) as caught:
        aggregate(votes("a"), **kwargs)
    assert message in str(caught.value)


def test_register_strategy_refuses_to_shadow_silently():
    register_strategy("mine", tiny_strategy)
    register_strategy("mine", tiny_strategy)  # the same function again: fine
    with pytest.raises(StrategyError, match="already registered"):
        register_strategy("mine", not_a_decision)
    with pytest.raises(StrategyError, match="already registered"):
        register_strategy("majority", tiny_strategy)
    register_strategy("majority", tiny_strategy, replace=True)
    assert aggregate(votes("x"), answer_type="label").strategy == "tiny"


@pytest.mark.parametrize("name, fn", [("", tiny_strategy), ("ok", NOT_CALLABLE)])
def test_register_strategy_validates_its_arguments(name, fn):
    with pytest.raises(StrategyError):
        register_strategy(name, fn)


@pytest.mark.parametrize("separator", [":", "."])
def test_load_custom_registers_a_function_by_dotted_path(separator):
    path = f"{__name__}{separator}tiny_strategy"
    assert load_custom(path) == path
    decision = aggregate(votes("hello", "world"), answer_type="text", strategy=path, options={"suffix": "!"})
    assert (decision.answer, decision.strategy) == ("hello!", "tiny")


def test_load_custom_under_a_chosen_name():
    assert load_custom(f"{__name__}:tiny_strategy", name="first-vote") == "first-vote"
    assert aggregate(votes("x"), answer_type="label", strategy="first-vote").answer == "x"


def test_aggregate_never_imports_a_dotted_path_itself():
    """The strategy name comes from task events: only the operator may load code."""
    path = f"{__name__}:tiny_strategy"
    with pytest.raises(StrategyError, match="load_custom"):
        aggregate(votes("x"), answer_type="label", strategy=path)
    assert path not in STRATEGIES


@pytest.mark.parametrize(
    "path, message",
    [
        ("no_such_package_xyz.mod:fn", "cannot import module 'no_such_package_xyz.mod'"),
        ("no_such_package_xyz.fn", "cannot import module 'no_such_package_xyz'"),
        (f"{__name__}:missing_function", "has no attribute 'missing_function'"),
        (f"{__name__}:NOT_CALLABLE", "'NOT_CALLABLE' is a int, not a function taking votes"),
        ("justaname", "expected 'package.module:function'"),
        (":fn", "expected 'package.module:function'"),
        (f"{__name__}:", "expected 'package.module:function'"),
    ],
)
def test_load_custom_errors_say_what_is_wrong(path, message):
    with pytest.raises(StrategyLoadError) as caught:
        load_custom(path)
    assert message in str(caught.value)


def test_a_custom_strategy_must_return_a_decision():
    name = load_custom(f"{__name__}:not_a_decision")
    with pytest.raises(StrategyError, match="returned str, expected Decision"):
        aggregate(votes("x"), answer_type="label", strategy=name)


def test_strategy_module_registers_every_built_in():
    assert set(BUILT_IN) <= set(strategies.STRATEGIES)
