"""The plan of a sequential consensus: whom to ask next, and when to stop asking.

Asking every model pays for every model. Sequential consensus asks models a few at a
time, in a given order (most reliable first, say), and stops as soon as the answers so
far settle the vote by the rules of :func:`.stopping.should_stop` (the vote cannot be
overturned, or the Beta stopping rule of Adaptive-Consistency is met). ``plan_next`` is
the whole policy as one pure function of what is known, so the live consensus agent,
replay and ``bench/consensus.py`` make the same choices:

1. nothing asked yet: ask the first ``stopping.initial_batch(max_models)`` models of
   ``order`` at once (the smallest batch whose unanimous answer ends the task);
2. otherwise, if ``should_stop`` says the votes settle it: done, ask nobody else;
3. otherwise ask the fewest further models that could end the task: the smallest ``k``
   such that, if the next ``k`` answers all backed the current leader, ``should_stop``
   would stop. Usually 1; 2 when the first answers are split three ways. Models still
   in flight (``pending``) count towards ``k``, so a plan made while answers are
   outstanding asks nobody extra, and says it is waiting.

Budget and failures:

* at most ``min(max_models, len(order))`` models are ever asked: the budget;
* a model in ``failed`` was asked and gave no vote: it uses up budget but backs nothing
  (as does an answer that is empty after ``votes.normalise_answer``, which strategies
  drop as a failed answer too); a model in both ``answers`` and ``failed`` (a retry
  that succeeded) counts as answered;
* a model in ``answers`` or ``failed`` that is not in ``order`` still counts as asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from .stopping import DEFAULT_THRESHOLD, initial_batch, should_stop
from .votes import normalise_answer


@dataclass(frozen=True)
class NextStep:
    """What to do after the answers and failures seen so far.

    ``done``: stop asking; aggregate the answers in hand (answers still in flight are
    recorded when they arrive but do not change the result). ``ask``: the models to ask
    now, in ``order``'s order (empty when done, or when waiting for ``pending``
    answers). ``reason``: why, in words. ``p_majority``: ``should_stop``'s posterior
    probability that the current leader is ahead (0.5 with no votes).
    """

    done: bool
    ask: list[str]
    reason: str
    p_majority: float


def vote_counts(answers: Mapping[str, str]) -> Counter[str]:
    """Votes per distinct normalised answer; empty answers are no vote."""
    return Counter(a for a in (normalise_answer(answer) for answer in answers.values()) if a)


def plan_next(
    order: Sequence[str],
    answers: Mapping[str, str],
    failed: Collection[str],
    *,
    max_models: int,
    threshold: float = DEFAULT_THRESHOLD,
    pending: Collection[str] = (),
) -> NextStep:
    """The next step of a sequential consensus (module docstring for the rules).

    ``order``: the models in asking order; ``answers``: model -> normalised answer, for
    those that answered; ``failed``: models asked that gave no answer; ``pending``:
    models asked whose outcome has not arrived yet; ``max_models``: the most models this
    task may ask; ``threshold``: the Beta rule's stopping confidence.
    """
    if max_models < 1:
        raise ValueError(f"plan_next: max_models must be >= 1, got {max_models}")
    duplicates = sorted(model for model, n in Counter(order).items() if n > 1)
    if duplicates:
        raise ValueError(f"plan_next: order names {', '.join(map(repr, duplicates))} more than once")

    budget = min(max_models, len(order))
    if budget == 0:
        return NextStep(True, [], "no models to ask", 0.5)
    counts = vote_counts(answers)
    concluded = set(answers) | set(failed)
    in_flight = set(pending) - concluded
    unasked = [model for model in order if model not in concluded and model not in in_flight]
    room = max(0, budget - len(concluded) - len(in_flight))

    if not concluded and not in_flight:
        batch = unasked[: initial_batch(budget)]
        return NextStep(False, batch, f"first batch: ask {len(batch)} of at most {budget} models", 0.5)

    stop = should_stop(counts, asked=len(concluded), max_models=budget, threshold=threshold)
    if stop.stop:
        return NextStep(True, [], stop.reason, stop.p_majority)

    needed = _fewest_to_settle(counts, asked=len(concluded), budget=budget, threshold=threshold)
    n_ask = min(max(0, needed - len(in_flight)), room, len(unasked))
    if n_ask == 0:
        waiting = ", ".join(sorted(in_flight))
        return NextStep(False, [], f"{stop.reason}; waiting for {waiting}", stop.p_majority)
    batch = unasked[:n_ask]
    noun = "model" if n_ask == 1 else "models"
    return NextStep(False, batch, f"{stop.reason}; ask {n_ask} more {noun}", stop.p_majority)


def _fewest_to_settle(counts: Mapping[str, int], *, asked: int, budget: int, threshold: float) -> int:
    """Smallest ``k`` such that ``k`` more votes for the leader would stop the task.

    ``k = budget - asked`` always stops ("all models asked"), so the loop ends there.
    """
    leader = max(counts, key=lambda answer: (counts[answer], answer), default=None)
    for k in range(1, max(1, budget - asked) + 1):
        hoped = Counter(counts)
        hoped[leader if leader is not None else ""] += k
        if should_stop(hoped, asked=asked + k, max_models=budget, threshold=threshold).stop:
            return k
    return max(1, budget - asked)
