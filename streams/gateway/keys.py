"""Gateway API keys: stored hashed, each mapped to a tenant, a rate limit and a budget.

The keys file (``SWARM_GATEWAY_KEYS``, YAML) holds only SHA-256 digests, never a key::

    keys:
      - sha256: 9f86d081884c7d65...   # printf %s "$KEY" | sha256sum
        tenant: acme
        rate_per_s: 20                # requests per second, bursts of `burst`
        burst: 40
        budget_usd_per_day: 5.0       # agents/selection/budget.py: reserve, then settle

A request's key is hashed and looked up; it goes no further (not in a task, a log or an
error). With no keys file the gateway is open and every request is the default tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, Field
from swarmstream.agents.selection.budget import BudgetLimits, Reservation, SpendLedger

from .errors import GatewayError


class KeyEntry(BaseModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenant: str = Field(min_length=1)
    rate_per_s: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)
    budget_usd_per_day: float | None = Field(None, ge=0)
    budget_usd_per_month: float | None = Field(None, ge=0)
    forecast_usd: float = Field(0.0, ge=0, description="reserved per request until its cost is known")


class KeysFile(BaseModel):
    keys: list[KeyEntry] = []


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_keys(path: Path | None) -> list[KeyEntry]:
    if path is None:
        return []
    return KeysFile.model_validate(yaml.safe_load(Path(path).read_text()) or {}).keys


@dataclass
class _Bucket:
    """A token bucket: ``rate`` tokens a second up to ``burst``; a request takes one."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _micros(usd: float | None) -> int | None:
    return None if usd is None else round(usd * 1_000_000)


@dataclass
class Keys:
    entries: list[KeyEntry]
    default_tenant: str = "default"
    clock: Callable[[], float] = time.monotonic
    _by_hash: dict[str, KeyEntry] = field(init=False)
    _buckets: dict[str, _Bucket] = field(init=False, default_factory=dict)
    ledger: SpendLedger = field(init=False)

    def __post_init__(self) -> None:
        self._by_hash = {e.sha256: e for e in self.entries}
        self.ledger = SpendLedger({e.tenant: BudgetLimits(per_day_micros=_micros(e.budget_usd_per_day),
                                                          per_month_micros=_micros(e.budget_usd_per_month))
                                   for e in self.entries})

    @property
    def open(self) -> bool:
        return not self.entries

    def authenticate(self, key: str | None) -> KeyEntry | None:
        """The key's entry (None when the gateway is open); 401 for a missing or unknown key,
        saying which without repeating it."""
        if self.open:
            return None
        if not key:
            raise GatewayError(401, "authentication", "no API key (Authorization: Bearer <key> or x-api-key)", retry=False)
        digest = hash_key(key)
        entry = self._by_hash.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            raise GatewayError(401, "authentication", "invalid API key", retry=False)
        return entry

    def tenant(self, entry: KeyEntry | None) -> str:
        return entry.tenant if entry else self.default_tenant

    def admit(self, entry: KeyEntry | None) -> None:
        """429 when the key is over its rate."""
        if entry is None or entry.rate_per_s is None:
            return
        now = self.clock()
        bucket = self._buckets.get(entry.sha256)
        if bucket is None:
            burst = float(entry.burst or max(1, round(entry.rate_per_s)))
            bucket = self._buckets[entry.sha256] = _Bucket(entry.rate_per_s, burst, burst, now)
        if not bucket.take(now):
            raise GatewayError(429, "rate_limit", f"rate limit of tenant {entry.tenant!r}: "
                               f"{entry.rate_per_s:g} requests/s", retry=True)

    def reserve(self, entry: KeyEntry | None, now_ms: int) -> Reservation | None:
        """Reserve the request's forecast against the tenant's budget (``budget.py``); 429 when
        it is spent. Settle with :meth:`settle` once the task's cost is known."""
        if entry is None or (entry.budget_usd_per_day is None and entry.budget_usd_per_month is None):
            return None
        reservation = self.ledger.reserve(entry.tenant, _micros(entry.forecast_usd) or 0, now_ms)
        remaining = self.ledger.remaining(entry.tenant, now_ms)
        if reservation is None or (remaining is not None and remaining <= 0 and not entry.forecast_usd):
            if reservation is not None:
                self.ledger.settle(reservation, 0)
            raise GatewayError(429, "rate_limit", f"budget of tenant {entry.tenant!r} is exhausted", retry=False)
        return reservation

    def settle(self, reservation: Reservation | None, cost_micros: int) -> None:
        if reservation is not None:
            self.ledger.settle(reservation, cost_micros)
