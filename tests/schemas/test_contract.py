"""The Avro contract: models mirror schemas, records round-trip, versions coexist."""

from __future__ import annotations

import copy
import io

import fastavro
import orjson
import pytest
from pydantic.fields import FieldInfo
from swarmstream.schemas.codec import (
    AvroCodec,
    DecodeError,
    codec,
    crc64_avro,
    decode_task,
    shipped_schemas,
)
from swarmstream.schemas.models import (
    RECORDS,
    Attempt,
    CallRecord,
    CastVote,
    DeadLetter,
    Failure,
    Feedback,
    ModelRequest,
    ModelResponse,
    QualityEvent,
    ReviewItem,
    ScoredCandidate,
    SelectionEvent,
    StepContext,
    TaskRequest,
    TaskResult,
)


def tool_examples() -> list:
    """The tool records (issue 9): a call, its result, its audit event, an approval."""
    from swarmstream.schemas.models import Approval, AuditEvent, ToolCall, ToolResult

    task = TaskRequest(task_id="t-1", created_ms=1, prompt="2 + 2?", tools=["calculator"], max_turns=4)
    request = ModelRequest(task=task, model_id="a", deadline_ms=5, turn=1, conversation='{"messages": []}')
    call = ToolCall(request=request, turn=1, call_id="c1", tool="calculator", arguments='{"expression": "2 + 2"}',
                    digest="d1")
    return [call, ToolResult(call=call, status="ok", content='{"result": 4}', shared=True),
            AuditEvent(task_id="t-1", model_id="a", tool="calculator", decision="allowed", at_ms=3),
            Approval(task_id="t-1", tool="send_email", approver="ada", at_ms=4)]


def review_examples() -> list:
    """A reviewer's decision (issue 27, the console)."""
    from swarmstream.schemas.models import ReviewDecision

    return [ReviewDecision(task_id="t-1", created_ms=1, action="candidate", answer="4", model_id="b", consensus="5",
                           correct_models=["b"], reviewer="ada", note="checked by hand", decided_ms=6)]


TASK = TaskRequest(task_id="t-1", created_ms=1_700_000_000_000, prompt="2 + 2?", answer_type="number",
                   labels=[], models=["a", "b"], metadata={"trace": "x"})
STEP = StepContext(task_id="t-1", model_id="a", created_ms=1, deadline_ms=2, expected_models=["a", "b"])
EXAMPLES = [
    TASK,
    ModelRequest(task=TASK, model_id="a", attempt=1, deadline_ms=5, expected_models=["a", "b"]),
    STEP,
    ModelResponse(step=STEP, text="Answer: 4", answer="4", input_tokens=3, output_tokens=2, cost_micros=7,
                  latency_ms=12, confidence=0.9),
    Failure(step=STEP, failure_class="rate_limited", retryable=True, retry_after_ms=1000, status_code=429),
    TaskResult(task_id="t-1", status="ok", answer="4", agreement=1.0, confidence=0.9,
               votes=[CastVote(model_id="a", answer="4")], attempts=[Attempt(model_id="b", failure_class="timeout")]),
    ReviewItem(task=TASK, result=TaskResult(task_id="t-1", status="low_consensus", answer="4"), reason="split",
               flagged_ms=3),
    CallRecord(model_id="a", ok=False, failure_class="server_error", at_ms=5, latency_ms=3, category="math"),
    QualityEvent(model_id="a", category="math", reward=1.0, source="consensus", task_id="t-1", at_ms=5),
    Feedback(task_id="t-1", created_ms=1, score=0.5),
    SelectionEvent(task_id="t-1", tenant="acme", category="math", policy="thompson", status="selected", chosen="a",
                   candidates=[ScoredCandidate(model_id="a", score=0.9, propensity=0.8, cost_micros_est=12)], at_ms=5),
    DeadLetter(topic="swarm.tasks", partition=0, offset=3, key=b"k", value=b"\x00\xff", reason="bad", received_ms=9),
    *tool_examples(),
    *review_examples(),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_every_record_round_trips_through_its_schema(record) -> None:
    data = codec().encode(record)

    assert data[:2] == b"\xc3\x01"
    assert codec().decode(data) == record


def test_every_top_level_record_has_an_example() -> None:
    assert {type(r) for r in EXAMPLES} == set(RECORDS)


def _avro_fields(schema: dict) -> dict[str, dict]:
    return {f["name"]: f for f in schema["fields"]}


@pytest.mark.parametrize("model", RECORDS, ids=lambda m: m.__name__)
def test_pydantic_models_mirror_the_avsc_fields_and_defaults(model) -> None:
    schema = shipped_schemas()[model.avro_name]
    avro = _avro_fields(schema)

    assert list(avro) == list(model.model_fields)
    for name, field in model.model_fields.items():
        info: FieldInfo = field
        has_default = "default" in avro[name]
        generated = info.default_factory is not None  # filled by the SDK; every writer sends it
        assert has_default == (not info.is_required() and not generated), name
        if has_default and info.default_factory is None and not isinstance(info.default, (list, dict)):
            assert avro[name]["default"] == info.default, name


def test_fingerprint_is_the_spec_crc64_avro() -> None:
    # A reference vector of the Avro Java implementation: the fingerprint of the schema "int".
    assert crc64_avro(b'"int"').to_bytes(8, "little").hex() == "8f5c393f1ad57572"


def test_an_old_reader_reads_a_record_written_with_a_newer_schema() -> None:
    newer = copy.deepcopy(shipped_schemas()["swarmstream.TaskResult"])
    newer["fields"].append({"name": "reviewer", "type": ["null", "string"], "default": None})
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(newer, named_schemas={}),
                               {**EXAMPLES[5].model_dump(), "reviewer": "ada"})
    reader = AvroCodec()
    fingerprint = reader.register_writer(newer)

    decoded = reader.decode(b"\xc3\x01" + fingerprint + out.getvalue())

    assert decoded == EXAMPLES[5]


def test_a_new_reader_reads_a_record_written_with_an_older_schema() -> None:
    older = copy.deepcopy(shipped_schemas()["swarmstream.TaskResult"])
    older["fields"] = [f for f in older["fields"] if f["name"] != "reason"]
    out = io.BytesIO()
    record = {k: v for k, v in EXAMPLES[5].model_dump().items() if k != "reason"}
    fastavro.schemaless_writer(out, fastavro.parse_schema(older, named_schemas={}), record)
    reader = AvroCodec()

    decoded = reader.decode(b"\xc3\x01" + reader.register_writer(older) + out.getvalue())

    assert decoded.reason == ""
    assert decoded.answer == "4"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "marker"),
        (b"{}", "marker"),
        (b"\xc3\x01" + b"\x00" * 8 + b"x", "unknown writer schema"),
        (codec().encode(TASK)[:12], "corrupt"),
    ],
)
def test_undecodable_bytes_raise_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        codec().decode(data)


def test_json_tasks_are_accepted_with_the_content_type_header() -> None:
    body = orjson.dumps({"prompt": "hi", "answer_type": "label", "labels": ["a"]})

    task = decode_task(body, [("content-type", b"application/json; charset=utf-8")], key=b"k-1")

    assert task.task_id == "k-1"
    assert task.labels == ["a"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "invalid JSON"),
        (b"[1, 2]", "must be an object"),
        (orjson.dumps({"prompt": " "}), "prompt"),
        (orjson.dumps({"prompt": "x", "answer_type": "poem"}), "answer_type"),
        (orjson.dumps({"prompt": "x", "surprise": 1}), "surprise"),
    ],
)
def test_bad_json_tasks_say_what_is_wrong(body: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_task(body, {"content-type": b"application/json"})


def test_a_task_without_the_json_header_must_be_avro() -> None:
    with pytest.raises(DecodeError, match="marker"):
        decode_task(orjson.dumps({"prompt": "hi"}), None)
