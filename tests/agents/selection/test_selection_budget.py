"""Budget arithmetic in integer micro-dollars: windows, limits, reserve-then-settle."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.providers.base import cost_micros
from swarmstream.agents.selection.budget import (
    BudgetLimits,
    SpendLedger,
    affordable,
    cost_weight_multiplier,
    day_key,
    estimate_cost_micros,
    month_key,
    remaining,
    reserve,
    settle,
)
from swarmstream.agents.selection.policies import Candidate
from swarmstream.agents.selection.posterior import BetaPosterior


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


# --- windows --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now_ms", "day", "month"),
    [
        (0, "1970-01-01", "1970-01"),
        (ms(2026, 11, 25, 12, 0), "2026-11-25", "2026-11"),
        (ms(2026, 11, 30, 23, 59, 59) + 999, "2026-11-30", "2026-11"),  # last ms of the month
        (ms(2026, 12, 1), "2026-12-01", "2026-12"),  # first ms of the next
        (ms(2028, 2, 29, 6), "2028-02-29", "2028-02"),  # leap day
        (ms(2026, 12, 31, 23, 59, 59) + 999, "2026-12-31", "2026-12"),
    ],
)
def test_window_keys_are_utc(now_ms: int, day: str, month: str) -> None:
    assert day_key(now_ms) == day
    assert month_key(now_ms) == month


# --- limits and remaining -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "month", "limits", "left"),
    [
        (0, 0, BudgetLimits(), None),
        (10**9, 10**12, BudgetLimits(), None),
        (0, 0, BudgetLimits(per_day_micros=1_000_000), 1_000_000),
        (400_000, 0, BudgetLimits(per_day_micros=1_000_000), 600_000),
        (1_200_000, 0, BudgetLimits(per_day_micros=1_000_000), 0),  # overspent: 0, not negative
        (0, 9_500_000, BudgetLimits(per_day_micros=1_000_000, per_month_micros=10_000_000), 500_000),  # month tighter
        # day tighter
        (900_000, 5_000_000, BudgetLimits(per_day_micros=1_000_000, per_month_micros=10_000_000), 100_000),
        (0, 3, BudgetLimits(per_month_micros=3), 0),
    ],
)
def test_remaining(day: int, month: int, limits: BudgetLimits, left: int | None) -> None:
    assert remaining(day, month, limits) == left


def test_money_is_int_micros() -> None:
    with pytest.raises(TypeError, match="int micro-dollars"):
        BudgetLimits(per_day_micros=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int micro-dollars"):
        remaining(0.1, 0, BudgetLimits(per_day_micros=10))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        reserve(0, 0, BudgetLimits(per_day_micros=10), 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        BudgetLimits(per_month_micros=-1)


def test_limits_tightest() -> None:
    assert BudgetLimits().unlimited and BudgetLimits().tightest_micros is None
    assert BudgetLimits(per_day_micros=5, per_month_micros=100).tightest_micros == 5


# --- reserve and settle ---------------------------------------------------------------------


def test_reserve_fits_exactly_and_not_one_more() -> None:
    limits = BudgetLimits(per_day_micros=1_000)
    ok = reserve(400, 400, limits, 600)
    assert ok.ok and (ok.spent_day_micros, ok.spent_month_micros, ok.remaining_micros) == (1_000, 1_000, 0)
    refused = reserve(400, 400, limits, 601)
    assert not refused.ok
    assert (refused.spent_day_micros, refused.spent_month_micros, refused.remaining_micros) == (400, 400, 600)
    assert "601" in refused.reason and "600" in refused.reason


def test_reserve_unlimited_always_fits() -> None:
    decision = reserve(10**12, 10**12, BudgetLimits(), 10**9)
    assert decision.ok and decision.remaining_micros is None


@pytest.mark.parametrize(
    ("spent", "reserved", "actual", "after"),
    [
        (1_000, 600, 450, 850),  # the usual case: actual below the forecast
        (1_000, 600, 600, 1_000),
        (1_000, 600, 0, 400),  # released: the call never ran
        (600, 600, 700, 700),  # billed above the forecast: recorded as billed
    ],
)
def test_settle(spent: int, reserved: int, actual: int, after: int) -> None:
    assert settle(spent, reserved, actual) == after


def test_settle_more_than_the_counter_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot settle"):
        settle(100, 200, 0)


def test_ledger_reserve_settle_cycle() -> None:
    now = ms(2026, 11, 25, 12)
    ledger = SpendLedger({"acme": BudgetLimits(per_day_micros=1_000, per_month_micros=1_500)})
    first = ledger.reserve("acme", 700, now)
    assert first is not None and ledger.spent("acme", now) == (700, 700)
    assert ledger.reserve("acme", 400, now) is None  # 700 + 400 > 1,000 a day
    ledger.settle(first, 300)
    assert ledger.spent("acme", now) == (300, 300)
    assert ledger.remaining("acme", now) == 700
    # the next day: the day window is fresh, the month still counts
    tomorrow = now + 86_400_000
    assert ledger.remaining("acme", tomorrow) == 1_000
    second = ledger.reserve("acme", 1_000, tomorrow)
    assert second is not None
    assert ledger.spent("acme", tomorrow) == (1_000, 1_300)
    assert ledger.reserve("acme", 201, tomorrow + 1) is None  # month: 1,500 - 1,300 = 200 left
    assert ledger.top_spenders(month_key(now)) == [("acme", 1_300)]
    # another tenant has no limit by default
    assert ledger.reserve("other", 10**9, now) is not None


def test_settle_goes_to_the_window_of_the_reservation() -> None:
    """A call reserved at 23:59:59 and billed after midnight counts in the day it was reserved."""
    late = ms(2026, 11, 25, 23, 59, 59)
    ledger = SpendLedger(default=BudgetLimits(per_day_micros=1_000))
    reservation = ledger.reserve("t", 800, late)
    assert reservation is not None
    ledger.settle(reservation, 500)
    assert ledger.spent("t", late) == (500, 500)
    assert ledger.spent("t", late + 2_000) == (0, 500)


def test_many_concurrent_reservations_never_overspend() -> None:
    """200 concurrent calls, each forecast at 10,000 micros (an upper bound) and billed
    2,000-10,000 micros, against a 1,000,000 micro day limit: at every instant the
    committed spend stays within the limit, and the final spend too."""
    limit = 1_000_000
    ledger = SpendLedger(default=BudgetLimits(per_day_micros=limit, per_month_micros=limit))
    now = ms(2026, 11, 25, 9)
    rng = random.Random(0)
    high_water = 0
    admitted = 0

    async def call(i: int) -> None:
        nonlocal high_water, admitted
        await asyncio.sleep(rng.random() / 1000)
        reservation = ledger.reserve("t", 10_000, now)
        if reservation is None:
            return
        admitted += 1
        high_water = max(high_water, ledger.spent("t", now)[0])
        await asyncio.sleep(rng.random() / 200)  # the model call
        ledger.settle(reservation, rng.randint(2_000, 10_000))
        high_water = max(high_water, ledger.spent("t", now)[0])

    async def main() -> None:
        await asyncio.gather(*(call(i) for i in range(200)))

    asyncio.run(main())
    day, month = ledger.spent("t", now)
    assert high_water <= limit
    assert day == month <= limit
    assert admitted >= 100  # the budget admits at least limit / forecast calls


def test_pure_reserve_interleaved_never_exceeds() -> None:
    """The pure functions alone: random interleavings of reserve and settle."""
    limits = BudgetLimits(per_day_micros=50_000)
    rng = random.Random(1)
    day = month = 0
    outstanding: list[int] = []
    for _ in range(5_000):
        if outstanding and rng.random() < 0.5:
            reserved = outstanding.pop(rng.randrange(len(outstanding)))
            actual = rng.randint(0, reserved)
            day, month = settle(day, reserved, actual), settle(month, reserved, actual)
        else:
            decision = reserve(day, month, limits, rng.randint(1, 9_000))
            if decision.ok:
                outstanding.append(decision.spent_day_micros - day)
                day, month = decision.spent_day_micros, decision.spent_month_micros
        assert day <= 50_000


# --- forecasts and candidates ---------------------------------------------------------------


SPEC = ModelSpec(id="m", provider="simulated", family="f", input_usd_per_mtok=0.15, output_usd_per_mtok=0.6)


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens"),
    [(0, 0), (10, 0), (1, 1), (1_000, 256), (123_456, 7_890)],
)
def test_forecast_equals_the_bill_for_the_same_tokens(input_tokens: int, output_tokens: int) -> None:
    assert estimate_cost_micros(SPEC, input_tokens, output_tokens) == cost_micros(SPEC, input_tokens, output_tokens)


def test_forecast_is_exact_decimal() -> None:
    # 0.15 x 10 = 1.5 -> 2 (half up); a float product gives 1.4999999999999998
    assert estimate_cost_micros(SPEC, 10, 0) == 2
    assert estimate_cost_micros(SPEC, 1_000_000, 1_000_000) == 750_000  # 0.75 USD
    assert isinstance(estimate_cost_micros(SPEC, 3, 3), int)
    with pytest.raises(ValueError):
        estimate_cost_micros(SPEC, -1, 0)


def test_affordable() -> None:
    cands = [Candidate(m, BetaPosterior(), None, cost) for m, cost in (("a", 10), ("b", 50), ("c", 300))]
    assert [c.model_id for c in affordable(cands, None)] == ["a", "b", "c"]
    assert [c.model_id for c in affordable(cands, 50)] == ["a", "b"]
    assert [c.model_id for c in affordable(cands, 9)] == []


@pytest.mark.parametrize(
    ("left", "limit", "multiplier"),
    [
        (None, None, 1.0),
        (100, None, 1.0),
        (1_000, 1_000, 1.0),
        (500, 1_000, 1.0),
        (250, 1_000, 3.0),
        (0, 1_000, 5.0),
    ],
)
def test_cost_weight_rises_as_budget_runs_low(left: int | None, limit: int | None, multiplier: float) -> None:
    assert cost_weight_multiplier(left, limit) == pytest.approx(multiplier)
