"""A finished task's compact table entry (``agents/donecodec.py``) reads back exactly as written,
and what it cannot hold exactly is left to JSON."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from swarmstream.agents.donecodec import (
    created_of,
    decode_done,
    encode_done,
    is_done_entry,
)
from swarmstream.agents.taskstate import DoneRecord

digests = st.binary(min_size=16, max_size=16).map(bytes.hex)
texts = st.text(max_size=40)


@st.composite
def records(draw: st.DrawFn) -> DoneRecord:
    record: DoneRecord = {"done": True, "status": draw(texts), "mode": draw(texts),
                          "created_ms": draw(st.integers(0, 2**62)), "result_digest": draw(digests),
                          "category": draw(st.none() | texts),
                          "agreed": draw(st.dictionaries(texts, st.sampled_from([0, 1]), max_size=6))}
    if draw(st.booleans()):
        record["task_digest"] = draw(digests)
    return record


@given(records(), st.integers(-(2**62), 2**62))
def test_a_done_record_reads_back_exactly_as_written(record: DoneRecord, created_ms: int) -> None:
    raw = encode_done(created_ms, record)
    assert raw is not None and is_done_entry(raw) and created_of(raw) == created_ms
    assert decode_done(raw) == (created_ms, record)


def test_a_finished_consensus_task_takes_about_120_bytes() -> None:
    record: DoneRecord = {"done": True, "status": "low_consensus", "mode": "consensus", "created_ms": 1_765_000_000_000,
                          "result_digest": "ab" * 16, "task_digest": "cd" * 16, "category": "geography",
                          "agreed": {"sim-alpha": 1, "sim-beta": 1, "sim-gamma": 0}}
    raw = encode_done(1_765_000_000_000, record)
    assert raw is not None and len(raw) <= 128  # as JSON: ~290


def test_what_the_compact_form_cannot_hold_exactly_is_left_to_json() -> None:
    base: DoneRecord = {"done": True, "status": "ok", "mode": "consensus", "created_ms": 1, "result_digest": "ab" * 16,
                        "category": None, "agreed": {}}
    assert encode_done(1, {**base, "result_digest": "not hex"}) is None  # type: ignore[typeddict-item]
    assert encode_done(1, {**base, "task_digest": "ab" * 8}) is None  # type: ignore[typeddict-item]  # 8 bytes
    assert encode_done(1, {**base, "agreed": {"a": 2}}) is None  # type: ignore[typeddict-item]
    assert not is_done_entry(b'[1,{"done":true}]')  # an entry written as JSON
