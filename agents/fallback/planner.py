"""The chain walk as pure functions: progress and an outcome in, the next decision out.

The fallback agent keeps one :class:`ChainProgress` per task (JSON-able, in the
task-state table) and asks this module what to do at each step:

* ``start`` when the task arrives, ``resume`` when a ``Wait`` ends;
* ``on_failure`` when a call failed (a Failure event), ``on_bad_answer`` when a
  call answered but the answer is empty, does not parse, or fails the link's
  quality check (``check_answer``): that is ``invalid_output`` and moves on;
* ``on_success`` to add the answering attempt to the path.

Each returns a :data:`Decision`, which carries the new progress to store:

* ``Call(model, attempt, at_ms, transform, probe)``: send attempt ``attempt`` to
  ``model`` at ``at_ms`` (``== now_ms`` for now; later for a retry's backoff, via a
  delay topic, never a sleep); when ``probe``, write ``circuit.begin_probe`` first;
* ``Wait(until_ms)``: every remaining link's breaker is open; come back at the
  first probe time (always before the deadline);
* ``Exhausted(cause, reason)``: end the task as failed, listing ``progress.attempts``.

Rules, in the order they are applied after a failure:

1. The failed attempt is recorded. ``attempt`` numbers are 0-based and unique per
   task (retries and fallbacks alike), so (task, model, attempt) names a call.
2. Budget: ``chain.max_attempts`` calls per task in all; spent -> Exhausted.
3. Deadline: ``now_ms >= deadline_ms`` -> Exhausted.
4. Retry the same link when the class's policy allows another call of this link
   (``retries_on_link < policy.retries``; the count is per link, whatever the
   classes), the failure was not marked ``retryable=False`` (e.g. a 429 for
   exhausted quota), the retry's time ``now + backoff`` is before the deadline,
   and the link's breaker admits it (the caller records the outcome in the
   breaker *before* asking, so a failure that trips it also stops the retry).
5. Otherwise the link is finished, and the link's ``on`` routing for the class
   picks where to go on (``next``, ``fail``, ``longest_context`` or a model id; see
   ``chains``). Finished links are never called again, so routing cannot loop.
6. From there, links are scanned in order, wrapping around to earlier unfinished
   links (only links skipped for an open breaker are unfinished behind us):
   a link whose estimated request does not fit its model's context window is
   finished without a call; a link whose breaker refuses is skipped for now; the
   first link admitted is called. If none is admitted but some are cooling down,
   Wait until the earliest ``retry_at_ms`` if that is before the deadline, else
   Exhausted. If no unfinished link remains, Exhausted.

Context fit (checked before every call, never paid for)::

    prompt  = max(prompt_tokens, learned floor)
    prompt  = min(prompt, ceil(truncate_prompt_chars / 4))       when the link truncates
            + estimate_tokens(prefix) + estimate_tokens(system)  when the link adds them
    answer  = min(max_tokens, transform.max_tokens)              (either one when the other is 0/None)
    fits    = prompt + answer <= context window                  (unknown window: fits)

The learned floor: a ``context_length`` failure of a model with window W proves the
prompt was at least ``W - answer + 1`` tokens, whatever the estimate said; later
links are checked with that floor, so a smaller window is not tried for nothing.

Tokens are estimated at ``CHARS_PER_TOKEN`` = 4 characters per token, OpenAI's
rule of thumb for English text with BPE tokenizers; it overestimates code and
underestimates some scripts, which the learned floor corrects after one failure.

Adaptive order (``order_links``): links with a measured (success rate, latency)
are sorted by success rate descending, then latency ascending, into the
positions that measured links hold; unmeasured links keep their configured place.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from swarmstream.agents.fallback.chains import (
    FAIL,
    LONGEST_CONTEXT,
    NEXT,
    Chain,
    Link,
    Quality,
    Transform,
)
from swarmstream.agents.fallback.circuit import Admission
from swarmstream.agents.fallback.retry import (
    DEFAULT_POLICIES,
    RetryPolicy,
    backoff_ms,
    policy_for,
)
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.parsing import parse_answer, parse_json
from swarmstream.schemas.models import Attempt

CHARS_PER_TOKEN = 4
"""See the module docstring: a rule of thumb, corrected by the learned floor."""

MIN_RELIABILITY_CALLS = 20
"""Calls a model needs before its measured success rate reorders a chain: with
fewer, a rate's 95% interval is wider than +-20 points, noise not signal."""

TRUNCATION_MARKER = "\n[...]\n"
"""Stands where the middle of a truncated prompt was, so the model sees a gap."""

AdmitFn = Callable[[str], Admission]


# --- records -----------------------------------------------------------------


@dataclass(frozen=True)
class AttemptRecord:
    """One call of the task: which model, which attempt number, how it ended (None = answered)."""

    model: str
    attempt: int
    failure_class: str | None
    latency_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "attempt": self.attempt,
            "failure_class": self.failure_class,
            "latency_ms": self.latency_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttemptRecord:
        return cls(data["model"], int(data["attempt"]), data.get("failure_class"), int(data.get("latency_ms", 0)))


@dataclass(frozen=True)
class SkipRecord:
    """A link finished without a call, and why (context window, routed past)."""

    model: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkipRecord:
        return cls(data["model"], data["reason"])


@dataclass(frozen=True)
class ChainProgress:
    """Where one task is in its chain; ``to_dict`` / ``from_dict`` round-trip through JSON.

    ``links`` is the order fixed at ``start`` (after adaptive ordering), so a task
    does not change course when the stats move. ``index`` is the link called last
    (or, while waiting, where the scan resumes). ``awaiting_attempt`` is the attempt
    number in flight: an outcome for any other attempt is a duplicate or stale
    event and must be dropped (``is_awaiting``).
    """

    chain: str
    links: tuple[str, ...]
    index: int = 0
    attempts: tuple[AttemptRecord, ...] = ()
    retries_on_link: int = 0
    finished: tuple[str, ...] = ()
    skipped: tuple[SkipRecord, ...] = ()
    min_prompt_tokens: int = 0
    awaiting_attempt: int | None = None

    @property
    def current_model(self) -> str:
        return self.links[self.index]

    def is_awaiting(self, model: str, attempt: int) -> bool:
        """Whether an outcome for (model, attempt) is the one this task waits for."""
        return self.awaiting_attempt == attempt and self.current_model == model

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "links": list(self.links),
            "index": self.index,
            "attempts": [a.to_dict() for a in self.attempts],
            "retries_on_link": self.retries_on_link,
            "finished": list(self.finished),
            "skipped": [s.to_dict() for s in self.skipped],
            "min_prompt_tokens": self.min_prompt_tokens,
            "awaiting_attempt": self.awaiting_attempt,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChainProgress:
        return cls(
            chain=data["chain"],
            links=tuple(data["links"]),
            index=int(data.get("index", 0)),
            attempts=tuple(AttemptRecord.from_dict(a) for a in data.get("attempts", ())),
            retries_on_link=int(data.get("retries_on_link", 0)),
            finished=tuple(data.get("finished", ())),
            skipped=tuple(SkipRecord.from_dict(s) for s in data.get("skipped", ())),
            min_prompt_tokens=int(data.get("min_prompt_tokens", 0)),
            awaiting_attempt=data.get("awaiting_attempt"),
        )


# --- decisions ---------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """Send ``attempt`` to ``model`` at ``at_ms`` with the link's ``transform``; store ``progress``."""

    model: str
    attempt: int
    at_ms: int
    transform: Transform | None
    progress: ChainProgress
    probe: bool = False


@dataclass(frozen=True)
class Wait:
    """Every remaining link is cooling down: ``resume`` at ``until_ms`` (< the deadline)."""

    until_ms: int
    progress: ChainProgress


ExhaustedCause = Literal["chain_exhausted", "budget_spent", "deadline", "cooling_past_deadline", "routed_to_fail"]


@dataclass(frozen=True)
class Exhausted:
    """The task ends as failed; ``progress.attempts`` is the path to report."""

    cause: ExhaustedCause
    reason: str
    progress: ChainProgress

    @property
    def attempts(self) -> tuple[AttemptRecord, ...]:
        return self.progress.attempts


Decision = Call | Wait | Exhausted


# --- tokens, transforms, answers ---------------------------------------------


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` at ``CHARS_PER_TOKEN`` characters per token, rounded up."""
    return tokens_for_chars(len(text))


def tokens_for_chars(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class PreparedRequest:
    """The request fields after a link's transform."""

    prompt: str
    system: str | None
    max_tokens: int


def apply_transform(
    transform: Transform | None, *, prompt: str, system: str | None, max_tokens: int
) -> PreparedRequest:
    """The request as this link sends it; rules in ``chains.Transform``."""
    if transform is None:
        return PreparedRequest(prompt, system, max_tokens)
    if transform.truncate_prompt_chars is not None:
        prompt = truncate_middle(prompt, transform.truncate_prompt_chars)
    if transform.prefix:
        prompt = transform.prefix + prompt
    if transform.system is not None:
        system = transform.system
    return PreparedRequest(prompt, system, effective_max_tokens(max_tokens, transform))


def truncate_middle(text: str, max_chars: int) -> str:
    """At most ``max_chars`` characters: the head and the tail, joined by ``TRUNCATION_MARKER``.

    Head and tail because prompts put instructions first and the question last.
    """
    if len(text) <= max_chars:
        return text
    keep = max_chars - len(TRUNCATION_MARKER)
    if keep < 2:
        return text[:max_chars]
    head = (keep + 1) // 2
    tail = keep // 2
    return text[:head] + TRUNCATION_MARKER + text[len(text) - tail :]


def effective_max_tokens(max_tokens: int, transform: Transform | None) -> int:
    """The answer's token limit after the transform, which may only lower it (0 = unset)."""
    cap = transform.max_tokens if transform is not None else None
    if cap is None:
        return max_tokens
    return min(max_tokens, cap) if max_tokens > 0 else cap


def quality_ok(text: str, quality: Quality | None) -> str | None:
    """None when ``text`` passes the link's quality check, else the reason it does not.

    An empty (or blank) text never passes, with or without a check.
    """
    stripped = text.strip()
    if not stripped:
        return "empty answer"
    if quality is None:
        return None
    if quality.min_chars is not None and len(stripped) < quality.min_chars:
        return f"answer has {len(stripped)} characters, fewer than min_chars {quality.min_chars}"
    if quality.regex is not None and _compiled(quality.regex).search(text) is None:
        return f"answer does not match regex {quality.regex!r}"
    if quality.json_schema is not None:
        try:
            parse_json(text, json.dumps(quality.json_schema, sort_keys=True))
        except ProviderError as exc:
            return exc.message
    return None


def check_answer(
    text: str,
    *,
    answer_type: str,
    labels: Sequence[str] = (),
    json_schema: str | None = None,
    quality: Quality | None = None,
) -> tuple[str | None, str | None]:
    """(normalised answer, None) when the text parses for the task's answer type and
    passes the link's quality check; (None, reason) when it is ``invalid_output``."""
    reason = quality_ok(text, quality)
    if reason is not None:
        return None, reason
    try:
        return parse_answer(text, answer_type, labels=labels, json_schema=json_schema), None
    except ProviderError as exc:
        return None, exc.message


@lru_cache(maxsize=256)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


# --- ordering ----------------------------------------------------------------


def order_links(chain: Chain, reliability: Mapping[str, tuple[float, float]] | None = None) -> tuple[str, ...]:
    """The link order a task follows: configured, or for ``order: adaptive`` reordered by
    (success rate desc, latency asc) among measured links, unmeasured ones in place."""
    models = [link.model for link in chain.links]
    if chain.order != "adaptive" or not reliability:
        return tuple(models)
    positions = [i for i, model in enumerate(models) if model in reliability]
    ranked = sorted(
        (models[i] for i in positions),
        key=lambda model: (-reliability[model][0], reliability[model][1], models.index(model)),
    )
    ordered = list(models)
    for position, model in zip(positions, ranked, strict=True):
        ordered[position] = model
    return tuple(ordered)


def reliability_from_stats(
    stats: Mapping[str, Mapping[str, Any]], *, min_calls: int = MIN_RELIABILITY_CALLS
) -> dict[str, tuple[float, float]]:
    """(success rate, latency ms) per model from merged ``agents/stats`` dicts
    (``calls``, ``successes``, ``latency_ewma_ms``); models under ``min_calls`` are left out."""
    measured: dict[str, tuple[float, float]] = {}
    for model, entry in stats.items():
        calls = int(entry.get("calls", 0))
        if calls < min_calls:
            continue
        latency = entry.get("latency_ewma_ms")
        measured[model] = (int(entry.get("successes", 0)) / calls, math.inf if latency is None else float(latency))
    return measured


# --- the walk ----------------------------------------------------------------


def start(
    chain: Chain,
    *,
    name: str,
    now_ms: int,
    deadline_ms: int,
    prompt_tokens: int,
    context_windows: Mapping[str, int],
    admit: AdmitFn,
    reliability: Mapping[str, tuple[float, float]] | None = None,
    max_tokens: int = 0,
) -> Decision:
    """The first call of a task through chain ``name``.

    ``prompt_tokens`` estimates the prompt and system prompt as the task sends them
    (``estimate_tokens``); ``max_tokens`` is the task's answer limit (0 = unknown).
    """
    progress = ChainProgress(chain=name, links=order_links(chain, reliability))
    return _next_call(
        progress,
        0,
        chain=chain,
        now_ms=now_ms,
        deadline_ms=deadline_ms,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        context_windows=context_windows,
        admit=admit,
    )


def resume(
    progress: ChainProgress,
    *,
    chain: Chain,
    now_ms: int,
    deadline_ms: int,
    prompt_tokens: int,
    context_windows: Mapping[str, int],
    admit: AdmitFn,
    max_tokens: int = 0,
) -> Decision:
    """The next call after a ``Wait`` ended (or after a restart found no call in flight)."""
    if progress.awaiting_attempt is not None:
        raise ValueError(f"attempt {progress.awaiting_attempt} is still in flight; resume only after a Wait")
    return _next_call(
        progress,
        progress.index,
        chain=chain,
        now_ms=now_ms,
        deadline_ms=deadline_ms,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        context_windows=context_windows,
        admit=admit,
    )


def on_success(progress: ChainProgress, *, latency_ms: int) -> ChainProgress:
    """The progress with the answering attempt recorded, for the result's path."""
    awaiting = _require_awaiting(progress)
    record = AttemptRecord(progress.current_model, awaiting, None, latency_ms)
    return replace(progress, attempts=(*progress.attempts, record), awaiting_attempt=None)


def on_failure(
    progress: ChainProgress,
    failure_class: FailureClass | str,
    *,
    chain: Chain,
    now_ms: int,
    deadline_ms: int,
    prompt_tokens: int,
    context_windows: Mapping[str, int],
    admit: AdmitFn,
    rng_uniform: float,
    latency_ms: int = 0,
    retry_after_ms: int | None = None,
    retryable: bool | None = None,
    policies: Mapping[FailureClass, RetryPolicy] = DEFAULT_POLICIES,
    max_tokens: int = 0,
) -> Decision:
    """What follows a failed call of the current link; rules 1-6 of the module docstring.

    ``rng_uniform`` in [0, 1) drives the backoff's jitter (passed in for replay);
    ``retryable=False`` forbids a retry on the same link whatever the policy says.
    """
    awaiting = _require_awaiting(progress)
    failure = FailureClass(failure_class)
    model = progress.current_model
    link = chain.link(model)
    progress = replace(
        progress,
        attempts=(*progress.attempts, AttemptRecord(model, awaiting, failure.value, latency_ms)),
        awaiting_attempt=None,
    )
    if failure is FailureClass.CONTEXT_LENGTH:
        progress = _learn_prompt_floor(progress, link, context_windows.get(model), max_tokens)

    stop = _out_of_budget_or_time(progress, chain=chain, now_ms=now_ms, deadline_ms=deadline_ms)
    if stop is not None:
        return stop

    policy = policy_for(failure, policies)
    if retryable is not False and progress.retries_on_link < policy.retries:
        at_ms = now_ms + backoff_ms(policy, progress.retries_on_link + 1, rng_uniform, retry_after_ms)
        if at_ms < deadline_ms:
            admission = admit(model)
            if admission.allowed:
                attempt = len(progress.attempts)
                retried = replace(progress, retries_on_link=progress.retries_on_link + 1, awaiting_attempt=attempt)
                return Call(model, attempt, at_ms, link.transform, retried, probe=admission.probe)

    target = link.on.get(failure, NEXT)
    progress = replace(progress, finished=(*progress.finished, model))
    if target == FAIL:
        return Exhausted(
            "routed_to_fail",
            f"chain {progress.chain!r}: {model} failed with {failure.value}, which its link routes to fail; "
            f"attempts: {_describe(progress.attempts)}",
            progress,
        )
    progress, start_index = _route(progress, failure, target, context_windows)
    return _next_call(
        progress,
        start_index,
        chain=chain,
        now_ms=now_ms,
        deadline_ms=deadline_ms,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        context_windows=context_windows,
        admit=admit,
    )


def on_bad_answer(
    progress: ChainProgress,
    *,
    chain: Chain,
    now_ms: int,
    deadline_ms: int,
    prompt_tokens: int,
    context_windows: Mapping[str, int],
    admit: AdmitFn,
    rng_uniform: float = 0.0,
    latency_ms: int = 0,
    policies: Mapping[FailureClass, RetryPolicy] = DEFAULT_POLICIES,
    max_tokens: int = 0,
) -> Decision:
    """An answer that is empty, does not parse or fails the link's quality check is
    ``invalid_output``: the same as ``on_failure`` with that class (no retry by default)."""
    return on_failure(
        progress,
        FailureClass.INVALID_OUTPUT,
        chain=chain,
        now_ms=now_ms,
        deadline_ms=deadline_ms,
        prompt_tokens=prompt_tokens,
        context_windows=context_windows,
        admit=admit,
        rng_uniform=rng_uniform,
        latency_ms=latency_ms,
        policies=policies,
        max_tokens=max_tokens,
    )


def to_attempt_records(progress: ChainProgress) -> list[Attempt]:
    """The path as ``TaskResult.attempts`` records."""
    return [
        Attempt(model_id=a.model, attempt=a.attempt, failure_class=a.failure_class, latency_ms=a.latency_ms)
        for a in progress.attempts
    ]


def context_misfit(
    link: Link,
    *,
    window: int | None,
    prompt_tokens: int,
    min_prompt_tokens: int = 0,
    max_tokens: int = 0,
) -> str | None:
    """None when the request fits ``window`` after the link's transform, else why not (formula above)."""
    if window is None:
        return None
    transform = link.transform
    tokens = max(prompt_tokens, min_prompt_tokens)
    if transform is not None:
        if transform.truncate_prompt_chars is not None:
            tokens = min(tokens, tokens_for_chars(transform.truncate_prompt_chars))
        tokens += estimate_tokens(transform.prefix or "") + estimate_tokens(transform.system or "")
    answer = effective_max_tokens(max_tokens, transform)
    if tokens + answer <= window:
        return None
    return f"context_length: ~{tokens} prompt + {answer} answer tokens exceed the window of {window}"


# --- internals ---------------------------------------------------------------


def _require_awaiting(progress: ChainProgress) -> int:
    if progress.awaiting_attempt is None:
        raise ValueError(f"chain {progress.chain!r} has no call in flight; an outcome now is stale or duplicate")
    return progress.awaiting_attempt


def _learn_prompt_floor(progress: ChainProgress, link: Link, window: int | None, max_tokens: int) -> ChainProgress:
    if window is None or (link.transform is not None and link.transform.truncate_prompt_chars is not None):
        return progress  # a truncated prompt says nothing about the full one
    floor = window - effective_max_tokens(max_tokens, link.transform) + 1
    return replace(progress, min_prompt_tokens=max(progress.min_prompt_tokens, floor))


def _out_of_budget_or_time(progress: ChainProgress, *, chain: Chain, now_ms: int, deadline_ms: int) -> Exhausted | None:
    if len(progress.attempts) >= chain.max_attempts:
        return Exhausted(
            "budget_spent",
            f"chain {progress.chain!r}: attempt budget of {chain.max_attempts} spent; "
            f"attempts: {_describe(progress.attempts)}",
            progress,
        )
    if now_ms >= deadline_ms:
        return Exhausted(
            "deadline",
            f"chain {progress.chain!r}: deadline passed; attempts: {_describe(progress.attempts)}",
            progress,
        )
    return None


def _route(
    progress: ChainProgress, failure: FailureClass, target: str, context_windows: Mapping[str, int]
) -> tuple[ChainProgress, int]:
    """Where the scan for the next link starts, after finishing the current one."""
    links, index = progress.links, progress.index
    if target == LONGEST_CONTEXT:
        candidates = [i for i, model in enumerate(links) if model not in progress.finished]
        if not candidates:
            return progress, index + 1
        # Unknown windows rank last; ties keep chain order.
        return progress, max(candidates, key=lambda i: (context_windows.get(links[i], -1), -i))
    if target == NEXT or target not in links:
        return progress, index + 1
    target_index = links.index(target)
    if target_index > index:
        passed = [m for m in links[index + 1 : target_index] if m not in progress.finished]
        reason = f"routed past: on {failure.value} go to {target}"
        progress = replace(
            progress,
            finished=(*progress.finished, *passed),
            skipped=(*progress.skipped, *(SkipRecord(m, reason) for m in passed)),
        )
    return progress, target_index


def _next_call(
    progress: ChainProgress,
    start_index: int,
    *,
    chain: Chain,
    now_ms: int,
    deadline_ms: int,
    prompt_tokens: int,
    max_tokens: int,
    context_windows: Mapping[str, int],
    admit: AdmitFn,
) -> Decision:
    stop = _out_of_budget_or_time(progress, chain=chain, now_ms=now_ms, deadline_ms=deadline_ms)
    if stop is not None:
        return stop
    count = len(progress.links)
    retry_times: list[int | None] = []
    for offset in range(count):
        index = (start_index + offset) % count
        model = progress.links[index]
        if model in progress.finished:
            continue
        link = chain.link(model)
        misfit = context_misfit(
            link,
            window=context_windows.get(model),
            prompt_tokens=prompt_tokens,
            min_prompt_tokens=progress.min_prompt_tokens,
            max_tokens=max_tokens,
        )
        if misfit is not None:
            progress = replace(
                progress,
                finished=(*progress.finished, model),
                skipped=(*progress.skipped, SkipRecord(model, misfit)),
            )
            continue
        admission = admit(model)
        if admission.allowed:
            attempt = len(progress.attempts)
            called = replace(progress, index=index, retries_on_link=0, awaiting_attempt=attempt)
            return Call(model, attempt, now_ms, link.transform, called, probe=admission.probe)
        retry_times.append(admission.retry_at_ms)

    if retry_times:
        known = [t for t in retry_times if t is not None]
        waiting = replace(progress, index=start_index % count, retries_on_link=0)
        if known:
            # never a Wait that ends now: a caller looping on it would spin
            until_ms = max(min(known), now_ms + 1)
            if until_ms < deadline_ms:
                return Wait(until_ms, waiting)
            when = f"until {min(known)}, after the deadline {deadline_ms}"
        else:
            when = "with no known end"
        return Exhausted(
            "cooling_past_deadline",
            f"chain {progress.chain!r}: every remaining link is cooling down {when}; "
            f"attempts: {_describe(progress.attempts)}",
            waiting,
        )
    return Exhausted(
        "chain_exhausted",
        f"chain {progress.chain!r} exhausted; attempts: {_describe(progress.attempts)}"
        + (f"; skipped: {_describe_skips(progress.skipped)}" if progress.skipped else ""),
        progress,
    )


def _describe(attempts: Iterable[AttemptRecord]) -> str:
    parts = [f"{a.model}#{a.attempt} {a.failure_class or 'ok'} ({a.latency_ms} ms)" for a in attempts]
    return ", ".join(parts) or "none"


def _describe_skips(skips: Iterable[SkipRecord]) -> str:
    return ", ".join(f"{s.model} ({s.reason})" for s in skips)
