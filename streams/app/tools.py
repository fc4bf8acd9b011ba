"""Tool use on a Topology: the tool topics' agents, their tables, and tool-aware model callers.

    swarm.model.<id> ──► model-call (offers the task's tools) ──► swarm.tool-calls (a reply's calls)
    swarm.tool-calls ──► tool-calls: validate, permit, vote, approve, ledger, run ──► swarm.tool-results
                              └──► swarm.audit (every call, allowed or not)
    swarm.tool-results ──► tool-results: the turn's results (conversation table) ──► swarm.model.<id> (next turn)
    swarm.approvals ──► approvals (table) ──► wakes the calls waiting for them

``topology.build`` gives every model caller the :func:`tool_turns` (the registry, offered
to models in their provider's format) and calls :func:`wire_tools` once, at the end.

Tables (changelog-backed, written only by the owner of the task's partition, all keyed
so that a task's entries follow its partition): ``tool-ledger`` (task|turn|digest ->
the executed call's outcome), ``tool-conversations`` (task|model -> the turn in
progress), ``tool-approvals`` (task|tool|digest -> the decision). Each entry is deleted
(a tombstone on its changelog) ``SWARM_CONSENSUS_EXPIRES_S`` after its task began (the
ledger, the conversations) or after it arrived (an approval): the task table forgets the
task then too, and nothing reads a task's tool entries once its task is gone, since a
redelivered call or result of that task can no longer change its one result.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from swarmstream.agents.tools.agent import ApprovalDesk, ConversationKeeper, ToolRunner
from swarmstream.agents.tools.execution import Executor
from swarmstream.agents.tools.mcp import import_server_tools
from swarmstream.agents.tools.registry import Registry, load_tools
from swarmstream.agents.tools.turns import ToolTurns
from swarmstream.schemas.models import Approval
from swarmstream.streams.app.graph import Topology
from swarmstream.streams.app.homing import homed, task_id_in
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.app.stores import TableLedger
from swarmstream.streams.engine import flush
from swarmstream.streams.engine.tables import Expiry

log = logging.getLogger(__name__)

TOOL_CALLS_IN_FLIGHT = 512
"""Tool calls mostly wait (on a handler, a vote, a person's approval): many may be in flight."""

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


def tool_turns(settings: Settings) -> ToolTurns:
    """The model-call side of tool use: the registry (``SWARM_TOOLS``), offered to every model caller."""
    registry = load_tools(settings.tools)
    return ToolTurns(registry, tool_calls_topic=settings.topics.tool_calls, ready=mcp_import_once(registry))


def kept_from(field: str, window_ms: int) -> Expiry:
    """An entry goes ``window_ms`` after the time in its ``field`` (an entry written before it
    carried one goes ``window_ms`` after this worker first saw it)."""

    def expiry(key: str, value: Any) -> int | None:
        at = value.get(field) if isinstance(value, dict) else None
        return None if at is None else int(at) + window_ms

    return expiry


def wire_tools(topo: Topology, turns: ToolTurns) -> None:
    """Declare the tool topics' agents and tables on ``topo``; ``turns`` is what the model callers offer."""
    engine, settings = topo.engine, topo.settings
    names = settings.topics
    registry, ready = turns.registry, turns.ready

    window_ms = settings.consensus_expires_s * 1000  # the task table's window
    ledger = TableLedger(topo.retained("tool-ledger", kept_from("created_ms", window_ms), default_ms=window_ms))
    conversations = topo.retained("tool-conversations", kept_from("created_ms", window_ms), default_ms=window_ms)
    approvals = ApprovalDesk(table=topo.retained("tool-approvals", kept_from("received_ms", window_ms),
                                                 default_ms=window_ms),
                             dead_letter_topic=names.dead_letters, emit=topo.emit)
    runner = ToolRunner(registry=registry, executor=Executor(registry, topo.pool), ledger=ledger, approvals=approvals,
                        emit=topo.emit, flush=flush, results_topic=names.tool_results, audit_topic=names.audit,
                        dead_letter_topic=names.dead_letters, ready=ready)
    keeper = ConversationKeeper(table=conversations, emit=topo.emit, model_topic=names.model,
                                dead_letter_topic=names.dead_letters,
                                context_windows={m.id: m.context_window for m in topo.catalog.models.values()},
                                registry=registry)
    topo.wire("tool-calls", [names.tool_calls], runner.handle, TOOL_CALLS_IN_FLIGHT)
    topo.wire("tool-results", [names.tool_results], keeper.handle, 256)
    topo.wire("approvals", [names.approvals], homed(engine, approvals.handle, task_id_in(Approval)), 256)

    async def import_mcp_tools() -> None:
        try:
            await ready()
        except Exception:
            log.exception("importing MCP tools failed; retried when a task needs them")

    engine.service(import_mcp_tools)
