"""Replay speed: ``swarmstream bench replay [--quick] [--json]``.

A synthetic recording of 100,000 model responses (quick: 20,000): 25,000 consensus
tasks (quick: 5,000), each answered by four simulated models of accuracy 0.9, 0.8,
0.7 and 0.6 with independent errors; 80% label tasks (four labels, a wrong answer is
one of the other three), 20% number tasks (a wrong answer is off by 1 or 10); each
task labelled with its right answer. No live results, so vote weights are the
estimate replay makes the way the live workers do (``offline.ReplaySet``).
Seeded (``SEED``): the same file every run.

The same run on the ``helm-mmlu`` fleet (``fleets``): four of its models (claude-3.5-sonnet,
gpt-4o, llama-3.1-70b, gpt-4o-mini, accuracies 0.87-0.76) answer the same tasks as the live
simulated fleet would, their mistakes correlated as published (``correlated.py``), each
response costed at the model's list price; so the replayed strategies' accuracies are what
they are on real models. The independent run's keys stay at the top level.

Timed (``time.perf_counter``, one run): reading the file (``read_recording``: JSON
parse and pydantic validation of every line), extracting the tasks and weights, and
replaying every strategy that applies (``offline.default_strategies``: default,
majority, weighted, the numeric ones on number tasks, early_stop). ``wall_s`` is the
sum, the number the issue's target (well under 10 s) is about; writing the file is
reported apart (``write_s``) and not counted. The same recording is also written as an
Avro container (``.avro``, what ``swarmstream record`` writes) and its read timed apart
(``read_avro_s``, ``avro_mb``): replace ``read_s`` by it for the all-Avro figure.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from swarmstream.agents.models.providers.base import cost_micros
from swarmstream.agents.models.simulated.behaviour import answer_text, estimate_tokens
from swarmstream.agents.models.simulated.taskset import Truth
from swarmstream.agents.replay import offline
from swarmstream.agents.replay.recording import RecordingWriter, read_recording
from swarmstream.bench.fleets import REALISTIC, BenchFleet, realistic_fleet

SEED = 20240611
MODELS: tuple[tuple[str, float, int], ...] = (
    # (model id, accuracy, cost in micro-dollars per answer): dearer is better, as in models.yaml
    ("sim-large", 0.9, 3_000),
    ("sim-medium", 0.8, 1_200),
    ("sim-small", 0.7, 400),
    ("sim-tiny", 0.6, 100),
)
REALISTIC_MODELS = ("claude-3-5-sonnet-20240620", "gpt-4o-2024-08-06", "llama-3.1-70b-instruct-turbo",
                    "gpt-4o-mini-2024-07-18")
"""Four of the preset's models, strongest to cheapest, as the independent run's four."""
LABELS = ("alpha", "beta", "gamma", "delta")
NUMBER_SHARE = 0.2


def generate(path: Path, *, tasks: int, seed: int = SEED, fleet: BenchFleet | None = None) -> int:
    """Write the synthetic recording; returns the number of responses written. With ``fleet``
    (helm-mmlu), its models answer (``REALISTIC_MODELS``), else the independent four."""
    rng = np.random.default_rng(seed)
    models = list(REALISTIC_MODELS) if fleet is not None else [m for m, _, _ in MODELS]
    accuracy = np.array([a for _, a, _ in MODELS])
    is_number = rng.random(tasks) < NUMBER_SHARE
    truth_label = rng.integers(len(LABELS), size=tasks)
    truth_number = rng.integers(-500, 500, size=tasks)
    right = rng.random((tasks, len(MODELS))) < accuracy
    wrong_label = (truth_label[:, None] + rng.integers(1, len(LABELS), size=(tasks, len(MODELS)))) % len(LABELS)
    wrong_number = truth_number[:, None] + rng.choice(np.array([-10, -1, 1, 10]), size=(tasks, len(MODELS)))
    latency = rng.integers(20, 2_000, size=(tasks, len(MODELS)))
    created0 = 1_700_000_000_000
    responses = 0
    with RecordingWriter(path) as writer:
        for i in range(tasks):
            task_id = f"bench-{i:06d}"
            created = created0 + i * 10
            kind = "number" if is_number[i] else "label"
            if kind == "number":
                answer = str(int(truth_number[i]))
                prompt = f"What is {int(truth_number[i]) - 7} + 7? Answer with a number."
                labels: list[str] = []
            else:
                answer = LABELS[truth_label[i]]
                prompt = f"Classify item {i}. Answer with one of: {', '.join(LABELS)}."
                labels = list(LABELS)
            writer.write_fields("task", {"task_id": task_id, "created_ms": created, "prompt": prompt,
                                         "answer_type": kind, "labels": labels, "models": models})
            realistic = _answer(fleet, seed, prompt, answer, kind) if fleet is not None else None
            for j, model in enumerate(models):
                if realistic is not None:
                    given, cost = realistic[model]
                elif right[i, j]:
                    given = answer
                elif kind == "number":
                    given = str(int(wrong_number[i, j]))
                else:
                    given = LABELS[wrong_label[i, j]]
                step = {"task_id": task_id, "model_id": model, "created_ms": created, "deadline_ms": created + 30_000,
                        "answer_type": kind, "expected_models": models, "category": "bench"}
                writer.write_fields("response", {
                    "step": step, "text": given, "answer": given,
                    "cost_micros": cost if realistic is not None else MODELS[j][2],
                    "latency_ms": int(latency[i, j]), "responded_ms": created + int(latency[i, j]),
                })
                responses += 1
            writer.write_label(task_id, answer)
    return responses


def _answer(fleet: BenchFleet, seed: int, prompt: str, answer: str, kind: str) -> dict[str, tuple[str, int]]:
    """The realistic models' answers to one task, and what each call costs at list price."""
    if kind == "number":
        value = int(answer)
        truth = Truth(answer, tuple(str(value + d) for d in (-10, -1, 1, 10)), "number")
    else:
        truth = Truth(answer, tuple(label for label in LABELS if label != answer), "label")
    input_tokens = estimate_tokens(len(prompt)) + 4  # one user message, as the fleet counts it
    out = {}
    for model, decision in fleet.answers(seed, prompt, truth).items():
        if model in REALISTIC_MODELS:
            output_tokens = estimate_tokens(len(answer_text(truth.answer_type, decision.answer)))
            out[model] = (decision.answer, cost_micros(fleet.spec(model), input_tokens, output_tokens))
    return out


def run(*, quick: bool) -> dict[str, Any]:
    """Both fleets: the independent run at the top level (its keys unchanged) and under ``fleets``."""
    independent = run_fleet(quick=quick, fleet=None)
    realistic = run_fleet(quick=quick, fleet=realistic_fleet())
    return {**independent, "fleets": {"independent": independent, REALISTIC: realistic}}


def run_fleet(*, quick: bool, fleet: BenchFleet | None) -> dict[str, Any]:
    tasks = 5_000 if quick else 25_000
    with tempfile.TemporaryDirectory(prefix="swarm-bench-replay-") as tmp:
        path = Path(tmp) / "recording.jsonl"
        started = time.perf_counter()
        responses = generate(path, tasks=tasks, fleet=fleet)
        write_s = time.perf_counter() - started
        file_bytes = path.stat().st_size

        started = time.perf_counter()
        recording = read_recording(path)
        read_s = time.perf_counter() - started

        # The same run as an Avro container (what `swarmstream record` writes): reported, not in wall_s.
        avro = Path(tmp) / "recording.avro"
        generate(avro, tasks=tasks, fleet=fleet)
        avro_bytes = avro.stat().st_size
        started = time.perf_counter()
        from_avro = read_recording(avro)
        read_avro_s = time.perf_counter() - started
        assert from_avro.response_count == recording.response_count

    started = time.perf_counter()
    replay_set = offline.ReplaySet.from_recording(recording)
    prepare_s = time.perf_counter() - started

    strategies: dict[str, Any] = {}
    replay_s = 0.0
    for name in offline.default_strategies(replay_set.tasks):
        started = time.perf_counter()
        report = replay_set.run(name)
        elapsed = time.perf_counter() - started
        replay_s += elapsed
        strategies[name] = {**report.to_dict(), "replay_s": round(elapsed, 3)}

    return {
        "responses": responses,
        "tasks": tasks,
        "fleet": REALISTIC if fleet is not None else "independent",
        "models": list(REALISTIC_MODELS) if fleet is not None else [m for m, _, _ in MODELS],
        "file_mb": round(file_bytes / 1e6, 1),
        "write_s": round(write_s, 3),
        "read_s": round(read_s, 3),
        "avro_mb": round(avro_bytes / 1e6, 1),
        "read_avro_s": round(read_avro_s, 3),
        "prepare_s": round(prepare_s, 3),
        "replay_s": round(replay_s, 3),
        "wall_s": round(read_s + prepare_s + replay_s, 3),
        "responses_per_s": round(responses / (read_s + prepare_s + replay_s)),
        "strategies": strategies,
    }


def render(result: dict[str, Any]) -> str:
    return "\n\n".join(_render_fleet(fleet) for fleet in result["fleets"].values())


def _render_fleet(result: dict[str, Any]) -> str:
    lines = [
        f"fleet {result['fleet']}: {', '.join(result['models'])}",
        (f"replay of {result['responses']:,} responses ({result['tasks']:,} tasks x {len(result['models'])} models, "
         f"{result['file_mb']} MB): {result['wall_s']} s "
         f"(read {result['read_s']} s, weights {result['prepare_s']} s, strategies {result['replay_s']} s; "
         f"the same as Avro: {result['avro_mb']} MB, read {result['read_avro_s']} s)"),
        f"  {'strategy':<16}{'tasks':>7}{'accuracy':>10}{'cost $':>10}{'calls/task':>12}{'ece':>8}{'time s':>8}",
    ]
    for name, s in result["strategies"].items():
        accuracy = "-" if s["accuracy"] is None else f"{s['accuracy']:.4f}"
        ece = "-" if s["ece"] is None else f"{s['ece']:.4f}"
        lines.append(f"  {name:<16}{s['tasks']:>7}{accuracy:>10}{s['cost_usd']:>10.2f}{s['calls_per_task']:>12.2f}"
                     f"{ece:>8}{s['replay_s']:>8.2f}")
    return "\n".join(lines)
