"""Retention for changelog tables (``changelog.py``): an entry past its time is deleted
with a tombstone on its changelog.

Deletion runs in a timer, outside any handler (``Table.delete_now``), from an index by time
(:class:`ExpiryIndex`) so that no timer reads the whole table: a table may hold millions of
entries (the app's task table keeps every task for hours at a few hundred tasks/s), and one
scan of 20,000 entries held the event loop ~40 ms.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from swarmstream.streams.engine.changelog import Table


class ExpiryIndex:
    """Keys by the time they may go, checked again when due: an entry written since with a later
    time goes back in, one deleted or dropped is skipped. A key may be in it twice (indexed again
    after its partition came back): harmless, the second is skipped once the first deleted it.

    Times are rounded up to ``bucket_ms``: a key is due at most ``bucket_ms`` late, and costs a
    slot in its bucket's list (8 bytes) instead of a heap tuple and its time (~100 bytes, measured
    with tracemalloc). The task table indexes every task of a 2 h window (100,000 finished tasks:
    ~10 MB less by the second), where a second late is nothing."""

    def __init__(self, bucket_ms: int = 1) -> None:
        self._bucket_ms = bucket_ms
        self._buckets: dict[int, list[str]] = {}
        self._ends: list[int] = []  # a heap of the buckets' times
        self._count = 0

    def add(self, at_ms: int, key: str) -> None:
        end = -(-at_ms // self._bucket_ms) * self._bucket_ms  # never before at_ms
        bucket = self._buckets.get(end)
        if bucket is None:
            bucket = self._buckets[end] = []
            heapq.heappush(self._ends, end)
        bucket.append(key)
        self._count += 1

    def due(self, now_ms: int, at_ms: Callable[[str], int | None]) -> list[str]:
        """Keys whose time (``at_ms(key)``, None: gone) is ``now_ms`` or earlier; keys due by the
        index but not by their entry go back in with the entry's time."""
        out = []
        later = []
        while self._ends and self._ends[0] <= now_ms:
            keys = self._buckets.pop(heapq.heappop(self._ends))
            self._count -= len(keys)
            for key in keys:
                at = at_ms(key)
                if at is None:
                    continue
                if at <= now_ms:
                    out.append(key)
                else:
                    later.append((at, key))
        for at, key in later:
            self.add(at, key)
        return out

    def __len__(self) -> int:
        return self._count


Expiry = Callable[[str, Any], int | None]
"""(key, value) -> when the entry may go (ms since epoch); None: it has no time of its own,
and goes the table's ``default_ms`` after this worker first indexed it."""


class Retained:
    """A table whose entries go once past their time, each with a tombstone on the changelog.

    The mapping handlers see (``get``, ``[]``, ``set``): what every table but the task tables is
    wrapped in, with the time its entries may go (``expiry``, from the key or the value) and a
    reason for it (``streams/app/topology.py``, ``tool_wiring.py``, ``workflow_wiring.py``)."""

    def __init__(self, table: Table, *, expiry: Expiry, default_ms: int,
                 clock: Callable[[], int]) -> None:
        self._table = table
        self._expiry = expiry
        self._default_ms = default_ms
        self._clock = clock
        self._index = ExpiryIndex()

    @property
    def table(self) -> Table:
        return self._table

    def get(self, key: str, default: Any = None) -> Any:
        return self._table.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._table[key]

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def __setitem__(self, key: str, value: Any) -> None:
        new = key not in self._table
        self._table[key] = value
        if new:
            self._add(key, value)

    set = __setitem__  # the tools' KeyValue protocol (agents/tools/agent.py)

    def __delitem__(self, key: str) -> None:
        del self._table[key]

    def items(self) -> Iterator[tuple[str, Any]]:
        return self._table.items()

    def __len__(self) -> int:
        return len(self._table)

    def reindex(self, partitions: Iterable[int]) -> None:
        """Index what a restore brought in for ``partitions``."""
        for key in self._table.keys_of(partitions):
            value = self._table.get(key)
            if value is not None:
                self._add(key, value)

    async def expire(self, now_ms: int) -> int:
        """Delete the entries whose time has come (a tombstone each, acknowledged on return)."""
        due = self._index.due(now_ms, self._time_of)
        if not due:
            return 0
        return await self._table.delete_now(due, still=lambda key: (at := self._time_of(key)) is not None
                                            and at <= now_ms)

    def _add(self, key: str, value: Any) -> None:
        at = self._expiry(key, value)
        self._index.add(self._clock() + self._default_ms if at is None else at, key)

    def _time_of(self, key: str) -> int | None:
        """An entry's time, for the index: None when it is gone; an entry with no time of its own
        is due when its index time is (the index is asked only then)."""
        if key not in self._table:
            return None
        at = self._expiry(key, self._table[key])
        return -1 if at is None else at
