"""The permission policy: deny over allow, argument constraints, rate limits (pure, injected clock)."""

from __future__ import annotations

import pytest
from swarmstream.agents.tools.permissions import (
    RateLimiter,
    decide,
    host_allowed,
    path_within,
)
from swarmstream.agents.tools.registry import (
    ArgumentRule,
    PolicyConfig,
    PythonHandler,
    RateLimit,
    SideEffect,
    ToolSpec,
)


def spec(name: str = "files", side_effect: SideEffect = SideEffect.READ) -> ToolSpec:
    return ToolSpec(name=name, description="", input_schema={"type": "object"}, handler=PythonHandler("x:y"),
                    side_effect=side_effect)


ALLOW_ALL = PolicyConfig()


@pytest.mark.parametrize(
    ("policies", "task_tools", "tool", "allowed", "reason"),
    [
        ([("p", ALLOW_ALL)], ["files"], spec(), True, "allowed"),
        ([("p", ALLOW_ALL)], [], spec(), False, "not among this task's tools"),
        ([("p", PolicyConfig(allow=["*"], deny=["files"]))], ["files"], spec(), False, "denies tool 'files'"),
        ([("p", PolicyConfig(allow=["files"], deny=["fi*"]))], ["files"], spec(), False, "deny: 'fi*'"),
        ([("p", PolicyConfig(allow=["other"]))], ["files"], spec(), False, "does not allow tool 'files'"),
        ([("p", PolicyConfig(deny_side_effects=[SideEffect.WRITE]))], ["files"], spec(side_effect=SideEffect.WRITE),
         False, "denies write tools"),
        ([("p", PolicyConfig(allow_side_effects=[SideEffect.READ]))], ["files"],
         spec(side_effect=SideEffect.EXTERNAL), False, "does not allow external tools"),
        # tenant allows, task policy denies: deny wins whichever policy says it
        ([("tenant", ALLOW_ALL), ("task", PolicyConfig(deny=["files"]))], ["files"], spec(), False, "policy 'task'"),
        ([("tenant", PolicyConfig(deny=["files"])), ("task", ALLOW_ALL)], ["files"], spec(), False, "policy 'tenant'"),
        ([("p", ALLOW_ALL)], ["files"], spec(side_effect=SideEffect.DANGEROUS), True, "needs an approval"),
    ],
)
def test_deny_wins_over_allow(policies, task_tools, tool, allowed, reason) -> None:
    decision = decide(tool, {}, task_tools=task_tools, policies=policies)
    assert decision.allowed is allowed
    assert reason in decision.reason
    assert decision.needs_approval is (tool.side_effect is SideEffect.DANGEROUS and allowed)


FILES = PolicyConfig(constraints={"files": {"path": ArgumentRule(path_prefixes=["/data/public"]),
                                            "url": ArgumentRule(hosts=["example.com", ".corp.example"]),
                                            "limit": ArgumentRule(minimum=1, maximum=100)}})


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"path": "/data/public/a.txt"}, None),
        ({"path": "/data/public"}, None),
        ({"path": "/data/public/../secret/a"}, "outside the allowed paths"),
        ({"path": "/data/publicity/a"}, "outside the allowed paths"),
        ({"path": "relative/a"}, "outside the allowed paths"),
        ({"url": "https://example.com/x"}, None),
        ({"url": "https://api.corp.example/x"}, None),
        ({"url": "https://corp.example"}, None),
        ({"url": "https://example.com.evil.net/"}, "host 'example.com.evil.net' is not allowed"),
        ({"url": "https://evil.net/?example.com"}, "is not allowed"),
        ({"limit": 1}, None),
        ({"limit": 100}, None),
        ({"limit": 0}, "below the minimum 1"),
        ({"limit": 101}, "above the maximum 100"),
        ({"limit": "5"}, "not a number"),
        ({"limit": True}, "not a number"),
        ({}, None),  # absent arguments are the schema's business
    ],
)
def test_argument_constraints(arguments, problem) -> None:
    decision = decide(spec(), arguments, task_tools=["files"], policies=[("p", FILES)])
    if problem is None:
        assert decision.allowed, decision.reason
    else:
        assert not decision.allowed and problem in decision.reason


def test_path_and_host_helpers() -> None:
    assert path_within("/a/b/../b/c", ["/a/b"])
    assert not path_within("/a/b\x00/c", ["/a/b"])
    assert host_allowed("x.y.example", [".example"]) and not host_allowed("notexample", [".example"])


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_rate_limits_are_per_tool_per_tenant_in_a_sliding_window() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limit = RateLimit(calls=2, per_s=10)

    assert limiter.acquire("acme", "mail", limit) is None
    clock.now += 1_000
    assert limiter.acquire("acme", "mail", limit) is None
    refused = limiter.acquire("acme", "mail", limit)
    assert refused is not None and "2 times per 10 s" in refused and "next call in 9000 ms" in refused
    assert limiter.acquire("other", "mail", limit) is None  # another tenant
    assert limiter.acquire("acme", "files", limit) is None  # another tool
    clock.now += 9_000  # the first call leaves the window
    assert limiter.acquire("acme", "mail", limit) is None
    assert limiter.acquire("acme", "mail", limit) is not None  # a refused call was not counted
