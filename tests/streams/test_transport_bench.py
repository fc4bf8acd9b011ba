"""The pure parts of ``bench transport`` (bench/transport.py): a hop's figures per record, and a
table that still renders when a hop came up short or confluent-kafka is missing."""

from __future__ import annotations

from swarmstream.bench.transport import Hop, render


def test_a_hop_reports_cpu_per_record_and_nearest_rank_latency() -> None:
    hop = Hop(records=100, wall_s=2.0, cpu_s=0.01, loop_cpu_s=0.004,
              latencies_s=[i / 1000 for i in range(100, 0, -1)])
    assert hop.row() == {"records": 100, "wall_s": 2.0, "records_per_s": 50, "cpu_us_per_record": 100.0,
                         "loop_cpu_us_per_record": 40.0, "lat_p50_ms": 50.0, "lat_p99_ms": 99.0}


def test_a_hop_that_read_nothing_has_no_figures() -> None:
    assert Hop().row() == {"records": 0, "wall_s": 0.0, "records_per_s": None, "cpu_us_per_record": None,
                           "loop_cpu_us_per_record": None, "lat_p50_ms": None, "lat_p99_ms": None}


def test_render_marks_a_short_hop_and_a_missing_client() -> None:
    short = {"client": "aiokafka", "rate_per_s": 6000, "expected": 48_000, **Hop(records=47_000, wall_s=8.0).row()}
    table = render({"broker": "external (kafka://k:9092)", "partitions": 8, "load_avg_1m_at_start": 0.5, "cpus": 2,
                    "rows": [short], "confluent_missing": "confluent-kafka is not installed", "wall_s": 9.0})
    assert "(short: 48000 sent)" in table
    assert "confluent-kafka is not installed" in table
    assert "aiokafka      6000    47000    5875" in table
