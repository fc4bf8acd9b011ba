"""The judge and sampling fields (issue 25) are optional: records written before them decode with
their defaults, and records written with them decode under the schemas from before."""

from __future__ import annotations

import copy
import io

import fastavro
import pytest
from swarmstream.schemas.codec import AvroCodec, codec, shipped_schemas
from swarmstream.schemas.models import (
    CastVote,
    ModelRequest,
    StepContext,
    TaskRequest,
    TaskResult,
)

NEW_FIELDS = {
    "swarmstream.TaskRequest": {"samples", "temperature", "top_p", "seed", "stop", "judge", "max_cost_micros"},
    "swarmstream.ModelRequest": {"sample", "role"},
    "swarmstream.StepContext": {"sample", "role"},
    "swarmstream.TaskResult": {"judged_by", "judge_pick", "judge_rationale", "judge_calls", "judge_cost_micros",
                               "shuffle_seed", "embedder"},
}
TASK = TaskRequest(task_id="t-1", created_ms=1_700_000_000_000, prompt="2 + 2?", answer_type="number",
                   models=["a"], samples=5, temperature=0.7, top_p=0.9, seed=11, stop=["\n\n"], judge="j",
                   max_cost_micros=5_000)
NEW = {
    "swarmstream.TaskRequest": TASK,
    "swarmstream.ModelRequest": ModelRequest(task=TASK, model_id="a", deadline_ms=5, sample=3, role="judge"),
    "swarmstream.StepContext": StepContext(task_id="t-1", model_id="a", created_ms=1, deadline_ms=2, sample=2,
                                           role="fuse"),
    "swarmstream.TaskResult": TaskResult(task_id="t-1", status="ok", answer="4", strategy="judge", judged_by="j",
                                         judge_pick=2, judge_rationale="right", judge_calls=1, judge_cost_micros=9,
                                         shuffle_seed=11, embedder="sim-embed",
                                         votes=[CastVote(model_id="a", answer="4", sample=1)]),
}


def _without(node: object, names: set[str]) -> object:
    """The schema as it was before these fields (nested records too: CastVote's ``sample``)."""
    if isinstance(node, dict):
        node = {k: _without(v, names) for k, v in node.items()}
        if node.get("type") == "record":
            node["fields"] = [f for f in node["fields"] if f["name"] not in names]
        return node
    if isinstance(node, list):
        return [_without(v, names) for v in node]
    return node


def _old(name: str) -> dict:
    names = set().union(*NEW_FIELDS.values()) | {"sample"}
    return _without(copy.deepcopy(shipped_schemas()[name]), names)  # type: ignore[return-value]


@pytest.mark.parametrize("name", sorted(NEW))
def test_a_record_from_before_decodes_with_the_defaults(name: str) -> None:
    old = _old(name)
    record = NEW[name]
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(old, named_schemas={}), record.model_dump())
    reader = AvroCodec()

    decoded = reader.decode(b"\xc3\x01" + reader.register_writer(old) + out.getvalue())

    defaults = type(record).model_fields
    for field in NEW_FIELDS[name]:
        assert getattr(decoded, field) == defaults[field].default, field


@pytest.mark.parametrize("name", sorted(NEW))
def test_a_new_record_decodes_under_the_schema_from_before(name: str) -> None:
    record = NEW[name]
    data = codec().encode(record)[10:]  # past the marker and the fingerprint
    writer = fastavro.parse_schema(shipped_schemas()[name], named_schemas={})
    reader = fastavro.parse_schema(_old(name), named_schemas={})

    decoded = fastavro.schemaless_reader(io.BytesIO(data), writer, reader)

    assert not NEW_FIELDS[name] & set(decoded)
    expected = {k: v for k, v in record.model_dump().items() if k not in NEW_FIELDS[name]}
    assert {k: decoded[k] for k in expected if k not in ("task", "votes")} == {
        k: v for k, v in expected.items() if k not in ("task", "votes")}
