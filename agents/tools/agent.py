"""Tool agents: swarm.tool-calls -> (permission, votes, approval, ledger, handler) ->
swarm.tool-results + swarm.audit; swarm.tool-results -> the conversation table -> the
next model turn; swarm.approvals -> the approvals table.

These handlers move events; every decision is a pure module's (``permissions``,
``validation``, ``conversation``, ``windowing``, ``coordination``, ``redaction``).
``streams/app/tools.py`` gives them their topics and tables. Each call runs in its
own task (the engine, ``streams/engine/engine.py``), so a slow tool, a vote or an approval
wait never blocks its partition.

Exactly once per executed call: the outcome is written to the ledger (a changelog
table keyed ``task|turn|digest``) and the write is acknowledged BEFORE the ToolResult
is published; a redelivered or replayed call finds the ledger entry and reuses it.
The window left: a crash after the handler ran but before its ledger write runs it
again (a handler that must never repeat needs its own idempotency key: the digest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.tools import permissions
from swarmstream.agents.tools.conversation import (
    Conversation,
    turn_results,
    with_results,
)
from swarmstream.agents.tools.coordination import VoteDesk, ledger_key, majority
from swarmstream.agents.tools.execution import Executor, Outcome
from swarmstream.agents.tools.redaction import redact_arguments, redact_text
from swarmstream.agents.tools.registry import (
    PolicyConfig,
    Registry,
    SideEffect,
    ToolSpec,
)
from swarmstream.agents.tools.turns import shown_arguments
from swarmstream.agents.tools.validation import (
    ArgumentError,
    parse_arguments,
    validate_arguments,
)
from swarmstream.agents.tools.windowing import budget_for, window
from swarmstream.schemas.models import (
    Approval,
    AuditEvent,
    ModelRequest,
    ToolCall,
    ToolResult,
    now_ms,
)

log = logging.getLogger(__name__)


class KeyValue(Protocol):
    """A table: ``get`` reads this worker's partitions; ``set`` holds the event's ack until the
    write is in the changelog (``topology.durable``)."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...


class Ledger(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...
    async def put(self, key: str, value: dict[str, Any]) -> None:
        """Returns once the entry is in the changelog."""


@dataclass(frozen=True)
class Verdict:
    status: str  # ok | error | denied | refused | timeout
    content: str
    decision: str  # allowed | denied | invalid | refused | reused | shared | expired
    reason: str = ""
    shared: bool = False
    latency_ms: int = 0
    cost_micros: int = 0


def approval_key(task_id: str, tool: str, digest: str) -> str:
    return f"{task_id}|{tool}|{digest}"


class ApprovalDesk:
    """Approvals by (task, tool, digest); an empty digest approves every call of the tool in the task."""

    def __init__(self, *, table: KeyValue, dead_letter_topic: str, emit: Emit) -> None:
        self._table = table
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}

    async def handle(self, message: InputMessage) -> None:
        approval = await self._dead.decode(message, Approval)
        if approval is None:
            return
        key = approval_key(approval.task_id, approval.tool, approval.digest)
        # received_ms: the approvals table keeps a decision for the task window from here (tool_wiring.py)
        record = {"approved": approval.approved, "approver": approval.approver, "reason": approval.reason,
                  "received_ms": now_ms()}
        self._table.set(key, record)
        for waiter_key in (key, *([k for k in self._waiters if k.startswith(f"{approval.task_id}|{approval.tool}|")]
                                  if not approval.digest else [])):
            for waiter in self._waiters.pop(waiter_key, []):
                if not waiter.done():
                    waiter.set_result(record)

    def lookup(self, task_id: str, tool: str, digest: str) -> dict[str, Any] | None:
        return self._table.get(approval_key(task_id, tool, digest)) or self._table.get(approval_key(task_id, tool, ""))

    async def wait(self, task_id: str, tool: str, digest: str, timeout_s: float) -> dict[str, Any] | None:
        found = self.lookup(task_id, tool, digest)
        if found is not None:
            return found
        key = approval_key(task_id, tool, digest)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(waiter)
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                return await waiter
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(key)
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    self._waiters.pop(key, None)


class ToolRunner:
    def __init__(
        self,
        *,
        registry: Registry,
        executor: Executor,
        ledger: Ledger,
        approvals: ApprovalDesk,
        emit: Emit,
        results_topic: str,
        audit_topic: str,
        dead_letter_topic: str,
        clock: Callable[[], int] = now_ms,
        ready: Callable[[], Awaitable[None]] | None = None,
        flush: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._ready = ready
        self._flush = flush  # sends what the handler emitted so far: the person must see the request
        self._registry = registry
        self._executor = executor
        self._ledger = ledger
        self._approvals = approvals
        self._emit = emit
        self._results = results_topic
        self._audit = audit_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._clock = clock
        self._limiter = permissions.RateLimiter(clock)
        self._votes = VoteDesk()
        self._inflight: dict[str, asyncio.Future[Outcome]] = {}

    async def handle(self, message: InputMessage) -> None:
        call = await self._dead.decode(message, ToolCall)
        if call is None:
            return
        if self._ready is not None:
            await self._ready()  # MCP tools imported
        shown = shown_arguments(call.arguments)
        secrets = _secrets_of(call.arguments)
        spec = self._registry.get(call.tool)
        verdict = await self._decide_and_run(call, spec, shown)
        content = redact_text(verdict.content, secrets)
        shown_call = call.model_copy(update={"arguments": shown, "request": scrub_request(call.request, secrets)})
        result = ToolResult(call=shown_call, status=verdict.status, content=content, shared=verdict.shared,
                            latency_ms=verdict.latency_ms, cost_micros=verdict.cost_micros, completed_ms=self._clock())
        task = call.request.task
        await self._emit(self._results, task.task_id, result)
        await self._emit(self._audit, task.task_id, self._audit_event(call, spec, shown, verdict))

    def _audit_event(self, call: ToolCall, spec: ToolSpec | None, shown: str, verdict: Verdict,
                     decision: str | None = None) -> AuditEvent:
        task = call.request.task
        return AuditEvent(
            task_id=task.task_id, tenant=task.tenant, model_id=call.request.model_id, tool=call.tool, turn=call.turn,
            call_id=call.call_id, digest=call.digest, arguments=shown,
            side_effect=str(spec.side_effect) if spec else "", decision=decision or verdict.decision,
            reason=redact_text(verdict.reason or (verdict.content if verdict.status != "ok" else "")),
            status="" if decision else verdict.status, latency_ms=verdict.latency_ms,
            cost_micros=verdict.cost_micros, at_ms=self._clock(),
        )

    def _policies(self, tenant: str, task_policy: str | None) -> list[tuple[str, PolicyConfig]] | str:
        name = self._registry.tenants.get(tenant) or self._registry.tenants.get("*") or "default"
        chosen = [(name, self._registry.policy_for_tenant(tenant))]
        if task_policy is not None:
            policy = self._registry.policies.get(task_policy)
            if policy is None:
                return f"the task's tool_policy {task_policy!r} is not in tools.yaml (known: " \
                       f"{', '.join(sorted(self._registry.policies))})"
            chosen.append((task_policy, policy))
        return chosen

    async def _decide_and_run(self, call: ToolCall, spec: ToolSpec | None, shown: str) -> Verdict:
        request = call.request
        task = request.task
        consensus = task.mode == "consensus" and len(set(request.expected_models)) > 1
        if consensus:
            self._votes.hear(task.task_id, call.turn, request.model_id, request.expected_models)
        if spec is None:
            offered = [n for n in task.tools if n in self._registry.tools]
            return Verdict("error", f"unknown tool {call.tool!r}; the tools you may call: {', '.join(offered) or 'none'}",
                           "invalid")
        remaining_ms = request.deadline_ms - self._clock()
        if remaining_ms <= 0:
            return Verdict("timeout", "timeout: the task's deadline passed before the call could run", "expired")
        try:
            arguments = parse_arguments(call.arguments)
            validate_arguments(spec.name, spec.input_schema, arguments)
        except ArgumentError as exc:
            return Verdict("error", f"invalid arguments: {exc}", "invalid", reason=str(exc))
        policies = self._policies(task.tenant, task.tool_policy)
        if isinstance(policies, str):
            return Verdict("denied", f"permission denied: {policies}", "denied", reason=policies)
        decision = permissions.decide(spec, arguments, task_tools=task.tools, policies=policies)
        if not decision.allowed:
            return Verdict("denied", f"permission denied: {decision.reason}", "denied", reason=decision.reason)

        key = ledger_key(task.task_id, call.turn, call.digest)
        recorded = self._ledger.get(key)
        if recorded is not None:
            outcome = Outcome.from_dict(recorded)
            return Verdict(outcome.status, outcome.content, "reused", "recorded in the ledger: not run again",
                           shared=True, latency_ms=outcome.latency_ms)

        if consensus and spec.side_effect in (SideEffect.WRITE, SideEffect.DANGEROUS):
            wait_s = min(self._registry.limits.vote_timeout_ms, remaining_ms) / 1000
            vote = await self._votes.propose(task.task_id, call.turn, request.model_id, call.digest,
                                             request.expected_models, wait_s)
            if vote.outcome != "run":
                reason = (f"a {spec.side_effect} call runs only when a majority ({majority(vote.models)} of "
                          f"{vote.models}) of the task's models propose it; {vote.proposers} did")
                return Verdict("refused", f"refused: {reason}", "refused", reason=reason)

        if decision.needs_approval:
            await self._emit(self._audit, task.task_id, self._audit_event(
                call, spec, shown, Verdict("", "", "awaiting_approval", decision.reason), decision="awaiting_approval"))
            if self._flush is not None:
                await self._flush()
            wait_s = min(self._registry.limits.approval_timeout_ms, request.deadline_ms - self._clock()) / 1000
            approval = await self._approvals.wait(task.task_id, spec.name, call.digest, wait_s)
            if approval is None:
                reason = "no approval arrived before the deadline"
                return Verdict("denied", f"permission denied: {reason}", "denied", reason=reason)
            if not approval["approved"]:
                reason = f"approval refused by {approval['approver'] or 'a reviewer'}: {approval['reason']}"
                return Verdict("denied", f"permission denied: {reason}", "denied", reason=reason)

        budget_ms = request.deadline_ms - self._clock()
        if budget_ms <= 0:
            return Verdict("timeout", "timeout: the task's deadline passed before the call could run", "expired")
        outcome, shared = await self._execute_once(key, spec, arguments, budget_ms, task.tenant, policies,
                                                   _secrets_of(call.arguments), task.created_ms)
        if outcome.status == "denied":
            return Verdict("denied", outcome.content, "denied", reason=outcome.content)
        return Verdict(outcome.status, outcome.content, "shared" if shared else "allowed", shared=shared,
                       latency_ms=outcome.latency_ms, cost_micros=0 if shared else outcome.cost_micros)

    async def _execute_once(self, key: str, spec: ToolSpec, arguments: dict[str, Any], budget_ms: int, tenant: str,
                            policies: list[tuple[str, PolicyConfig]], secrets: list[str],
                            created_ms: int) -> tuple[Outcome, bool]:
        """One execution per ledger key on this worker: later callers share the first one's outcome."""
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running), True
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            recorded = self._ledger.get(key)
            if recorded is not None:
                outcome, shared = Outcome.from_dict(recorded), True
            else:
                shared = False
                for limit in permissions.rate_limits(spec, policies):
                    problem = self._limiter.acquire(tenant, spec.name, limit)
                    if problem is not None:
                        outcome = Outcome("denied", f"permission denied: {problem}")
                        future.set_result(outcome)
                        return outcome, False
                outcome = await self._executor.run(spec, arguments, budget_ms=budget_ms)
                outcome = Outcome(outcome.status, redact_text(outcome.content, secrets), outcome.latency_ms,
                                  outcome.cost_micros)
                # before anyone publishes it; created_ms: the ledger keeps it for the task's window (tool_wiring.py)
                await self._ledger.put(key, {**outcome.to_dict(), "created_ms": created_ms})
            future.set_result(outcome)
            return outcome, shared
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: sharers get it raised, nobody logs "never retrieved"
            raise
        finally:
            self._inflight.pop(key, None)


def scrub_request(request: ModelRequest, secrets: list[str]) -> ModelRequest:
    """The request as it may travel on after a call: the secrets the call passed are removed
    from the task's prompt and system prompt and from the conversation too (a model that put
    a secret in a call found it there), so nothing downstream of swarm.tool-calls holds them."""
    if not secrets:
        return request
    task = request.task
    scrubbed = task.model_copy(update={"prompt": redact_text(task.prompt, secrets),
                                       "system": redact_text(task.system, secrets) if task.system else task.system})
    conversation = redact_text(request.conversation, secrets) if request.conversation else request.conversation
    return request.model_copy(update={"task": scrubbed, "conversation": conversation})


def _secrets_of(arguments_text: str) -> list[str]:
    try:
        value = orjson.loads(arguments_text or "{}")
    except orjson.JSONDecodeError:
        return []
    return redact_arguments(value)[1]


class ConversationKeeper:
    """Collects one turn's results per (task, model) in the conversation table; when all are in,
    sends the next turn to the model's topic, its conversation windowed to the model's context."""

    def __init__(
        self,
        *,
        table: KeyValue,
        emit: Emit,
        model_topic: Callable[[str], str],
        dead_letter_topic: str,
        context_windows: Mapping[str, int],
        registry: Registry,
    ) -> None:
        self._table = table
        self._emit = emit
        self._model_topic = model_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._windows = dict(context_windows)
        self._registry = registry
        self._sending: set[str] = set()

    async def handle(self, message: InputMessage) -> None:
        result = await self._dead.decode(message, ToolResult)
        if result is None:
            return
        call = result.call
        following = call.request
        key = f"{following.task.task_id}|{following.model_id}"
        created_ms = following.task.created_ms  # the table keeps the entry for the task's window (tool_wiring.py)
        state = self._table.get(key) or {"turn": -1, "results": {}, "sent": False}
        if call.turn < state["turn"] or (call.turn == state["turn"] and state["sent"]):
            return  # an older turn, or this turn already went on
        if call.turn > state["turn"]:
            state = {"turn": call.turn, "count": call.count, "results": {}, "sent": False, "created_ms": created_ms}
        results = dict(state["results"])
        if str(call.index) not in results:
            results[str(call.index)] = {"call_id": call.call_id, "name": call.tool, "content": result.content,
                                        "error": result.status != "ok", "cost_micros": result.cost_micros,
                                        "status": result.status}
            state = {**state, "results": results}
            self._table.set(key, state)  # before any await: a task's results interleave
        collected = turn_results(results, state["count"])
        if collected is None or key in self._sending:
            return
        self._sending.add(key)
        try:
            conversation = with_results(Conversation.from_json(following.conversation), collected)
            await self._emit(self._model_topic(following.model_id), following.task.task_id,
                             self._windowed(following, conversation))
            self._table.set(key, {"turn": call.turn, "count": state["count"], "results": {}, "sent": True,
                                  "created_ms": created_ms})
        finally:
            self._sending.discard(key)

    def _windowed(self, request: ModelRequest, conversation: Conversation) -> ModelRequest:
        task = request.task
        limits = self._registry.limits
        fixed = (task.system or "") + task.prompt + orjson.dumps(self._registry.definitions(task.tools)).decode()
        budget = budget_for(self._windows.get(request.model_id, 8192), task.max_tokens, fixed)
        messages = window(conversation.messages, budget_tokens=budget, keep_last_turns=limits.keep_last_turns,
                          tool_result_chars=limits.tool_result_chars)
        shortened = Conversation(tuple(messages), conversation.calls, conversation.signatures,
                                 conversation.cost_micros, conversation.input_tokens, conversation.output_tokens)
        return request.model_copy(update={"conversation": shortened.to_json()})
