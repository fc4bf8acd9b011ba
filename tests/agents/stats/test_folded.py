"""The folded views' checkpoint state (``agents/stats/folded.py``): a views object loaded from
another's state, as JSON, is the same views, and folds on the same: what lets a starting worker
load a checkpoint instead of folding every call since the start."""

from __future__ import annotations

import random

import orjson
import pytest
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.circuit import CircuitConfig
from swarmstream.agents.stats.book import ModelBook
from swarmstream.agents.stats.folded import FoldedViews
from swarmstream.schemas.models import CallRecord, QualityEvent

MODELS = ("a", "b", "c")
CATEGORIES = (None, "math", "code")
FAILURES = ("timeout", "server_error", "rate_limited", "invalid_output")
CONFIG = CircuitConfig(consecutive_failures=3, min_calls=4, window_ms=5_000, cooldown_ms=2_000)


def _views(clock: list[int]) -> FoldedViews:
    return FoldedViews(ModelBook(), CircuitBoard(lambda _model: CONFIG, lambda: clock[0]))


def _records(rng: random.Random, n: int, start_ms: int) -> list[CallRecord | QualityEvent]:
    out: list[CallRecord | QualityEvent] = []
    at = start_ms
    for i in range(n):
        at += rng.randint(0, 400)
        model, category = rng.choice(MODELS), rng.choice(CATEGORIES)
        if rng.random() < 0.3:
            out.append(QualityEvent(model_id=model, category=category, reward=rng.random(), source="consensus",
                                    task_id=f"t{i}", at_ms=at))
        else:
            ok = rng.random() < 0.6
            out.append(CallRecord(model_id=model, ok=ok, failure_class=None if ok else rng.choice(FAILURES),
                                  at_ms=at, latency_ms=rng.randint(1, 5_000), cost_micros=rng.randint(0, 900),
                                  category=category, input_tokens=rng.randint(0, 99), output_tokens=rng.randint(0, 99)))
    return out


def _fold(views: FoldedViews, records: list[CallRecord | QualityEvent]) -> None:
    for record in records:
        if isinstance(record, CallRecord):
            views.fold_call(record)
        else:
            views.book.add_quality(record)


def _seen(views: FoldedViews) -> tuple[object, ...]:
    board = views.board
    return (views.book.snapshot(), dict(board.states()), dict(board.transitions), views.dump())


@pytest.mark.parametrize("seed", range(10))
def test_a_loaded_state_is_the_same_views_and_folds_on_the_same(seed: int) -> None:
    rng = random.Random(seed)
    clock = [0]
    before, after = _records(rng, 400, 1_000_000), _records(rng, 200, 1_200_000)
    original = _views(clock)
    _fold(original, before)
    if rng.random() < 0.5:
        original.board.begin_probe(rng.choice(MODELS))  # a probe this worker began is part of its board
    loaded = _views(clock)
    loaded.load(orjson.loads(orjson.dumps(original.dump())))  # as a checkpoint record carries it
    assert _seen(loaded) == _seen(original)
    assert original.board.transitions, "the records should have tripped some breaker"
    _fold(original, after)
    _fold(loaded, after)
    assert _seen(loaded) == _seen(original)


def test_a_state_that_is_not_one_changes_nothing() -> None:
    clock = [0]
    views = _views(clock)
    _fold(views, _records(random.Random(1), 50, 0))
    seen = _seen(views)
    for bad in ({"book": [{"model": "a"}], "board": {"states": {}, "transitions": []}}, {"nope": 1}, [1, 2]):
        with pytest.raises(ValueError):
            views.load(bad)
        assert _seen(views) == seen
