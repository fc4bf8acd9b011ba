"""The Avro container recording: every kind in one file, the schema inside, the same content as JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest
from swarmstream.agents.replay import container
from swarmstream.agents.replay.recording import (
    AVRO_KINDS,
    Label,
    RecordingError,
    RecordingWriter,
    iter_recording,
    read_recording,
    write_recording,
)
from swarmstream.schemas.models import Feedback

from tests.agents.replay.test_recording import sample_records


def records() -> list[object]:
    return [*sample_records(), Feedback(task_id="t1", created_ms=1_000, score=1.0, source="user")]


def test_one_file_holds_every_kind_and_reads_back_like_json_lines(tmp_path: Path) -> None:
    avro, jsonl = tmp_path / "run.avro", tmp_path / "run.jsonl"
    assert write_recording(avro, records()) == write_recording(jsonl, records()) == len(records())  # type: ignore[arg-type]
    from_avro, from_jsonl = read_recording(avro), read_recording(jsonl)
    for attribute in ("tasks", "responses", "failures", "results", "selections", "labels", "feedback"):
        assert getattr(from_avro, attribute) == getattr(from_jsonl, attribute), attribute
    assert from_avro.labels == {"t1": "animal"}
    assert [f.score for f in from_avro.feedback["t1"]] == [1.0]
    assert list(iter_recording(avro)) == list(iter_recording(jsonl))  # the slow path gives the same records


def test_the_schema_is_embedded_and_any_avro_reader_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.avro"
    write_recording(path, records())  # type: ignore[arg-type]
    with path.open("rb") as handle:
        reader = fastavro.reader(handle, return_record_name=True)
        assert reader.writer_schema is not None and reader.writer_schema["name"] == container.ENTRY
        assert reader.metadata["avro.codec"] == container.CODEC
        names = [entry["record"][0] for entry in reader]  # type: ignore[index]
    assert names == ["swarmstream.TaskRequest", "swarmstream.ModelResponse", "swarmstream.Failure",
                     "swarmstream.TaskResult", "swarmstream.SelectionEvent", container.LABEL_NAME,
                     "swarmstream.Feedback"]
    json.dumps(container.entry_schema(AVRO_KINDS))  # plain JSON: `avro-tools getschema` would print it


def test_each_named_type_is_defined_once() -> None:
    text = json.dumps(container.entry_schema(AVRO_KINDS))
    assert text.count('"name": "StepContext"') == 1  # used by ModelResponse and Failure


def test_a_file_from_a_newer_writer_drops_fields_this_reader_does_not_know(tmp_path: Path) -> None:
    """Schema evolution: a writer whose Label has one more field, and a kind this reader lacks."""
    newer_label = {**container.LABEL_SCHEMA, "fields": [*container.LABEL_SCHEMA["fields"],
                                                        {"name": "judge", "type": "string", "default": ""}]}
    unknown = {"type": "record", "name": "Verdict", "namespace": "swarmstream",
               "fields": [{"name": "task_id", "type": "string"}]}
    schema = {"type": "record", "name": "Entry", "namespace": "swarmstream.replay",
              "fields": [{"name": "record", "type": [newer_label, unknown]}]}
    path = tmp_path / "newer.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), [
            {"record": (container.LABEL_NAME, {"task_id": "t1", "answer": "x", "judge": "ann"})},
            {"record": ("swarmstream.Verdict", {"task_id": "t1"})},
        ])
    recording = read_recording(path)
    assert recording.labels == {"t1": "x"}
    assert recording.skipped == {"Verdict": 1}
    assert list(iter_recording(path)) == [Label("t1", "x"), "Verdict"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not avro at all", "cannot read the Avro container"),
        (b"", "cannot read the Avro container"),
    ],
)
def test_a_file_that_is_not_a_container_names_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.avro"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message) as info:
        read_recording(path)
    assert str(path) in str(info.value)
    with pytest.raises(RecordingError, match=message):
        list(iter_recording(path))


def test_a_truncated_container_is_an_error_naming_the_record(tmp_path: Path) -> None:
    path = tmp_path / "cut.avro"
    write_recording(path, records() * 200)  # type: ignore[arg-type]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(RecordingError, match=r"cut\.avro: record \d+"):
        read_recording(path)


def test_write_fields_validates_for_avro(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "f.avro") as writer:
        writer.write_fields("task", {"task_id": "t1", "created_ms": 1, "prompt": "p"})
        writer.write_fields("label", {"task_id": "t1", "answer": "x"})
        with pytest.raises(ValueError, match="prompt"):
            writer.write_fields("task", {"task_id": "t2", "created_ms": 1})
    recording = read_recording(tmp_path / "f.avro")
    assert list(recording.tasks) == ["t1"] and recording.labels == {"t1": "x"}
