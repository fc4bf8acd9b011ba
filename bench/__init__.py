"""Benchmarks (not tests): ``swarmstream bench <name> [--quick] [--json]``.

Each module named in :data:`BENCHMARKS` defines
``run(*, quick: bool) -> dict`` (the numbers, JSON-serialisable) and
``render(result: dict) -> str`` (a table for the terminal). The CLI prints the
table (or, with ``--json``, one JSON object as the last line) and writes the
JSON to ``bench/results/<name>.json``.
"""

BENCHMARKS: dict[str, str] = {}
"""Benchmark name -> module path; each benchmark adds itself here."""
BENCHMARKS["consensus"] = "swarmstream.bench.consensus"
BENCHMARKS["routing"] = "swarmstream.bench.routing"
BENCHMARKS["concurrency"] = "swarmstream.bench.concurrency"
BENCHMARKS["pipeline"] = "swarmstream.bench.pipeline"
BENCHMARKS["replay"] = "swarmstream.bench.replay"
BENCHMARKS["crash"] = "swarmstream.bench.crash"
BENCHMARKS["soak"] = "swarmstream.bench.soak"
BENCHMARKS["codec"] = "swarmstream.bench.codec"
BENCHMARKS["restore"] = "swarmstream.bench.restore"
BENCHMARKS["console"] = "swarmstream.bench.console"
BENCHMARKS["gateway"] = "swarmstream.bench.gateway"
BENCHMARKS["broker"] = "swarmstream.bench.broker"
BENCHMARKS["transport"] = "swarmstream.bench.transport"
