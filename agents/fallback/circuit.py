"""A circuit breaker per model, as a pure state machine over a JSON-able dict.

The state is a plain dict so that it can be the value of a changelog-backed
table keyed by model id (survives restarts, readable by ``swarmstream stats``);
every function takes a state (or None for a model never seen) and returns a new
one, never mutating its input::

                 N consecutive health failures, or
                 failure rate >= failure_rate over window_ms (with >= min_calls calls)
      CLOSED ─────────────────────────────────────────────────► OPEN
        ▲                                                        │ cooldown_ms passes, then
        │ probe succeeds                                         │ begin_probe() when a call
        │                                                        ▼ is sent (admit() said probe)
        └──────────────────────────────────────────────────── HALF_OPEN
                                 probe fails: OPEN again, fresh cooldown ──┘

Admission (``admit``):

* closed: every call is allowed;
* open, before ``opened_ms + cooldown_ms``: no call, ``retry_at_ms`` says when to ask again;
* open after the cooldown, or half-open with no probe in flight: exactly one call is
  allowed as the probe (``probe=True``); the caller must then write
  ``begin_probe(...)``'s state so that other tasks are refused until it reports;
* half-open with a probe in flight: refused until the probe reports, or until
  ``probe_timeout_ms`` after it started (a probe whose worker died would otherwise
  hold the breaker half-open for ever), ``retry_at_ms`` = that time.

Which failures count (``is_health_failure``): timeout, rate_limited, server_error,
network and auth. ``auth`` counts because a revoked or missing key fails every call
of that model until an operator acts: skipping the model quickly and probing it
after a cooldown is exactly what a breaker is for. bad_request, context_length,
content_policy and invalid_output say something about *the request*, not the
model, and the model did answer: they count as successes for the model's health,
so they never trip the breaker and do close it when a probe ends that way.

Sliding window: outcomes are counted in ``WINDOW_BUCKETS`` buckets of
``window_ms / WINDOW_BUCKETS`` each, so the state stays a few hundred bytes at any
call rate (a list of outcomes would grow with traffic and every table write
would carry it). The window is therefore exact to one bucket's width.

Transitions: ``record`` and ``begin_probe`` return ``(new_state, transition)``,
where ``transition`` is ``(from_state, to_state)`` as :class:`CircuitState`
strings, or None when the state name did not change, so a caller counts breaker
transitions without diffing states.

An outcome recorded while open (a call admitted before the breaker opened)
changes nothing: the cooldown is not extended by old news. Any outcome recorded
while half-open resolves the probe: an answer that arrives then is as fresh
evidence as the probe's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from swarmstream.agents.models.failures import FailureClass

WINDOW_BUCKETS = 10
"""Buckets per sliding window: 10 keeps the window exact to 10% of its length with a
state of at most 11 small triples."""

State = dict[str, Any]


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Transition = tuple[CircuitState, CircuitState]


class CircuitConfig(BaseModel):
    """Thresholds of one model's breaker (configurable per model in ``chains.yaml``).

    ``failure_rate`` trips when failures / calls >= it over the last ``window_ms``,
    but only once ``min_calls`` calls were seen there: two failures out of three
    calls say little.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    window_ms: int = Field(default=30_000, gt=0)
    min_calls: int = Field(default=10, ge=1)
    cooldown_ms: int = Field(default=10_000, ge=0)
    probe_timeout_ms: int = Field(default=30_000, gt=0)
    """Default = the catalog's default call timeout (``ModelSpec.timeout_s`` = 30 s):
    a probe that has not reported by then is presumed lost."""


@dataclass(frozen=True)
class Admission:
    """May a call to this model be sent now?

    ``probe`` is True when the call is the one half-open probe (write
    ``begin_probe``'s state before sending it); ``retry_at_ms`` is, for a refusal,
    the earliest time a call may be admitted.
    """

    allowed: bool
    probe: bool = False
    retry_at_ms: int | None = None


ALLOWED = Admission(allowed=True)

HEALTH_FAILURES: frozenset[FailureClass] = frozenset(
    {
        FailureClass.TIMEOUT,
        FailureClass.RATE_LIMITED,
        FailureClass.SERVER_ERROR,
        FailureClass.NETWORK,
        FailureClass.AUTH,
    }
)
"""Failures that say the model (or our access to it) is unwell; see the module docstring."""


def is_health_failure(failure_class: FailureClass | str) -> bool:
    """Whether a failure of this class counts against the model's breaker."""
    return FailureClass(failure_class) in HEALTH_FAILURES


def initial_state() -> State:
    """A closed breaker with nothing seen."""
    return {
        "state": CircuitState.CLOSED.value,
        "consecutive_failures": 0,
        "buckets": [],
        "opened_ms": None,
        "probe_started_ms": None,
    }


def state_of(state: State | None) -> CircuitState:
    """The breaker's state name; None (never seen) is closed."""
    return CircuitState(state["state"]) if state else CircuitState.CLOSED


def admit(state: State | None, *, now_ms: int, config: CircuitConfig) -> Admission:
    """Whether a call may be sent now; rules in the module docstring. Pure: writes nothing."""
    current = state_of(state)
    if current is CircuitState.CLOSED or state is None:
        return ALLOWED
    if current is CircuitState.OPEN:
        probe_at_ms = int(state["opened_ms"]) + config.cooldown_ms
        if now_ms < probe_at_ms:
            return Admission(allowed=False, retry_at_ms=probe_at_ms)
        return Admission(allowed=True, probe=True)
    started_ms = state.get("probe_started_ms")
    if started_ms is not None and now_ms < started_ms + config.probe_timeout_ms:
        return Admission(allowed=False, retry_at_ms=int(started_ms) + config.probe_timeout_ms)
    return Admission(allowed=True, probe=True)


def begin_probe(state: State | None, *, now_ms: int) -> tuple[State, Transition | None]:
    """The state to write when sending the probe that ``admit`` allowed: half-open, probe in flight."""
    new = _copy(state)
    before = state_of(state)
    new["state"] = CircuitState.HALF_OPEN.value
    new["probe_started_ms"] = now_ms
    return new, _transition(before, CircuitState.HALF_OPEN)


def record(state: State | None, *, ok: bool, now_ms: int, config: CircuitConfig) -> tuple[State, Transition | None]:
    """Fold one call outcome into the breaker (``ok`` = the model is healthy by this call).

    Use ``record_outcome`` to map a failure class to ``ok`` by the rule above.
    """
    before = state_of(state)
    new = _copy(state)
    if before is CircuitState.OPEN:
        return new, None
    if before is CircuitState.HALF_OPEN:
        if ok:
            return _closed(), (CircuitState.HALF_OPEN, CircuitState.CLOSED)
        return _opened(now_ms), (CircuitState.HALF_OPEN, CircuitState.OPEN)

    buckets = _pruned(new["buckets"], now_ms, config)
    bucket_start = now_ms - now_ms % _bucket_ms(config)
    if buckets and buckets[-1][0] == bucket_start:
        _, calls, failures = buckets[-1]
        buckets[-1] = [bucket_start, calls + 1, failures + (0 if ok else 1)]
    else:
        buckets.append([bucket_start, 1, 0 if ok else 1])
    new["buckets"] = buckets
    new["consecutive_failures"] = 0 if ok else new["consecutive_failures"] + 1
    if not ok and _should_open(new, config):
        return _opened(now_ms), (CircuitState.CLOSED, CircuitState.OPEN)
    return new, None


def record_outcome(
    state: State | None,
    failure_class: FailureClass | str | None,
    *,
    now_ms: int,
    config: CircuitConfig,
) -> tuple[State, Transition | None]:
    """``record`` for a call that succeeded (``failure_class=None``) or failed with a class."""
    ok = failure_class is None or not is_health_failure(failure_class)
    return record(state, ok=ok, now_ms=now_ms, config=config)


def window_counts(state: State | None, *, now_ms: int, config: CircuitConfig) -> tuple[int, int]:
    """(calls, failures) in the sliding window ending at ``now_ms``, for stats and tests."""
    if not state:
        return 0, 0
    buckets = _pruned(state["buckets"], now_ms, config)
    return sum(b[1] for b in buckets), sum(b[2] for b in buckets)


def _should_open(state: State, config: CircuitConfig) -> bool:
    if state["consecutive_failures"] >= config.consecutive_failures:
        return True
    calls = sum(int(b[1]) for b in state["buckets"])
    failures = sum(int(b[2]) for b in state["buckets"])
    return calls >= config.min_calls and failures >= config.failure_rate * calls


def _bucket_ms(config: CircuitConfig) -> int:
    return max(1, config.window_ms // WINDOW_BUCKETS)


def _pruned(buckets: list[list[int]], now_ms: int, config: CircuitConfig) -> list[list[int]]:
    """Buckets that overlap (now - window_ms, now], as fresh lists (inputs are never mutated)."""
    oldest_ms = now_ms - config.window_ms
    bucket_ms = _bucket_ms(config)
    return [list(b) for b in buckets if b[0] + bucket_ms > oldest_ms]


def _copy(state: State | None) -> State:
    if not state:
        return initial_state()
    new = dict(state)
    new["buckets"] = [list(b) for b in state.get("buckets", [])]
    return new


def _closed() -> State:
    return initial_state()


def _opened(now_ms: int) -> State:
    new = initial_state()
    new["state"] = CircuitState.OPEN.value
    new["opened_ms"] = now_ms
    return new


def _transition(before: CircuitState, after: CircuitState) -> Transition | None:
    return None if before is after else (before, after)
