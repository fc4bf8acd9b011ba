"""Tool use on a Topology: the tool topics' agents, their tables, and tool-aware model callers.

    swarm.model.<id> ──► model-call (offers the task's tools) ──► swarm.tool-calls (a reply's calls)
    swarm.tool-calls ──► tool-calls: validate, permit, vote, approve, ledger, run ──► swarm.tool-results
                              └──► swarm.audit (every call, allowed or not)
    swarm.tool-results ──► tool-results: the turn's results (conversation table) ──► swarm.model.<id> (next turn)
    swarm.approvals ──► approvals (table) ──► wakes the calls waiting for them

The model-call agents ``build()`` wired are made tool-aware (``ModelCaller.enable_tools``).

Tables (changelog-backed, written only by the owner of the task's partition, all keyed
so that a task's entries follow its partition): ``tool-ledger`` (task|turn|digest ->
the executed call's outcome), ``tool-conversations`` (task|model -> the turn in
progress), ``tool-approvals`` (task|tool|digest -> the decision).

:func:`wire_tools` is called once at the end of ``topology.build``.
"""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from typing import Any

from swarmstream.agents.models.agent import ModelCaller
from swarmstream.agents.tools.agent import ApprovalDesk, ConversationKeeper, ToolRunner
from swarmstream.agents.tools.execution import Executor
from swarmstream.agents.tools.mcp import import_server_tools
from swarmstream.agents.tools.registry import Registry, load_tools
from swarmstream.agents.tools.turns import ToolTurns
from swarmstream.streams.transport import reseek_to_committed

log = logging.getLogger(__name__)

TOOL_CALLS_IN_FLIGHT = 512
"""Tool calls mostly wait (on a handler, a vote, a person's approval): many may be in flight."""

_captured_writes: ContextVar[list[Any] | None] = ContextVar("swarm_captured_writes", default=None)


class TableKV:
    """A durable Faust table as ``get``/``set`` (agents/tools/agent.KeyValue)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str) -> Any:
        return self._table.get(key)

    def set(self, key: str, value: Any) -> None:
        self._table[key] = value


class TableLedger:
    """The ledger: :meth:`put` returns once the entry is in the changelog, so the ToolResult
    that follows is never published ahead of its ledger entry."""

    def __init__(self, table: Any) -> None:
        send = table.send_changelog  # already wrapped by durable(): the event's ack waits too

        def send_and_capture(*args: Any, **kwargs: Any) -> Any:
            future = send(*args, **kwargs)
            sink = _captured_writes.get()
            if sink is not None:
                sink.append(future)
            return future

        table.send_changelog = send_and_capture
        self._table = table

    def get(self, key: str) -> dict[str, Any] | None:
        return self._table.get(key)  # type: ignore[no-any-return]

    async def put(self, key: str, value: dict[str, Any]) -> None:
        writes: list[Any] = []
        token = _captured_writes.set(writes)
        try:
            self._table[key] = value
        finally:
            _captured_writes.reset(token)
        await asyncio.gather(*writes)


def mcp_import_once(registry: Registry) -> Any:
    """An awaitable that imports the MCP servers' tools on first use (and retries after a failure)."""
    lock = asyncio.Lock()
    done = False

    async def ready() -> None:
        nonlocal done
        if done:
            return
        async with lock:
            if not done:
                if registry.mcp_servers:
                    added = await import_server_tools(registry)
                    log.info("imported %d MCP tool(s): %s", len(added), ", ".join(added))
                done = True

    return ready


def model_caller_of(agent: Any) -> ModelCaller | None:
    """The ModelCaller whose ``handle`` an agent made by ``Topology.wire`` drives."""
    for cell in getattr(getattr(agent, "fun", None), "__closure__", None) or ():
        owner = getattr(cell.cell_contents, "__self__", None)
        if isinstance(owner, ModelCaller):
            return owner
    return None


def wire_tools(topo: Any) -> None:
    """Declare the tool topics' agents and tables on ``topo`` (a ``streams.topology.Topology``)."""
    from swarmstream.streams.topology import durable

    app, settings = topo.app, topo.settings
    names = settings.topics
    partitions = settings.partitions
    registry = load_tools(settings.tools)
    ready = mcp_import_once(registry)
    turns = ToolTurns(registry, tool_calls_topic=names.tool_calls, ready=ready)

    # build() makes its model callers without tools: find each one behind its agent and enable
    # them (everything else build() gave it stays: dedupe, topics). Fails loudly if the wiring
    # changes shape; simpler once build() passes tools=.
    for spec in topo.catalog.models.values():
        caller = model_caller_of(app.agents.get(f"model-call.{spec.id}"))
        if caller is None:
            raise RuntimeError(f"tool wiring: no ModelCaller found behind agent model-call.{spec.id}; "
                               "pass tools= to ModelCaller in topology.build() instead")
        caller.enable_tools(turns)

    ledger = TableLedger(durable(app.Table("tool-ledger", default=None, partitions=partitions)))
    conversations = TableKV(durable(app.Table("tool-conversations", default=None, partitions=partitions)))
    approvals = ApprovalDesk(table=TableKV(durable(app.Table("tool-approvals", default=None, partitions=partitions))),
                             dead_letter_topic=names.dead_letters, emit=topo.emit)
    runner = ToolRunner(registry=registry, executor=Executor(registry, topo.pool), ledger=ledger, approvals=approvals,
                        emit=topo.emit, results_topic=names.tool_results, audit_topic=names.audit,
                        dead_letter_topic=names.dead_letters, ready=ready)
    keeper = ConversationKeeper(table=conversations, emit=topo.emit, model_topic=names.model,
                                dead_letter_topic=names.dead_letters,
                                context_windows={m.id: m.context_window for m in topo.catalog.models.values()},
                                registry=registry)
    topo.wire("tool-calls", topo.raw_topic(names.tool_calls), runner.handle, TOOL_CALLS_IN_FLIGHT)
    topo.wire("tool-results", topo.raw_topic(names.tool_results), keeper.handle, 256)
    topo.wire("approvals", topo.raw_topic(names.approvals), approvals.handle, 256)

    @app.task  # type: ignore[misc]
    async def import_mcp_tools() -> None:
        try:
            await ready()
        except Exception:
            log.exception("importing MCP tools failed; retried when a task needs them")

    sources = {names.tool_calls, names.tool_results, names.approvals}

    async def reread_uncommitted(sender: Any, assigned: Any, **kwargs: Any) -> None:
        await reseek_to_committed(app, [tp for tp in assigned if tp.topic in sources])

    app.on_partitions_assigned.connect(reread_uncommitted)
