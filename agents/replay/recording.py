"""The recording file: one run's events as JSON Lines, read back for offline replay.

One record per line, a JSON object whose ``kind`` says what it is and whose
other keys are the record's own fields (``model_dump(mode="json")``, so the
same names as the Avro contract in ``schemas/*.avsc``)::

    {"kind": "task", "task_id": "t1", "prompt": "...", "answer_type": "label", ...}
    {"kind": "response", "step": {"task_id": "t1", "model_id": "fast-a", ...}, "answer": "animal", ...}
    {"kind": "failure", "step": {...}, "failure_class": "timeout", ...}
    {"kind": "result", "task_id": "t1", "status": "ok", "answer": "animal", "votes": [...], ...}
    {"kind": "selection", "task_id": "t2", "policy": "random", "candidates": [...], ...}
    {"kind": "feedback", "task_id": "t1", "created_ms": 1700000000000, "score": 1.0, "source": "user"}
    {"kind": "label", "task_id": "t1", "answer": "animal"}

| kind        | record                 | from topic         |
| ----------- | ---------------------- | ------------------ |
| ``task``      | ``TaskRequest``        | ``swarm.tasks``      |
| ``response``  | ``ModelResponse``      | ``swarm.responses``  |
| ``failure``   | ``Failure``            | ``swarm.failures``   |
| ``result``    | ``TaskResult``         | ``swarm.results``    |
| ``selection`` | ``SelectionEvent``     | ``swarm.selections`` |
| ``feedback``  | ``Feedback``           | ``swarm.feedback``   |
| ``label``     | the right answer       | the caller (a labelled task set, a review) |

**Two formats, one content, chosen by the path's suffix.** ``.avro``: an Avro
object container file (``container.py``: one file, every kind, the schema in its
header, deflate blocks), the format of ``swarmstream record``. Anything else:
JSON Lines, read by people and by ``jq``/``grep`` as often as by replay; it
appends line by line and a truncated file (a recorder killed mid-run) loses one
line, not the file; a path ending in ``.gz`` is gzip-compressed (~10x smaller).
Replay reads either.

Reading is strict about what it knows and lenient about what it does not: a
line of an unknown ``kind`` (a newer recorder's) is skipped and counted in
``Recording.skipped``; a line that is not a JSON object, lacks ``kind``, or
whose fields do not validate raises :class:`RecordingError` naming the file
and line. Blank lines are ignored.

The at-least-once pipeline may deliver a record twice; the recording keeps what
the topics held, and readers decide: ``Recording.results`` keeps each task's
first result (as ``SwarmClient`` does) and counts the rest in
``duplicate_results``; responses and failures are kept in file order, and
replay applies the live join's first-outcome-per-model rule.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import orjson
from pydantic import ValidationError
from swarmstream.agents.consensus.slots import Slot
from swarmstream.agents.replay import container
from swarmstream.schemas.models import (
    Failure,
    Feedback,
    ModelResponse,
    Record,
    SelectionEvent,
    TaskRequest,
    TaskResult,
)

KINDS: dict[str, type[Record]] = {
    "task": TaskRequest,
    "response": ModelResponse,
    "failure": Failure,
    "result": TaskResult,
    "selection": SelectionEvent,
    "feedback": Feedback,
}
"""Record kinds and the model each line of that kind validates as (labels aside)."""

KIND_OF: dict[type[Record], str] = {model: kind for kind, model in KINDS.items()}

LABEL = "label"

AVRO_KINDS: tuple[str, ...] = (*(model.avro_name for model in KINDS.values()), container.LABEL_NAME)
"""The union branches of an Avro recording, in this order (the order is part of its schema)."""
KIND_OF_AVRO: dict[str, str] = {model.avro_name: kind for kind, model in KINDS.items()}


class RecordingError(ValueError):
    """A recording that cannot be read: the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Label:
    """The right answer of one task, for scoring a replay."""

    task_id: str
    answer: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """One model call's outcome, a ModelResponse or a Failure, as replay reads it.

    A recording keeps these rather than the pydantic records: a response is
    validated as a ``ModelResponse`` when read, then only what replay and
    evaluation use is kept (no reply text, no token counts). Holding 100,000
    pydantic responses costs ~2.5 KB and ~12 us of allocation each (most of the
    time of reading a large recording); this costs a fifth of that.
    """

    task_id: str
    model_id: str
    ok: bool  # True: a response; False: a failure
    answer: str | None  # the normalised answer of a response
    confidence: float | None
    latency_ms: int
    cost_micros: int
    at_ms: int  # responded_ms or failed_ms (0: not stamped)
    failure_class: str | None
    final: bool  # a failure after which the model is not retried (always True for a response)
    attempt: int
    mode: str
    answer_type: str
    strategy: str | None
    category: str | None
    created_ms: int
    expected_models: tuple[str, ...]

    @classmethod
    def of(cls, record: ModelResponse | Failure) -> Outcome:
        """``model_id`` is the step's slot (``consensus/slots.py``): a model's sample k is
        ``<model>#<k>``, a judge's call ``<model>#judge``, as the live state keys them."""
        step = record.step
        expected = tuple(step.expected_models)
        model = Slot(step.model_id, step.sample, step.role).key
        if isinstance(record, ModelResponse):
            return cls(step.task_id, model, True, record.answer, record.confidence, record.latency_ms,
                       record.cost_micros, record.responded_ms, None, True, step.attempt, step.mode,
                       step.answer_type, step.strategy, step.category, step.created_ms, expected)
        return cls(step.task_id, model, False, None, None, record.latency_ms, 0, record.failed_ms,
                   record.failure_class, record.final, step.attempt, step.mode, step.answer_type, step.strategy,
                   step.category, step.created_ms, expected)

    @classmethod
    def of_fields(cls, fields: Mapping[str, Any], *, ok: bool) -> Outcome:
        """From an Avro-decoded ModelResponse (``ok``) or Failure: the container's schema
        already typed every field, so the pydantic pass (~2/3 of reading a large Avro
        recording) is skipped; the values are the ones :meth:`of` would keep."""
        step = fields["step"]
        expected = tuple(step["expected_models"])
        model = Slot(step["model_id"], step.get("sample", 0), step.get("role", "candidate")).key
        if ok:
            return cls(step["task_id"], model, True, fields["answer"], fields["confidence"],
                       fields["latency_ms"], fields["cost_micros"], fields["responded_ms"], None, True,
                       step["attempt"], step["mode"], step["answer_type"], step["strategy"], step["category"],
                       step["created_ms"], expected)
        return cls(step["task_id"], model, False, None, None, fields["latency_ms"], 0, fields["failed_ms"],
                   fields["failure_class"], fields["final"], step["attempt"], step["mode"], step["answer_type"],
                   step["strategy"], step["category"], step["created_ms"], expected)


@dataclass
class Recording:
    """Everything a recording holds, indexed by task.

    ``responses`` and ``failures`` keep every outcome of a task in file order, as
    :class:`Outcome` (duplicates included: replay dedupes as the live join does);
    ``results`` keeps each task's first result, ``duplicate_results`` counts the
    repeats; ``selections`` are in file order (counterfactual evaluation walks them
    in time order); ``feedback`` keeps every judgement per task in file order;
    ``labels`` are right answers and ``wrong_answers`` answers known to be wrong
    (negative feedback: ``labels.py``); ``skipped`` counts records of unknown kinds.
    """

    tasks: dict[str, TaskRequest] = field(default_factory=dict)
    responses: dict[str, list[Outcome]] = field(default_factory=dict)
    failures: dict[str, list[Outcome]] = field(default_factory=dict)
    results: dict[str, TaskResult] = field(default_factory=dict)
    selections: list[SelectionEvent] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    feedback: dict[str, list[Feedback]] = field(default_factory=dict)
    wrong_answers: dict[str, set[str]] = field(default_factory=dict)
    duplicate_results: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def task_ids(self) -> list[str]:
        """Every task the recording mentions (task, outcome or result), first seen first."""
        ids = dict.fromkeys(self.tasks)
        ids.update(dict.fromkeys(self.responses))
        ids.update(dict.fromkeys(self.failures))
        ids.update(dict.fromkeys(self.results))
        return list(ids)

    @property
    def response_count(self) -> int:
        return sum(len(r) for r in self.responses.values())

    def add(self, record: Record | Label | Outcome) -> None:
        """File one record, as :func:`read_recording` does for each line."""
        if isinstance(record, (ModelResponse, Failure)):
            record = Outcome.of(record)
        if isinstance(record, Outcome):
            (self.responses if record.ok else self.failures).setdefault(record.task_id, []).append(record)
        elif isinstance(record, TaskRequest):
            self.tasks.setdefault(record.task_id, record)
        elif isinstance(record, TaskResult):
            if record.task_id in self.results:
                self.duplicate_results += 1
            else:
                self.results[record.task_id] = record
        elif isinstance(record, SelectionEvent):
            self.selections.append(record)
        elif isinstance(record, Feedback):
            self.feedback.setdefault(record.task_id, []).append(record)
        elif isinstance(record, Label):
            self.labels[record.task_id] = record.answer
        else:
            raise TypeError(f"a recording holds no {type(record).__name__} records (kinds: {', '.join(KINDS)}, label)")


def _open(path: str | Path, mode: str) -> IO[bytes]:
    if str(path).endswith(".gz"):
        # compresslevel 6: ~3x faster to write than the default 9 for ~2% more bytes.
        return gzip.open(path, mode + "b", compresslevel=6)  # type: ignore[return-value]
    return open(path, mode + "b")  # closed by the caller's context manager


def record_line(record: Record | Label) -> bytes:
    """One line of the file (with its newline) for ``record``."""
    if isinstance(record, Label):
        return orjson.dumps({"kind": LABEL, "task_id": record.task_id, "answer": record.answer}) + b"\n"
    kind = KIND_OF.get(type(record))
    if kind is None:
        raise TypeError(f"a recording holds no {type(record).__name__} records (kinds: {', '.join(KINDS)}, label)")
    return orjson.dumps({"kind": kind, **record.model_dump(mode="json")}) + b"\n"


class RecordingWriter:
    """Appends records to a recording (``with RecordingWriter(path) as w: w.write(r)``);
    the path's suffix picks the format (module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self.avro = container.is_container(self.path)
        self._file: IO[bytes] | None = None
        self._container: container.ContainerWriter | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _open(self.path, "w")
        if self.avro:
            self._container = container.ContainerWriter(self._file, AVRO_KINDS)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, record: Record | Label) -> None:
        if self._container is not None:
            if isinstance(record, Label):
                self._container.write(container.LABEL_NAME, {"task_id": record.task_id, "answer": record.answer})
            else:
                if type(record) not in KIND_OF:
                    raise TypeError(
                        f"a recording holds no {type(record).__name__} records (kinds: {', '.join(KINDS)}, label)")
                self._container.write(record.avro_name, record.model_dump())
            self.count += 1
            return
        self._write(record_line(record))

    def write_label(self, task_id: str, answer: str) -> None:
        self.write(Label(task_id, answer))

    def write_fields(self, kind: str, fields: Mapping[str, Any]) -> None:
        """A record from plain fields, without building it first (bulk generators). JSON
        Lines validates them when the file is read; Avro needs every field, so the
        record is built (and validated) here."""
        if kind not in KINDS and kind != LABEL:
            raise ValueError(f"unknown record kind {kind!r} (kinds: {', '.join(KINDS)}, label)")
        if self._container is not None:
            if kind == LABEL:
                self.write(Label(str(fields["task_id"]), str(fields["answer"])))
            else:
                self.write(KINDS[kind].model_validate(dict(fields)))
            return
        self._write(orjson.dumps({"kind": kind, **fields}) + b"\n")

    def _write(self, line: bytes) -> None:
        if self._file is None:
            raise RuntimeError("RecordingWriter is not open: use it as a context manager")
        self._file.write(line)
        self.count += 1


def write_recording(
    path: str | Path, records: Iterable[Record | Label], *, labels: Mapping[str, str] | None = None
) -> int:
    """Write ``records`` (then ``labels``: task id -> right answer) to ``path``; returns the lines written."""
    with RecordingWriter(path) as writer:
        for record in records:
            writer.write(record)
        for task_id, answer in (labels or {}).items():
            writer.write_label(task_id, answer)
    return writer.count


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:5]
    )


_KIND_PREFIX = b'{"kind":"'
_LINE_MODELS: dict[bytes, tuple[str, type[Record]]] = {kind.encode(): (kind, model) for kind, model in KINDS.items()}


def _parse_fast(line: bytes, where: Callable[[], str]) -> Record | None:
    """The common line, as this module writes it (``kind`` first): pydantic validates the
    rest of the JSON text directly, ~40% faster than parsing to a dict first. None when the
    line is not of that shape (the general path then reads it)."""
    end = line.find(b'"', len(_KIND_PREFIX))
    entry = _LINE_MODELS.get(line[len(_KIND_PREFIX) : end])
    if entry is None or line[end + 1 : end + 2] != b",":
        return None
    kind, model = entry
    try:
        return model.model_validate_json(b"{" + line[end + 2 :])
    except ValidationError as exc:
        raise RecordingError(f"{where()}: invalid {kind} ({model.__name__}): {_problems(exc)}") from None


def parse_line(line: bytes, *, where: str | Callable[[], str] = "<line>") -> Record | Label | str | None:
    """One line -> its record, a :class:`Label`, the kind's name when the kind is unknown,
    or None for a blank line. Raises :class:`RecordingError` prefixed with ``where`` (a
    string, or a function that makes it: formatting a location per line costs ~10% of a read)."""
    if callable(where):
        locate = where
    else:
        text = where

        def locate() -> str:
            return text

    if line.startswith(_KIND_PREFIX):
        fast = _parse_fast(line, locate)
        if fast is not None:
            return fast
    if not line.strip():
        return None
    where = locate()
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordingError(f"{where}: not JSON ({exc}); each line must be one JSON object") from None
    if not isinstance(value, dict):
        raise RecordingError(f"{where}: expected a JSON object with a 'kind', got {type(value).__name__}")
    kind = value.pop("kind", None)
    if not isinstance(kind, str):
        raise RecordingError(f"{where}: no 'kind' (one of {', '.join(KINDS)}, label)")
    if kind == LABEL:
        task_id, answer = value.get("task_id"), value.get("answer")
        if not isinstance(task_id, str) or not isinstance(answer, str):
            raise RecordingError(f"{where}: a label needs string 'task_id' and 'answer', got {value!r:.200}")
        return Label(task_id, answer)
    model = KINDS.get(kind)
    if model is None:
        return kind
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise RecordingError(f"{where}: invalid {kind} ({model.__name__}): {_problems(exc)}") from None


def iter_recording(path: str | Path) -> Iterator[Record | Label | str]:
    """Each record in file order (unknown kinds as their name; blank lines skipped), from
    either format (module docstring)."""
    source = Path(path)
    try:
        handle = _open(source, "r")
    except FileNotFoundError:
        raise RecordingError(f"{source}: no such recording") from None
    with handle:
        if container.is_container(source):
            yield from _iter_container(source, handle)
            return
        lineno = 0

        def where() -> str:
            return f"{source}:{lineno}"

        try:
            for lineno, line in enumerate(handle, start=1):  # where() reads lineno
                parsed = parse_line(line, where=where)
                if parsed is not None:
                    yield parsed
        except (OSError, EOFError) as exc:  # gzip: not a gzip file, or truncated
            raise RecordingError(f"{source}:{lineno + 1}: cannot read ({type(exc).__name__}: {exc})") from None


_AVRO_MODELS: dict[str, tuple[str, type[Record]]] = {model.avro_name: (kind, model) for kind, model in KINDS.items()}


def _iter_container(source: Path, handle: IO[bytes]) -> Iterator[Record | Label | str]:
    index = 0
    try:
        for index, (name, fields) in enumerate(container.read_entries(handle, AVRO_KINDS), start=1):
            if name == container.LABEL_NAME:
                yield Label(fields["task_id"], fields["answer"])
                continue
            entry = _AVRO_MODELS.get(name)
            if entry is None:
                yield name.rsplit(".", 1)[-1]
                continue
            kind, model = entry
            try:
                yield model.model_validate(fields)
            except ValidationError as exc:
                raise RecordingError(f"{source}: record {index}: invalid {kind} ({model.__name__}): "
                                     f"{_problems(exc)}") from None
    except RecordingError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, StopIteration) as exc:
        # fastavro: "cannot read header - is it an avro file?", a truncated block, a bad sync marker
        raise RecordingError(f"{source}: record {index + 1}: cannot read the Avro container "
                             f"({type(exc).__name__}: {exc}); was it written by `swarmstream record`?") from None


def read_recording(path: str | Path) -> Recording:
    """The whole recording at ``path``, indexed (module docstring for the formats and the errors)."""
    recording = Recording()
    if container.is_container(path) and Path(path).exists():
        _read_container_fast(Path(path), recording)
        return recording
    for item in iter_recording(path):
        if isinstance(item, str):
            recording.skipped[item] = recording.skipped.get(item, 0) + 1
        else:
            recording.add(item)
    return recording


_RESPONSE, _FAILURE = ModelResponse.avro_name, Failure.avro_name


def _read_container_fast(source: Path, recording: Recording) -> None:
    """:func:`iter_recording` for an Avro file, with responses and failures read straight
    into :class:`Outcome` (``Outcome.of_fields``); every other kind is validated."""
    with _open(source, "r") as handle:
        index = 0
        try:
            for index, (name, fields) in enumerate(container.read_entries(handle, AVRO_KINDS), start=1):
                if name == _RESPONSE or name == _FAILURE:
                    recording.add(Outcome.of_fields(fields, ok=name == _RESPONSE))
                elif name == container.LABEL_NAME:
                    recording.labels[fields["task_id"]] = fields["answer"]
                elif name in _AVRO_MODELS:
                    kind, model = _AVRO_MODELS[name]
                    try:
                        recording.add(model.model_validate(fields))
                    except ValidationError as exc:
                        raise RecordingError(f"{source}: record {index}: invalid {kind} ({model.__name__}): "
                                             f"{_problems(exc)}") from None
                else:
                    short = name.rsplit(".", 1)[-1]
                    recording.skipped[short] = recording.skipped.get(short, 0) + 1
        except RecordingError:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError, StopIteration) as exc:
            raise RecordingError(f"{source}: record {index + 1}: cannot read the Avro container "
                                 f"({type(exc).__name__}: {exc}); was it written by `swarmstream record`?") from None
