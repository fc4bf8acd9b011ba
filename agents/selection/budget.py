"""Budgets per tenant, per UTC day and per UTC month, in integer micro-dollars.

Money is ``int`` micro-dollars everywhere here (1 USD = 1,000,000): a float sum of
thousands of sub-cent costs drifts, and a budget check that compares floats can
let one call through that an exact sum would refuse.

**Windows.** Spend is kept per (tenant, window key): ``day_key(now_ms)`` is the
UTC date ``"2026-11-25"``, ``month_key(now_ms)`` is ``"2026-11"``. A call counts
in the day and the month that were current when it was *reserved*.

**Reserve, then settle** (so concurrent calls cannot overspend together):

1. before a call, forecast its cost as an upper bound (input tokens of the
   prompt, and the request's ``max_tokens`` as output, :func:`estimate_cost_micros`)
   and :func:`reserve` it: the forecast is added to the tenant's day and month
   counters at once if it fits in what remains, else the call is refused;
2. after the call, :func:`settle` replaces the reservation by the actual cost
   (``counter - reserved + actual``); a call that never ran releases it
   (actual 0).

The counters therefore always hold settled spend plus every outstanding
reservation, and each reservation is checked against them, so N calls in
flight can never together commit more than the limit, whatever order they
finish in. The guarantee needs two things: the forecast is an upper bound of
the actual cost (it is, when output is forecast at ``max_tokens`` and input is
counted with the provider's tokenizer; the chars/4 estimate can under-count,
so a worker without a tokenizer should pad it), and reserve is atomic per
tenant: in one process a reserve is synchronous code with no ``await`` inside,
and across workers the spend table is keyed by tenant, so one partition owner
applies every reservation of a tenant in order. Every call type (consensus
fan-out, chain links, tool turns) reserves through the same counters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol, TypeVar

MICROS_PER_USD = 1_000_000


class Prices(Protocol):
    """Anything priced like a catalog ``ModelSpec``: USD per million tokens."""

    @property
    def input_usd_per_mtok(self) -> float: ...

    @property
    def output_usd_per_mtok(self) -> float: ...


class _Costed(Protocol):
    @property
    def cost_micros_est(self) -> int: ...


C = TypeVar("C", bound=_Costed)


# --- windows --------------------------------------------------------------------------------


def _utc(now_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)


def day_key(now_ms: int) -> str:
    """The UTC day of ``now_ms`` (ms since epoch) as ``YYYY-MM-DD``."""
    return _utc(now_ms).strftime("%Y-%m-%d")


def month_key(now_ms: int) -> str:
    """The UTC month of ``now_ms`` as ``YYYY-MM``."""
    return _utc(now_ms).strftime("%Y-%m")


def window_end_ms(window_key: str) -> int | None:
    """When the window a key names ends (ms since epoch): the next UTC midnight for a day key,
    the first of the next month for a month key; None for anything else. A window's counter
    is read only while its window is current, so the spend table deletes it some time after."""
    try:
        if len(window_key) == 10:
            start = dt.datetime.strptime(window_key, "%Y-%m-%d").replace(tzinfo=dt.UTC)
            end = start + dt.timedelta(days=1)
        elif len(window_key) == 7:
            start = dt.datetime.strptime(window_key, "%Y-%m").replace(tzinfo=dt.UTC)
            end = (start + dt.timedelta(days=32)).replace(day=1)
        else:
            return None
    except ValueError:
        return None
    return int(end.timestamp() * 1000)


# --- limits and what remains ----------------------------------------------------------------


def _check_micros(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be int micro-dollars, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 micro-dollars, got {value}")


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """A tenant's limits; None means no limit in that window."""

    per_day_micros: int | None = None
    per_month_micros: int | None = None

    def __post_init__(self) -> None:
        _check_micros("BudgetLimits.per_day_micros", self.per_day_micros, allow_none=True)
        _check_micros("BudgetLimits.per_month_micros", self.per_month_micros, allow_none=True)

    @property
    def unlimited(self) -> bool:
        return self.per_day_micros is None and self.per_month_micros is None

    @property
    def tightest_micros(self) -> int | None:
        """The smaller of the limits that are set (for budget pressure), None if none is."""
        limits = [x for x in (self.per_day_micros, self.per_month_micros) if x is not None]
        return min(limits) if limits else None


def remaining(spent_day_micros: int, spent_month_micros: int, limits: BudgetLimits) -> int | None:
    """Micro-dollars still allowed now (the tighter window decides, never below 0);
    None when no limit is set. ``spent_*`` include outstanding reservations."""
    _check_micros("spent_day_micros", spent_day_micros)
    _check_micros("spent_month_micros", spent_month_micros)
    left = [
        limit - spent
        for limit, spent in ((limits.per_day_micros, spent_day_micros), (limits.per_month_micros, spent_month_micros))
        if limit is not None
    ]
    return max(0, min(left)) if left else None


@dataclass(frozen=True, slots=True)
class ReserveDecision:
    """Whether a forecast fits, and the counters after reserving it (unchanged if not)."""

    ok: bool
    spent_day_micros: int
    spent_month_micros: int
    remaining_micros: int | None  # after the reservation when ok, else what remained
    reason: str


def reserve(
    spent_day_micros: int, spent_month_micros: int, limits: BudgetLimits, estimate_micros: int
) -> ReserveDecision:
    """Reserve ``estimate_micros`` if it fits in both windows (see the module docstring)."""
    _check_micros("estimate_micros", estimate_micros)
    left = remaining(spent_day_micros, spent_month_micros, limits)
    if left is not None and estimate_micros > left:
        return ReserveDecision(
            ok=False,
            spent_day_micros=spent_day_micros,
            spent_month_micros=spent_month_micros,
            remaining_micros=left,
            reason=f"forecast {estimate_micros} micros exceeds the {left} micros left",
        )
    return ReserveDecision(
        ok=True,
        spent_day_micros=spent_day_micros + estimate_micros,
        spent_month_micros=spent_month_micros + estimate_micros,
        remaining_micros=None if left is None else left - estimate_micros,
        reason=f"reserved {estimate_micros} micros" + ("" if left is None else f" of {left} left"),
    )


def settle(spent_micros: int, reserved_micros: int, actual_micros: int) -> int:
    """A window's counter once a reservation is replaced by the actual cost (0: released).

    Apply it to each window the reservation went into (its day and its month)."""
    _check_micros("spent_micros", spent_micros)
    _check_micros("reserved_micros", reserved_micros)
    _check_micros("actual_micros", actual_micros)
    if reserved_micros > spent_micros:
        raise ValueError(f"cannot settle a reservation of {reserved_micros} micros from a counter of {spent_micros}")
    return spent_micros - reserved_micros + actual_micros


# --- forecasts and candidates ---------------------------------------------------------------


def estimate_cost_micros(spec_prices: Prices, input_tokens: int, expected_output_tokens: int) -> int:
    """Forecast cost in micro-dollars: the same formula and rounding as the bill
    (``providers.base.cost_micros``: Decimal from the prices' text, half up on the total),
    so a forecast with the actual token counts equals the actual cost. Use the request's
    ``max_tokens`` as ``expected_output_tokens`` for a reservation (an upper bound)."""
    if input_tokens < 0 or expected_output_tokens < 0:
        raise ValueError(f"token counts must be >= 0, got {input_tokens} in, {expected_output_tokens} out")
    total = (
        Decimal(str(spec_prices.input_usd_per_mtok)) * input_tokens
        + Decimal(str(spec_prices.output_usd_per_mtok)) * expected_output_tokens
    )
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def affordable(candidates: Sequence[C], remaining_micros: int | None) -> list[C]:
    """The candidates whose forecast fits in ``remaining_micros`` (all when None)."""
    if remaining_micros is None:
        return list(candidates)
    return [c for c in candidates if c.cost_micros_est <= remaining_micros]


LOW_BUDGET_SHARE = 0.5
"""Budget pressure starts when less than this share of the tightest limit remains."""
MAX_COST_WEIGHT_MULTIPLIER = 5.0
"""Cost penalty multiplier when the budget is exhausted: at 5x the default Thompson
cost weight (0.15 -> 0.75) the most expensive model must be ~75 quality points
better to win, i.e. the policy is effectively cheapest-first."""


def cost_weight_multiplier(remaining_micros: int | None, limit_micros: int | None) -> float:
    """1.0 while at least half the budget remains, rising linearly to
    ``MAX_COST_WEIGHT_MULTIPLIER`` as it runs out: selection prefers cheaper models
    as the budget runs low instead of spending the rest at full price."""
    if remaining_micros is None or not limit_micros:
        return 1.0
    share = max(0.0, min(1.0, remaining_micros / limit_micros))
    if share >= LOW_BUDGET_SHARE:
        return 1.0
    pressure = 1.0 - share / LOW_BUDGET_SHARE  # 0 at half the budget left, 1 at nothing left
    return 1.0 + (MAX_COST_WEIGHT_MULTIPLIER - 1.0) * pressure


# --- an in-memory ledger (the table's semantics, for one process and for tests) --------------


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a call reserved, and where: settle it into the same windows."""

    tenant: str
    day_key: str
    month_key: str
    amount_micros: int


class SpendLedger:
    """Per-tenant day and month counters with reserve / settle, held in a dict.

    The stream keeps the same integers in a windowed, changelog-backed table keyed
    by tenant; this class is that logic for one process (its methods never await,
    so asyncio tasks cannot interleave inside a reservation) and the model the
    tests check the no-overspend guarantee against.
    """

    def __init__(self, limits: dict[str, BudgetLimits] | None = None, default: BudgetLimits | None = None) -> None:
        self._limits = dict(limits or {})
        self._default = default or BudgetLimits()
        self._counters: dict[tuple[str, str], int] = {}

    def limits(self, tenant: str) -> BudgetLimits:
        return self._limits.get(tenant, self._default)

    def spent(self, tenant: str, now_ms: int) -> tuple[int, int]:
        """(day, month) counters for the windows of ``now_ms``: settled plus reserved."""
        return self._counters.get((tenant, day_key(now_ms)), 0), self._counters.get((tenant, month_key(now_ms)), 0)

    def remaining(self, tenant: str, now_ms: int) -> int | None:
        return remaining(*self.spent(tenant, now_ms), self.limits(tenant))

    def reserve(self, tenant: str, estimate_micros: int, now_ms: int) -> Reservation | None:
        """Reserve the forecast, or None when it does not fit."""
        day, month = day_key(now_ms), month_key(now_ms)
        decision = reserve(*self.spent(tenant, now_ms), self.limits(tenant), estimate_micros)
        if not decision.ok:
            return None
        self._counters[(tenant, day)] = decision.spent_day_micros
        self._counters[(tenant, month)] = decision.spent_month_micros
        return Reservation(tenant, day, month, estimate_micros)

    def settle(self, reservation: Reservation, actual_micros: int) -> None:
        """Replace the reservation by the actual cost (0 when the call never ran)."""
        for key in (reservation.day_key, reservation.month_key):
            window = (reservation.tenant, key)
            self._counters[window] = settle(self._counters.get(window, 0), reservation.amount_micros, actual_micros)

    def top_spenders(self, window_key: str, n: int = 10) -> list[tuple[str, int]]:
        """Tenants by spend in one window (a day or a month key), largest first."""
        rows = [(tenant, micros) for (tenant, key), micros in self._counters.items() if key == window_key]
        return sorted(rows, key=lambda row: (-row[1], row[0]))[:n]

    def tenants(self) -> Iterable[str]:
        return sorted({tenant for tenant, _ in self._counters})
