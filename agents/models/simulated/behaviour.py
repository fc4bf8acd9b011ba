"""Pure decisions of the simulated fleet: which answer a model gives, how long it takes,
which failure (if any) a call suffers, and how the reply is worded. No I/O.

Determinism contract:
- whether a model answers a prompt correctly, and which wrong answer it gives, is a
  pure function of (seed, model, prompt): a retry of the same prompt gets the same
  answer, and two models' mistakes are independent. Because the decision compares one
  fixed uniform draw with `accuracy`, raising a model's accuracy only turns wrong
  answers into right ones (drift tests see a monotone change, not a reshuffle);
- latency and injected failures are drawn per call from per-model RNG streams seeded
  by (seed, model), so a call sequence replays exactly after a reset, and failures
  of different models are independent.
"""

import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from .profile import SimProfile
from .taskset import Truth

# `error_rate` is spread over the retryable errors that answer at once. Timeouts are
# left out on purpose: each one costs a client its whole timeout, which would make a
# demo with a small error rate crawl; ask for them with `failures={"timeout": rate}`.
ERROR_RATE_MIX: Mapping[str, float] = {"server_error": 0.6, "rate_limited": 0.4}

# z-score of the 99th percentile of a standard normal, for the lognormal's sigma
_Z_P99 = 2.3263478740408408

UNSURE_TEXT = "I am not sure."
UNSOLVED_TEXT = "Answer: unknown"


def _stream_seed(*parts: object) -> int:
    h = hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=16)
    return int.from_bytes(h.digest(), "big")


@dataclass(frozen=True, slots=True)
class AnswerDecision:
    correct: bool
    answer: str  # normalised
    confidence_logprob: float  # what the model "believes": log-probability of its answer token


def _uniforms(count: int, *parts: object) -> list[float]:
    """``count`` independent draws in [0, 1) that are a pure function of ``parts``: slices of one
    hash, which is cheaper than seeding a ``random.Random`` for the three draws of an answer
    (that seeding was most of a simulated call's CPU)."""
    digest = hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=8 * count).digest()
    return [int.from_bytes(digest[i : i + 8], "big") / 2**64 for i in range(0, 8 * count, 8)]


def decide_answer(seed: int, model: str, prompt: str, truth: Truth, accuracy: float) -> AnswerDecision:
    """Correct with probability `accuracy`, else one of `truth.wrong`; a pure function of its
    arguments (see the module docstring)."""
    u, pick, spread = _uniforms(3, "answer", seed, model, prompt)
    wrong = truth.wrong[int(pick * len(truth.wrong))] if truth.wrong else truth.answer
    correct = u < accuracy or not truth.wrong
    # Calibrated-ish confidence: right answers are usually confident, wrong ones less so,
    # which gives confidence-weighted consensus a real (but imperfect) signal.
    confidence = 0.6 + 0.39 * spread if correct else 0.25 + 0.55 * spread
    return AnswerDecision(correct, truth.answer if correct else wrong, math.log(confidence))


def accuracy_for(profile: SimProfile, category: str) -> float:
    """The profile's accuracy on prompts of `category`: its `accuracy_by_category` entry
    when it has one, else its overall `accuracy`."""
    return profile.accuracy_by_category.get(category, profile.accuracy)


def lognormal_params(median_ms: float, p99_ms: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with this median and 99th percentile (in ms)."""
    mu = math.log(median_ms)
    sigma = max(0.0, math.log(max(p99_ms, median_ms)) - mu) / _Z_P99
    return mu, sigma


def draw_latency_s(rng: random.Random, profile: SimProfile) -> float:
    """Seconds to wait before answering; 0 when the profile's median is 0."""
    if profile.latency_median_ms <= 0:
        return 0.0
    mu, sigma = lognormal_params(profile.latency_median_ms, profile.latency_p99_ms)
    return rng.lognormvariate(mu, sigma) / 1000.0


def failure_table(profile: SimProfile) -> tuple[tuple[str, float], ...]:
    """(class, rate) pairs of a profile, `error_rate` spread per ERROR_RATE_MIX, in a fixed order."""
    rates = dict.fromkeys(sorted(profile.failures), 0.0)
    for name, rate in profile.failures.items():
        rates[name] += rate
    for name, share in ERROR_RATE_MIX.items():
        rates[name] = rates.get(name, 0.0) + profile.error_rate * share
    return tuple((name, rate) for name, rate in rates.items() if rate > 0)


def pick_failure(table: tuple[tuple[str, float], ...], u: float) -> str | None:
    """The failure class a uniform draw `u` in [0, 1) lands on, or None for a normal call."""
    edge = 0.0
    for name, rate in table:
        edge += rate
        if u < edge:
            return name
    return None


@dataclass(slots=True)
class ModelState:
    """What the fleet keeps per model: its profile, where its script stands, its RNG streams."""

    profile: SimProfile
    seed: int
    model: str
    script_pos: int = 0
    failures: tuple[tuple[str, float], ...] = ()
    failure_rng: random.Random = field(default_factory=random.Random)
    latency_rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.failures = failure_table(self.profile)
        self.reset()

    def reset(self) -> None:
        self.script_pos = 0
        self.failure_rng = random.Random(_stream_seed("failure", self.seed, self.model))
        self.latency_rng = random.Random(_stream_seed("latency", self.seed, self.model))

    def next_step(self) -> str:
        """The scripted step while the script lasts, then a failure class drawn from the
        rates, else "ok". The failure stream is drawn on every unscripted call, so the
        sequence of failures does not depend on what the prompts were."""
        script = self.profile.script
        if self.script_pos < len(script):
            step = script[self.script_pos]
            self.script_pos += 1
            return step
        u = self.failure_rng.random()
        return pick_failure(self.failures, u) or "ok"


def answer_text(answer_type: str, answer: str) -> str:
    """How a simulated model words an answer. Text and JSON come bare, as the prompt asked
    ("Answer with the name only", "a JSON object ... only"), because a free-text parser
    keeps every word it is given; labels and numbers come on an `Answer:` line, as chatty
    models write them, which `parsing.parse_answer` and `taskset.extract_answer` both read."""
    if answer_type in ("json", "text"):
        return answer
    return f"Answer: {answer}"


def estimate_tokens(chars: int) -> int:
    # ~4 characters per token is OpenAI's rule of thumb for English text
    return max(1, (chars + 3) // 4)
