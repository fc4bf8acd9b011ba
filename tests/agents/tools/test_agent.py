"""The tool agents' handlers with in-memory tables and a recording emit (the broker-level
behaviour is in tests/e2e/test_tools.py): what runs, what is shared, voted, approved,
denied, reused from the ledger, and when the next turn is sent."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import orjson
from swarmstream.agents.tools.agent import ApprovalDesk, ConversationKeeper, ToolRunner
from swarmstream.agents.tools.conversation import Conversation
from swarmstream.agents.tools.coordination import ledger_key
from swarmstream.agents.tools.execution import Executor
from swarmstream.agents.tools.registry import (
    Limits,
    PolicyConfig,
    PythonHandler,
    Registry,
    SideEffect,
    ToolSpec,
)
from swarmstream.agents.tools.validation import call_digest
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import (
    Approval,
    AuditEvent,
    ModelRequest,
    Record,
    TaskRequest,
    ToolCall,
    ToolResult,
    now_ms,
)
from swarmstream.streams.engine import InputMessage

from tests.conftest import wait_for

CALLS: dict[str, list[Any]] = defaultdict(list)


def echo(**arguments: Any) -> dict[str, Any]:
    CALLS["echo"].append(arguments.get("api_key"))
    return {"echo": arguments}


async def slow_read(key: str) -> dict[str, Any]:
    CALLS["slow_read"].append(key)
    await asyncio.sleep(0.05)  # long enough for the other models' calls to arrive meanwhile
    return {"value": f"v-{key}"}


def record(text: str) -> dict[str, Any]:
    CALLS["record"].append(text)
    return {"value": text}


def danger(text: str) -> dict[str, Any]:
    CALLS["danger"].append(text)
    return {"value": text}


def _spec(name: str, function: str, side_effect: SideEffect, properties: dict[str, Any]) -> ToolSpec:
    return ToolSpec(name=name, description=name, handler=PythonHandler(f"{__name__}:{function}"),
                    side_effect=side_effect, input_schema={"type": "object", "properties": properties})


class DictLedger:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self.entries[key] = value


class DictTable(dict):  # type: ignore[type-arg]
    def set(self, key: str, value: Any) -> None:
        self[key] = value


def make_runner(*, echo: bool = False, approval_timeout_ms: int = 60_000,
                vote_timeout_ms: int = 2_000) -> tuple[ToolRunner, list[tuple[str, Record]], dict[str, list[Any]]]:
    CALLS.clear()
    registry = Registry(
        limits=Limits(approval_timeout_ms=approval_timeout_ms, vote_timeout_ms=vote_timeout_ms),
        policies={"default": PolicyConfig(), "strict": PolicyConfig(deny=["record"])},
        tenants={"acme": "strict"},
    )
    registry.add(_spec("echo", "echo", SideEffect.READ, {"api_key": {"type": "string"}, "text": {"type": "string"}}))
    registry.add(_spec("slow_read", "slow_read", SideEffect.READ, {"key": {"type": "string"}}))
    registry.add(_spec("record", "record", SideEffect.WRITE, {"text": {"type": "string"}}))
    registry.add(_spec("danger", "danger", SideEffect.DANGEROUS, {"text": {"type": "string"}}))
    emitted: list[tuple[str, Record]] = []

    async def emit(topic: str, key: str, record_: Record, headers: Any = None) -> None:
        emitted.append((topic, record_))

    runner = ToolRunner(registry=registry, executor=Executor(registry), ledger=DictLedger(),
                        approvals=ApprovalDesk(table=DictTable(), dead_letter_topic="dead", emit=emit), emit=emit,
                        results_topic="results", audit_topic="audit", dead_letter_topic="dead")
    return runner, emitted, CALLS


def tool_call(tool: str, arguments: dict[str, Any], *, model: str = "m1", task_id: str = "t1", turn: int = 0,
              mode: str = "single", models: list[str] | None = None, tenant: str = "default",
              deadline_ms: int | None = None) -> ToolCall:
    task = TaskRequest(task_id=task_id, prompt="p", mode=mode, tools=[tool], tenant=tenant)  # type: ignore[arg-type]
    request = ModelRequest(task=task, model_id=model, deadline_ms=deadline_ms or now_ms() + 10_000,
                           expected_models=models or [model], turn=turn + 1)
    text = orjson.dumps(arguments).decode()
    return ToolCall(request=request, turn=turn, call_id=f"c-{model}", tool=tool, arguments=text,
                    digest=call_digest(tool, text))


def message(call: Record) -> InputMessage:
    return InputMessage("tool-calls", 0, 0, b"k", codec().encode(call))


def audits(emitted: list[tuple[str, Record]]) -> list[AuditEvent]:
    return [r for t, r in emitted if t == "audit" and isinstance(r, AuditEvent)]


def results(emitted: list[tuple[str, Record]]) -> list[ToolResult]:
    return [r for t, r in emitted if t == "results" and isinstance(r, ToolResult)]


async def test_a_denied_call_never_reaches_its_handler_and_is_audited() -> None:
    runner, emitted, calls = make_runner()
    await runner.handle(message(tool_call("record", {"text": "x"}, tenant="acme")))
    assert calls["record"] == []
    [result] = results(emitted)
    assert result.status == "denied" and result.content.startswith("permission denied: policy 'strict'")
    assert [(a.decision, a.tenant) for a in audits(emitted)] == [("denied", "acme")]


async def test_unknown_tools_and_bad_arguments_go_back_to_the_model() -> None:
    runner, emitted, calls = make_runner()
    await runner.handle(message(tool_call("nope", {})))
    await runner.handle(message(tool_call("record", {"text": 5})))
    first, second = results(emitted)
    assert first.content.startswith("unknown tool 'nope'")
    assert second.content.startswith("invalid arguments: arguments of 'record' do not match its input schema at /text")
    assert calls["record"] == []
    assert [a.decision for a in audits(emitted)] == ["invalid", "invalid"]


async def test_a_recorded_call_is_reused_not_run_again() -> None:
    runner, emitted, calls = make_runner()
    call = tool_call("record", {"text": "once"})
    await runner.handle(message(call))
    await runner.handle(message(call))  # redelivered (a crash, a replay)
    assert calls["record"] == ["once"]
    assert [a.decision for a in audits(emitted)] == ["allowed", "reused"]
    assert [r.content for r in results(emitted)] == ['{"value":"once"}'] * 2


async def test_the_same_read_by_three_models_runs_once() -> None:
    runner, emitted, calls = make_runner()
    models = ["m1", "m2", "m3"]
    await asyncio.gather(*(runner.handle(message(tool_call("slow_read", {"key": "a"}, model=m, mode="consensus",
                                                           models=models))) for m in models))
    assert calls["slow_read"] == ["a"]
    assert sorted(a.decision for a in audits(emitted)) == ["allowed", "shared", "shared"]
    assert {r.content for r in results(emitted)} == {'{"value":"v-a"}'}


async def test_a_write_needs_a_majority_of_the_task_models() -> None:
    runner, emitted, calls = make_runner()
    models = ["m1", "m2", "m3"]
    # one proposes, the other two make other calls this turn: refused at once
    await asyncio.gather(
        runner.handle(message(tool_call("record", {"text": "w"}, model="m1", mode="consensus", models=models))),
        runner.handle(message(tool_call("slow_read", {"key": "b"}, model="m2", mode="consensus", models=models))),
        runner.handle(message(tool_call("slow_read", {"key": "b"}, model="m3", mode="consensus", models=models))),
    )
    assert calls["record"] == []
    refused = [a for a in audits(emitted) if a.tool == "record"]
    assert [(a.decision, a.reason) for a in refused] == [
        ("refused", "a write call runs only when a majority (2 of 3) of the task's models propose it; 1 did")]

    emitted.clear()
    await asyncio.gather(*(
        runner.handle(message(tool_call("record", {"text": "w"}, model=m, mode="consensus", models=models,
                                        task_id="t2")))
        for m in ("m1", "m2")
    ))
    assert calls["record"] == ["w"]
    assert sorted(a.decision for a in audits(emitted)) == ["allowed", "shared"]


async def test_an_unsettled_vote_is_refused_when_its_wait_runs_out() -> None:
    runner, emitted, calls = make_runner(vote_timeout_ms=100)
    await runner.handle(message(tool_call("record", {"text": "w"}, model="m1", mode="consensus",
                                          models=["m1", "m2", "m3"])))
    assert calls["record"] == [] and results(emitted)[0].status == "refused"


async def test_a_dangerous_call_runs_only_after_an_approval() -> None:
    runner, emitted, calls = make_runner(approval_timeout_ms=100)
    await runner.handle(message(tool_call("danger", {"text": "no"})))
    assert calls["danger"] == []
    assert [a.decision for a in audits(emitted)] == ["awaiting_approval", "denied"]
    assert results(emitted)[0].content == "permission denied: no approval arrived before the deadline"

    runner, emitted, calls = make_runner()
    call = tool_call("danger", {"text": "yes"}, task_id="t9")
    handling = asyncio.create_task(runner.handle(message(call)))
    await wait_for(lambda: [a.decision for a in audits(emitted)] == ["awaiting_approval"], timeout_s=5,
                   what="the call to wait for its approval")
    assert calls["danger"] == [] and not handling.done()
    approval = Approval(task_id="t9", tool="danger", digest=call.digest, approver="ada", at_ms=now_ms())
    await runner._approvals.handle(InputMessage("approvals", 0, 0, b"t9", codec().encode(approval)))
    await asyncio.wait_for(handling, 2)
    assert calls["danger"] == ["yes"]
    assert [a.decision for a in audits(emitted)] == ["awaiting_approval", "allowed"]


async def test_a_refused_approval_denies_with_the_reviewers_reason() -> None:
    runner, emitted, calls = make_runner()
    approval = Approval(task_id="t1", tool="danger", approved=False, approver="bo", reason="not today", at_ms=1)
    await runner._approvals.handle(InputMessage("approvals", 0, 0, b"t1", codec().encode(approval)))
    await runner.handle(message(tool_call("danger", {"text": "x"})))
    assert calls["danger"] == []
    assert results(emitted)[0].content == "permission denied: approval refused by bo: not today"


async def test_the_next_turn_is_sent_once_every_result_of_the_turn_is_in() -> None:
    registry = Registry()
    sent: list[tuple[str, Record]] = []

    async def emit(topic: str, key: str, record_: Record, headers: Any = None) -> None:
        sent.append((topic, record_))

    keeper = ConversationKeeper(table=DictTable(), emit=emit, model_topic=lambda m: f"model.{m}",
                                dead_letter_topic="dead", context_windows={"m1": 8192}, registry=registry)
    base = tool_call("echo", {"text": "a"})
    following = base.request.model_copy(update={"conversation": Conversation(
        messages=({"role": "assistant", "text": "", "calls": [{"id": "c0", "name": "echo", "arguments": "{}"},
                                                              {"id": "c1", "name": "echo", "arguments": "{}"}]},),
        calls=2).to_json()})

    def result(index: int, content: str) -> InputMessage:
        call = base.model_copy(update={"request": following, "index": index, "count": 2, "call_id": f"c{index}"})
        return message(ToolResult(call=call, status="ok", content=content))

    await keeper.handle(result(1, "second"))
    assert sent == []
    await keeper.handle(result(1, "second"))  # a redelivered result counts once
    assert sent == []
    await keeper.handle(result(0, "first"))
    [(topic, request)] = sent
    assert topic == "model.m1" and isinstance(request, ModelRequest) and request.turn == 1
    messages = Conversation.from_json(request.conversation).messages
    assert [(m["role"], m.get("content")) for m in messages] == [
        ("assistant", None), ("tool", "first"), ("tool", "second")]
    await keeper.handle(result(0, "first"))  # after the turn went on: ignored
    assert len(sent) == 1


def test_ledger_keys_name_task_turn_and_call() -> None:
    assert ledger_key("t", 2, "d") == "t|2|d"


import pytest
from swarmstream.agents.tools.coordination import vote_outcome


@pytest.mark.parametrize(
    ("proposers", "heard", "expected", "outcome"),
    [
        ({"a"}, {"a"}, ["a", "b", "c"], "wait"),  # b and c could still agree
        ({"a"}, {"a", "b"}, ["a", "b", "c"], "wait"),  # c could still make it two
        ({"a"}, {"a", "b", "c"}, ["a", "b", "c"], "refuse"),
        ({"a", "b"}, {"a", "b"}, ["a", "b", "c"], "run"),
        ({"a", "b"}, {"a", "b"}, ["a", "b", "c", "d"], "wait"),  # 2 of 4 is no majority yet
        ({"a", "b"}, {"a", "b", "c", "d"}, ["a", "b", "c", "d"], "refuse"),  # ... and never will be
        ({"a", "b", "c"}, {"a", "b", "c"}, ["a", "b", "c", "d"], "run"),
        ({"a"}, {"a"}, ["a"], "run"),
    ],
)
def test_vote_outcomes(proposers, heard, expected, outcome) -> None:
    assert vote_outcome(proposers, heard, expected) == outcome
