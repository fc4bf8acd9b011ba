"""The consumer's fetch wait, raised when a broker leaves a partition unread.

The engine fetches with a short wait (``SWARM_FETCH_MAX_WAIT_MS``, 10 ms): each hop of a task
is a fetch, and on the embedded broker a held fetch hears of new data late. But Tansu lists
every batch a partition ever received on each fetch and gives up, returning nothing for the
partition, once the fetch's wait is spent (DESIGN.md, "Brokers"; ``bench broker``): after a few
minutes of steady load the listing outgrows 10 ms and the partition is never read again, its
tasks never reach intake, and nothing says so. A longer wait lets the listing finish (quick
steady soaks: with 10 ms, 26,942 tasks got no result; with 100 ms every task had one; with
this rule every task had one too, 7,333 of them timeouts as the listing kept growing).

So the engine watches its partitions: one that the fetcher should be reading (not paused, no
fetched records of it waiting to be handed over, its position behind the high watermark the
broker last reported) and whose position has not moved
for :data:`STARVED_S` doubles the wait, up to :data:`MAX_FETCH_WAIT_MS`, and the wait never
comes back down (Tansu's listing only grows). Only a position that does not move counts: under
steady load a partition is behind at nearly every look (records keep coming), and a rule that
fired on that raised the wait to its most within seconds, each hop then waited up to 250 ms on
Tansu and accepted tasks timed out (a quick soak: 18,806 timeouts). On Kafka a fetch behind
the high watermark returns records at once, so this never fires there. Pure: positions in, a
new wait out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

STARVED_S = 2.0
"""How long a partition may stay behind its high watermark without being read before the wait
rises: a hundred fetches at 10 ms, so not a slow moment of the broker, and at most a few
seconds of a task's 30 s deadline lost per doubling."""

MAX_FETCH_WAIT_MS = 500
"""The wait never rises past this: each hop of a task may cost up to half of it on Tansu (it
looks again after half the wait left), and a listing that outgrows 500 ms (~500,000 batches a
partition) is a broker that cannot serve this load at any wait."""


class FetchWait:
    """The fetch wait in force and what each watched partition's position was, since when."""

    def __init__(self, base_ms: int, *, max_ms: int = MAX_FETCH_WAIT_MS, starved_s: float = STARVED_S) -> None:
        self.wait_ms = max(base_ms, 1)
        self._max_ms = max_ms
        self.starved_s = starved_s
        self._since: dict[Hashable, tuple[int, float]] = {}  # partition -> (its position, since when it is there)

    def observe(self, now_s: float, partitions: Iterable[tuple[Hashable, int | None, int | None]]) -> int | None:
        """``partitions``: each one the fetcher should be reading, with its fetch position and the
        high watermark last reported (None: not known yet). Returns the new wait when one of them
        starved (behind, at the same position, for ``starved_s``), else None."""
        since: dict[Hashable, tuple[int, float]] = {}
        starved = False
        for key, position, highwater in partitions:
            if position is None or highwater is None or position >= highwater:
                continue  # caught up, or not known yet: nothing waits to be read
            seen = self._since.get(key)
            since[key] = seen if seen is not None and seen[0] == position else (position, now_s)
            starved |= now_s - since[key][1] >= self.starved_s
        if starved and self.wait_ms < self._max_ms:
            self.wait_ms = min(self.wait_ms * 2, self._max_ms)
            self._since = {key: (position, now_s) for key, (position, _) in since.items()}  # the new wait's own time
            return self.wait_ms
        self._since = since
        return None
