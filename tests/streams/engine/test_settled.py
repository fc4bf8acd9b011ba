"""The settled file (``streams/engine/settled.py``): entries by key with their partition, offset and
time, counted and found by partition, due by time, and no file left behind (its name is unlinked once it is open)."""

from __future__ import annotations

from pathlib import Path

from swarmstream.streams.engine.settled import WRITES_PER_COMMIT, Settled


def test_entries_are_found_counted_and_taken_by_partition_offset_and_time(tmp_path: Path) -> None:
    settled = Settled(tmp_path)
    assert list(tmp_path.iterdir()) == []  # unlinked as soon as it is open
    for i in range(10):
        settled.put(i % 2, f"k{i}", b"v%d" % i, 100 + i, 1_000 * i)
    assert settled.get("k3") == (1, b"v3", 103) and "k3" in settled and "nope" not in settled
    assert (settled.count(0), settled.count(1), len(settled)) == (5, 5, 10)
    assert (settled.lowest(0), settled.lowest(1), settled.lowest(7)) == (100, 101, None)
    assert sorted(settled.due(2_000, 10)) == ["k0", "k1", "k2"] and len(settled.due(9_000, 4)) == 4
    assert settled.take("k0") == (0, 100) and settled.take("k0") is None
    assert settled.lowest(0) == 102 and settled.count(0) == 4
    assert [key for key, _, _ in settled.slice(1, 101, 2)] == ["k3", "k5"]  # past offset 101, in offset order
    settled.drop(1)
    assert settled.count(1) == 0 and settled.get("k3") is None and len(settled) == 4
    settled.put_many(1, [(f"m{i}", b"m", i, 0) for i in range(WRITES_PER_COMMIT + 5)])  # across a commit
    assert settled.count(1) == WRITES_PER_COMMIT + 5 and settled.get(f"m{WRITES_PER_COMMIT}") == (1, b"m", 1_000)
    assert sorted(key for key, _ in settled.items())[:2] == ["k2", "k4"]
    settled.close()

