"""When to stop asking more models: early stopping for sequential consensus.

Asking every model costs money and the slowest model's latency. Adaptive-Consistency
(Aggarwal, Madaan, Yang and Mausam, 2023, "Let's Sample Step by Step:
Adaptive-Consistency for Efficient Reasoning and Coding with LLMs", EMNLP 2023,
arXiv:2305.11860) asks models a few at a time and stops as soon as the vote so far is
settled. ``should_stop`` applies two rules, in this order:

(a) **Cannot be overturned.** The leader has more votes than the runner-up could reach
    if every model not yet asked voted for it: ``leader > runner_up + remaining``. Then
    asking the rest cannot change the plurality winner (it can only change agreement).

(b) **Beta stopping rule** (the paper's best-performing criterion). Let ``v1 >= v2``
    be the top two counts and ``x = p1 / (p1 + p2)`` the leader's share of the top two
    answers. With a uniform prior, ``x | counts ~ Beta(v1 + 1, v2 + 1)``; stop when
    ``P(x > 1/2) = P(p1 > p2 | counts) > threshold`` (the paper uses 0.95).
    For integer counts this has a closed form (the regularised incomplete beta function
    at 1/2 with integer parameters is a binomial tail)::

        P(x > 1/2) = sum_{j=0}^{v1} C(v1 + v2 + 1, j) / 2 ** (v1 + v2 + 1)

    computed exactly with integers, no scipy. At 0.95 it takes 4 unanimous votes
    (P = 31/32 = 0.969; 3 give 15/16 = 0.9375), or 7 votes to 1 (P = 0.9805).

A task also stops when every allowed model has been asked. Failed models simply do
not appear in ``counts``; ``asked`` counts them, so they use up the budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_THRESHOLD = 0.95
"""The stopping confidence used by Aggarwal et al. (2023)."""


@dataclass(frozen=True)
class StopDecision:
    stop: bool
    reason: str
    p_majority: float
    """P(leader's true share > runner-up's | counts) under the Beta posterior of rule (b)."""


def p_leader_ahead(leader: int, runner_up: int) -> float:
    """``P(x > 1/2)`` for ``x ~ Beta(leader + 1, runner_up + 1)``, exact for integer counts."""
    if leader < 0 or runner_up < 0:
        raise ValueError(f"p_leader_ahead: counts must be >= 0, got {leader} and {runner_up}")
    trials = leader + runner_up + 1
    favourable = sum(math.comb(trials, j) for j in range(leader + 1))
    return favourable / (1 << trials)


def should_stop(
    counts: Mapping[str, int],
    *,
    asked: int,
    max_models: int,
    threshold: float = DEFAULT_THRESHOLD,
) -> StopDecision:
    """Whether the votes so far settle the answer (module docstring for the rules).

    ``counts`` maps each distinct answer to its number of votes; ``asked`` is how many
    models have been asked so far (answered or failed); ``max_models`` the most that
    may be asked for this task.
    """
    if max_models < 1:
        raise ValueError(f"should_stop: max_models must be >= 1, got {max_models}")
    if asked < 0:
        raise ValueError(f"should_stop: asked must be >= 0, got {asked}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"should_stop: threshold must be in (0, 1], got {threshold}")
    if any(count < 0 for count in counts.values()):
        raise ValueError(f"should_stop: counts must be >= 0, got {dict(counts)}")

    top = sorted(counts.values(), reverse=True)
    leader = top[0] if top else 0
    runner_up = top[1] if len(top) > 1 else 0
    remaining = max(0, max_models - asked)
    p_majority = p_leader_ahead(leader, runner_up)

    if leader > 0 and leader > runner_up + remaining:
        return StopDecision(
            True,
            f"cannot be overturned: leader has {leader} votes, runner-up {runner_up} + {remaining} still to ask",
            p_majority,
        )
    if leader > 0 and p_majority > threshold:
        return StopDecision(
            True,
            f"Beta rule: P(leader ahead | {leader} vs {runner_up}) = {p_majority:.4f} > {threshold:g}",
            p_majority,
        )
    if remaining == 0:
        return StopDecision(True, f"all {max_models} models asked", p_majority)
    return StopDecision(
        False,
        f"not settled: {leader} vs {runner_up} with {remaining} still to ask, P(leader ahead) = {p_majority:.4f}",
        p_majority,
    )


def initial_batch(max_models: int) -> int:
    """How many models to ask at once before the first stopping check.

    The smallest batch whose unanimous answer ends the task by rule (a), a majority of
    ``max_models`` (``max_models // 2 + 1``), capped at 3: 1 of 1, 2 of 2, 2 of 3, 3 of
    4 or 5, and 3 for larger ensembles, where the Beta rule may stop after 4 unanimous
    votes anyway and asking more up front would spend money the first answers may make
    unnecessary. Fewer than 2 gives no agreement to measure.
    """
    if max_models < 1:
        raise ValueError(f"initial_batch: max_models must be >= 1, got {max_models}")
    return min(max_models, 3, max_models // 2 + 1)
