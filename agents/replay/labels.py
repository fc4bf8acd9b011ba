"""Where a replay's right answers come from: the recording, the tasks, a file, or feedback.

Replay scores answers against labels. A run's labels can come from:

* ``recording``: ``label`` records written with the run (``demo --record``,
  ``record --labels FILE``);
* ``tasks``: the task itself, ``TaskRequest.metadata["label"]`` (a caller that
  knows the answer, an evaluation set submitted as tasks);
* a **file**: ``.json`` (one object, task id -> answer), ``.jsonl`` (one
  ``{"task_id": ..., "answer": ...}`` per line) or ``.csv`` (``task_id,answer``,
  an optional header row);
* ``feedback``: ``swarm.feedback`` judgements of the live result (0 wrong .. 1
  right). Feedback says whether the *live* answer was right, not what is: a
  score >= 0.5 makes the live answer the label; a lower one records the live
  answer as wrong (``Recording.wrong_answers``), and a label task with exactly
  two allowed labels then gets the other one. A replayed answer that differs
  from a wrong live answer with no known right one is unscored (not counted in
  accuracy), and the summary says how many such tasks there are.

``auto`` (the default) uses every source that has something, in the order
recording, tasks, feedback: a label already known is never replaced.
Labels are compared with replayed answers after ``normalise_answer`` (NFC,
outer whitespace), as the live join compares votes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

import orjson
from swarmstream.agents.consensus.votes import normalise_answer
from swarmstream.agents.replay.recording import Recording

LABEL_METADATA_KEY = "label"
RIGHT_SCORE = 0.5
"""Feedback at or above this judges the live answer right (the scale is 0 wrong .. 1 right)."""
SOURCES = ("auto", "recording", "tasks", "feedback")


class LabelError(ValueError):
    """A labels file or source that cannot be used: the message names the file and line."""


def from_tasks(recording: Recording) -> dict[str, str]:
    """``metadata["label"]`` of every recorded task that has one."""
    return {
        task_id: normalise_answer(task.metadata[LABEL_METADATA_KEY])
        for task_id, task in recording.tasks.items()
        if task.metadata.get(LABEL_METADATA_KEY, "").strip()
    }


def from_feedback(recording: Recording) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(labels, wrong answers) from the latest feedback on each task's live result."""
    labels: dict[str, str] = {}
    wrong: dict[str, set[str]] = {}
    for task_id, judgements in recording.feedback.items():
        result = recording.results.get(task_id)
        if result is None or result.answer is None or not judgements:
            continue
        latest = max(judgements, key=lambda f: f.created_ms)  # created_ms: the result's; ties keep the last
        latest = [f for f in judgements if f.created_ms == latest.created_ms][-1]
        answer = normalise_answer(result.answer)
        if latest.score >= RIGHT_SCORE:
            labels[task_id] = answer
            continue
        wrong.setdefault(task_id, set()).add(answer)
        task = recording.tasks.get(task_id)
        if task is not None and task.answer_type == "label" and len(task.labels) == 2:
            others = [normalise_answer(lab) for lab in task.labels if normalise_answer(lab) != answer]
            if len(others) == 1:
                labels[task_id] = others[0]
    return labels, wrong


def read_label_file(path: str | Path) -> dict[str, str]:
    """Task id -> answer from a ``.json``, ``.jsonl`` or ``.csv`` file (module docstring)."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise LabelError(f"{source}: no such labels file") from None
    suffix = source.suffix.lower()
    out: dict[str, str] = {}
    if suffix == ".json":
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise LabelError(f"{source}: not JSON ({exc}); expected one object, task id -> answer") from None
        if not isinstance(value, dict):
            raise LabelError(f"{source}: expected one JSON object (task id -> answer), got {type(value).__name__}")
        for task_id, answer in value.items():
            if not isinstance(answer, str):
                raise LabelError(f"{source}: {task_id}: the answer must be a string, got {answer!r:.80}")
            out[task_id] = normalise_answer(answer)
        return out
    if suffix == ".jsonl":
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise LabelError(f"{source}:{lineno}: not JSON ({exc})") from None
            if not isinstance(value, dict) or not isinstance(value.get("task_id"), str) \
                    or not isinstance(value.get("answer"), str):
                raise LabelError(f"{source}:{lineno}: expected {{\"task_id\": str, \"answer\": str}}, "
                                 f"got {line[:120]!r}")
            out[value["task_id"]] = normalise_answer(value["answer"])
        return out
    if suffix == ".csv":
        rows = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
        for lineno, row in enumerate(rows, start=1):
            if not row or (lineno == 1 and [c.strip().lower() for c in row[:2]] == ["task_id", "answer"]):
                continue
            if len(row) != 2 or not row[0].strip():
                raise LabelError(f"{source}:{lineno}: expected two columns task_id,answer, got {len(row)}: {row!r:.120}")
            out[row[0].strip()] = normalise_answer(row[1])
        return out
    raise LabelError(f"{source}: unknown labels file type {suffix or '(none)'!r}: use .json, .jsonl or .csv")


def apply_labels(recording: Recording, source: str | Path = "auto") -> dict[str, int]:
    """Fill ``recording.labels`` (and ``wrong_answers``) from ``source``: one of
    :data:`SOURCES` or a labels file path. Returns how many labels each source gave.

    ``recording`` (or ``auto``) keeps the recorded labels; any other named source
    replaces them, so ``--labels feedback`` really scores against feedback alone.
    """
    counts: dict[str, int] = {}
    recorded = dict(recording.labels)
    name = str(source)
    if name not in SOURCES:
        recording.labels = read_label_file(source)
        recording.wrong_answers = {}
        counts["file"] = len(recording.labels)
        return counts
    if name in ("auto", "recording"):
        counts["recording"] = len(recorded)
    else:
        recording.labels = {}
    if name in ("auto", "tasks"):
        counts["tasks"] = _fill(recording.labels, from_tasks(recording))
    if name in ("auto", "feedback"):
        labels, wrong = from_feedback(recording)
        counts["feedback"] = _fill(recording.labels, labels)
        recording.wrong_answers = wrong
    return counts


def _fill(labels: dict[str, str], more: Mapping[str, str]) -> int:
    added = 0
    for task_id, answer in more.items():
        if task_id not in labels:
            labels[task_id] = answer
            added += 1
    return added


def check_source(source: str) -> str:
    """``source`` if it names a source or an existing labels file, else a LabelError saying what to pass."""
    if source in SOURCES or Path(source).is_file():
        return source
    raise LabelError(f"--labels {source!r}: neither a source ({', '.join(SOURCES)}) nor an existing file "
                         "(.json, .jsonl or .csv)")
