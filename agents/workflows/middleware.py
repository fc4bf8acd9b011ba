"""Middleware: before/after hooks around every workflow step, in a configured order.

A workflow lists its middleware; the hooks wrap every step like an onion::

    before: m1 -> m2 -> m3 -> (the step runs: a child task, a transform, a branch)
    after:  m3 -> m2 -> m1

``before`` may change the call (the prompt, the system prompt, the child's
parameters) and may *short-circuit* by returning an output: the step then
does not run, the later middleware's hooks do not run, and only the afters of
the middleware before it see the output (m1's, if m2 answered). A model
step's before and after run on different events (the child task's result
comes back later, perhaps to a restarted worker), so what a hook must carry
from one to the other goes in ``call.notes``, which is saved with the
workflow's state (JSON values only).

A middleware is named in the workflows file by a built-in name or a dotted
path (``package.module:factory``) with options::

    middleware: [timing, redact_pii, {use: cache, ttl_s: 600}, {use: "my.mod:Audit", level: 2}]

and built by calling the factory with the :class:`MiddlewareEnv` and the
options as keywords; it returns an object with ``name``, ``before(call)`` and
``after(call, output)``.

Built in:

    timing      the step's wall time in the output (``latency_ms``) and per-step telemetry
    redact_pii  e-mail addresses, phone and card numbers, IBANs and SSNs replaced by
                [EMAIL] / [PHONE] / [CARD] / [IBAN] / [SSN] before a prompt leaves for a model
    cache       a response cache: key = hash of (prompt, system) + the models (or policy,
                chain) + hash of the parameters; a fresh entry answers without a model call
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from swarmstream.agents.workflows.transforms import TransformError, resolve_dotted

Output = dict[str, Any]


@dataclass
class StepCall:
    """What a step is about to do, as middleware sees (and may change) it."""

    workflow: str
    step: str
    kind: str
    hop: int
    prompt: str
    system: str | None
    params: dict[str, Any]
    scope: Mapping[str, Any]
    now_ms: int
    notes: dict[str, Any] = field(default_factory=dict)


class Middleware(Protocol):
    name: str

    def before(self, call: StepCall) -> Output | None:
        """None to let the step run; an output to answer in its place (short-circuit)."""
        ...

    def after(self, call: StepCall, output: Output) -> Output:
        """The output, possibly changed."""
        ...


class MiddlewareError(ValueError):
    """A middleware that cannot be found or built; the message says which and why."""


class CacheStore(Protocol):
    """Where the cache keeps entries: the agent gives a changelog table, tests a dict."""

    def get(self, key: str) -> Any: ...
    def __setitem__(self, key: str, value: Any) -> None: ...


@dataclass
class Telemetry:
    """Per (workflow, step) counters the timing middleware keeps in this worker."""

    runs: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)
    latency_ms_total: dict[str, int] = field(default_factory=dict)

    def record(self, workflow: str, step: str, output: Output) -> None:
        key = f"{workflow}.{step}"
        self.runs[key] = self.runs.get(key, 0) + 1
        if output.get("cached"):
            self.cached[key] = self.cached.get(key, 0) + 1
        self.latency_ms_total[key] = self.latency_ms_total.get(key, 0) + int(output.get("latency_ms") or 0)


@dataclass
class MiddlewareEnv:
    """What built-in middleware needs from the worker: the cache's table, the telemetry."""

    cache: CacheStore | MutableMapping[str, Any] = field(default_factory=dict)
    telemetry: Telemetry = field(default_factory=Telemetry)


class MiddlewareChain:
    """A workflow's middleware in order; :meth:`before` and :meth:`after` run the onion."""

    def __init__(self, items: Sequence[Middleware] = ()) -> None:
        self.items = list(items)

    def before(self, call: StepCall) -> tuple[int, Output | None]:
        """(how many middleware's afters must run, the short-circuit output or None)."""
        for index, item in enumerate(self.items):
            output = item.before(call)
            if output is not None:
                call.notes["short_circuit"] = item.name
                return index, output
        return len(self.items), None

    def after(self, call: StepCall, output: Output, ran: int) -> Output:
        for item in reversed(self.items[:ran]):
            output = item.after(call, output)
        return output


# -- built-ins -----------------------------------------------------------------------------


class Timing:
    """The step's wall time, from its before hook to its after hook, and per-step telemetry."""

    name = "timing"

    def __init__(self, env: MiddlewareEnv) -> None:
        self._telemetry = env.telemetry

    def before(self, call: StepCall) -> Output | None:
        call.notes["timing.started_ms"] = call.now_ms
        return None

    def after(self, call: StepCall, output: Output) -> Output:
        started = call.notes.get("timing.started_ms", call.now_ms)
        output = {**output, "latency_ms": max(0, call.now_ms - int(started))}
        self._telemetry.record(call.workflow, call.step, output)
        return output


PII_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("CARD", re.compile(r"\b\d(?:[ -]?\d){12,18}\b")),
    # 9-15 digits with separators (E.164 has at most 15): a phone number; short numbers (arithmetic,
    # ages, years) stay, and so does a longer digit run that failed the card check (never part of one)
    ("PHONE", re.compile(r"(?<![\w.])(?<!\d[\s().-])\+?\d(?:[\s().-]{0,2}\d){8,14}(?![\w.])(?![\s().-]\d)")),
)
"""Order matters: a card number also looks like a phone number, an IBAN holds digits."""


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str) -> tuple[str, dict[str, int]]:
    """``text`` with PII replaced by placeholders, and how many of each kind were found.
    A 13-19 digit run counts as a card only when its Luhn check passes (order numbers do not)."""
    counts: dict[str, int] = {}

    for kind, pattern in PII_PATTERNS:
        def replace(match: re.Match[str], kind: str = kind) -> str:
            if kind == "CARD" and not luhn_ok(re.sub(r"\D", "", match[0])):
                return match[0]
            counts[kind] = counts.get(kind, 0) + 1
            return f"[{kind}]"

        text = pattern.sub(replace, text)
    return text, counts


class RedactPii:
    """Replaces personal data in the prompt and system prompt before a model sees them.
    The counts (never the values) go in the step's notes; the output is left as it is."""

    name = "redact_pii"

    def __init__(self, env: MiddlewareEnv) -> None:
        pass

    def before(self, call: StepCall) -> Output | None:
        call.prompt, found = redact(call.prompt)
        if call.system:
            call.system, found_system = redact(call.system)
            for kind, n in found_system.items():
                found[kind] = found.get(kind, 0) + n
        if found:
            call.notes["pii.redacted"] = found
        return None

    def after(self, call: StepCall, output: Output) -> Output:
        return output


CACHEABLE_KINDS = frozenset({"consensus", "select", "chain", "tools"})
CACHED_FIELDS = ("answer", "confidence", "agreement", "answered_by", "status", "votes")


def cache_key(call: StepCall) -> str:
    """``<kind>:<models or policy or chain>:<hash of prompt + system>:<hash of the other parameters>``.
    Anything that changes the answer is in the key; the task id and deadline are not."""
    params = {k: v for k, v in sorted(call.params.items()) if k not in ("timeout_ms",)}
    who = ",".join(params.get("models") or []) or params.get("policy") or params.get("chain") or "default"
    prompt_hash = hashlib.sha256(orjson.dumps([call.prompt, call.system])).hexdigest()[:32]
    params_hash = hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return f"{call.kind}:{who}:{prompt_hash}:{params_hash}"


class ResponseCache:
    """Answers a model step from an earlier identical call while the entry is fresh.

    Entries live in the worker's cache table (a changelog table: a restarted
    worker recovers them) as ``{"output", "stored_ms", "expires_ms"}``; an
    expired entry is a miss and is overwritten by the next answer. Only ``ok``
    outputs are stored: a failure or a split vote must be asked again."""

    name = "cache"

    def __init__(self, env: MiddlewareEnv, *, ttl_s: float = 600.0) -> None:
        if ttl_s <= 0:
            raise MiddlewareError(f"cache: ttl_s must be > 0, got {ttl_s}")
        self._store = env.cache
        self._ttl_ms = int(ttl_s * 1000)

    def before(self, call: StepCall) -> Output | None:
        if call.kind not in CACHEABLE_KINDS:
            return None
        key = cache_key(call)
        entry = self._store.get(key)
        if entry and entry.get("expires_ms", 0) > call.now_ms:
            return {**entry["output"], "cached": True, "cost_micros": 0, "latency_ms": 0,
                    "detail": f"cache hit ({call.now_ms - entry['stored_ms']} ms old)"}
        call.notes["cache.key"] = key
        return None

    def after(self, call: StepCall, output: Output) -> Output:
        key = call.notes.get("cache.key")
        if key and output.get("status") == "ok" and not output.get("cached"):
            self._store[key] = {"output": {k: output.get(k) for k in CACHED_FIELDS},
                                "stored_ms": call.now_ms, "expires_ms": call.now_ms + self._ttl_ms}
        return output


BUILT_IN: dict[str, Callable[..., Middleware]] = {"timing": Timing, "redact_pii": RedactPii, "cache": ResponseCache}


def resolve_middleware(name: str) -> Callable[..., Middleware]:
    if name in BUILT_IN:
        return BUILT_IN[name]
    try:
        return resolve_dotted(name, what="middleware", known=BUILT_IN)  # type: ignore[no-any-return]
    except TransformError as exc:
        raise MiddlewareError(str(exc)) from None


def build_middleware(name: str, options: Mapping[str, Any], env: MiddlewareEnv) -> Middleware:
    factory = resolve_middleware(name)
    try:
        built = factory(env, **options)
    except TypeError as exc:
        raise MiddlewareError(f"middleware {name!r}: {exc}") from None
    for attr in ("name", "before", "after"):
        if not hasattr(built, attr):
            raise MiddlewareError(f"middleware {name!r}: the object built has no {attr!r}")
    return built  # type: ignore[no-any-return]
