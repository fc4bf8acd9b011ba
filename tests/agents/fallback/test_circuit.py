"""The breaker state machine: transitions, the sliding window, cooldown and the single probe."""

from __future__ import annotations

import copy
import json

import pytest
from swarmstream.agents.fallback.circuit import (
    Admission,
    CircuitConfig,
    CircuitState,
    State,
    admit,
    begin_probe,
    initial_state,
    is_health_failure,
    record,
    record_outcome,
    state_of,
    window_counts,
)
from swarmstream.agents.models.failures import FailureClass as FC

CLOSED, OPEN, HALF = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
CFG = CircuitConfig(consecutive_failures=3, failure_rate=0.5, window_ms=10_000, min_calls=6, cooldown_ms=1_000)


def run(outcomes: str, *, config: CircuitConfig = CFG, start_ms: int = 0, step_ms: int = 1, state: State | None = None):
    """Record ``outcomes`` ('o' ok, 'x' failure) one per ``step_ms``; returns (state, transitions)."""
    transitions = []
    for i, outcome in enumerate(outcomes):
        state, transition = record(state, ok=outcome == "o", now_ms=start_ms + i * step_ms, config=config)
        if transition:
            transitions.append(transition)
    return state, transitions


def opened_at(now_ms: int) -> State:
    state, transitions = run("xxx", start_ms=now_ms - 2)
    assert transitions == [(CLOSED, OPEN)] and state["opened_ms"] == now_ms
    return state


def test_unknown_model_is_closed_and_admitted() -> None:
    assert state_of(None) is CLOSED
    assert admit(None, now_ms=0, config=CFG) == Admission(allowed=True, probe=False, retry_at_ms=None)


@pytest.mark.parametrize(
    ("outcomes", "final", "transitions"),
    [
        ("", CLOSED, []),
        ("xx", CLOSED, []),  # one short of N
        ("xxx", OPEN, [(CLOSED, OPEN)]),  # N consecutive
        ("xxoxx", CLOSED, []),  # a success resets the run
        ("xxoxxx", OPEN, [(CLOSED, OPEN)]),
        ("oxoxox", OPEN, [(CLOSED, OPEN)]),  # 3/6 = rate 0.5 at min_calls 6
        ("oxoxo", CLOSED, []),  # under min_calls
        ("ooxoxox", CLOSED, []),  # 3/7 < 0.5
        ("xxxo", OPEN, [(CLOSED, OPEN)]),  # a late success while open changes nothing
    ],
)
def test_closed_to_open(outcomes: str, final: CircuitState, transitions: list[tuple[str, str]]) -> None:
    state, seen = run(outcomes)
    assert (state_of(state), seen) == (final, transitions)


@pytest.mark.parametrize(
    ("step_ms", "final"),
    [
        (1, OPEN),  # 3 failures in 6 calls within 10 s
        (2_500, CLOSED),  # spread over 12.5 s: the oldest have left the window
    ],
)
def test_failure_rate_counts_only_the_window(step_ms: int, final: CircuitState) -> None:
    state, _ = run("xoxoxo", step_ms=step_ms, config=CFG.model_copy(update={"consecutive_failures": 99}))
    state, _ = record(state, ok=False, now_ms=6 * step_ms, config=CFG.model_copy(update={"consecutive_failures": 99}))
    assert state_of(state) is final


def test_window_state_stays_small_at_any_rate() -> None:
    state, _ = run("o" * 5_000, step_ms=7)
    assert len(state["buckets"]) <= 11
    calls, failures = window_counts(state, now_ms=4_999 * 7, config=CFG)
    assert failures == 0 and 10_000 // 7 <= calls <= 11_000 // 7 + 1


def test_open_refuses_until_cooldown_then_admits_exactly_one_probe() -> None:
    state = opened_at(100)
    assert admit(state, now_ms=100, config=CFG) == Admission(False, False, 1_100)
    assert admit(state, now_ms=1_099, config=CFG) == Admission(False, False, 1_100)
    assert admit(state, now_ms=1_100, config=CFG) == Admission(True, True, None)

    probing, transition = begin_probe(state, now_ms=1_100)
    assert transition == (OPEN, HALF) and state_of(probing) is HALF
    # others are refused while the probe is out, until it is presumed lost
    lost_at = 1_100 + CFG.probe_timeout_ms
    assert admit(probing, now_ms=1_101, config=CFG) == Admission(False, False, lost_at)
    assert admit(probing, now_ms=lost_at, config=CFG) == Admission(True, True, None)
    again, transition = begin_probe(probing, now_ms=lost_at)
    assert transition is None and again["probe_started_ms"] == lost_at


def test_probe_success_closes_with_fresh_counters() -> None:
    probing, _ = begin_probe(opened_at(0), now_ms=1_000)
    closed, transition = record(probing, ok=True, now_ms=1_050, config=CFG)
    assert transition == (HALF, CLOSED)
    assert closed == initial_state()
    assert admit(closed, now_ms=1_051, config=CFG).allowed


def test_probe_failure_reopens_with_a_fresh_cooldown() -> None:
    probing, _ = begin_probe(opened_at(0), now_ms=1_000)
    reopened, transition = record(probing, ok=False, now_ms=1_200, config=CFG)
    assert transition == (HALF, OPEN) and reopened["opened_ms"] == 1_200
    assert admit(reopened, now_ms=1_300, config=CFG) == Admission(False, False, 2_200)


@pytest.mark.parametrize("failure_class", list(FC))
def test_only_health_failures_trip_the_breaker(failure_class: FC) -> None:
    health = failure_class in {FC.TIMEOUT, FC.RATE_LIMITED, FC.SERVER_ERROR, FC.NETWORK, FC.AUTH}
    assert is_health_failure(failure_class) is health
    state = None
    for i in range(20):
        state, _ = record_outcome(state, failure_class, now_ms=i, config=CFG)
    assert state_of(state) is (OPEN if health else CLOSED)


def test_a_request_specific_failure_of_the_probe_closes_the_breaker() -> None:
    probing, _ = begin_probe(opened_at(0), now_ms=1_000)
    closed, transition = record_outcome(probing, FC.CONTENT_POLICY, now_ms=1_010, config=CFG)
    assert transition == (HALF, CLOSED) and state_of(closed) is CLOSED


def test_inputs_are_never_mutated_and_state_is_json() -> None:
    state, _ = run("xoxo")
    snapshot = copy.deepcopy(state)
    record(state, ok=False, now_ms=10, config=CFG)
    begin_probe(state, now_ms=10)
    assert state == snapshot
    assert json.loads(json.dumps(state)) == state


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"consecutive_failures": 0}, "consecutive_failures"),
        ({"failure_rate": 0}, "failure_rate"),
        ({"window_ms": 0}, "window_ms"),
    ],
)
def test_config_validation(fields: dict[str, float], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        CircuitConfig(**fields)  # type: ignore[arg-type]
