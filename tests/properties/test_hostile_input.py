"""Hostile input never crashes a decoder or a loader: it becomes a clear error.

A fixed example budget keeps the suite fast and the run reproducible in CI."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swarmstream.agents.fallback.chains import ChainsError, load_chains
from swarmstream.agents.models.catalog import CatalogError, load_catalog
from swarmstream.agents.models.failures import ProviderError
from swarmstream.agents.models.parsing import parse_answer
from swarmstream.schemas.codec import DecodeError, codec, decode_task
from swarmstream.schemas.models import TaskRequest

BUDGET = settings(max_examples=300, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON_HEADER = {"content-type": b"application/json"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


@BUDGET
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_a_decode_error_or_a_record(data: bytes) -> None:
    try:
        codec().decode(data)
    except DecodeError as exc:
        assert str(exc)


@BUDGET
@given(st.binary(min_size=1, max_size=64))
def test_a_valid_record_with_corrupted_tail_never_crashes(noise: bytes) -> None:
    good = codec().encode(TaskRequest(prompt="hello", labels=["a", "b"]))
    for data in (good[:-len(noise)] + noise, good + noise, good[:10] + noise):
        try:
            codec().decode(data)
        except DecodeError:
            pass


@BUDGET
@given(json_values)
def test_any_json_task_is_a_task_or_a_decode_error(value: object) -> None:
    try:
        task = decode_task(json.dumps(value).encode(), JSON_HEADER)  # stdlib: big ints too
    except DecodeError as exc:
        assert str(exc)
    else:
        assert task.prompt.strip()


@BUDGET
@given(st.text(max_size=300), st.sampled_from(["label", "number", "json", "text"]))
def test_any_model_text_parses_or_is_invalid_output(text: str, answer_type: str) -> None:
    try:
        parse_answer(text, answer_type, labels=("cat", "dog"))
    except ProviderError as exc:
        assert exc.failure_class == "invalid_output"


def test_deep_json_and_huge_prompts_are_refused_cleanly() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(DecodeError):
        decode_task(deep, JSON_HEADER)
    huge = orjson.dumps({"prompt": "x" * 2_000_000})
    with pytest.raises(DecodeError, match="prompt"):
        decode_task(huge, JSON_HEADER)
    bad_unicode = b'{"prompt": "\\ud800 lone surrogate"}'
    try:
        decode_task(bad_unicode, JSON_HEADER)
    except DecodeError:
        pass


@BUDGET
@given(st.text(max_size=400))
def test_any_yaml_text_is_a_catalog_or_a_catalog_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "models.yaml"
    path.write_text(text)
    try:
        load_catalog(path)
    except CatalogError as exc:
        assert "models.yaml" in str(exc)
    try:
        load_chains(path, known_models={"a": 8192})
    except ChainsError as exc:
        assert "models.yaml" in str(exc)
