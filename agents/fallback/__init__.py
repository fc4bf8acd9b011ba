"""Fallback chains: when a model fails, retry where it helps, hand over where it does not.

Everything here except ``agent.py`` is pure (no Faust, no I/O but reading
``chains.yaml``):

- ``chains``: the chain configuration (links, routing per failure class, request
  transforms, answer quality checks) and ``load_chains``;
- ``retry``: a retry policy per failure class and the backoff arithmetic;
- ``circuit``: the per-model circuit breaker, a state machine over a JSON-able dict;
- ``planner``: the chain walk: progress and an outcome in, the next ``Call``,
  ``Wait`` or ``Exhausted`` out.
"""

from .chains import (
    DEFAULT_CHAINS_PATH,
    Chain,
    ChainsConfig,
    ChainsError,
    Link,
    Quality,
    Transform,
    UnknownChainError,
    load_chains,
)
from .circuit import (
    Admission,
    CircuitConfig,
    CircuitState,
    admit,
    begin_probe,
    is_health_failure,
    record,
    record_outcome,
)
from .planner import (
    AttemptRecord,
    Call,
    ChainProgress,
    Decision,
    Exhausted,
    Wait,
    apply_transform,
    check_answer,
    estimate_tokens,
    on_bad_answer,
    on_failure,
    on_success,
    order_links,
    quality_ok,
    resume,
    start,
)
from .retry import DEFAULT_POLICIES, RetryPolicy, backoff_ms

__all__ = [
    "DEFAULT_CHAINS_PATH",
    "DEFAULT_POLICIES",
    "Admission",
    "AttemptRecord",
    "Call",
    "Chain",
    "ChainProgress",
    "ChainsConfig",
    "ChainsError",
    "CircuitConfig",
    "CircuitState",
    "Decision",
    "Exhausted",
    "Link",
    "Quality",
    "RetryPolicy",
    "Transform",
    "UnknownChainError",
    "Wait",
    "admit",
    "apply_transform",
    "backoff_ms",
    "begin_probe",
    "check_answer",
    "estimate_tokens",
    "is_health_failure",
    "load_chains",
    "on_bad_answer",
    "on_failure",
    "on_success",
    "order_links",
    "quality_ok",
    "record",
    "record_outcome",
    "resume",
    "start",
]
