"""The ``swarmstream`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from swarmstream.agents.models.catalog import CatalogError
from swarmstream.agents.workflows.dsl import WorkflowError
from swarmstream.streams.cli import signals


def _settings():  # type: ignore[no-untyped-def]
    from swarmstream.streams.app.settings import Settings

    return Settings()


def _status(line: str) -> None:
    """A status line (ready, stopping) on standard error: standard output carries the command's data."""
    print(line, file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from swarmstream.streams.cli.demo import MODES, render, run_demo

    if args.mode not in MODES:
        print(f"swarmstream demo: unknown --mode {args.mode!r} (choose from {', '.join(MODES)})", file=sys.stderr)
        return 2
    if args.fleet is not None:
        from swarmstream.agents.models.simulated.presets import preset_path

        try:
            preset_path(args.fleet)
        except ValueError as exc:
            print(f"swarmstream demo: --fleet: {exc}", file=sys.stderr)
            return 2

    async def main(stop: signals.StopSignal) -> int:
        summary = await signals.until_stopped(
            run_demo(tasks=args.tasks, mode=args.mode, quiet=args.json, record=args.record, on_ready=_status,
                     fleet=args.fleet), stop)
        if summary is None:  # the broker, fleet and workers it started are stopped by now
            _status(f"swarmstream demo: stopped by {stop.name} before the run finished; no summary")
            return 0
        print(json.dumps(summary) if args.json else render(summary), flush=True)
        return 0 if summary["results"] == summary["tasks"] else 1

    return signals.run(main)


def cmd_worker(args: argparse.Namespace) -> int:
    from swarmstream.streams.app.worker import run_worker
    from swarmstream.streams.engine.broker import BrokerRefused

    settings = _settings()
    if not settings.broker:
        print("swarmstream worker: set SWARM_BROKER=kafka://host:port (run `swarmstream broker` for a local one)",
              file=sys.stderr)
        return 2
    # Until run_worker's loop takes SIGTERM/SIGINT over (it stops the engine, commits and leaves the
    # group), main()'s signals.exit_cleanly_until_loop covers them: nothing has started before that.
    if settings.log_format != "json":  # with JSON logs, stderr carries only JSON lines
        _status(f"swarmstream worker: starting on {settings.broker} (group {settings.app_id}, topics "
                f"{settings.topic_prefix}.*); SIGTERM or Ctrl-C stops it")
    try:
        run_worker(settings, settings.broker, loglevel=args.loglevel)
    except BrokerRefused as exc:
        print(f"swarmstream worker: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from swarmstream.streams.engine.broker import BrokerError, EmbeddedBroker

    async def main(stop: signals.StopSignal) -> int:
        broker = EmbeddedBroker(args.port)
        try:
            broker.start()  # blocks the loop briefly; a signal meanwhile is acted on right after
            if not stop.is_set():
                print(f"embedded broker listening: SWARM_BROKER={broker.url}", flush=True)
            code = await broker.watch(stop.event)
        except BrokerError as exc:
            print(f"swarmstream broker: {exc}", file=sys.stderr)
            return 1
        finally:
            broker.stop()
        if code is not None:
            print(f"swarmstream broker: Tansu exited by itself with code {code}", file=sys.stderr)
            return 1
        return 0

    return signals.run(main)


def cmd_sim_fleet(args: argparse.Namespace) -> int:
    from swarmstream.agents.models.catalog import load_catalog
    from swarmstream.agents.models.simulated.fleet import serve_forever
    catalog = load_catalog(_settings().models, sim_url="http://127.0.0.1:1/v1")
    profiles = {m.id: m.simulated for m in catalog.models.values() if m.simulated is not None}

    def ready(url: str) -> None:
        print(f"simulated fleet ({', '.join(profiles)}): SWARM_SIM_URL={url}", flush=True)

    async def main(stop: signals.StopSignal) -> int:
        try:
            await serve_forever(profiles, args.host, args.port, seed=args.seed, on_ready=ready, stop=stop.event)
        except OSError as exc:  # the port is taken, or the host is not ours
            print(f"swarmstream sim-fleet: cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
                  "(--port 0 picks a free port)", file=sys.stderr)
            return 1
        return 0

    return signals.run(main)


def cmd_submit(args: argparse.Namespace) -> int:
    from swarmstream.schemas.models import TaskRequest
    from swarmstream.streams.app.security import aiokafka_security
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
        async with SwarmClient(settings.broker, topics=settings.topics, security=aiokafka_security(settings)) as client:
            task_id = await client.submit(task)
            print(task_id, flush=True)
            if args.wait:
                result = await client.result(task_id, timeout_s=args.timeout_ms / 1000 + 10)
                print(result.model_dump_json())
        return 0

    return asyncio.run(go())


def cmd_results(args: argparse.Namespace) -> int:
    from swarmstream.streams.app.security import aiokafka_security
    from swarmstream.streams.client import SwarmClient

    settings = _settings()
    if not settings.broker:
        print("swarmstream results: set SWARM_BROKER=kafka://host:port", file=sys.stderr)
        return 2

    async def go() -> int:
        async with SwarmClient(settings.broker, topics=settings.topics, from_beginning=True,
                               security=aiokafka_security(settings)) as client:
            stream = client.results()
            _status(f"swarmstream results: reading {settings.topics.results} on {settings.broker} from the beginning"
                    + ("; SIGTERM or Ctrl-C stops it" if args.follow else ""))
            while True:
                try:
                    result = await asyncio.wait_for(anext(stream), timeout=None if args.follow else 2.0)
                except TimeoutError:
                    return 0
                print(result.model_dump_json(), flush=True)

    async def main(stop: signals.StopSignal) -> int:
        code = await signals.until_stopped(go(), stop)
        return 0 if code is None else code

    return signals.run(main)


def _record_range(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from swarmstream.streams.cli.recorder import RecordRange

    return RecordRange(start_offset=args.start_offset, end_offset=args.end_offset, since_ms=args.since_ms,
                       until_ms=args.until_ms)


def cmd_record(args: argparse.Namespace) -> int:
    from swarmstream.agents.replay.isolation import (
        IsolationError,
        check_group,
        replay_group,
    )
    from swarmstream.agents.replay.labels import LabelError, read_label_file
    from swarmstream.streams.cli.recorder import record_run

    settings = _settings()
    if not settings.broker:
        print("swarmstream record: set SWARM_BROKER=kafka://host:port (and SWARM_TOPIC_PREFIX of the run)",
              file=sys.stderr)
        return 2
    try:
        span = _record_range(args)
        group = check_group(args.group, settings.app_id) if args.group else replay_group(settings.app_id)
        labels = read_label_file(args.labels) if args.labels else None
        recorded = asyncio.run(record_run(settings.broker, settings.topics, args.file, labels=labels, span=span,
                                          idle_s=args.idle_s, max_s=args.max_s, group_id=group))
    except (ValueError, LabelError, IsolationError, OSError) as exc:
        print(f"swarmstream record: {exc}", file=sys.stderr)
        return 2
    out = {"path": str(recorded.path), "records": recorded.records, "labels": recorded.labels,
           "skipped": recorded.skipped, "total": recorded.total}
    print(json.dumps(out) if args.json else f"recorded {recorded.total} records to {recorded.path}: {recorded.records}"
          + (f" (skipped {recorded.skipped})" if recorded.skipped else ""))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from swarmstream.agents.replay.isolation import (
        IsolationError,
        check_group,
        replay_group,
    )
    from swarmstream.agents.replay.labels import LabelError, check_source
    from swarmstream.agents.replay.offline import ReplayError
    from swarmstream.agents.replay.plot import write_reliability_png
    from swarmstream.agents.replay.recording import RecordingError, read_recording
    from swarmstream.agents.replay.summary import evaluate, render
    from swarmstream.agents.selection.policies import SelectionError

    if (args.file is None) == (not args.from_topics):
        print("swarmstream replay: give a recording FILE or --from-topics (one of them)", file=sys.stderr)
        return 2
    settings = _settings() if args.from_topics or args.to_topic else None
    if settings is not None and not settings.broker:
        print("swarmstream replay: --from-topics and --to-topic need SWARM_BROKER=kafka://host:port "
              "(and SWARM_TOPIC_PREFIX of the run)", file=sys.stderr)
        return 2
    try:
        label_source = check_source(args.labels)
        if args.from_topics:
            from swarmstream.streams.cli.recorder import read_run

            assert settings is not None
            group = check_group(args.group, settings.app_id) if args.group else replay_group(settings.app_id)
            recording, _ = asyncio.run(read_run(settings.broker, settings.topics, span=_record_range(args),
                                                idle_s=args.idle_s, max_s=args.max_s, group_id=group))
        else:
            recording = read_recording(args.file)
        evaluation = evaluate(
            recording, label_source=label_source,
            strategies=args.strategies.split(",") if args.strategies else None,
            targets=args.targets.split(",") if args.targets else None,
            logging_policies=set(args.logged_by.split(",")) if args.logged_by else None,
        )
        if args.plot:
            evaluation.summary["plot"] = str(write_reliability_png(args.plot, evaluation.plot_panels()))
        if args.to_topic:
            from swarmstream.agents.models.catalog import load_catalog
            from swarmstream.streams.cli.recorder import publish_results

            assert settings is not None
            models = list(load_catalog(settings.models, sim_url="http://127.0.0.1:1/v1").models)
            sent = asyncio.run(publish_results(settings.broker, args.to_topic, evaluation.rescored(),
                                               topics=settings.topics, app_id=settings.app_id, model_ids=models))
            evaluation.summary["published"] = {"topic": args.to_topic, "results": sent}
    except (RecordingError, ReplayError, LabelError, IsolationError, SelectionError, ValueError, OSError) as exc:
        print(f"swarmstream replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(evaluation.summary) if args.json else render(evaluation.summary))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from swarmstream.streams.cli.stats_view import collect, render

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


def cmd_asyncapi(args: argparse.Namespace) -> int:
    from pathlib import Path

    from swarmstream.streams.cli.asyncapi import ContractError, build_document, render

    try:
        text = render(build_document(_settings(), server=args.server), "json" if args.json else "yaml")
    except ContractError as exc:
        print(f"swarmstream asyncapi: {exc}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


def cmd_top(args: argparse.Namespace) -> int:
    from swarmstream.streams.cli.live import run_top

    settings = _settings()
    if not settings.broker:
        print("swarmstream top: set SWARM_BROKER=kafka://host:port (and SWARM_TOPIC_PREFIX)", file=sys.stderr)
        return 2

    def ready() -> None:
        _status(f"swarmstream top: following {settings.topics.calls} on {settings.broker}; SIGTERM or Ctrl-C stops it")

    async def main(stop: signals.StopSignal) -> int:
        code = await signals.until_stopped(run_top(settings, once=args.once, window_s=args.window_s,
                                                   refresh_s=args.refresh_s, on_ready=ready), stop)
        return 0 if code is None else code

    return signals.run(main)


def cmd_tail(args: argparse.Namespace) -> int:
    from swarmstream.streams.cli.live import run_tail

    settings = _settings()
    if not settings.broker:
        print("swarmstream tail: set SWARM_BROKER=kafka://host:port (and SWARM_TOPIC_PREFIX)", file=sys.stderr)
        return 2

    def ready() -> None:
        _status(f"swarmstream tail: following {settings.topics.results} on {settings.broker}; "
                "SIGTERM or Ctrl-C stops it")

    async def main(stop: signals.StopSignal) -> int:
        code = await signals.until_stopped(run_tail(settings, statuses=args.status, from_beginning=args.from_beginning,
                                                    idle_exit_s=args.idle_exit_s, as_json=args.json, on_ready=ready),
                                           stop)
        return 0 if code is None else code

    return signals.run(main)


def cmd_gateway(args: argparse.Namespace) -> int:
    """The OpenAI- and Anthropic-compatible gateway (``streams/gateway/``, settings ``SWARM_GATEWAY_*``)."""
    from swarmstream.streams.gateway.app import main as gateway_main

    gateway_main()
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    # the one other door the CLI starts (pyproject.toml's import contracts allow this import)
    from swarmstream.streams.console.app import load_settings, run_console

    loaded = load_settings()
    if isinstance(loaded, str):
        print(f"swarmstream console: {loaded}", file=sys.stderr)
        return 2

    def ready(url: str) -> None:
        _status(f"swarmstream console on {url} (log in with a token of SWARM_CONSOLE_USERS); SIGTERM or Ctrl-C stops it")

    async def main(stop: signals.StopSignal) -> int:
        code = await signals.until_stopped(run_console(*loaded, on_ready=ready), stop)
        return 0 if code is None else code

    return signals.run(main)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarmstream", description="Orchestrate many LLMs over Kafka.")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embedded broker + simulated fleet + a worker + a batch of tasks")
    demo.add_argument("--mode", default="consensus")
    demo.add_argument("--tasks", type=_positive, default=200)
    demo.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    demo.add_argument("--record", metavar="FILE", help="also record the run (tasks, answers, results, labels) for replay")
    demo.add_argument("--fleet", metavar="NAME|FILE", help="simulated fleet: a preset (independent, helm-mmlu: "
                      "real models' correlated errors) or a catalog file; default: SWARM_MODELS's catalog")
    demo.set_defaults(func=cmd_demo)

    worker = sub.add_parser("worker", help="run a worker (settings from SWARM_* variables)")
    worker.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(func=cmd_worker)

    broker = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu)")
    broker.add_argument("--port", type=_port, default=9092, help="0: any free port (printed)")
    broker.set_defaults(func=cmd_broker)

    fleet = sub.add_parser("sim-fleet", help="serve the catalog's simulated models over HTTP")
    fleet.add_argument("--host", default="127.0.0.1")
    fleet.add_argument("--port", type=_port, default=8000, help="0: any free port (printed)")
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

    record = sub.add_parser("record", help="record a run's topics (tasks, answers, results, selections, feedback)")
    record.add_argument("file", help="the recording: .avro (Avro container) or JSON Lines (.jsonl, .jsonl.gz)")
    record.add_argument("--labels", metavar="FILE", help="right answers to store with it (.json, .jsonl or .csv)")
    record.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    _range_arguments(record)
    record.set_defaults(func=cmd_record)

    replay = sub.add_parser("replay", help="re-run every aggregation strategy and selection policy on a recorded run")
    replay.add_argument("file", nargs="?", help="a recording (.avro, or JSON Lines, .gz ok): swarmstream record <file>")
    replay.add_argument("--from-topics", action="store_true",
                        help="read the run from its topics (SWARM_BROKER, SWARM_TOPIC_PREFIX) instead of a file")
    replay.add_argument("--labels", default="auto",
                        help="right answers: auto, recording, tasks (metadata 'label'), feedback, or a .json/.jsonl/.csv file")
    replay.add_argument("--strategies", help="comma-separated aggregation strategies (default: all that apply)")
    replay.add_argument("--targets", help="comma-separated selection targets: policy names, always:<model> (default: all)")
    replay.add_argument("--logged-by", help="only selections logged by these policies (comma-separated), e.g. random")
    replay.add_argument("--plot", metavar="FILE", help="write a reliability diagram (PNG)")
    replay.add_argument("--to-topic", metavar="NAME",
                        help="publish the re-scored results to this topic (never a production topic)")
    replay.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    _range_arguments(replay)
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

    gateway = sub.add_parser("gateway", help="OpenAI- and Anthropic-compatible HTTP: any app changes its base URL "
                             "(SWARM_BROKER, SWARM_GATEWAY_*)")
    gateway.set_defaults(func=cmd_gateway)

    asyncapi = sub.add_parser("asyncapi", help="write the AsyncAPI 3.0 document of every topic (key, headers, Avro schema)")
    asyncapi.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    asyncapi.add_argument("--json", action="store_true", help="JSON instead of YAML")
    asyncapi.add_argument("--server", metavar="HOST:PORT", help="the broker to name in `servers` (default: SWARM_BROKER)")
    asyncapi.set_defaults(func=cmd_asyncapi)

    top = sub.add_parser("top", help="live table per model from the call log: req/s, p95, errors, breaker, cost/min")
    top.add_argument("--once", action="store_true", help="print one snapshot and exit")
    top.add_argument("--window-s", type=_positive, default=60, help="the sliding window rates are taken over")
    top.add_argument("--refresh-s", type=float, default=1.0)
    top.set_defaults(func=cmd_top)

    tail = sub.add_parser("tail", help="results as they arrive")
    tail.add_argument("--status", action="append", help="only these statuses (repeat, or comma-separated)")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest result, not the newest")
    tail.add_argument("--idle-exit-s", type=float, default=None, help="exit after this long without a result")
    tail.add_argument("--json", action="store_true", help="one JSON object per result")
    tail.set_defaults(func=cmd_tail)

    console = sub.add_parser("console", help="the web console: review queue, approvals, fleet, task trail, replay "
                             "(settings SWARM_CONSOLE_*)")
    console.set_defaults(func=cmd_console)

    results = sub.add_parser("results", help="print results as JSON lines")
    results.add_argument("--follow", action="store_true")
    results.set_defaults(func=cmd_results)
    return p


def _range_arguments(p: argparse.ArgumentParser) -> None:
    """Which records of the topics to read (record, replay --from-topics)."""
    p.add_argument("--start-offset", type=int, help="first offset read in every partition (default: the beginning)")
    p.add_argument("--end-offset", type=int, help="stop every partition before this offset")
    p.add_argument("--since-ms", type=int, help="only records with a timestamp at or after this (ms since epoch)")
    p.add_argument("--until-ms", type=int, help="only records with a timestamp before this (ms since epoch)")
    p.add_argument("--idle-s", type=float, default=2.0, help="stop after this long without a record (default 2)")
    p.add_argument("--max-s", type=float, help="stop after this long in all")
    p.add_argument("--group", help="the reader's consumer group (default: a fresh <app_id>.replay.<random>)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 0..65535 (0: any free port), got {value}")
    return value


LONG_RUNNING = frozenset({"broker", "sim-fleet", "worker", "demo", "top", "tail", "results"})
"""Commands that run until stopped (or for long): SIGTERM and SIGINT stop them cleanly, with
status 0 (streams/cli/signals.py says why)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    replaced = signals.exit_cleanly_until_loop() if args.command in LONG_RUNNING else {}
    try:
        return int(args.func(args))
    except ValidationError as exc:
        print(f"swarmstream: invalid settings (SWARM_* environment):\n{exc}", file=sys.stderr)
        return 2
    except CatalogError as exc:
        print(f"swarmstream: {exc}", file=sys.stderr)
        return 2
    except WorkflowError as exc:
        print(f"swarmstream: {exc}", file=sys.stderr)
        return 2
    finally:
        signals.restore(replaced)


