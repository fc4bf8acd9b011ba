"""Middleware: the onion order, short-circuits, and the built-ins (timing, PII redaction, cache)."""

from __future__ import annotations

from typing import Any

import pytest
from swarmstream.agents.workflows.middleware import (
    MiddlewareChain,
    MiddlewareEnv,
    MiddlewareError,
    ResponseCache,
    StepCall,
    Timing,
    build_middleware,
    cache_key,
    redact,
)

from tests.agents.workflows.fixtures import AnswerWith, Stamp


def call(prompt: str = "What is 2 + 2?", kind: str = "consensus", now_ms: int = 1_000, **params: Any) -> StepCall:
    return StepCall(workflow="w", step="s", kind=kind, hop=1, prompt=prompt, system=None,
                    params={"models": ["a", "b"], "strategy": None, **params}, scope={}, now_ms=now_ms)


def test_befores_run_in_order_and_afters_in_reverse() -> None:
    env = MiddlewareEnv()
    chain = MiddlewareChain([Stamp(env, label="1"), Stamp(env, label="2"), Stamp(env, label="3")])
    c = call()
    ran, shortcut = chain.before(c)
    assert (ran, shortcut) == (3, None)
    out = chain.after(c, {"answer": "4"}, ran)
    assert out["detail"] == "before:1>before:2>before:3>after:3>after:2>after:1"


def test_a_short_circuit_skips_the_step_and_the_middleware_after_it() -> None:
    env = MiddlewareEnv()
    chain = MiddlewareChain([Stamp(env, label="outer"), AnswerWith(env, answer="7"), Stamp(env, label="inner")])
    c = call()
    ran, shortcut = chain.before(c)
    assert shortcut == {"answer": "7", "confidence": 1.0}
    assert c.notes["trace"] == ["before:outer"]  # inner's before never ran
    assert c.notes["short_circuit"] == "answer-with"
    out = chain.after(c, shortcut, ran)
    assert out["detail"] == "before:outer>after:outer"


def test_the_cache_answers_a_fresh_identical_call_and_only_that() -> None:
    env = MiddlewareEnv(cache={})
    cache = ResponseCache(env, ttl_s=10)
    first = call(now_ms=1_000)
    assert cache.before(first) is None
    cache.after(first, {"status": "ok", "answer": "4", "confidence": 0.9, "cost_micros": 12})
    assert len(env.cache) == 1

    hit = cache.before(call(now_ms=5_000))
    assert hit is not None
    assert (hit["answer"], hit["cached"], hit["cost_micros"], hit["confidence"]) == ("4", True, 0, 0.9)

    assert cache.before(call(now_ms=11_001)) is None  # past the TTL: a miss
    assert cache.before(call(prompt="What is 3 + 3?", now_ms=5_000)) is None  # another prompt
    assert cache.before(call(now_ms=5_000, models=["a"])) is None  # another model set
    assert cache.before(call(now_ms=5_000, strategy="weighted")) is None  # another parameter
    assert cache.before(call(kind="transform", now_ms=5_000)) is None  # only model steps are cached


@pytest.mark.parametrize("status", ["failed", "timeout", "low_consensus"])
def test_the_cache_keeps_only_ok_answers(status: str) -> None:
    env = MiddlewareEnv(cache={})
    cache = ResponseCache(env)
    c = call()
    cache.before(c)
    cache.after(c, {"status": status, "answer": "4"})
    assert env.cache == {}


def test_the_cache_key_has_the_kind_the_models_and_hashes_not_the_prompt() -> None:
    key = cache_key(call(prompt="my secret question"))
    assert key.startswith("consensus:a,b:")
    assert "secret" not in key
    assert cache_key(call(timeout_ms=5)) == cache_key(call(timeout_ms=9))  # the deadline is not part of it


def test_timing_writes_the_step_latency_and_telemetry() -> None:
    env = MiddlewareEnv()
    timing = Timing(env)
    c = call(now_ms=1_000)
    timing.before(c)
    c.now_ms = 1_250
    out = timing.after(c, {"answer": "4", "cached": True})
    assert out["latency_ms"] == 250
    assert env.telemetry.runs == {"w.s": 1} and env.telemetry.cached == {"w.s": 1}


@pytest.mark.parametrize(
    ("text", "redacted", "kinds"),
    [
        ("Mail ada@example.org now", "Mail [EMAIL] now", {"EMAIL": 1}),
        ("Call +44 20 7946 0958 today", "Call [PHONE] today", {"PHONE": 1}),
        ("Card 4111 1111 1111 1111.", "Card [CARD].", {"CARD": 1}),
        ("SSN 078-05-1120", "SSN [SSN]", {"SSN": 1}),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [IBAN]", {"IBAN": 1}),
        # what must stay: arithmetic, ages, years, and a 16-digit order number that fails Luhn
        ("What is 42 + 8? Answer with a number.", "What is 42 + 8? Answer with a number.", {}),
        ("Maria is 34 years old, born 1990.", "Maria is 34 years old, born 1990.", {}),
        ("Order 1234 5678 9012 3456", "Order 1234 5678 9012 3456", {}),
    ],
)
def test_pii_is_redacted_and_ordinary_numbers_are_not(text: str, redacted: str, kinds: dict[str, int]) -> None:
    assert redact(text) == (redacted, kinds)


def test_redaction_changes_the_prompt_before_it_leaves_and_notes_only_counts() -> None:
    c = call(prompt="Reply to ada@example.org: What is 2 + 2?")
    c.system = "Customer phone 0151 234 56789"
    built = build_middleware("redact_pii", {}, MiddlewareEnv())
    assert built.before(c) is None
    assert c.prompt == "Reply to [EMAIL]: What is 2 + 2?"
    assert c.system == "Customer phone [PHONE]"
    assert c.notes["pii.redacted"] == {"EMAIL": 1, "PHONE": 1}
    assert "ada" not in repr(c.notes)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("cache", {"ttl_s": 0}, "ttl_s must be > 0"),
        ("cache", {"colour": 1}, "unexpected keyword"),
        ("nope", {}, "unknown middleware 'nope'"),
        ("tests.agents.workflows.fixtures:Missing", {}, "has no 'Missing'"),
    ],
)
def test_middleware_that_cannot_be_built_says_why(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(MiddlewareError, match=message):
        build_middleware(name, options, MiddlewareEnv())
