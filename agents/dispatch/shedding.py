"""Admission at intake: take a new task, make it wait a little, or refuse it at once.

A worker offered more than it can serve must say so, not let every task queue
until its deadline: measured before this rule (issue 21), one worker offered
300 consensus tasks/s over the HTTP fleet on 2 cores went from 330 ms at the
median to 2 s in 90 s, then ended a quarter of the tasks as ``timeout``, and the
lag limits below never fired (5,000 records a partition is minutes of queue at
that rate). So the main rule is about *time*, measured by the worker itself,
against each task's own deadline:

    age     = now - task.created_ms              the task's budget spent before intake saw it
    waited  = now - max(created_ms, the moment   how long it queued for *this* worker: the tasks
              this worker took its partition)    topic, intake's backlog (not an outage, a restore)
    ahead   = sum over the stages it will pass   how long the oldest event queued at each has
              in turn (its models' topics: the   waited for a handler (``Engine.waiting_since_ms``),
              slowest of them; then outcomes)    also counted from when the worker took it
    allowance = max(share x timeout_ms, 1 s)     ``SWARM_ADMIT_QUEUE_SHARE``, default 25%

    age >= timeout_ms (and >= 1 s)           -> REJECT, "expired": late before intake saw it
    waited + ahead > allowance               -> REJECT, "overloaded": the queue would eat its deadline
    age + ahead >= timeout_ms (and >= 1 s)   -> REJECT, "late": it would be late before its turn
                                                (what an outage left it is less than the queue ahead)
    ahead > allowance / 2                    -> SLOW: intake waits, up to ``max_delay_ms``
    otherwise                                -> ADMIT

A rejected task ends at once with status ``rejected`` and the reason, one result,
no model called (``Dispatcher._shed``). Refusing at the head of the queue is what
drains it: a refusal costs two records, a consensus task a dozen and its model
calls, so under overload the worker spends its time on the tasks it admitted and
those meet their deadlines; when the load falls the head's wait falls under the
allowance and tasks are admitted again, within about one allowance (7.5 s at the
default 30 s timeout) of the fall.

Overload is this worker's queueing, so time the task spent before the worker
could handle it (the partition's previous owner crashed, this one restored the
tables) is not counted as ``waited``: after a restart the tasks that waited out
the outage are admitted while they can still make their deadline, rather than
refused by a worker that is not overloaded at all. A task redelivered after a
crash with its state already open never comes here (``Dispatcher.handle``). Records
replayed long after they were written (an old topic, a long outage) are past their
deadline and end as ``rejected`` with the reason ``expired``: no answer could reach
a client in time.

The older rule is kept beside it: past ``soft_lag`` requests waiting on a
partition of a model's topic intake slows, past ``hard_lag`` it refuses. Lag is
counted per partition (records after the group's commit, as the owning worker
sees them: intake and the model-call agents of a partition share a worker), read
at most every 250 ms (:class:`CachedLag`). It guards memory and the broker's
disk for tasks with very long timeouts; the time rule guards deadlines. The
stricter of the two decides (:func:`worst`).

Both read clocks: ``created_ms`` is the client's, ``now`` the worker's, as the
deadline itself is (``created_ms + timeout_ms``, which the sweeper enforces), so
admission adds no new dependence on synchronised clocks; the 1 s floor also
absorbs ordinary skew. Pure: signals and limits in, an :class:`Admission` out.
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
class Admission:
    action: Action
    delay_ms: int = 0
    reason: str = ""


ADMIT = Admission(Action.ADMIT)

_SEVERITY = {Action.ADMIT: 0, Action.SLOW: 1, Action.REJECT: 2}


def worst(*decisions: Admission) -> Admission:
    """The strictest decision: a refusal over a wait over an admission; of two waits, the longer."""
    return max(decisions, key=lambda d: (_SEVERITY[d.action], d.delay_ms), default=ADMIT)


# --- time: what a task waited and will wait, against its deadline -----------------------------

MIN_ALLOWANCE_MS = 1_000
"""Never refuse a task over less than this much waiting, whatever its timeout. Below a
second, waits are the ordinary jitter of a busy host (a GC pause of up to ~100 ms, measured
by ``bench soak``; a rebalance; a burst of a few hundred tasks) and the skew between the
client's clock, which stamps ``created_ms``, and the worker's; refusing over them would
turn jitter into errors (the end-to-end tests give tasks deadlines of 400 ms). Tasks with
timeouts under 4 s are therefore judged against 1 s, not a quarter of their timeout: they
are better served by trying."""

SLOW_FROM = 0.5
"""Intake starts to wait when the queue *ahead* of a task (at its models, at the outcomes)
passes this share of its allowance, the wait rising linearly to ``max_delay_ms`` at the
allowance: intake's waiting handlers hold its in-flight slots, so it takes new tasks from
the topic more slowly and the worker's time goes to the tasks it admitted, which are the
ones queued ahead. The wait a task had *before* intake does not slow intake: that queue is
intake's own, and waiting would only deepen it (intake's 256 slots asleep ~0.6 s each take
at most ~430 tasks/s, less than the refusals a backed-up tasks topic needs)."""


@dataclass(frozen=True)
class QueueingLimits:
    """``share`` of a task's timeout its queueing may take; 0 turns the rule off (the lag
    rule still applies). ``max_delay_ms``: intake's longest wait for one task."""

    share: float
    max_delay_ms: int = 1_000
    min_allowance_ms: int = MIN_ALLOWANCE_MS

    def __post_init__(self) -> None:
        if not 0 <= self.share <= 1:
            raise ValueError(f"the queueing share must be within 0..1, got {self.share}")
        if self.max_delay_ms < 0 or self.min_allowance_ms < 0:
            raise ValueError(f"queueing limits must not be negative: {self}")

    @property
    def enabled(self) -> bool:
        return self.share > 0

    def allowance_ms(self, timeout_ms: int) -> int:
        """How long a task with this timeout may queue (before intake and ahead of it) in all."""
        return max(round(self.share * timeout_ms), self.min_allowance_ms)


@dataclass(frozen=True)
class Waiting:
    """What a new task faces, as the worker that would run it measures itself."""

    age_ms: int
    """``now - created_ms``: its budget spent before intake (negative, a skewed clock: read as 0)."""
    timeout_ms: int
    waited_ms: int | None = None
    """How long it queued for this worker: ``now - max(created_ms, when the worker took its
    partition)``; None: all of ``age_ms``."""
    ahead_ms: Mapping[str, int | None] = field(default_factory=dict)
    """Per stage it will pass in turn (``"model 'a'"``: the slowest of the models it asks at
    once; then ``"outcomes"``): the age of the oldest event waiting there for a handler; None
    when nothing waits. The stages add up: a task queues at each."""


def by_queueing(waiting: Waiting, limits: QueueingLimits) -> Admission:
    """The time rule (module docstring). An unknown wait counts as none: admission never
    refuses work on a guess."""
    if not limits.enabled:
        return ADMIT
    age = max(waiting.age_ms, 0)
    waited = age if waiting.waited_ms is None else min(max(waiting.waited_ms, 0), age)
    timeout = waiting.timeout_ms
    stages = [(name, ms) for name, ms in waiting.ahead_ms.items() if ms is not None and ms > 0]
    ahead = sum(ms for _, ms in stages)
    floor = limits.min_allowance_ms
    if age >= max(timeout, floor):
        return Admission(Action.REJECT, reason=(
            f"expired: created {_s(age)} before intake saw it, past its {_s(timeout)} timeout "
            f"(a replay of old records, or a long outage); not started"))
    queued_at = "".join(f" + {_s(ms)} queued at {name}" for name, ms in stages)
    total = waited + ahead
    allowance = limits.allowance_ms(timeout)
    if total > allowance:
        return Admission(Action.REJECT, reason=(
            f"overloaded: waited {_s(waited)} before intake{queued_at}, {total / timeout:.0%} of its "
            f"{_s(timeout)} timeout (limit {limits.share:.0%}, at least {_s(floor)}); not started, retry later"))
    if age + ahead >= max(timeout, floor):
        return Admission(Action.REJECT, reason=(
            f"late: created {_s(age)} before intake saw it{queued_at}: past its {_s(timeout)} timeout "
            f"before its turn; not started"))
    slow_from = SLOW_FROM * allowance
    if ahead > slow_from and limits.max_delay_ms:
        share = (ahead - slow_from) / (allowance - slow_from)
        # never so long that the wait alone would take the task past its allowance
        delay = min(round(share * limits.max_delay_ms), allowance - total)
        return Admission(Action.SLOW, delay_ms=delay, reason=(
            f"{_s(ahead)} queued ahead{queued_at}, over half its {_s(allowance)} allowance"))
    return ADMIT


def _s(ms: int) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms} ms"


# --- records: how many wait on a model's topic -------------------------------------------------


@dataclass(frozen=True)
class SheddingLimits:
    """Per partition of a model's topic. ``soft_lag`` 0 turns the lag rule off."""

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


def admit(lags: Mapping[str, int | None], models: Sequence[str], limits: SheddingLimits) -> Admission:
    """The lag rule: the worst backlog among the models a task would ask decides. An
    unknown lag (not measured yet) admits. Between the limits the wait rises linearly
    from 0 to ``max_delay_ms``."""
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
