"""The fleet page's numbers: per model rates, latency, errors, breakers and cost; per tenant
spend against its budget with a forecast of when it runs out. Pure.

Per model rows are ``swarmstream top``'s (``streams/observe/calls.py``: the same window,
the same breaker fold as every worker). Spend is what the
call log says was paid (every CallRecord's ``cost_micros``, by tenant and UTC day and
month), the same money the selector's reservations settle to.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from swarmstream.agents.selection.budget import (
    BudgetLimits,
    day_key,
    month_key,
    window_end_ms,
)
from swarmstream.schemas.models import CallRecord
from swarmstream.streams.observe.calls import CallWindow, ModelRow


@dataclass(frozen=True, slots=True)
class TenantSpend:
    tenant: str
    window: str  # day | month
    spent_micros: int
    limit_micros: int | None
    rate_micros_per_min: float
    runs_out_ms: int | None  # when, at the current rate; None: not before the window ends (or no limit)
    window_end_ms: int

    @property
    def share(self) -> float | None:
        return None if not self.limit_micros else self.spent_micros / self.limit_micros


def runs_out_at(spent_micros: int, limit_micros: int | None, rate_micros_per_ms: float, now_ms: int,
                window_end_ms: int) -> int | None:
    """When spending at ``rate`` reaches ``limit``, if that is before the window ends (then the
    budget resets); ``now_ms`` when it is spent already; None otherwise."""
    if limit_micros is None:
        return None
    left = limit_micros - spent_micros
    if left <= 0:
        return now_ms
    if rate_micros_per_ms <= 0:
        return None
    at = now_ms + int(left / rate_micros_per_ms)
    return at if at < window_end_ms else None


class FleetView:
    def __init__(self, window: CallWindow) -> None:
        self.window = window
        self._recent_cost: dict[str, deque[tuple[int, int]]] = {}  # tenant -> (at_ms, cost)
        self._spent: dict[tuple[str, str], int] = {}  # (tenant, day or month key) -> micros

    def add(self, record: CallRecord) -> None:
        self.window.add(record)
        if record.cost_micros:
            self._recent_cost.setdefault(record.tenant, deque()).append((record.at_ms, record.cost_micros))
            for key in (day_key(record.at_ms), month_key(record.at_ms)):
                self._spent[(record.tenant, key)] = self._spent.get((record.tenant, key), 0) + record.cost_micros

    def tenants(self) -> set[str]:
        """Every tenant that has spent anything."""
        return {tenant for tenant, _ in self._spent}

    def rows(self, now_ms: int) -> list[ModelRow]:
        return self.window.rows(now_ms)

    def spend(self, now_ms: int, limits: dict[str, BudgetLimits]) -> list[TenantSpend]:
        """Each tenant seen or budgeted, today's and this month's spend; ``limits`` by tenant."""
        start = now_ms - self.window.window_ms
        tenants = sorted({t for t, _ in self._spent} | set(limits))
        out = []
        for tenant in tenants:
            costs = self._recent_cost.get(tenant, deque())
            while costs and costs[0][0] < start:
                costs.popleft()
            first, spent_recently = now_ms, 0
            for at, cost in costs:
                if start <= at <= now_ms:
                    spent_recently += cost
                    first = min(first, at)
            span_ms = max(min(self.window.window_ms, now_ms - first), 1000)  # as CallWindow: never under 1 s
            rate = spent_recently / span_ms
            limit = limits.get(tenant, BudgetLimits())
            for window, key, cap in (("day", day_key(now_ms), limit.per_day_micros),
                                     ("month", month_key(now_ms), limit.per_month_micros)):
                spent = self._spent.get((tenant, key), 0)
                if cap is None and window == "month" and not spent:
                    continue
                end = window_end_ms(key) or now_ms
                out.append(TenantSpend(tenant, window, spent, cap, rate * 60_000, runs_out_at(spent, cap, rate, now_ms, end),
                                       end))
        return out
