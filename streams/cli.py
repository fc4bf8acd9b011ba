"""The ``swarmstream`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from swarmstream.agents.models.catalog import CatalogError


def _settings():  # type: ignore[no-untyped-def]
    from swarmstream.streams.settings import Settings

    return Settings()


def cmd_demo(args: argparse.Namespace) -> int:
    from swarmstream.streams.demo import MODES, render, run_demo

    if args.mode not in MODES:
        print(f"swarmstream demo: unknown --mode {args.mode!r} (choose from {', '.join(MODES)})", file=sys.stderr)
        return 2
    summary = asyncio.run(run_demo(tasks=args.tasks, mode=args.mode, quiet=args.json, record=args.record))
    if args.json:
        print(json.dumps(summary))
    else:
        print(render(summary))
    return 0 if summary["results"] == summary["tasks"] else 1


def cmd_worker(args: argparse.Namespace) -> int:
    from swarmstream.streams.worker import run_worker

    settings = _settings()
    if not settings.broker:
        print("swarmstream worker: set SWARM_BROKER=kafka://host:port (run `swarmstream broker` for a local one)",
              file=sys.stderr)
        return 2
    run_worker(settings, settings.broker, loglevel=args.loglevel)
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from swarmstream.streams.broker import EmbeddedBroker

    with EmbeddedBroker(args.port) as broker:
        print(f"embedded broker listening: SWARM_BROKER={broker.url}", flush=True)
        try:
            assert broker._proc is not None
            broker._proc.wait()
        except KeyboardInterrupt:
            pass
    return 0


def cmd_sim_fleet(args: argparse.Namespace) -> int:
    from swarmstream.agents.models.catalog import load_catalog
    from swarmstream.agents.models.simulated.fleet import serve_forever

    catalog = load_catalog(_settings().models, sim_url="http://127.0.0.1:1/v1")
    profiles = {m.id: m.simulated for m in catalog.models.values() if m.simulated is not None}

    def ready(url: str) -> None:
        print(f"simulated fleet ({', '.join(profiles)}): SWARM_SIM_URL={url}", flush=True)

    try:
        asyncio.run(serve_forever(profiles, args.host, args.port, seed=args.seed, on_ready=ready))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from swarmstream.schemas.models import TaskRequest
    from swarmstream.streams.client import SwarmClient

    settings = _settings()
    if not settings.broker:
        print("swarmstream submit: set SWARM_BROKER=kafka://host:port", file=sys.stderr)
        return 2
    task = TaskRequest(
        prompt=args.prompt,
        answer_type=args.answer_type,
        labels=args.labels.split(",") if args.labels else [],
        models=args.models.split(",") if args.models else [],
        mode=args.mode,
        timeout_ms=args.timeout_ms,
    )

    async def go() -> int:
        async with SwarmClient(settings.broker, topics=settings.topics) as client:
            task_id = await client.submit(task)
            print(task_id, flush=True)
            if args.wait:
                result = await client.result(task_id, timeout_s=args.timeout_ms / 1000 + 10)
                print(result.model_dump_json())
        return 0

    return asyncio.run(go())


def cmd_results(args: argparse.Namespace) -> int:
    from swarmstream.streams.client import SwarmClient

    settings = _settings()
    if not settings.broker:
        print("swarmstream results: set SWARM_BROKER=kafka://host:port", file=sys.stderr)
        return 2

    async def go() -> int:
        async with SwarmClient(settings.broker, topics=settings.topics, from_beginning=True) as client:
            stream = client.results()
            while True:
                try:
                    result = await asyncio.wait_for(anext(stream), timeout=None if args.follow else 2.0)
                except TimeoutError:
                    return 0
                print(result.model_dump_json(), flush=True)

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from swarmstream.agents.replay.offline import ReplayError, render, replay_summary
    from swarmstream.agents.replay.recording import RecordingError, read_recording

    try:
        summary = replay_summary(read_recording(args.file))
    except (RecordingError, ReplayError, OSError) as exc:
        print(f"swarmstream replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary) if args.json else render(summary))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from swarmstream.streams.stats_view import collect, render

    settings = _settings()
    if not settings.broker:
        print("swarmstream stats: set SWARM_BROKER=kafka://host:port (and SWARM_APP_ID, SWARM_TOPIC_PREFIX)",
              file=sys.stderr)
        return 2
    view = asyncio.run(collect(settings))
    print(json.dumps(view) if args.json else render(view))
    return 0


def cmd_models_check(args: argparse.Namespace) -> int:
    from swarmstream.agents.models.check import main_check

    settings = _settings()
    return main_check(settings.models, settings.sim_url, args.json)


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib
    from pathlib import Path

    from swarmstream.bench import BENCHMARKS

    if args.name not in BENCHMARKS:
        print(f"swarmstream bench: unknown benchmark {args.name!r} (choose from {', '.join(sorted(BENCHMARKS))})",
              file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[args.name])
    result = module.run(quick=args.quick)
    out = Path(args.out or "bench/results") / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result))
    else:
        print(module.render(result))
        print(f"(written to {out})")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarmstream", description="Orchestrate many LLMs over Kafka.")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embedded broker + simulated fleet + a worker + a batch of tasks")
    demo.add_argument("--mode", default="consensus")
    demo.add_argument("--tasks", type=_positive, default=200)
    demo.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    demo.add_argument("--record", metavar="FILE", help="also record the run (tasks, answers, results, labels) for replay")
    demo.set_defaults(func=cmd_demo)

    worker = sub.add_parser("worker", help="run a worker (settings from SWARM_* variables)")
    worker.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(func=cmd_worker)

    broker = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu)")
    broker.add_argument("--port", type=_positive, default=9092)
    broker.set_defaults(func=cmd_broker)

    fleet = sub.add_parser("sim-fleet", help="serve the catalog's simulated models over HTTP")
    fleet.add_argument("--host", default="127.0.0.1")
    fleet.add_argument("--port", type=_positive, default=8000)
    fleet.add_argument("--seed", type=int, default=0)
    fleet.set_defaults(func=cmd_sim_fleet)

    submit = sub.add_parser("submit", help="publish one task")
    submit.add_argument("prompt")
    submit.add_argument("--answer-type", default="text", choices=["label", "number", "json", "text"])
    submit.add_argument("--labels", help="comma-separated allowed labels")
    submit.add_argument("--models", help="comma-separated model ids (default: the catalog's set)")
    submit.add_argument("--mode", default="consensus", choices=["consensus", "single"])
    submit.add_argument("--timeout-ms", type=_positive, default=30_000)
    submit.add_argument("--wait", action="store_true", help="wait for the result and print it")
    submit.set_defaults(func=cmd_submit)

    replay = sub.add_parser("replay", help="re-run every aggregation strategy on a recorded run")
    replay.add_argument("file", help="a recording (JSON Lines, .gz ok): swarmstream demo --record <file>")
    replay.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    replay.set_defaults(func=cmd_replay)

    stats = sub.add_parser("stats", help="model stats, reliability, chain metrics and breakers")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=cmd_stats)

    models = sub.add_parser("models", help="the model catalog")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    check = models_sub.add_parser("check", help="call every catalog model once and print a table")
    check.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    check.set_defaults(func=cmd_models_check)

    bench = sub.add_parser("bench", help="run a benchmark (numbers, not a test)")
    bench.add_argument("name")
    bench.add_argument("--quick", action="store_true", help="a smaller run for spot checks")
    bench.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    bench.add_argument("--out", help="folder for the JSON file (default bench/results)")
    bench.set_defaults(func=cmd_bench)

    results = sub.add_parser("results", help="print results as JSON lines")
    results.add_argument("--follow", action="store_true")
    results.set_defaults(func=cmd_results)
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as exc:
        print(f"swarmstream: invalid settings (SWARM_* environment):\n{exc}", file=sys.stderr)
        return 2
    except CatalogError as exc:
        print(f"swarmstream: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
