"""The AsyncAPI document: valid AsyncAPI 3.0, every topic the built app declares, the shipped Avro schemas.

``data/asyncapi-3.0.0.schema.json.gz`` is the official AsyncAPI 3.0.0 JSON Schema
(``schemas/3.0.0-without-$id.json`` of the npm package ``@asyncapi/specs`` 6.11.1,
Apache-2.0), minified and gzipped so the test runs offline. It also checks each
Avro payload against the Avro schema definition it bundles.
"""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from swarmstream.agents.models.catalog import load_catalog
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import TaskRequest
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.app.topology import build
from swarmstream.streams.cli import asyncapi, main
from swarmstream.streams.cli.asyncapi import (
    AVRO_FORMAT,
    ContractError,
    declared_topics,
    document,
)

SPEC = Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json.gz"
FLEET = Path(__file__).parents[1] / "fleet.yaml"
CHAINS = Path(__file__).parents[1] / "chains.yaml"


@cache
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(gzip.decompress(SPEC.read_bytes())))


@pytest.fixture(scope="module")
def built() -> tuple[Settings, Any, list[str]]:
    settings = Settings(models=FLEET, chains=CHAINS, topic_prefix="acme", app_id="acme-app", partitions=6)
    catalog = load_catalog(settings.models, sim_url="http://127.0.0.1:1/v1")
    topo = build(settings, "kafka://127.0.0.1:1", catalog)  # nothing connects until the app starts
    return settings, topo.engine, sorted(catalog.models)


@pytest.fixture(scope="module")
def doc(built) -> dict[str, Any]:
    settings, app, models = built
    return document(settings, app, models)


def errors(doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator().iter_errors(doc)]


def test_the_document_is_valid_asyncapi_3(doc) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert errors(doc) == []


@pytest.mark.parametrize(
    ("break_it", "where"),
    [
        (lambda d: d["operations"]["receive_tasks"].update(action="consume"), "operations"),
        (lambda d: d["components"]["schemas"]["TaskRequest"].update(schema={"type": "no-such-avro-type"}), "components"),
        (lambda d: d["channels"]["results"].update(adress="typo"), "channels"),
        (lambda d: d.pop("info"), ""),
    ],
)
def test_the_validator_catches_broken_documents(doc, break_it, where: str) -> None:
    """Proof that the check above can fail: each breakage is reported."""
    broken = copy.deepcopy(doc)
    break_it(broken)
    found = errors(broken)
    assert found and any(e.startswith(where) for e in found)


def test_every_topic_the_app_declares_is_a_channel(built, doc) -> None:
    settings, app, models = built
    inputs, changelogs = declared_topics(app)
    assert settings.topics.tasks in inputs and "acme-app-tasks-changelog" in changelogs  # the app was really read
    addresses = {channel["address"] for channel in doc["channels"].values()}
    missing = ({*inputs, *changelogs, *settings.topics.all(models)}) - addresses
    assert missing == set()
    assert all(ch["bindings"]["kafka"]["partitions"] == 6 for ch in doc["channels"].values())
    for model in models:
        assert f"acme.model.{model}" in addresses


def test_operations_point_at_channels_and_read_as_the_apps_view(doc) -> None:
    ops = doc["operations"]
    for name, op in ops.items():
        channel = op["channel"]["$ref"].removeprefix("#/channels/")
        assert channel in doc["channels"], name
        for ref in op["messages"]:
            path = ref["$ref"].removeprefix("#/channels/").split("/messages/")
            assert path[0] == channel and path[1] in doc["channels"][channel]["messages"], name
    assert ops["receive_tasks"]["action"] == "receive" and "send_tasks" not in ops  # callers send tasks
    assert ops["send_results"]["action"] == "send" and "receive_results" not in ops


def test_payloads_are_the_shipped_avro_schemas_with_their_fingerprints(doc) -> None:
    task = TaskRequest(prompt="2 + 2?")
    message = doc["channels"]["tasks"]["messages"]["TaskRequest"]
    assert message["payload"] == {"$ref": "#/components/schemas/TaskRequest"}
    schema = doc["components"]["schemas"]["TaskRequest"]
    assert schema["schemaFormat"] == AVRO_FORMAT
    assert schema["schema"]["name"] == "TaskRequest" and schema["schema"]["type"] == "record"
    # what a reader in another language needs to recognise the bytes on the wire
    assert codec().encode(task)[2:10].hex() == message["x-avro-single-object-fingerprint"]
    assert set(doc["components"]["schemas"]["Headers"]["properties"]) >= {"traceparent", "content-type"}
    assert "TaskRequestJson" in doc["channels"]["tasks"]["messages"]


def test_each_channel_states_its_own_key(doc) -> None:
    key = lambda channel, message: doc["channels"][channel]["messages"][message]["bindings"]["kafka"]["key"]  # noqa: E731
    assert key("tasks", "TaskRequest")["description"].startswith("task_id")
    assert key("select", "TaskRequest")["description"].startswith("tenant")
    assert key("calls", "CallRecord")["description"].startswith("model_id")


def test_a_topic_without_a_contract_is_an_error(built, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, app, models = built
    monkeypatch.delitem(asyncapi.CONTRACTS, "results")
    with pytest.raises(ContractError, match="'acme.results' has no entry"):
        document(settings, app, models)


def test_the_command_writes_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARM_MODELS", str(FLEET))
    monkeypatch.setenv("SWARM_CHAINS", str(CHAINS))
    monkeypatch.setenv("SWARM_TOPIC_PREFIX", "cli")
    out = tmp_path / "asyncapi.yaml"
    assert main(["asyncapi", "--out", str(out), "--server", "kafka.example:9092"]) == 0
    written = yaml.safe_load(out.read_text())
    assert errors(written) == []
    assert written["servers"]["kafka"]["host"] == "kafka.example:9092"
    assert written["channels"]["results"]["address"] == "cli.results"
