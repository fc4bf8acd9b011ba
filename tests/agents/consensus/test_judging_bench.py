"""The judge rows of ``bench consensus`` (bench/judging.py) on a few tasks of each fleet."""

from __future__ import annotations

import pytest
from swarmstream.bench.consensus import INDEPENDENT
from swarmstream.bench.fleets import realistic_fleet
from swarmstream.bench.judging import SAMPLES, judge_rows


@pytest.mark.parametrize("fleet", [INDEPENDENT, realistic_fleet()], ids=lambda f: f.name)
def test_judge_rows_count_the_judge_only_where_it_is_asked(fleet) -> None:  # type: ignore[no-untyped-def]
    rows = judge_rows(fleet, n_tasks=80, n_warmup=0, seed=0)
    panel = len(fleet.ids)

    assert {"judge", "fuse", "vote_then_judge", "self_consistency"} == set(rows)
    assert panel < rows["judge"]["calls_per_task"] <= panel + 1  # one judge call where the answers differ
    assert rows["fuse"]["calls_per_task"] == rows["judge"]["calls_per_task"]
    share = rows["vote_then_judge"]["judge_needed_share"]
    assert 0 < share < 1
    assert rows["vote_then_judge"]["calls_per_task"] <= panel + share + 1e-3  # rows are rounded
    assert rows["vote_then_judge"]["saved_vs_judge_usd_per_task"] > 0
    assert rows["self_consistency"]["calls_per_task"] == SAMPLES
    for row in rows.values():
        assert 0 < row["accuracy"] <= 1
