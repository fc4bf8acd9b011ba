"""May this call run? Policies per tenant and per task; deny always wins.

A call is checked against, in order:

1. the task's own tool list (``TaskRequest.tools``): a tool the task did not
   grant is denied, whatever the policies say;
2. every policy that applies (the tenant's, from ``tenants:`` in tools.yaml, and
   the one the task names in ``tool_policy``): a deny by name (glob patterns, ``*``)
   or by side-effect class in ANY of them denies; the tool must be allowed by name
   and by class in ALL of them;
3. the argument constraints of those policies: path prefixes (the path is
   normalised first, so ``/data/../etc`` does not pass as ``/data``), host
   allow-lists (an entry ``.example.com`` admits its subdomains), numeric ranges;
4. the tenant's rate limit per tool (:class:`RateLimiter`, a sliding window over an
   injected clock).

A ``dangerous`` tool that passes all of that still needs a person's approval
(``needs_approval``): the tool agent waits for an Approval event until the
deadline. Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from swarmstream.agents.tools.registry import (
    ArgumentRule,
    PolicyConfig,
    RateLimit,
    SideEffect,
    ToolSpec,
)


@dataclass(frozen=True)
class PermissionDecision:
    allowed: bool
    reason: str
    needs_approval: bool = False


ALLOWED = PermissionDecision(True, "allowed")


def _matches(name: str, patterns: Sequence[str]) -> str | None:
    return next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)


def check_policy(policy_name: str, policy: PolicyConfig, spec: ToolSpec, arguments: Mapping[str, Any]) -> str | None:
    """Why ``policy`` denies the call, or None when it allows it."""
    where = f"policy {policy_name!r}"
    denied_by = _matches(spec.name, policy.deny)
    if denied_by is not None:
        return f"{where} denies tool {spec.name!r} (deny: {denied_by!r})"
    if spec.side_effect in policy.deny_side_effects:
        return f"{where} denies {spec.side_effect} tools"
    if _matches(spec.name, policy.allow) is None:
        return f"{where} does not allow tool {spec.name!r} (allow: {', '.join(policy.allow) or 'nothing'})"
    if spec.side_effect not in policy.allow_side_effects:
        return f"{where} does not allow {spec.side_effect} tools"
    for path, rule in (policy.constraints.get(spec.name) or {}).items():
        problem = check_argument(path, rule, arguments)
        if problem is not None:
            return f"{where}: {problem}"
    return None


def decide(
    spec: ToolSpec,
    arguments: Mapping[str, Any],
    *,
    task_tools: Sequence[str],
    policies: Sequence[tuple[str, PolicyConfig]],
) -> PermissionDecision:
    """Deny over allow across the task's grant and every policy; dangerous tools need approval."""
    if spec.name not in task_tools:
        return PermissionDecision(
            False, f"tool {spec.name!r} is not among this task's tools ({', '.join(task_tools) or 'none'})"
        )
    for name, policy in policies:
        problem = check_policy(name, policy, spec, arguments)
        if problem is not None:
            return PermissionDecision(False, problem)
    if spec.side_effect is SideEffect.DANGEROUS:
        return PermissionDecision(True, "dangerous: needs an approval on the approvals topic", needs_approval=True)
    return ALLOWED


_MISSING = object()


def argument_at(arguments: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``to.host``), or _MISSING."""
    value: Any = arguments
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def check_argument(path: str, rule: ArgumentRule, arguments: Mapping[str, Any]) -> str | None:
    """Why the argument at ``path`` breaks ``rule``, or None. An absent argument passes: the
    input schema says what is required; a constraint limits values that are there."""
    value = argument_at(arguments, path)
    if value is _MISSING:
        return None
    values = value if isinstance(value, list) else [value]
    for item in values:
        if rule.path_prefixes is not None and (not isinstance(item, str) or not path_within(item, rule.path_prefixes)):
            return f"argument {path} = {item!r} is outside the allowed paths ({', '.join(rule.path_prefixes)})"
        if rule.hosts is not None:
            host = host_of(item) if isinstance(item, str) else None
            if host is None or not host_allowed(host, rule.hosts):
                return f"argument {path}: host {host or item!r} is not allowed (allowed: {', '.join(rule.hosts)})"
        if rule.minimum is not None or rule.maximum is not None:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                return f"argument {path} = {item!r} is not a number"
            if rule.minimum is not None and item < rule.minimum:
                return f"argument {path} = {item} is below the minimum {rule.minimum:g}"
            if rule.maximum is not None and item > rule.maximum:
                return f"argument {path} = {item} is above the maximum {rule.maximum:g}"
    return None


def path_within(path: str, prefixes: Sequence[str]) -> bool:
    """Whether the normalised ``path`` lies under one of ``prefixes`` (whole components only:
    ``/data`` admits ``/data/x`` but not ``/database``)."""
    if "\x00" in path:
        return False
    normal = posixpath.normpath(path)
    for prefix in prefixes:
        base = posixpath.normpath(prefix)
        if normal == base or normal.startswith(base.rstrip("/") + "/"):
            return True
    return False


def host_of(value: str) -> str | None:
    """The host of a URL, an ``user@host`` address or a bare host name, lower-cased."""
    if "://" in value:
        host = urlsplit(value).hostname
    elif "@" in value:
        host = value.rsplit("@", 1)[1]
    else:
        host = value.split("/", 1)[0].split(":", 1)[0]
    return host.lower().rstrip(".") if host else None


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    for entry in allowed:
        entry = entry.lower()
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False


class RateLimiter:
    """Calls per tool per tenant in a sliding window, over an injected clock (ms).

    Kept in the worker's memory: tool calls are keyed by task, so a tenant's calls spread
    over every worker, and with W workers a tenant may get up to W times the limit. A
    limit that must hold across workers belongs in the tool's own service."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._calls: dict[tuple[str, str], deque[int]] = {}

    def acquire(self, tenant: str, tool: str, limit: RateLimit) -> str | None:
        """Count one call, or say why it is over the limit (and count nothing)."""
        now = self._clock()
        window_ms = int(limit.per_s * 1000)
        calls = self._calls.setdefault((tenant, tool), deque())
        while calls and calls[0] <= now - window_ms:
            calls.popleft()
        if len(calls) >= limit.calls:
            retry_ms = calls[0] + window_ms - now
            return (f"rate limit: tenant {tenant!r} may call {tool!r} {limit.calls} times per {limit.per_s:g} s "
                    f"(next call in {retry_ms} ms)")
        calls.append(now)
        return None


def rate_limits(spec: ToolSpec, policies: Sequence[tuple[str, PolicyConfig]]) -> list[RateLimit]:
    return [policy.rate_limits[spec.name] for _, policy in policies if spec.name in policy.rate_limits]
