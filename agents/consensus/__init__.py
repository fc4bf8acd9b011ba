"""Consensus: many model answers to one task -> one decision with agreement and confidence.

Everything here except ``agent.py`` is pure (no Faust, no I/O):

- ``votes``: ``Vote`` in, ``Decision`` out;
- ``strategies``: ``aggregate`` and the strategy registry (majority, weighted, median,
  trimmed_mean, weighted_mean, cluster, json_fields, custom by dotted path);
- ``confidence``: the one confidence formula;
- ``clustering``: local hashed n-gram embeddings and similarity clustering (numpy);
- ``stopping``: when to stop asking more models (Adaptive-Consistency);
- ``diversity``: which models, and how many, to ask;
- ``slots``: a task's step keys (a model's sample, a judge's call);
- ``judging`` and ``judge_phase``: judge / fuse / vote_then_judge, the second phase of a task;
- ``embeddings``: meaning-aware embeddings for clustering, fetched per task and cached
  (``local_embedder``: the optional local one).
"""

from .confidence import confidence
from .stopping import StopDecision, initial_batch, should_stop
from .strategies import (
    STRATEGIES,
    StrategyError,
    StrategyLoadError,
    aggregate,
    load_custom,
    register_strategy,
)
from .votes import Decision, Vote

__all__ = [
    "STRATEGIES",
    "Decision",
    "StopDecision",
    "StrategyError",
    "StrategyLoadError",
    "Vote",
    "aggregate",
    "confidence",
    "initial_batch",
    "load_custom",
    "register_strategy",
    "should_stop",
]
