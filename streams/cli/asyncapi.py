"""``swarmstream asyncapi``: the event contract as an AsyncAPI 3.0 document.

Teams in other languages generate clients from it. It is built, not
written: the topics are those the built app declares (every agent's input
channel and every table's changelog, from :func:`streams.app.topology.build`)
plus the ones it writes by name (``Settings.topics``), their addresses come
from the settings (prefix, partitions), and each message's payload is the
shipped Avro schema (``schemas/*.avsc``, references inlined) with its
single-object-encoding fingerprint. The one thing stated here is which
record each topic carries and what its key is (:data:`CONTRACTS`); a topic
the app declares without an entry there is an error, so the document cannot
silently miss one.

Operations are the app's view, as AsyncAPI 3 defines them: ``receive`` for
what workers consume, ``send`` for what they publish.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from swarmstream.schemas.codec import JSON_CONTENT_TYPE, fingerprint, shipped_schemas
from swarmstream.schemas.models import TaskRequest
from swarmstream.streams.app.settings import Settings, TopicNames

ASYNCAPI_VERSION = "3.0.0"
AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
JSON_SCHEMA_FORMAT = "application/schema+json;version=draft-07"
AVRO_CONTENT_TYPE = "application/vnd.apache.avro+binary"
"""Avro single-object encoding: ``C3 01``, the 8-byte CRC-64-AVRO fingerprint, the record (schemas/codec.py)."""
KAFKA_BINDING_VERSION = "0.5.0"


@dataclass(frozen=True)
class TopicContract:
    """What one topic carries: its records (Avro full names), its key, who reads and writes it."""

    records: tuple[str, ...]
    key: str
    summary: str
    app_receives: bool
    app_sends: bool
    json_tasks: bool = False


TASK_ID = "task_id (UTF-8): every event of a task lands on the same partition number"

CONTRACTS: dict[str, TopicContract] = {
    "tasks": TopicContract(("swarmstream.TaskRequest",), TASK_ID,
                           "Tasks from callers: Avro, or JSON with the header content-type: application/json.",
                           app_receives=True, app_sends=False, json_tasks=True),
    "feedback": TopicContract(("swarmstream.Feedback",), TASK_ID,
                              "Judgements of results (0 wrong .. 1 right); selection learns from them.",
                              app_receives=True, app_sends=False),
    "select": TopicContract(("swarmstream.TaskRequest",), "tenant (UTF-8): one writer per tenant's spend",
                            "Select-mode tasks on their way to the budgeted selector.", app_receives=True, app_sends=True),
    "model": TopicContract(("swarmstream.ModelRequest",), TASK_ID, "Requests for one model.",
                           app_receives=True, app_sends=True),
    "delays": TopicContract(("swarmstream.ModelRequest",), TASK_ID,
                            "Requests waiting for their not_before_ms (retry backoff).", app_receives=True, app_sends=True),
    "responses": TopicContract(("swarmstream.ModelResponse",), TASK_ID, "Model answers.",
                               app_receives=True, app_sends=True),
    "failures": TopicContract(("swarmstream.Failure",), TASK_ID, "Failed model calls, with their failure class.",
                              app_receives=True, app_sends=True),
    "calls": TopicContract(("swarmstream.CallRecord",), "model_id (UTF-8): each model's calls in order",
                           "One record per model call; every worker folds it into breakers and model stats.",
                           app_receives=True, app_sends=True),
    "quality": TopicContract(("swarmstream.QualityEvent",), "model_id (UTF-8)",
                             "Quality evidence per model (confident consensus, feedback).", app_receives=True,
                             app_sends=True),
    "selections": TopicContract(("swarmstream.SelectionEvent",), TASK_ID,
                                "Every selection with its candidates' propensities (for counterfactual replay).",
                                app_receives=False, app_sends=True),
    "results": TopicContract(("swarmstream.TaskResult",), TASK_ID, "Exactly one result per accepted task.",
                             app_receives=False, app_sends=True),
    "review": TopicContract(("swarmstream.ReviewItem",), TASK_ID, "Low-consensus results for human review.",
                            app_receives=False, app_sends=True),
    "tool_calls": TopicContract(("swarmstream.ToolCall",), TASK_ID,
                                "Tool calls models proposed (raw arguments: restrict who may read this topic).",
                                app_receives=True, app_sends=True),
    "tool_results": TopicContract(("swarmstream.ToolResult",), TASK_ID, "Tool call outcomes (redacted).",
                                  app_receives=True, app_sends=True),
    "approvals": TopicContract(("swarmstream.Approval",), TASK_ID, "A person's decision on a dangerous tool call.",
                               app_receives=True, app_sends=False),
    "audit": TopicContract(("swarmstream.AuditEvent",), TASK_ID, "Every tool call, allowed or not (redacted).",
                           app_receives=False, app_sends=True),
    "review_decisions": TopicContract(("swarmstream.ReviewDecision",), TASK_ID,
                                      "A person's decision on a review item (the console writes it, with a "
                                      "Feedback on the feedback topic); the review queue is what lacks one.",
                                      app_receives=False, app_sends=False),
    "step_results": TopicContract(("swarmstream.TaskResult",), "the parent workflow task's task_id (UTF-8)",
                                  "Results of a workflow step's child tasks, routed to the workflow's partition.",
                                  app_receives=True, app_sends=True),
    "step": TopicContract(("swarmstream.TaskRequest",), TASK_ID,
                          "A workflow task on its way to one step (<prefix>.step.<workflow>.<step>).",
                          app_receives=True, app_sends=True),
    "dead_letters": TopicContract(("swarmstream.DeadLetter",), "the original event's key",
                                  "Undecodable or invalid events: the reason and the original bytes.",
                                  app_receives=False, app_sends=True),
}
"""By :class:`TopicNames` attribute (``model`` stands for every ``<prefix>.model.<id>``, ``step``
for every ``<prefix>.step.<workflow>.<step>``)."""

HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "content-type": {"type": "string", "description": f"absent = Avro; {JSON_CONTENT_TYPE} on the task topic"},
        "traceparent": {"type": "string", "description": "W3C trace context of the step that wrote the event"},
        "tracestate": {"type": "string", "description": "W3C trace state, with traceparent"},
    },
}


class ContractError(RuntimeError):
    """The app declares a topic this module has no contract for."""


def role_of(topic: str, names: TopicNames, models: Iterable[str]) -> str | None:
    """The :data:`CONTRACTS` key of a topic address, or None if it is not one of ours."""
    if topic in {names.model(m) for m in models}:
        return "model"
    if topic.startswith(f"{names.prefix}.step."):  # one per workflow step, from the workflows file
        return "step"
    for role in CONTRACTS:
        if role not in ("model", "step") and getattr(names, role, None) == topic:
            return role
    return None


def declared_topics(engine: Any) -> tuple[list[str], list[str]]:
    """(agents' input topics, tables' changelog topics) of a built engine (``streams/engine/engine.py``)."""
    return engine.source_topics(), engine.changelog_topics()


def _channel_id(address: str, prefix: str) -> str:
    return address.removeprefix(prefix + ".").replace(".", "_").replace("-", "_")


def _kafka_channel_binding(partitions: int) -> dict[str, Any]:
    return {"kafka": {"partitions": partitions, "bindingVersion": KAFKA_BINDING_VERSION}}


def _avro_schema(avro_name: str) -> dict[str, Any]:
    schema = shipped_schemas().get(avro_name)
    if schema is None:
        raise ContractError(f"streams/cli/asyncapi.py CONTRACTS names {avro_name}, but schemas/ ships no such .avsc")
    return {"schemaFormat": AVRO_FORMAT, "schema": schema}


def _avro_message(avro_name: str, key: str) -> dict[str, Any]:
    """A channel's message: the payload refers to the shared Avro schema; the key is the channel's own
    (one record may travel under different keys: a TaskRequest by task_id on tasks, by tenant on select)."""
    schema = shipped_schemas()[avro_name]
    short = avro_name.rsplit(".", 1)[-1]
    return {
        "name": short,
        "title": short,
        "summary": schema.get("doc", short)[:300],
        "contentType": AVRO_CONTENT_TYPE,
        "headers": {"$ref": "#/components/schemas/Headers"},
        "payload": {"$ref": f"#/components/schemas/{short}"},
        "bindings": {"kafka": {"key": {"type": "string", "description": key},
                               "bindingVersion": KAFKA_BINDING_VERSION}},
        "x-avro-single-object-fingerprint": fingerprint(schema).hex(),
    }


def _json_task_message(key: str) -> dict[str, Any]:
    return {
        "name": "TaskRequestJson",
        "title": "TaskRequest (JSON)",
        "summary": "The same task as JSON, for producers without Avro; set the header content-type: application/json.",
        "contentType": JSON_CONTENT_TYPE,
        "headers": {**HEADERS_SCHEMA, "required": ["content-type"]},
        "payload": {"$ref": "#/components/schemas/TaskRequestJson"},
        "bindings": {"kafka": {"key": {"type": "string", "description": key},
                               "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _json_task_schema() -> dict[str, Any]:
    schema = TaskRequest.model_json_schema()
    schema.pop("$defs", None)  # TaskRequest nests no models; draft-07 has no $defs
    return {"schemaFormat": JSON_SCHEMA_FORMAT, "schema": schema}


def _changelog_message(table: str) -> dict[str, Any]:
    return {
        "name": f"{table}Changelog",
        "title": f"{table} table changelog",
        "summary": "table changelog (internal, streams/engine/changelog.py): JSON key and value, last write per key wins.",
        "contentType": JSON_CONTENT_TYPE,
        "payload": {"description": "the table's value for the key (JSON); internal to the workers"},
        "bindings": {"kafka": {"key": {"description": "the table key (JSON)"},
                               "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def document(settings: Settings, engine: Any, models: Iterable[str], *, server: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic ``engine`` (built from ``settings``) declares or writes."""
    names = settings.topics
    model_ids = sorted(models)
    inputs, changelogs = declared_topics(engine)
    addresses = list(dict.fromkeys([*names.all(model_ids), *inputs]))
    try:
        version = metadata.version("swarmstream")
    except metadata.PackageNotFoundError:
        version = "0.0.0"

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Headers": HEADERS_SCHEMA}
    for address in addresses:
        role = role_of(address, names, model_ids)
        if role is None:
            raise ContractError(f"topic {address!r} has no entry in streams/cli/asyncapi.py CONTRACTS: add which record "
                                "it carries and what its key is")
        contract = CONTRACTS[role]
        cid = _channel_id(address, names.prefix)
        channel_messages: dict[str, Any] = {}
        for avro_name in contract.records:
            short = avro_name.rsplit(".", 1)[-1]
            schemas.setdefault(short, _avro_schema(avro_name))
            channel_messages[short] = _avro_message(avro_name, contract.key)
        if contract.json_tasks:
            schemas.setdefault("TaskRequestJson", _json_task_schema())
            channel_messages["TaskRequestJson"] = _json_task_message(contract.key)
        channels[cid] = {
            "address": address,
            "title": address,
            "description": f"{contract.summary} Key: {contract.key}.",
            "messages": channel_messages,
            "bindings": _kafka_channel_binding(settings.partitions),
        }
        refs = [{"$ref": f"#/channels/{cid}/messages/{m}"} for m in channel_messages]
        if contract.app_receives:
            operations[f"receive_{cid}"] = {"action": "receive", "channel": {"$ref": f"#/channels/{cid}"},
                                            "messages": refs, "summary": f"workers consume {address}"}
        if contract.app_sends:
            operations[f"send_{cid}"] = {"action": "send", "channel": {"$ref": f"#/channels/{cid}"},
                                         "messages": refs, "summary": f"workers publish to {address}"}

    for address in changelogs:
        table = address.removeprefix(settings.app_id + "-").removesuffix("-changelog")
        cid = "changelog_" + table.replace("-", "_")
        name = f"{table.replace('-', '_')}Changelog"
        channels[cid] = {
            "address": address,
            "title": address,
            "description": f"Changelog of the {table!r} table (internal; co-partitioned with its source).",
            "messages": {name: _changelog_message(table)},
            "bindings": _kafka_channel_binding(settings.partitions),
        }
        ref = [{"$ref": f"#/channels/{cid}/messages/{name}"}]
        operations[f"send_{cid}"] = {"action": "send", "channel": {"$ref": f"#/channels/{cid}"}, "messages": ref}
        operations[f"receive_{cid}"] = {"action": "receive", "channel": {"$ref": f"#/channels/{cid}"},
                                        "messages": ref, "summary": "table recovery after a restart or rebalance"}

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "swarmstream",
            "version": version,
            "description": ("Events of a swarmstream deployment: tasks in, results out, every step between them a "
                            "Kafka topic. Values are Avro single-object encoded (C3 01 + CRC-64-AVRO fingerprint + "
                            "record), so a reader resolves the writer's schema without a registry."),
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": AVRO_CONTENT_TYPE,
        "servers": {
            "kafka": {"host": server or (settings.broker.split("://", 1)[-1] if settings.broker else "localhost:9092"),
                      "protocol": "kafka", "description": "SWARM_BROKER (the embedded broker when empty)"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas},
    }


def build_document(settings: Settings, *, server: str | None = None) -> dict[str, Any]:
    """Build the app as a worker would (nothing connects) and describe it."""
    from swarmstream.agents.models.catalog import load_catalog
    from swarmstream.streams.app.topology import build

    catalog = load_catalog(settings.models, sim_url=settings.sim_url or "http://127.0.0.1:1/v1")
    topo = build(settings.model_copy(update={"metrics_port": 0}), settings.broker or "kafka://localhost:9092", catalog)
    return document(settings, topo.engine, catalog.models, server=server)


def render(doc: dict[str, Any], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2)
    import yaml

    plain = json.loads(json.dumps(doc))  # no shared objects, so YAML writes no &anchors other tools trip on
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, width=120)
