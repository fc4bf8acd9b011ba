"""Load shedding at intake: admit, slow down, or reject, from the backlog of the models a task asks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from swarmstream.agents.dispatch.shedding import (
    Action,
    CachedLag,
    SheddingLimits,
    admit,
)
from swarmstream.streams.app.settings import Settings

LIMITS = SheddingLimits(soft_lag=100, hard_lag=500, max_delay_ms=1000)


@pytest.mark.parametrize(
    ("lags", "models", "action", "delay_ms"),
    [
        ({}, ["a"], Action.ADMIT, 0),  # nothing measured yet: never refuse on a guess
        ({"a": None}, ["a"], Action.ADMIT, 0),
        ({"a": 0}, ["a"], Action.ADMIT, 0),
        ({"a": 100}, ["a"], Action.ADMIT, 0),  # at the soft limit: still free
        ({"a": 101}, ["a"], Action.SLOW, 2),
        ({"a": 300}, ["a"], Action.SLOW, 500),  # half way: half the longest wait
        ({"a": 499}, ["a"], Action.SLOW, 998),
        ({"a": 500}, ["a"], Action.REJECT, 0),  # at the hard limit: refused
        ({"a": 10, "b": 9_999}, ["a"], Action.ADMIT, 0),  # only the models the task asks count
        ({"a": 10, "b": 600}, ["a", "b"], Action.REJECT, 0),  # the worst of them decides
    ],
)
def test_admit(lags: dict[str, int | None], models: list[str], action: Action, delay_ms: int) -> None:
    decision = admit(lags, models, LIMITS)
    assert (decision.action, decision.delay_ms) == (action, delay_ms)


def test_a_rejection_names_the_model_its_backlog_and_the_limit() -> None:
    decision = admit({"a": 10, "slow-one": 700}, ["a", "slow-one"], LIMITS)
    assert "'slow-one'" in decision.reason and "700" in decision.reason and "500" in decision.reason


def test_a_soft_limit_of_zero_turns_shedding_off() -> None:
    assert admit({"a": 10**9}, ["a"], SheddingLimits(soft_lag=0, hard_lag=1)).action is Action.ADMIT


@pytest.mark.parametrize(("soft", "hard"), [(100, 100), (100, 50), (-1, 10)])
def test_inconsistent_limits_are_refused(soft: int, hard: int) -> None:
    with pytest.raises(ValueError):
        SheddingLimits(soft_lag=soft, hard_lag=hard)


def test_settings_say_which_variables_disagree() -> None:
    with pytest.raises(ValidationError, match="SWARM_SHED_HARD_LAG .* SWARM_SHED_SOFT_LAG"):
        Settings(shed_soft_lag=10, shed_hard_lag=5)


def test_lags_are_read_at_most_once_per_max_age() -> None:
    reads: list[tuple[str, int]] = []
    now = [0]

    def read(model: str, partition: int) -> int:
        reads.append((model, partition))
        return len(reads)

    cache = CachedLag(read=read, clock_ms=lambda: now[0], max_age_ms=250)
    assert cache.lags(["a", "b"], 0) == {"a": 1, "b": 2}
    now[0] = 249
    assert cache.lags(["a", "b"], 0) == {"a": 1, "b": 2}
    assert cache.lags(["a"], 1) == {"a": 3}  # another partition: its own reading
    now[0] = 250
    assert cache.lags(["a"], 0) == {"a": 4}
    assert len(reads) == 4
