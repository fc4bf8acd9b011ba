"""How one simulated model behaves: `SimProfile`, and the outcome names it uses.

`SimProfile` belongs to the model catalog (`agents/models/catalog.py`); this
module re-exports it from there and carries an identical copy only for as long
as the catalog does not define it, so the simulator never depends on which of
the two was written first. Keep the fields of the copy identical.

Outcome names (strings, the same ones the fallback package classifies):

    timeout         the server holds the request far past any client timeout
    rate_limited    429 with `Retry-After: 1`
    server_error    500 (OpenAI) / 529 overloaded_error (Anthropic)
    auth            401
    bad_request     400
    context_length  400, OpenAI code `context_length_exceeded` / Anthropic "prompt is too long"
    content_policy  200, finish_reason `content_filter` / stop_reason `refusal`, no text
    invalid_output  200 with text that holds no answer ("I am not sure.")
    network         the connection is dropped before any response

A script step is one of these classes or `ok` (answer normally: correct with the
profile's accuracy). The names are `failures.FailureClass`'s values; a test keeps the
two in step.
"""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["FAILURE_CLASSES", "SCRIPT_STEPS", "SimProfile", "check_profile", "check_profiles"]

FAILURE_CLASSES: tuple[str, ...] = (
    "timeout",
    "rate_limited",
    "server_error",
    "auth",
    "bad_request",
    "context_length",
    "content_policy",
    "invalid_output",
    "network",
)
SCRIPT_STEPS: tuple[str, ...] = ("ok", *FAILURE_CLASSES)

try:  # the catalog owns the type; the copy below stands in until it exists
    from swarmstream.agents.models.catalog import SimProfile
except ImportError:

    class SimProfile(BaseModel):  # type: ignore[no-redef]
        accuracy: float = 0.7
        latency_median_ms: float = 50
        latency_p99_ms: float = 200
        error_rate: float = 0.0  # share of calls answered with a random retryable error
        protocol: Literal["openai", "anthropic"] = "openai"
        failures: dict[str, float] = {}  # failure class -> rate, e.g. {"server_error": 0.3}
        script: list[str] = []  # outcomes consumed in order per model, then normal behaviour
        accuracy_by_category: dict[str, float] = {}  # task category -> accuracy, overrides `accuracy`
        correlated: Any = None  # catalog.CorrelatedErrorsProfile: err like real models (correlated.py)


def check_profile(model: str, profile: SimProfile) -> None:
    """Raise ValueError naming the model and the field when a profile cannot be simulated,
    so a typo in a failure class fails at start-up rather than silently never firing."""
    where = f"simulated model {model!r}"
    if not 0.0 <= profile.accuracy <= 1.0:
        raise ValueError(f"{where}: accuracy {profile.accuracy} must lie in [0, 1]")
    for category, accuracy in profile.accuracy_by_category.items():
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"{where}: accuracy_by_category.{category}: {accuracy} must lie in [0, 1]")
    if profile.latency_median_ms < 0 or profile.latency_p99_ms < 0:
        raise ValueError(f"{where}: latencies must be >= 0 ms")
    if profile.latency_median_ms > 0 and profile.latency_p99_ms < profile.latency_median_ms:
        raise ValueError(
            f"{where}: latency_p99_ms {profile.latency_p99_ms} is below latency_median_ms {profile.latency_median_ms}"
        )
    if not 0.0 <= profile.error_rate <= 1.0:
        raise ValueError(f"{where}: error_rate {profile.error_rate} must lie in [0, 1]")
    for name, rate in profile.failures.items():
        if name not in FAILURE_CLASSES:
            raise ValueError(f"{where}: failures: unknown class {name!r} (known: {', '.join(FAILURE_CLASSES)})")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{where}: failures.{name}: rate {rate} must lie in [0, 1]")
    total = profile.error_rate + sum(profile.failures.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"{where}: error_rate plus failures add up to {total:.3f}, more than 1")
    for i, step in enumerate(profile.script):
        if step not in SCRIPT_STEPS:
            raise ValueError(f"{where}: script[{i}]: unknown step {step!r} (known: {', '.join(SCRIPT_STEPS)})")


def check_profiles(profiles: Mapping[str, SimProfile]) -> None:
    for model, profile in profiles.items():
        check_profile(model, profile)
