"""The fetch wait rises when a partition the fetcher should read stays unread
(``streams/engine/fetchwait.py``), and only then."""

from __future__ import annotations

from swarmstream.streams.engine.fetchwait import FetchWait


def test_a_partition_behind_its_high_watermark_and_not_read_for_the_starved_time_doubles_the_wait() -> None:
    wait = FetchWait(10, max_ms=40, starved_s=2.0)
    assert wait.observe(0.0, [("p0", 5, 100)]) is None
    assert wait.observe(1.9, [("p0", 5, 100)]) is None  # not long enough yet
    assert wait.observe(2.0, [("p0", 5, 100)]) == 20
    assert wait.observe(3.0, [("p0", 5, 100)]) is None  # the new wait gets its own time
    assert wait.observe(4.0, [("p0", 5, 100)]) == 40
    assert wait.observe(9.0, [("p0", 5, 100)]) is None and wait.wait_ms == 40  # never past the most


def test_a_partition_that_moves_is_caught_up_or_is_unknown_never_raises_it() -> None:
    """Under steady load a partition is behind at nearly every look: only a stuck one counts."""
    wait = FetchWait(10, starved_s=2.0)
    for t in range(20):
        assert wait.observe(float(t), [("moving", t, t + 100), ("caught-up", 50, 50), ("no-position", None, 9),
                                       ("no-highwater", 3, None)]) is None
    assert wait.wait_ms == 10


def test_a_partition_gone_from_the_watch_starts_over_when_it_is_back() -> None:
    wait = FetchWait(10, starved_s=2.0)
    wait.observe(0.0, [("p0", 5, 100)])
    wait.observe(1.0, [])  # paused (its backlog is full) or revoked: not the broker's doing
    assert wait.observe(2.5, [("p0", 5, 100)]) is None
    assert wait.observe(4.5, [("p0", 5, 100)]) == 20
