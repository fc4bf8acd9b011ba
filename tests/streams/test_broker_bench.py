"""The pure parts of ``bench broker`` (bench/broker.py): its percentiles, its steps, and a table
that still renders when a step stalled or the broker is external (nulls, no CPU)."""

from __future__ import annotations

import pytest
from swarmstream.bench.broker import history_steps, percentile_ms, render


@pytest.mark.parametrize(("samples_s", "fraction", "expected_ms"), [
    ([0.005], 0.5, 5.0),                                 # one sample is every percentile
    ([0.003, 0.001, 0.002], 0.5, 2.0),                   # unsorted input; ceil(1.5) = 2nd
    ([i / 1000 for i in range(1, 101)], 0.5, 50.0),      # of 100: the 50th, no interpolation
    ([i / 1000 for i in range(1, 101)], 0.99, 99.0),     # the 99th, not the maximum
    ([i / 1000 for i in range(1, 101)], 1.0, 100.0),
    ([i / 1000 for i in range(1, 11)], 0.99, 10.0),      # of 10, p99 is the slowest
    ([0.00012345], 0.5, 0.1),                            # ms rounded to 0.1
])
def test_percentile_is_nearest_rank(samples_s: list[float], fraction: float, expected_ms: float) -> None:
    assert percentile_ms(samples_s, fraction) == expected_ms


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile_ms([], 0.5)


def test_steps_start_at_zero_and_reach_the_maximum() -> None:
    assert history_steps(quick=True) == [0, 3_000, 6_000, 9_000, 12_000]
    full = history_steps(quick=False)
    assert full[0] == 0 and full[-1] == 40_000 and len(full) == 9


def test_render_shows_a_stalled_step_and_an_external_broker() -> None:
    step = {"batches": 0, "rt_p50_ms": 3.0, "rt_p99_ms": 7.0, "probes_fetched": 100, "stalled": False,
            "broker_cpu_ms_per_probe": None, "broker_cpu_ms_per_fetch": None, "produce_ms_per_batch": None}
    stalled = step | {"batches": 20_000, "rt_p50_ms": None, "rt_p99_ms": None, "probes_fetched": 0,
                      "stalled": True, "produce_ms_per_batch": 0.3}
    result = {"broker": "external (kafka://k:9092)", "probes_per_step": 100, "fetch_max_wait_ms": 10,
              "listing_fetch_wait_ms": 200, "load_avg_1m_at_start": 0.5, "cpus": 2, "steps": [step, stalled],
              "fresh_topic_rt_p50_ms": 3.0, "fresh_topic_rt_p99_ms": 7.0, "wall_s": 1.0,
              "large_batches": {"records": 20_000, "batches_approx": 25, "rt_p50_ms": 3.0, "rt_p99_ms": 7.0}}
    rows = render(result).splitlines()
    stalled_row = next(row for row in rows if row.split() and row.split()[0] == "20000")
    assert stalled_row.split()[:4] == ["20000", "-", "-", "0!"]
