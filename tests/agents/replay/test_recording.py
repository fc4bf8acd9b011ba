"""The recording file: round trip, gzip, unknown kinds, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from swarmstream.agents.replay.recording import (
    Label,
    Outcome,
    RecordingError,
    read_recording,
    record_line,
    write_recording,
)
from swarmstream.schemas.models import (
    CastVote,
    Failure,
    ModelResponse,
    ScoredCandidate,
    SelectionEvent,
    StepContext,
    TaskRequest,
    TaskResult,
)


def step(task_id: str, model: str) -> StepContext:
    return StepContext(task_id=task_id, model_id=model, created_ms=1_000, deadline_ms=31_000,
                       expected_models=["a", "b"], category="factual")


def sample_records() -> list[object]:
    task = TaskRequest(task_id="t1", created_ms=1_000, prompt="Classify 'otter'.", labels=["animal", "tool"],
                       models=["a", "b"])
    return [
        task,
        ModelResponse(step=step("t1", "a"), text="Animal.", answer="animal", cost_micros=120, latency_ms=40,
                      confidence=0.9, responded_ms=1_040),
        Failure(step=step("t1", "b"), failure_class="timeout", latency_ms=30_000, failed_ms=31_000),
        TaskResult(task_id="t1", status="partial", answer="animal", agreement=1.0, confidence=0.8,
                   strategy="majority", votes=[CastVote(model_id="a", answer="animal", weight=0.7)]),
        SelectionEvent(task_id="t2", tenant="default", category="factual", policy="random", status="selected",
                       chosen="b", at_ms=2_000,
                       candidates=[ScoredCandidate(model_id="a", score=0.5, propensity=0.5, cost_micros_est=10),
                                   ScoredCandidate(model_id="b", score=0.5, propensity=0.5, cost_micros_est=20)]),
        Label("t1", "animal"),
    ]


@pytest.mark.parametrize("name", ["run.jsonl", "run.jsonl.gz"])
def test_round_trip_keeps_every_record(tmp_path: Path, name: str) -> None:
    records = sample_records()
    path = tmp_path / name
    assert write_recording(path, records, labels={"t2": "tool"}) == len(records) + 1

    recording = read_recording(path)

    task, response, failure, result, selection, _ = records
    assert recording.tasks == {"t1": task}
    assert recording.responses == {"t1": [Outcome.of(response)]}  # type: ignore[arg-type]
    assert recording.failures == {"t1": [Outcome.of(failure)]}  # type: ignore[arg-type]
    assert recording.results == {"t1": result}
    assert recording.selections == [selection]
    assert recording.labels == {"t1": "animal", "t2": "tool"}
    assert recording.skipped == {}
    assert recording.task_ids == ["t1"]
    outcome = recording.responses["t1"][0]
    assert (outcome.answer, outcome.confidence, outcome.cost_micros, outcome.at_ms) == ("animal", 0.9, 120, 1_040)
    assert recording.failures["t1"][0].failure_class == "timeout"


def test_gzip_is_compressed(tmp_path: Path) -> None:
    write_recording(tmp_path / "run.jsonl.gz", sample_records())
    assert (tmp_path / "run.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_lines_are_plain_json_with_the_kind_first(tmp_path: Path) -> None:
    line = record_line(sample_records()[0])  # type: ignore[arg-type]
    assert line.startswith(b'{"kind":"task",') and line.endswith(b"\n")
    assert orjson.loads(line)["prompt"] == "Classify 'otter'."


def test_a_line_written_in_another_key_order_reads_the_same(tmp_path: Path) -> None:
    """Other tools may write ``kind`` anywhere; the general path reads those lines."""
    record = sample_records()[1]
    fields = {**record.model_dump(mode="json"), "kind": "response"}  # type: ignore[attr-defined]
    path = tmp_path / "other.jsonl"
    path.write_bytes(orjson.dumps(fields) + b"\n\n")
    assert read_recording(path).responses["t1"] == [Outcome.of(record)]  # type: ignore[arg-type]


def test_unknown_kinds_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    write_recording(path, sample_records()[:1])
    with path.open("ab") as f:
        f.write(b'{"kind": "review", "task_id": "t1", "score": 1.0}\n{"kind":"review","x":1}\n')
    recording = read_recording(path)
    assert recording.skipped == {"review": 2}
    assert list(recording.tasks) == ["t1"]


def test_duplicate_results_keep_the_first(tmp_path: Path) -> None:
    first = TaskResult(task_id="t1", status="ok", answer="animal")
    again = TaskResult(task_id="t1", status="ok", answer="tool")
    path = tmp_path / "run.jsonl"
    write_recording(path, [first, again])
    recording = read_recording(path)
    assert recording.results == {"t1": first}
    assert recording.duplicate_results == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "expected a JSON object"),
        (b'{"task_id": "t1"}\n', "no 'kind'"),
        (b'{"kind": "label", "task_id": "t1"}\n', "a label needs string 'task_id' and 'answer'"),
        (b'{"kind":"task","task_id":"t9","prompt":"   "}\n', "invalid task (TaskRequest): prompt"),
        (b'{"kind":"response","step":{"task_id":"t9"},"answer":"x"}\n', "invalid response (ModelResponse): step."),
        (b'{"kind":"result","task_id":"t9","status":"ok"\n', "invalid result (TaskResult)"),
    ],
)
def test_a_malformed_line_names_file_and_line(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    write_recording(path, sample_records()[:2])
    with path.open("ab") as f:
        f.write(line)
    with pytest.raises(RecordingError) as raised:
        read_recording(path)
    assert f"{path}:3:" in str(raised.value)
    assert message in str(raised.value)


def test_missing_file_and_not_gzip(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such recording"):
        read_recording(tmp_path / "absent.jsonl")
    (tmp_path / "plain.jsonl.gz").write_bytes(b'{"kind":"label","task_id":"t","answer":"a"}\n')
    with pytest.raises(RecordingError, match="cannot read"):
        read_recording(tmp_path / "plain.jsonl.gz")


def test_writing_an_unsupported_record_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="holds no StepContext"):
        write_recording(tmp_path / "x.jsonl", [step("t", "a")])  # type: ignore[list-item]
