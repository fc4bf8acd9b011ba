"""Tool use end to end on the real broker: the multi-turn loop over topics, in both
protocols, with permissions, approvals, votes, shared reads, the ledger and MCP.

Counters of a loopback HTTP tool service (tests/agents/tools/service.py) prove which
handlers ran in the worker process and which never did.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from swarmstream.schemas.codec import codec
from swarmstream.schemas.models import (
    Approval,
    AuditEvent,
    Record,
    TaskRequest,
    TaskResult,
    ToolResult,
    now_ms,
)

from tests.agents.tools.service import ToolService, http_tool, write_tools_file
from tests.conftest import read_topic


def tool_task(prompt: str, model: str = "tool-a", *, tools: tuple[str, ...] = ("calculator",),
              answer_type: str = "number", mode: str = "single", models: list[str] | None = None,
              timeout_ms: int = 15_000, **extra: object) -> TaskRequest:
    return TaskRequest(prompt=prompt, answer_type=answer_type, mode=mode, models=models or [model],  # type: ignore[arg-type]
                       tools=list(tools), timeout_ms=timeout_ms, **extra)  # type: ignore[arg-type]


async def records(stack, topic: str) -> list[Record]:
    return await read_topic(stack.broker_url, topic, count=1_000_000, timeout_s=0.5)


async def audit_until(stack, task_id: str, done: Callable[[list[AuditEvent]], bool], *,
                      timeout_s: float = 20) -> list[AuditEvent]:
    """The task's audit events once ``done`` holds for them (polled, with a deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = [e for e in await records(stack, stack.settings.topics.audit)
                  if isinstance(e, AuditEvent) and e.task_id == task_id]
        if done(events):
            return events
        assert time.monotonic() < deadline, f"audit of {task_id}: condition not met; got {events}"
        await asyncio.sleep(0.2)


async def result_of(stack, task: TaskRequest, timeout_s: float = 30) -> TaskResult:
    await stack.client.submit(task)
    return await stack.client.result(task.task_id, timeout_s=timeout_s)


# --- the loop, default demo tools -------------------------------------------------------------


async def test_the_tool_loop_in_both_protocols(stack) -> None:
    """Two calls over two turns; parallel calls; a schema error the model corrects; an unknown
    tool it corrects; a looping model stopped with its status. One stack for all of them."""
    sequential = {m: tool_task("What is (17 * 23) + 5? Use the calculator. Answer with a number.", m)
                  for m in ("tool-a", "tool-b")}
    parallel = {m: tool_task("What is 12 * 3 plus 7 * 8? Use the calculator. Answer with a number.", m)
                for m in ("tool-a", "tool-b")}
    for task in (*sequential.values(), *parallel.values()):
        await stack.client.submit(task)

    for model, task in sequential.items():
        result = await stack.client.result(task.task_id, timeout_s=30)
        assert (result.status, result.answer, result.answered_by) == ("ok", "396", model)
        events = await audit_until(stack, task.task_id, lambda es: len(es) >= 2)
        assert [(e.turn, e.decision, e.status) for e in sorted(events, key=lambda e: e.turn)] == [
            (0, "allowed", "ok"), (1, "allowed", "ok")]
        assert result.cost_micros > 0  # every turn's cost is summed into the answer
    for model, task in parallel.items():
        result = await stack.client.result(task.task_id, timeout_s=30)
        assert (result.status, result.answer) == ("ok", "92"), model
        events = await audit_until(stack, task.task_id, lambda es: len(es) >= 3)
        assert sorted((e.turn, e.arguments) for e in events) == [
            (0, '{"expression":"12 * 3"}'), (0, '{"expression":"7 * 8"}'), (1, '{"expression":"36 + 56"}')]

    stack.fleet.set_tool_behaviour("tool-c", "malformed")
    stack.fleet.set_tool_behaviour("tool-d", "unknown_tool")
    for model in ("tool-c", "tool-d"):
        task = tool_task("What is (6 * 7) + 1? Use the calculator. Answer with a number.", model)
        result = await result_of(stack, task)
        assert (result.status, result.answer) == ("ok", "43"), model
        events = await audit_until(stack, task.task_id, lambda es: len(es) >= 3)
        first = min(events, key=lambda e: (e.turn, e.at_ms))
        assert first.decision == "invalid" and first.status == "error"
        expected = "do not match its input schema" if model == "tool-c" else "unknown tool 'calculator_v2'"
        assert expected in first.reason
        assert [e.decision for e in sorted(events, key=lambda e: e.turn)][1:] == ["allowed", "allowed"]

    stack.fleet.set_tool_behaviour("tool-d", "loop")
    looping = tool_task("What is 2 * 21? Answer with a number.", "tool-d")
    result = await result_of(stack, looping)
    assert result.status == "tool_loop" and result.answer is None
    assert [(a.model_id, a.failure_class) for a in result.attempts] == [("tool-d", "tool_loop")]
    assert "tool_loop" in result.reason
    events = await audit_until(stack, looping.task_id, lambda es: len(es) >= 2)
    assert len(events) == 2  # two identical calls ran (max_identical_calls); the third stopped the loop

    # chain mode: the first link fails, the next one answers through the tool loop
    chained = TaskRequest(prompt="What is (17 * 23) + 5? Use the calculator. Answer with a number.",
                          answer_type="number", mode="chain", chain="two", tools=["calculator"], timeout_ms=15_000)
    result = await result_of(stack, chained)
    assert (result.status, result.answer, result.answered_by) == ("ok", "396", "fast-a")
    assert [(a.model_id, a.failure_class) for a in result.attempts] == [("flaky", "server_error"), ("fast-a", None)]


# --- permissions, approvals, timeouts, consensus, secrets: tools on a loopback service ---------


@pytest.fixture
async def service():
    svc = await ToolService(slow_s=3.0).start()
    yield svc
    await svc.stop()


def service_tools(service: ToolService, path: Path, **limits: int) -> Path:
    return write_tools_file(
        path,
        [
            http_tool(service, "forbidden", "read"),
            http_tool(service, "notify", "dangerous"),
            http_tool(service, "slow", "read", timeout_ms=300),
            http_tool(service, "shared_read", "read"),
            http_tool(service, "record", "write"),
            http_tool(service, "echo", "read"),
        ],
        limits={"approval_timeout_ms": 60_000, "vote_timeout_ms": 3_000, **limits},
        policies={"default": {"allow": ["*"]}, "strict": {"allow": ["*"], "deny": ["forbidden"]}},
        tenants={"acme": "strict", "*": "default"},
    )


async def test_permissions_approvals_timeouts_and_secrets(make_stack, service, tmp_path, monkeypatch) -> None:
    # the approval must arrive within this (it missed 1.5 s once, on 2 cores at load 7); the
    # unapproved task below waits it out, well inside its 15 s deadline
    tools_file = service_tools(service, tmp_path / "tools.yaml", approval_timeout_ms=6_000)
    monkeypatch.setenv("SWARM_WORKER_LOGLEVEL", "info")  # the secret must not reach even info-level logs
    async with make_stack(tools=tools_file) as stack:
        # a denied tool never reaches its handler, and the denial is audited
        denied = tool_task('tool: forbidden {"text": "x"}', tools=("forbidden",), answer_type="text", tenant="acme")
        result = await result_of(stack, denied)
        assert result.answer is not None and "permission denied" in result.answer
        events = await audit_until(stack, denied.task_id, lambda es: len(es) >= 1)
        assert [(e.decision, e.tenant, e.tool) for e in events] == [("denied", "acme", "forbidden")]
        assert "policy 'strict' denies tool 'forbidden'" in events[0].reason
        assert service.calls["forbidden"] == 0

        # a dangerous tool waits for a person: approved, it runs once
        approved = tool_task('tool: notify {"text": "deploy"}', "tool-b", tools=("notify",), answer_type="text")
        await stack.client.submit(approved)
        waiting = await audit_until(stack, approved.task_id, lambda es: any(e.decision == "awaiting_approval"
                                                                            for e in es))
        assert service.calls["notify"] == 0
        approval = Approval(task_id=approved.task_id, tool="notify", digest=waiting[0].digest, approver="ada",
                            at_ms=now_ms())
        await stack.client.submit_raw(codec().encode(approval), key=approved.task_id.encode(),
                                      topic=stack.settings.topics.approvals)
        result = await stack.client.result(approved.task_id, timeout_s=20)
        assert (result.status, result.answer) == ("ok", "deploy")
        assert service.calls["notify"] == 1

        # ... and without an approval before its limit it is denied and never runs
        unapproved = tool_task('tool: notify {"text": "again"}', tools=("notify",), answer_type="text")
        result = await result_of(stack, unapproved)
        assert result.answer is not None and "no approval arrived" in result.answer
        assert service.calls["notify"] == 1
        events = await audit_until(stack, unapproved.task_id, lambda es: any(e.decision == "denied" for e in es))
        assert {e.decision for e in events} == {"awaiting_approval", "denied"}

        # a tool past its timeout: the model is told, the audit says timeout
        slow = tool_task('tool: slow {"text": "x"}', tools=("slow",), answer_type="text")
        result = await result_of(stack, slow)
        assert result.answer is not None and "timeout" in result.answer
        events = await audit_until(stack, slow.task_id, lambda es: len(es) >= 1)
        assert [(e.decision, e.status) for e in events] == [("allowed", "timeout")]
        assert events[0].latency_ms < 2_000

        # a secret passed as an argument appears in no audit event, result or log line
        secret = "sk-test-" + "S3cr3tValue" * 2
        leaky = tool_task('tool: echo {"api_key": "' + secret + '", "text": "hello ' + secret + '"}',
                          tools=("echo",), answer_type="text")
        result = await result_of(stack, leaky)
        assert result.status == "ok" and result.answer is not None and "[REDACTED]" in result.answer
        await audit_until(stack, leaky.task_id, lambda es: len(es) >= 1)
        assert service.bodies["echo"][-1]["api_key"] == secret  # the tool itself got the real value
        topics = stack.settings.topics
        calls = await read_topic(stack.broker_url, topics.tool_calls, count=1_000_000, timeout_s=0.5)
        assert any(secret in r.arguments for r in calls)  # the one topic that must carry it
        for topic in (topics.audit, topics.tool_results, topics.results, topics.responses, topics.failures):
            for record in await records(stack, topic):
                assert secret not in record.model_dump_json(), f"{topic}: {record}"
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
        assert logs  # the worker logged at info level
        assert secret not in logs


async def test_consensus_shares_reads_and_votes_on_writes(make_stack, service, tmp_path) -> None:
    tools_file = service_tools(service, tmp_path / "tools.yaml")
    models = ["tool-a", "tool-b", "tool-c"]
    async with make_stack(tools=tools_file) as stack:
        # three models make the same read call: it runs once, every model gets the result
        shared = tool_task('tool: shared_read {"key": "k1", "text": "v1"}', tools=("shared_read",),
                           answer_type="text", mode="consensus", models=models)
        result = await result_of(stack, shared)
        assert (result.status, result.answer, len(result.votes)) == ("ok", "v1", 3)
        assert service.calls["shared_read"] == 1
        events = await audit_until(stack, shared.task_id, lambda es: len(es) >= 3)
        decisions = sorted(e.decision for e in events)
        assert decisions[0] == "allowed" and set(decisions[1:]) <= {"shared", "reused"}  # in flight, or in the ledger
        results = [r for r in await records(stack, stack.settings.topics.tool_results)
                   if isinstance(r, ToolResult) and r.call.request.task.task_id == shared.task_id]
        assert sorted(r.shared for r in results) == [False, True, True]

        # a write proposed by one model of three is refused (the other two read)
        lone = tool_task('tool@tool-a: record {"text": "w1"}\n'
                         'tool@tool-b: shared_read {"text": "w1"}\n'
                         'tool@tool-c: shared_read {"text": "w1"}',
                         tools=("record", "shared_read"), answer_type="text", mode="consensus", models=models)
        result = await result_of(stack, lone)
        assert result.answer == "w1"  # the two readers outvote the refused writer
        assert service.calls["record"] == 0
        events = await audit_until(stack, lone.task_id, lambda es: len(es) >= 3)
        refused = [e for e in events if e.tool == "record"]
        assert [(e.model_id, e.decision) for e in refused] == [("tool-a", "refused")]
        assert "majority (2 of 3)" in refused[0].reason

        # proposed by two of three, it runs once and both proposers get its result
        pair = tool_task('tool@tool-a: record {"text": "w2"}\n'
                         'tool@tool-b: record {"text": "w2"}\n'
                         'tool@tool-c: shared_read {"text": "w2"}',
                         tools=("record", "shared_read"), answer_type="text", mode="consensus", models=models)
        result = await result_of(stack, pair)
        assert (result.status, result.answer) == ("ok", "w2")
        assert service.calls["record"] == 1
        events = await audit_until(stack, pair.task_id, lambda es: len(es) >= 3)
        assert sorted(e.decision for e in events if e.tool == "record") == ["allowed", "shared"]


async def test_a_worker_killed_after_a_tool_ran_does_not_run_it_again(make_stack, service, tmp_path) -> None:
    """One partition: a call waiting for an approval holds the tool-calls offsets back, so a
    write that ran after it is redelivered to the restarted worker, which finds it in the ledger."""
    tools_file = service_tools(service, tmp_path / "tools.yaml")
    async with make_stack(tools=tools_file, partitions=1) as stack:
        holder = tool_task('tool: notify {"text": "hold"}', tools=("notify",), answer_type="text", timeout_ms=90_000)
        await stack.client.submit(holder)
        await audit_until(stack, holder.task_id, lambda es: any(e.decision == "awaiting_approval" for e in es))
        write = tool_task('tool: record {"text": "once"}', tools=("record",), answer_type="text", timeout_ms=90_000)
        result = await result_of(stack, write)
        assert (result.answer, service.calls["record"]) == ("once", 1)

        stack.workers[0].kill()
        stack.start_worker()
        # It timed out in 2 of ~17 runs while the model-call dedupe was on (a restarted worker
        # then stopped taking events after its first fetches: DESIGN.md, "Exactly one result");
        # with it off (the default), 0 of 3. The tool did not run again then either.
        events = await audit_until(stack, write.task_id, lambda es: any(e.decision == "reused" for e in es),
                                   timeout_s=90)
        decisions = [e.decision for e in events]
        # a rebalance during the restart may redeliver it more than once: every time from the ledger
        assert decisions[0] == "allowed" and set(decisions[1:]) == {"reused"}, decisions
        assert service.calls["record"] == 1  # redelivered, found in the ledger, not run again

        approval = Approval(task_id=holder.task_id, tool="notify", approver="ada", at_ms=now_ms())
        await stack.client.submit_raw(codec().encode(approval), key=holder.task_id.encode(),
                                      topic=stack.settings.topics.approvals)
        assert (await stack.client.result(holder.task_id, timeout_s=30)).answer == "hold"


# --- MCP ---------------------------------------------------------------------------------------

MCP_SERVER = Path(__file__).parent.parent / "agents" / "tools" / "mcp_server.py"


async def test_a_model_calls_a_tool_of_an_mcp_server(make_stack, tmp_path) -> None:
    from tests.agents.tools.mcp_server import start_http_server

    async with start_http_server() as url:
        tools_file = write_tools_file(
            tmp_path / "tools.yaml", [],
            mcp_servers=[{"name": "demo", "url": url, "side_effects": {"add": "read"}}],
        )
        async with make_stack(tools=tools_file) as stack:
            for model in ("tool-a", "tool-b"):
                task = tool_task('tool: add {"a": 2, "b": 40}', model, tools=("add",))
                result = await result_of(stack, task)
                assert (result.status, result.answer) == ("ok", "42"), model
            # the server marks `wipe` read-only; our config does not classify it: dangerous
            wipe = tool_task('tool: wipe {}', tools=("wipe",), answer_type="text", timeout_ms=3_000)
            await stack.client.submit(wipe)
            events = await audit_until(stack, wipe.task_id, lambda es: len(es) >= 1)
            assert (events[0].side_effect, events[0].decision) == ("dangerous", "awaiting_approval")
    assert sys.executable  # the server ran under this interpreter


async def test_the_tools_demo_reports_accuracy_calls_denials_and_cache_hits(broker_url, monkeypatch) -> None:
    from swarmstream.streams.cli.demo import render, run_demo

    monkeypatch.setenv("SWARM_BROKER", broker_url)
    summary = await run_demo(tasks=10, mode="tools", quiet=True)

    assert (summary["results"], summary["accuracy"]) == (10, 1.0)
    assert summary["denied"] == 2 * 3  # two email tasks, three models each, under the no-email policy
    assert summary["cache_hits"] > 0  # the models of a task share each call's execution
    assert summary["tool_calls_per_task"] > 1
    assert "cache hits" in render(summary)
