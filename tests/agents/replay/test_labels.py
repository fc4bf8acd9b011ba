"""Where replay's right answers come from: recorded labels, the tasks, a file, feedback."""

from __future__ import annotations

from pathlib import Path

import pytest
from swarmstream.agents.replay.labels import (
    LabelError,
    apply_labels,
    check_source,
    from_feedback,
    read_label_file,
)
from swarmstream.agents.replay.offline import ReplaySet
from swarmstream.agents.replay.recording import Label, Recording
from swarmstream.schemas.models import Feedback, TaskRequest, TaskResult

from tests.agents.replay.test_offline_replay import answer


def recording() -> Recording:
    rec = Recording()
    for task_id, given in (("t1", "x"), ("t2", "y"), ("t3", "x"), ("t4", "x")):
        labels = ["x", "y"] if task_id == "t3" else ["x", "y", "z"]
        metadata = {"label": " x "} if task_id == "t2" else {}
        rec.add(TaskRequest(task_id=task_id, created_ms=1_000, prompt="q", labels=labels, metadata=metadata,
                            models=["a", "b", "c"]))
        for model in ("a", "b", "c"):
            rec.add(answer(task_id, model, given))
        rec.add(TaskResult(task_id=task_id, status="ok", answer=given, created_ms=1_000))
    rec.add(Label("t1", "x"))
    rec.add(Feedback(task_id="t1", created_ms=1_000, score=0.0))  # the recorded label wins over this
    rec.add(Feedback(task_id="t3", created_ms=1_000, score=0.0))  # two labels: the other one is right
    rec.add(Feedback(task_id="t4", created_ms=1_000, score=1.0))
    rec.add(Feedback(task_id="t4", created_ms=1_000, score=0.2))  # the latest judgement counts
    return rec


@pytest.mark.parametrize(
    ("source", "labels", "wrong"),
    [
        ("auto", {"t1": "x", "t2": "x", "t3": "y"}, {"t1": {"x"}, "t3": {"x"}, "t4": {"x"}}),
        ("recording", {"t1": "x"}, {}),
        ("tasks", {"t2": "x"}, {}),
        ("feedback", {"t3": "y"}, {"t1": {"x"}, "t3": {"x"}, "t4": {"x"}}),
    ],
)
def test_sources(source: str, labels: dict[str, str], wrong: dict[str, set[str]]) -> None:
    rec = recording()
    apply_labels(rec, source)
    assert rec.labels == labels
    assert rec.wrong_answers == wrong


def test_a_known_wrong_answer_scores_wrong_and_an_unknown_one_is_unscored() -> None:
    rec = recording()
    apply_labels(rec, "feedback")
    report = ReplaySet.from_recording(rec).run("majority")
    assert report.decisions["t4"].correct is False  # the answer feedback judged wrong
    assert report.decisions["t3"].correct is False  # label y from the two-label rule; the answer was x
    assert report.decisions["t2"].correct is None  # no judgement at all
    assert (report.labelled, report.correct) == (3, 0)


def test_feedback_without_a_result_teaches_nothing() -> None:
    rec = Recording()
    rec.add(Feedback(task_id="t9", created_ms=1, score=1.0))
    assert from_feedback(rec) == ({}, {})


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("l.json", b'{"t1": " Animal ", "t2": "7"}', {"t1": "Animal", "t2": "7"}),
        ("l.jsonl", b'{"task_id": "t1", "answer": "x"}\n\n{"task_id": "t2", "answer": "y"}\n', {"t1": "x", "t2": "y"}),
        ("l.csv", b"task_id,answer\nt1,x\nt2,\"a, b\"\n", {"t1": "x", "t2": "a, b"}),
        ("l.csv", b"t1,x\n", {"t1": "x"}),
    ],
)
def test_label_files(tmp_path: Path, name: str, content: bytes, expected: dict[str, str]) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert read_label_file(path) == expected
    rec = recording()
    apply_labels(rec, path)
    assert rec.labels == expected and rec.wrong_answers == {}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("l.json", b"[1, 2]", r"l\.json: expected one JSON object"),
        ("l.json", b'{"t1": 3}', r"l\.json: t1: the answer must be a string"),
        ("l.jsonl", b'{"task_id": "t1", "answer": "x"}\n{"task_id": 1}\n', r"l\.jsonl:2: expected"),
        ("l.jsonl", b"{oops\n", r"l\.jsonl:1: not JSON"),
        ("l.csv", b"t1,x\nt2\n", r"l\.csv:2: expected two columns"),
        ("l.txt", b"t1 x", r"l\.txt: unknown labels file type '\.txt'"),
    ],
)
def test_bad_label_files_name_the_file_and_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LabelError, match=message):
        read_label_file(path)


def test_check_source(tmp_path: Path) -> None:
    assert check_source("feedback") == "feedback"
    (tmp_path / "l.json").write_text("{}")
    assert check_source(str(tmp_path / "l.json")) == str(tmp_path / "l.json")
    with pytest.raises(LabelError, match="neither a source"):
        check_source("nope")
