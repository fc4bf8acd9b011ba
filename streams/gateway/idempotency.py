"""``Idempotency-Key``: one key, one task.

The task id is a digest of (tenant, key), so the same key names the same task on every
instance and after a restart; this memory adds the rest within one instance: a retry
while the task runs waits on the same task instead of sending it again, and a retry
with a different body is refused rather than answered with another request's result.
After the memory forgets a key (``KEPT``, ``TTL_S``, a restart), a request that says it is
a retry (the SDKs' ``x-stainless-retry-count``) looks the finished task's result up by id
(``replies.Replies.lookup``) before it would send anything; a first try does not pay for
that scan.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .errors import invalid

KEPT = 100_000
"""Keys remembered: ~200 bytes each, ~20 MB; far more than the requests in flight at once."""

TTL_S = 24 * 3600.0
"""How long a key holds: the SDKs retry within a minute; Stripe's keys hold a day, which
callers of idempotent APIs expect."""


@dataclass(frozen=True)
class Claim:
    task_id: str
    created_ms: int
    fresh: bool  # True: no task yet, send it; False: a retry, wait on or look up task_id


IDEMPOTENT = "idem-"
"""The prefix of a task id made from an Idempotency-Key."""


def task_id_for(tenant: str, key: str) -> str:
    return IDEMPOTENT + hashlib.sha256(f"{tenant}\0{key}".encode()).hexdigest()[:32]


class Idempotency:
    def __init__(self, kept: int = KEPT, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._kept = kept
        self._ttl_s = ttl_s
        self._clock = clock
        self._claims: OrderedDict[str, tuple[Claim, str, float]] = OrderedDict()

    def claim(self, tenant: str, key: str, fingerprint: str, created_ms: int) -> Claim:
        task_id = task_id_for(tenant, key)
        now = self._clock()
        while self._claims and (len(self._claims) >= self._kept or next(iter(self._claims.values()))[2] < now - self._ttl_s):
            self._claims.popitem(last=False)
        known = self._claims.get(task_id)
        if known is not None:
            claim, body, _ = known
            if body != fingerprint:
                raise invalid("Idempotency-Key was used with a different request body", "Idempotency-Key")
            return Claim(claim.task_id, claim.created_ms, fresh=False)
        claim = Claim(task_id, created_ms, fresh=True)
        self._claims[task_id] = (claim, fingerprint, now)
        return claim

    def release(self, task_id: str) -> None:
        """Forget a claim whose task was never sent (the send failed): a retry may send it."""
        self._claims.pop(task_id, None)

    def __len__(self) -> int:
        return len(self._claims)
