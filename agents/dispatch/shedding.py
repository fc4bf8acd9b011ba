"""Load shedding at intake: slow down, then refuse, when a model's topic backs up.

Calls in flight per model are bounded (``max_in_flight``), so when tasks arrive
faster than a model answers, its requests wait on its topic. Past a soft limit
intake waits a little before each new task (the wait grows with the backlog, so
intake, and with it the task topic's consumer, slows to the models' pace); past a
hard limit a new task ends at once with status ``rejected`` and a reason, rather
than waiting in a queue it would leave only by its deadline.

Lag is counted per partition of a model's topic: the records after the group's
committed offset, as the worker that owns the partition sees them. Intake and the
model-call agents of one partition run on the same worker (every task topic is
keyed by task id and co-partitioned), so the lag a task would join is local and
cheap to read (:class:`CachedLag`). Pure: lags and limits in, a decision out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum


class Action(str, Enum):
    ADMIT = "admit"
    SLOW = "slow"
    REJECT = "reject"


@dataclass(frozen=True)
class SheddingLimits:
    """Per partition of a model's topic. ``soft_lag`` 0 turns shedding off."""

    soft_lag: int
    hard_lag: int
    max_delay_ms: int = 1000

    def __post_init__(self) -> None:
        if self.soft_lag < 0 or self.max_delay_ms < 0:
            raise ValueError(f"shedding limits must not be negative: {self}")
        if self.soft_lag and self.hard_lag <= self.soft_lag:
            raise ValueError(f"hard_lag ({self.hard_lag}) must be above soft_lag ({self.soft_lag})")

    @property
    def enabled(self) -> bool:
        return self.soft_lag > 0


@dataclass(frozen=True)
class Admission:
    action: Action
    delay_ms: int = 0
    reason: str = ""


ADMIT = Admission(Action.ADMIT)


def admit(lags: Mapping[str, int | None], models: Sequence[str], limits: SheddingLimits) -> Admission:
    """What intake does with a new task that would ask ``models``: the worst backlog
    among them decides. An unknown lag (not measured yet) admits: shedding must never
    refuse work on a guess. Between the limits the wait rises linearly from 0 to
    ``max_delay_ms``."""
    if not limits.enabled:
        return ADMIT
    known = [(lags[m], m) for m in models if lags.get(m) is not None]
    if not known:
        return ADMIT
    lag, model = max(known)  # type: ignore[type-var]
    assert lag is not None
    if lag >= limits.hard_lag:
        return Admission(Action.REJECT, reason=(
            f"load shed: model {model!r} has {lag} requests waiting on this task's partition "
            f"(hard limit {limits.hard_lag}); retry later or ask other models"))
    if lag > limits.soft_lag:
        share = (lag - limits.soft_lag) / (limits.hard_lag - limits.soft_lag)
        return Admission(Action.SLOW, delay_ms=round(share * limits.max_delay_ms),
                         reason=f"model {model!r}: {lag} requests waiting (soft limit {limits.soft_lag})")
    return ADMIT


@dataclass
class CachedLag:
    """Each (model, partition) lag read at most once per ``max_age_ms``: intake asks for
    every task, the reader (offsets from the consumer) need not run that often."""

    read: Callable[[str, int], int | None]
    clock_ms: Callable[[], int]
    max_age_ms: int = 250
    _cache: dict[tuple[str, int], tuple[int, int | None]] = field(default_factory=dict)

    def lags(self, models: Sequence[str], partition: int) -> dict[str, int | None]:
        now = self.clock_ms()
        out: dict[str, int | None] = {}
        for model in models:
            key = (model, partition)
            cached = self._cache.get(key)
            if cached is None or now - cached[0] >= self.max_age_ms:
                cached = (now, self.read(model, partition))
                self._cache[key] = cached
            out[model] = cached[1]
        return out
