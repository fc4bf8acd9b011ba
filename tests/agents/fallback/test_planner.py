"""The chain walk: retries, fallbacks, routing, breakers, budget, deadline, context and order.

Scenarios follow issue 6's list; ``walk`` drives the planner through a script of
outcomes the way the agent will, so each case reads as the path a task takes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from swarmstream.agents.fallback.chains import Chain, Link, Quality, Transform
from swarmstream.agents.fallback.circuit import Admission
from swarmstream.agents.fallback.planner import (
    TRUNCATION_MARKER,
    AttemptRecord,
    Call,
    ChainProgress,
    Decision,
    Exhausted,
    SkipRecord,
    Wait,
    apply_transform,
    check_answer,
    context_misfit,
    estimate_tokens,
    on_bad_answer,
    on_failure,
    on_success,
    order_links,
    quality_ok,
    reliability_from_stats,
    resume,
    start,
    to_attempt_records,
)
from swarmstream.agents.fallback.retry import DEFAULT_POLICIES
from swarmstream.agents.models.failures import FailureClass as FC
from swarmstream.schemas.models import Attempt

NOW = 1_000_000
DEADLINE = NOW + 30_000
WINDOWS = {"a": 16_384, "b": 16_384, "c": 32_768, "d": 8_192}
ABC = Chain(links=[Link(model="a"), Link(model="b"), Link(model="c")])


def admit_all(model: str) -> Admission:
    return Admission(allowed=True)


def breakers(open_until: Mapping[str, int], now_ms: int = NOW):
    """An ``admit`` where the models in ``open_until`` are open until that time, then admit one probe."""

    def admit(model: str) -> Admission:
        until = open_until.get(model)
        if until is None:
            return Admission(allowed=True)
        if now_ms < until:
            return Admission(allowed=False, retry_at_ms=until)
        return Admission(allowed=True, probe=True)

    return admit


def begin(chain: Chain = ABC, *, admit=admit_all, prompt_tokens: int = 100, now_ms: int = NOW, **kw) -> Decision:
    return start(
        chain,
        name="t",
        now_ms=now_ms,
        deadline_ms=kw.pop("deadline_ms", DEADLINE),
        prompt_tokens=prompt_tokens,
        context_windows=kw.pop("context_windows", WINDOWS),
        admit=admit,
        **kw,
    )


def fail(decision: Decision, failure: FC, chain: Chain = ABC, *, now_ms: int | None = None, **kw) -> Decision:
    """The failure of ``decision``'s call, reported when it was due (its ``at_ms``) unless ``now_ms`` says."""
    assert isinstance(decision, Call), decision
    kw.setdefault("admit", admit_all)
    return on_failure(
        decision.progress,
        failure,
        chain=chain,
        now_ms=decision.at_ms if now_ms is None else now_ms,
        deadline_ms=kw.pop("deadline_ms", DEADLINE),
        prompt_tokens=kw.pop("prompt_tokens", 100),
        context_windows=kw.pop("context_windows", WINDOWS),
        rng_uniform=kw.pop("rng_uniform", 0.0),
        latency_ms=kw.pop("latency_ms", 10),
        **kw,
    )


def path(decision: Decision) -> list[tuple[str, str | None]]:
    return [(a.model, a.failure_class) for a in decision.progress.attempts]


def walk(chain: Chain, failures: list[FC]) -> tuple[list[tuple[str, int, int]], Decision]:
    """Start, then fail each call in turn with ``failures``; returns the calls (model, attempt, delay ms)."""
    decision = begin(chain)
    calls = []
    for failure in failures:
        assert isinstance(decision, Call), decision
        calls.append((decision.model, decision.attempt, decision.at_ms - NOW))
        decision = fail(decision, failure, chain, now_ms=NOW)
    return calls, decision


# --- edge cases ----------------------------------------------------------------


def test_first_call_is_the_first_link_now() -> None:
    decision = begin()
    assert decision == Call("a", 0, NOW, None, ChainProgress("t", ("a", "b", "c"), awaiting_attempt=0))


def test_deadline_already_passed_makes_no_call() -> None:
    decision = begin(now_ms=DEADLINE)
    assert isinstance(decision, Exhausted) and decision.cause == "deadline"


def test_an_outcome_with_no_call_in_flight_is_refused() -> None:
    decision = begin()
    assert isinstance(decision, Call)
    assert decision.progress.is_awaiting("a", 0) and not decision.progress.is_awaiting("a", 1)
    done = on_success(decision.progress, latency_ms=5)
    with pytest.raises(ValueError, match="no call in flight"):
        on_failure(
            done,
            FC.TIMEOUT,
            chain=ABC,
            now_ms=NOW,
            deadline_ms=DEADLINE,
            prompt_tokens=1,
            context_windows=WINDOWS,
            admit=admit_all,
            rng_uniform=0.0,
        )
    with pytest.raises(ValueError, match="still in flight"):
        resume(
            decision.progress,
            chain=ABC,
            now_ms=NOW,
            deadline_ms=DEADLINE,
            prompt_tokens=1,
            context_windows=WINDOWS,
            admit=admit_all,
        )


# --- retries and fallbacks -------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "calls", "then"),
    [
        # primary 500: two retries with backoff (200 ms, 400 ms, halved by jitter at u=0), then the secondary now
        ([FC.SERVER_ERROR] * 3, [("a", 0, 0), ("a", 1, 100), ("a", 2, 200)], ("b", 3, 0)),
        # timeout: one retry, then the next link
        ([FC.TIMEOUT] * 2, [("a", 0, 0), ("a", 1, 125)], ("b", 2, 0)),
        # auth, bad_request, content_policy (unrouted), invalid_output: straight to the next link
        ([FC.AUTH], [("a", 0, 0)], ("b", 1, 0)),
        ([FC.BAD_REQUEST, FC.CONTENT_POLICY], [("a", 0, 0), ("b", 1, 0)], ("c", 2, 0)),
        ([FC.INVALID_OUTPUT], [("a", 0, 0)], ("b", 1, 0)),
        # the retry count is per link (b gets its own retries), the attempt numbers are per task
        ([FC.SERVER_ERROR] * 3 + [FC.NETWORK], [("a", 0, 0), ("a", 1, 100), ("a", 2, 200), ("b", 3, 0)], ("b", 4, 50)),
        # the per-link retry count spans classes: one timeout retry used, server_error allows one more
        ([FC.TIMEOUT, FC.SERVER_ERROR], [("a", 0, 0), ("a", 1, 125)], ("a", 2, 200)),
        # budget (6) shared by retries and fallbacks: a,a,a,b,b,b then no call of c
        (
            [FC.SERVER_ERROR] * 6,
            [("a", 0, 0), ("a", 1, 100), ("a", 2, 200), ("b", 3, 0), ("b", 4, 100), ("b", 5, 200)],
            "budget_spent",
        ),
        # every link fails with a non-retryable class: one call each, then exhausted
        ([FC.AUTH] * 3, [("a", 0, 0), ("b", 1, 0), ("c", 2, 0)], "chain_exhausted"),
    ],
)
def test_retry_then_fallback(
    failures: list[FC], calls: list[tuple[str, int, int]], then: tuple[str, int, int] | str
) -> None:
    seen, decision = walk(ABC, failures)
    assert seen == calls
    if isinstance(then, tuple):
        assert isinstance(decision, Call) and (decision.model, decision.attempt, decision.at_ms - NOW) == then
    else:
        assert isinstance(decision, Exhausted) and decision.cause == then
        assert [a.attempt for a in decision.attempts] == list(range(len(failures)))


def test_primary_500_then_secondary_answers_with_the_whole_path() -> None:
    _, decision = walk(ABC, [FC.SERVER_ERROR] * 3)
    assert isinstance(decision, Call) and (decision.model, decision.attempt) == ("b", 3)
    progress = on_success(decision.progress, latency_ms=42)
    assert to_attempt_records(progress) == [
        Attempt(model_id="a", attempt=0, failure_class="server_error", latency_ms=10),
        Attempt(model_id="a", attempt=1, failure_class="server_error", latency_ms=10),
        Attempt(model_id="a", attempt=2, failure_class="server_error", latency_ms=10),
        Attempt(model_id="b", attempt=3, failure_class=None, latency_ms=42),
    ]


def test_budget_smaller_than_the_chain() -> None:
    seen, decision = walk(ABC.model_copy(update={"max_attempts": 2}), [FC.AUTH, FC.AUTH])
    assert seen == [("a", 0, 0), ("b", 1, 0)]
    assert isinstance(decision, Exhausted) and decision.cause == "budget_spent"
    assert decision.reason == ("chain 't': attempt budget of 2 spent; attempts: a#0 auth (10 ms), b#1 auth (10 ms)")


def test_all_links_fail_lists_every_attempt() -> None:
    _, decision = walk(ABC, [FC.TIMEOUT, FC.TIMEOUT, FC.CONTENT_POLICY, FC.AUTH])
    assert isinstance(decision, Exhausted) and decision.cause == "chain_exhausted"
    assert path(decision) == [("a", "timeout"), ("a", "timeout"), ("b", "content_policy"), ("c", "auth")]
    assert decision.reason == (
        "chain 't' exhausted; attempts: a#0 timeout (10 ms), a#1 timeout (10 ms), "
        "b#2 content_policy (10 ms), c#3 auth (10 ms)"
    )


@pytest.mark.parametrize(
    ("retry_after_ms", "deadline_ms", "expected"),
    [
        (1_000, DEADLINE, ("a", NOW + 1_000)),  # same model, not before Retry-After
        (2_500, DEADLINE, ("a", NOW + 2_500)),
        (None, DEADLINE, ("a", NOW + 500)),  # no hint: the policy's backoff (1 s halved by jitter at u=0)
        (29_999, DEADLINE, ("a", NOW + 29_999)),  # just before the deadline
        (30_000, DEADLINE, ("b", NOW)),  # a retry at the deadline is no retry: next link now
        (1_000, NOW + 1_000, ("b", NOW)),
    ],
)
def test_rate_limited_honours_retry_after(
    retry_after_ms: int | None, deadline_ms: int, expected: tuple[str, int]
) -> None:
    decision = fail(
        begin(deadline_ms=deadline_ms), FC.RATE_LIMITED, retry_after_ms=retry_after_ms, deadline_ms=deadline_ms
    )
    assert isinstance(decision, Call) and (decision.model, decision.at_ms) == expected


def test_jitter_comes_from_the_caller() -> None:
    low = fail(begin(), FC.SERVER_ERROR, rng_uniform=0.0)
    high = fail(begin(), FC.SERVER_ERROR, rng_uniform=0.99)
    assert isinstance(low, Call) and isinstance(high, Call)
    assert (low.at_ms - NOW, high.at_ms - NOW) == (100, 199)


def test_custom_policies_apply() -> None:
    policies = {**DEFAULT_POLICIES, FC.SERVER_ERROR: DEFAULT_POLICIES[FC.AUTH]}
    decision = fail(begin(), FC.SERVER_ERROR, policies=policies)
    assert isinstance(decision, Call) and decision.model == "b"


def test_not_retryable_failure_of_a_retryable_class_moves_on() -> None:
    decision = fail(begin(), FC.RATE_LIMITED, retryable=False)  # 429 insufficient_quota
    assert isinstance(decision, Call) and (decision.model, decision.at_ms) == ("b", NOW)


def test_a_failure_that_opens_the_breaker_stops_the_retry() -> None:
    decision = fail(begin(), FC.SERVER_ERROR, admit=breakers({"a": NOW + 10_000}))
    assert isinstance(decision, Call) and decision.model == "b"


def test_failure_after_the_deadline_ends_the_task() -> None:
    decision = fail(begin(), FC.SERVER_ERROR, now_ms=DEADLINE)
    assert isinstance(decision, Exhausted) and decision.cause == "deadline"
    assert path(decision) == [("a", "server_error")]


# --- routing -------------------------------------------------------------------


ROUTED = Chain(
    links=[
        Link(model="a", on={FC.CONTENT_POLICY: "c", FC.AUTH: "fail", FC.CONTEXT_LENGTH: "longest_context"}),
        Link(model="b"),
        Link(model="c", on={FC.CONTENT_POLICY: "b"}),
        Link(model="d"),
    ]
)


def test_content_policy_skips_to_the_configured_link() -> None:
    decision = fail(begin(ROUTED), FC.CONTENT_POLICY, ROUTED)
    assert isinstance(decision, Call) and (decision.model, decision.at_ms) == ("c", NOW)
    assert decision.progress.skipped == (SkipRecord("b", "routed past: on content_policy go to c"),)
    # links passed over are not come back to, and a route to a finished link goes on from there
    after = fail(decision, FC.CONTENT_POLICY, ROUTED)
    assert isinstance(after, Call) and after.model == "d"


def test_route_to_fail_ends_the_task() -> None:
    decision = fail(begin(ROUTED), FC.AUTH, ROUTED)
    assert isinstance(decision, Exhausted) and decision.cause == "routed_to_fail"
    assert decision.reason == (
        "chain 't': a failed with auth, which its link routes to fail; attempts: a#0 auth (10 ms)"
    )


def test_context_length_goes_to_the_longest_window_and_learns_the_floor() -> None:
    decision = fail(begin(ROUTED), FC.CONTEXT_LENGTH, ROUTED, max_tokens=256)
    assert isinstance(decision, Call) and decision.model == "c"  # 32k
    assert decision.progress.min_prompt_tokens == 16_384 - 256 + 1
    # c fails too: b and d (windows <= a's) cannot fit what did not fit a: skipped, no call
    after = fail(decision, FC.AUTH, ROUTED, max_tokens=256)
    assert isinstance(after, Exhausted) and after.cause == "chain_exhausted"
    assert [s.model for s in after.progress.skipped] == ["d", "b"]
    assert path(after) == [("a", "context_length"), ("c", "auth")]


# --- bad answers ---------------------------------------------------------------


def test_bad_answer_is_invalid_output_and_moves_on_without_retry() -> None:
    first = begin()
    assert isinstance(first, Call)
    decision = on_bad_answer(
        first.progress,
        chain=ABC,
        now_ms=NOW,
        deadline_ms=DEADLINE,
        prompt_tokens=100,
        context_windows=WINDOWS,
        admit=admit_all,
        latency_ms=7,
    )
    assert isinstance(decision, Call) and (decision.model, decision.attempt) == ("b", 1)
    assert decision.progress.attempts == (AttemptRecord("a", 0, "invalid_output", 7),)


@pytest.mark.parametrize(
    ("text", "quality", "reason"),
    [
        ("", None, "empty answer"),
        ("  \n", Quality(min_chars=1), "empty answer"),
        ("cat", None, None),
        ("cat", Quality(min_chars=4), "answer has 3 characters, fewer than min_chars 4"),
        ("  cats  ", Quality(min_chars=4), None),
        ("cat", Quality(regex=r"^(cat|dog)$"), None),
        ("cow", Quality(regex=r"^(cat|dog)$"), "answer does not match regex '^(cat|dog)$'"),
        ('{"answer": 1}', Quality(json_schema={"type": "object", "required": ["answer"]}), None),
        ('Sure: {"answer": 1}', Quality(json_schema={"type": "object", "required": ["answer"]}), None),
        (
            '{"other": 1}',
            Quality(json_schema={"type": "object", "required": ["answer"]}),
            "does not match schema at (root): 'answer' is a required property: '{\"other\": 1}'",
        ),
        ("no json", Quality(json_schema={"type": "object"}), "no valid JSON: 'no json'"),
    ],
)
def test_quality_ok(text: str, quality: Quality | None, reason: str | None) -> None:
    assert quality_ok(text, quality) == reason


@pytest.mark.parametrize(
    ("text", "answer_type", "quality", "expected"),
    [
        ("The answer is B", "label", None, ("dog", None)),
        ("I cannot say", "label", None, (None, "not one of ['cat', 'dog']: 'I cannot say'")),
        ("", "text", None, (None, "empty answer")),
        ("dog", "label", Quality(min_chars=5), (None, "answer has 3 characters, fewer than min_chars 5")),
    ],
)
def test_check_answer(
    text: str, answer_type: str, quality: Quality | None, expected: tuple[str | None, str | None]
) -> None:
    assert check_answer(text, answer_type=answer_type, labels=["cat", "dog"], quality=quality) == expected


# --- breakers ------------------------------------------------------------------


def test_open_links_are_skipped_without_a_call() -> None:
    decision = begin(admit=breakers({"a": NOW + 5_000}))
    assert isinstance(decision, Call) and (decision.model, decision.attempt) == ("b", 0)


def test_every_link_open_waits_for_the_first_probe_then_probes() -> None:
    open_until = {"a": NOW + 5_000, "b": NOW + 3_000, "c": NOW + 9_000}
    decision = begin(admit=breakers(open_until))
    assert isinstance(decision, Wait) and decision.until_ms == NOW + 3_000
    assert decision.progress.attempts == () and decision.progress.awaiting_attempt is None
    stored = ChainProgress.from_dict(json.loads(json.dumps(decision.progress.to_dict())))
    later = resume(
        stored,
        chain=ABC,
        now_ms=decision.until_ms,
        deadline_ms=DEADLINE,
        prompt_tokens=100,
        context_windows=WINDOWS,
        admit=breakers(open_until, now_ms=decision.until_ms),
    )
    assert isinstance(later, Call) and (later.model, later.attempt, later.probe) == ("b", 0, True)


def test_wait_beyond_the_deadline_is_exhausted() -> None:
    decision = begin(admit=breakers({"a": DEADLINE, "b": DEADLINE + 1, "c": DEADLINE + 5}))
    assert isinstance(decision, Exhausted) and decision.cause == "cooling_past_deadline"
    assert decision.reason == (
        f"chain 't': every remaining link is cooling down until {DEADLINE}, after the deadline {DEADLINE}; "
        "attempts: none"
    )


def test_a_link_skipped_while_open_is_come_back_to() -> None:
    first = begin(admit=breakers({"a": NOW + 5_000}))
    assert isinstance(first, Call) and first.model == "b"
    second = fail(first, FC.AUTH, admit=breakers({"a": NOW + 5_000}))
    assert isinstance(second, Call) and second.model == "c"
    third = fail(second, FC.AUTH, admit=breakers({"a": NOW + 5_000}))
    assert isinstance(third, Wait) and third.until_ms == NOW + 5_000
    probe = resume(
        third.progress,
        chain=ABC,
        now_ms=NOW + 5_000,
        deadline_ms=DEADLINE,
        prompt_tokens=100,
        context_windows=WINDOWS,
        admit=breakers({"a": NOW + 5_000}, now_ms=NOW + 5_000),
    )
    assert isinstance(probe, Call) and (probe.model, probe.attempt, probe.probe) == ("a", 2, True)


def test_a_retry_that_is_the_probe_says_so() -> None:
    decision = fail(begin(), FC.SERVER_ERROR, admit=lambda m: Admission(allowed=True, probe=True))
    assert isinstance(decision, Call) and decision.model == "a" and decision.probe


# --- context length ------------------------------------------------------------


@pytest.mark.parametrize(
    ("links", "prompt_tokens", "max_tokens", "model", "skipped"),
    [
        ([Link(model="d"), Link(model="a")], 8_000, 256, "a", ["d"]),  # 8000 + 256 > 8192
        ([Link(model="d"), Link(model="a")], 7_936, 256, "d", []),  # exactly 8192 fits
        ([Link(model="d", transform=Transform(truncate_prompt_chars=24_000)), Link(model="a")], 50_000, 256, "d", []),
        ([Link(model="d", transform=Transform(max_tokens=64)), Link(model="a")], 8_100, 256, "d", []),
        ([Link(model="d", transform=Transform(prefix="x" * 400)), Link(model="a")], 7_936, 256, "a", ["d"]),
        ([Link(model="unknown-window")], 10**9, 0, "unknown-window", []),
    ],
)
def test_context_checked_before_calling(
    links: list[Link], prompt_tokens: int, max_tokens: int, model: str, skipped: list[str]
) -> None:
    decision = begin(Chain(links=links), prompt_tokens=prompt_tokens, max_tokens=max_tokens)
    assert isinstance(decision, Call) and decision.model == model
    assert [s.model for s in decision.progress.skipped] == skipped
    assert decision.transform == Chain(links=links).link(model).transform


def test_no_link_fits() -> None:
    decision = begin(Chain(links=[Link(model="d"), Link(model="a")]), prompt_tokens=20_000)
    assert isinstance(decision, Exhausted) and decision.cause == "chain_exhausted"
    assert decision.reason == (
        "chain 't' exhausted; attempts: none; skipped: "
        "d (context_length: ~20000 prompt + 0 answer tokens exceed the window of 8192), "
        "a (context_length: ~20000 prompt + 0 answer tokens exceed the window of 16384)"
    )


def test_context_misfit_formula() -> None:
    link = Link(model="d", transform=Transform(truncate_prompt_chars=4_000, prefix="abcd", system="x" * 8))
    assert context_misfit(link, window=1_004, prompt_tokens=99_999, max_tokens=1) == None  # noqa: E711
    assert context_misfit(link, window=1_003, prompt_tokens=99_999, max_tokens=1) == (
        "context_length: ~1003 prompt + 1 answer tokens exceed the window of 1003"
    )


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 4_000, 1_000)])
def test_estimate_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        (None, ("0123456789", "sys", 256)),
        (Transform(max_tokens=64), ("0123456789", "sys", 64)),
        (Transform(max_tokens=1_000), ("0123456789", "sys", 256)),  # lowers, never raises
        (Transform(prefix="Be brief. ", system="new"), ("Be brief. 0123456789", "new", 256)),
        (Transform(truncate_prompt_chars=10), ("0123456789", "sys", 256)),  # fits: untouched
        (Transform(truncate_prompt_chars=9), ("0" + TRUNCATION_MARKER + "9", "sys", 256)),
        (Transform(truncate_prompt_chars=8), ("01234567", "sys", 256)),  # no room for head, marker and tail
        (Transform(truncate_prompt_chars=9, prefix=">"), (">0" + TRUNCATION_MARKER + "9", "sys", 256)),
    ],
)
def test_apply_transform(transform: Transform | None, expected: tuple[str, str, int]) -> None:
    prepared = apply_transform(transform, prompt="0123456789", system="sys", max_tokens=256)
    assert (prepared.prompt, prepared.system, prepared.max_tokens) == expected


def test_truncation_keeps_head_and_tail() -> None:
    prompt = "INSTRUCTIONS " + "filler " * 1_000 + " QUESTION?"
    out = apply_transform(Transform(truncate_prompt_chars=60), prompt=prompt, system=None, max_tokens=0).prompt
    assert len(out) == 60 and out.startswith("INSTRUCTIONS") and out.endswith("QUESTION?") and TRUNCATION_MARKER in out


# --- adaptive order ------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "reliability", "expected"),
    [
        ("adaptive", None, ("a", "b", "c", "d")),
        ("adaptive", {}, ("a", "b", "c", "d")),
        ("static", {"d": (1.0, 1.0)}, ("a", "b", "c", "d")),
        ("adaptive", {"a": (0.5, 10.0), "d": (0.99, 50.0)}, ("d", "b", "c", "a")),  # b, c unmeasured: in place
        (
            "adaptive",
            {"a": (0.9, 80.0), "b": (0.9, 20.0), "c": (0.95, 500.0)},
            ("c", "b", "a", "d"),
        ),  # rate, then latency
        ("adaptive", {"a": (0.9, 20.0), "b": (0.9, 20.0)}, ("a", "b", "c", "d")),  # full tie: configured order
    ],
)
def test_adaptive_order(
    order: str, reliability: dict[str, tuple[float, float]] | None, expected: tuple[str, ...]
) -> None:
    chain = Chain(links=[Link(model=m) for m in "abcd"], order=order)  # type: ignore[arg-type]
    assert order_links(chain, reliability) == expected


def test_adaptive_start_follows_the_measured_order() -> None:
    chain = Chain(links=[Link(model=m) for m in "abc"], order="adaptive")
    decision = begin(chain, reliability={"a": (0.2, 10.0), "c": (0.99, 30.0)})
    assert isinstance(decision, Call) and decision.model == "c"
    assert decision.progress.links == ("c", "b", "a")


def test_reliability_from_stats() -> None:
    stats = {
        "a": {"calls": 40, "successes": 30, "latency_ewma_ms": 120.5},
        "b": {"calls": 19, "successes": 19, "latency_ewma_ms": 10.0},  # too few calls
        "c": {"calls": 20, "successes": 20, "latency_ewma_ms": None},
    }
    assert reliability_from_stats(stats) == {"a": (0.75, 120.5), "c": (1.0, float("inf"))}


# --- state ---------------------------------------------------------------------


def test_progress_round_trips_through_json() -> None:
    _, decision = walk(ROUTED, [FC.CONTENT_POLICY, FC.SERVER_ERROR])
    progress = decision.progress
    assert progress.attempts and progress.skipped and progress.awaiting_attempt is not None
    assert ChainProgress.from_dict(json.loads(json.dumps(progress.to_dict()))) == progress
