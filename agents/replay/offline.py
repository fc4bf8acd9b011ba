"""Offline replay: re-run consensus strategies on a recording's answers, no model call.

Every consensus task of a recording is decided again from its recorded answers
with each strategy asked for, by the same code the live outcome agent runs:
:func:`consensus.join.votes_of` builds the votes (one per answering model,
sorted by model id, weight = the model's reliability) and
:func:`consensus.strategies.aggregate` decides. So a replay of a live run's own
strategy gives the live answers, agreements and confidences bit for bit, and
any other strategy is judged on exactly the same answers.

**Which answers.** Per task and model, the live join's rule: the first outcome
of a model counts and later ones are duplicates. A response counts unless a
*final* failure of the same model is recorded strictly earlier
(``failed_ms < responded_ms``); a non-final failure (a retry followed) never
counts. A model with only final failures is a failed model: asked, no vote.

**Strategies** (names accepted by :func:`replay`):

* any registered strategy (``strategies.STRATEGIES``: majority, weighted,
  median, ...), on the tasks whose answer type it applies to
  (:data:`APPLIES_TO`: numeric strategies on number tasks, ``cluster`` on
  text, ``json_fields`` on json; the rest on every task);
* ``default``: each task's own strategy, the task's ``strategy`` or its answer
  type's default (``strategies.DEFAULT_STRATEGY``): what the live join ran. For
  a run of label tasks this is ``majority``;
* ``early_stop``: sequential consensus simulated over the recorded answers with
  :func:`consensus.sequential.plan_next`, as the live join runs it for a task
  with ``early_stop``: the first batch of ``initial_batch(n)`` models in the
  task's asking order, then more, batch by batch, until the plan stops (at
  ``stop_threshold``, the live default ``SWARM_EARLY_STOP_THRESHOLD`` = 0.65);
  then the task's own strategy over the answers used. The asking order is the
  task's ``models`` (as intake orders them) or, without them, the
  ``expected_models`` the requests carried. A model the plan asks that has no
  recorded outcome (the live run never asked it) counts as failed, and the
  report counts it in ``unknown_outcomes``.

**Weights** (``weights=``):

* ``"live"`` (default): the reliabilities the live join used. A task whose
  live result is in the recording takes each vote's recorded weight
  (``TaskResult.votes[].weight``, the model book's quality mean at decision
  time), which is what makes replay exact. A task without a live result
  (a synthetic recording, a lost result) takes an estimate made the way the
  live workers make it: the model book's reliability (``ModelBook.reliability``:
  a discounted Beta posterior per model and category; :class:`_ReliabilityFold`
  does the same arithmetic without the book's objects) folded, in task
  creation order, from the quality labels that confident consensus teaches
  (:func:`consensus.join.quality_labels`: every vote of a result with >= 3
  votes and confidence >= 0.75 is right iff it agrees with the answer), of the
  live result where there is one and of the replayed ``default`` decision
  otherwise; a task is weighed with the book as it stood before it. Every
  strategy of one replay sees the same weights.
* ``"uniform"``: every weight 1.0 (``weighted`` then counts votes like
  ``majority``, unless models report answer confidences).

Weights never change a ``majority`` answer (it counts votes); they enter every
strategy's confidence (``confidence.py``), so the ECE depends on them.

**Numbers** per strategy (:class:`StrategyReport`): ``accuracy`` = answers equal
to the task's label / labelled tasks (a task with no answer is wrong);
``cost_usd`` = the sum of ``cost_micros`` of the responses the strategy used;
``calls_per_task`` = models asked (answered or failed) per task; ``ece`` = the
expected calibration error of the decision confidence against correctness
(:func:`expected_calibration_error`, 10 bins); ``agreement`` = mean agreement.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from swarmstream.agents.consensus.join import (
    LABEL_MIN_CONFIDENCE,
    LABEL_MIN_VOTES,
    support_of,
    votes_of,
)
from swarmstream.agents.consensus.judging import JUDGE_STRATEGIES
from swarmstream.agents.consensus.sequential import plan_next
from swarmstream.agents.consensus.slots import parse_slot
from swarmstream.agents.consensus.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    StrategyError,
    aggregate,
)
from swarmstream.agents.consensus.votes import Decision, normalise_answer
from swarmstream.agents.replay.judged import replay_judged, split_outcomes
from swarmstream.agents.replay.recording import Recording
from swarmstream.agents.selection.posterior import UNIFORM_PRIOR
from swarmstream.agents.stats.book import ALL, QUALITY_DISCOUNT
from swarmstream.schemas.models import TaskResult

DEFAULT = "default"
EARLY_STOP = "early_stop"
PSEUDO_STRATEGIES = (DEFAULT, EARLY_STOP)

STOP_THRESHOLD = 0.65
"""The live default of ``SWARM_EARLY_STOP_THRESHOLD`` (streams/app/settings.py; see its
reason in bench/consensus.py). Passed in, not imported: agents never import streams."""

CALIBRATION_BINS = 10

APPLIES_TO: dict[str, frozenset[str]] = {
    "median": frozenset({"number"}),
    "trimmed_mean": frozenset({"number"}),
    "weighted_mean": frozenset({"number"}),
    "cluster": frozenset({"text"}),
    "json_fields": frozenset({"json"}),
}
"""Answer types a built-in strategy is meant for; a strategy not listed (majority,
weighted, custom ones) applies to every type. A numeric strategy on labels would
only report "no numeric answers", which says nothing about the strategy."""

Weights = Literal["live", "uniform"]
Answers = dict[str, dict[str, Any]]
"""model -> {"answer", "confidence", "latency_ms", "cost_micros"}: the live join's state shape."""


class ReplayError(ValueError):
    """A replay that cannot run: an unknown strategy, a strategy a task names but nobody registered."""


@dataclass(frozen=True, slots=True)
class ReplayTask:
    """One consensus task as the live join saw it: its answers and failures, deduplicated."""

    task_id: str
    answer_type: str
    strategy: str | None  # the task's own; None: its answer type's default
    category: str | None
    created_ms: int
    order: tuple[str, ...]  # asking order
    answers: Answers
    failures: dict[str, dict[str, Any]]  # model -> {"class", "latency_ms"}
    label: str | None
    live: TaskResult | None
    wrong: frozenset[str] = frozenset()  # answers known to be wrong (negative feedback: labels.py)
    judges: Answers = field(default_factory=dict)  # the judge phase's recorded answers, by slot (judged.py)
    judge_failures: tuple[str, ...] = ()  # the judge phase's failed slots
    seed: int | None = None  # the task's own seed (the judge's shuffle seed when the live result has none)

    @property
    def own_strategy(self) -> str:
        return self.strategy or DEFAULT_STRATEGY.get(self.answer_type, "majority")

    @property
    def vote_strategy(self) -> str:
        """The strategy that votes: a judge strategy votes with its answer type's default first."""
        own = self.own_strategy
        return DEFAULT_STRATEGY.get(self.answer_type, "majority") if own in JUDGE_STRATEGIES else own


@dataclass(frozen=True, slots=True)
class Replayed:
    """One task decided again."""

    answer: str | None
    confidence: float
    agreement: float
    cost_micros: int
    calls: int
    correct: bool | None  # None: no label
    unknown_outcomes: int = 0


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """Decisions whose confidence fell in [low, high) ([0.9, 1.0] for the last bin)."""

    low: float
    high: float
    count: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class StrategyReport:
    strategy: str
    tasks: int
    labelled: int
    correct: int
    accuracy: float | None
    cost_usd: float
    calls_per_task: float
    ece: float | None
    agreement: float
    unknown_outcomes: int
    calibration: tuple[CalibrationBin, ...]
    decisions: dict[str, Replayed] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON the CLI prints per strategy (no per-task decisions)."""
        return {
            "tasks": self.tasks,
            "labelled": self.labelled,
            "accuracy": _round(self.accuracy),
            "cost_usd": round(self.cost_usd, 6),
            "calls_per_task": round(self.calls_per_task, 4),
            "ece": _round(self.ece),
            "agreement": round(self.agreement, 4),
            "unknown_outcomes": self.unknown_outcomes,
        }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------- tasks from a recording


def _outcomes(recording: Recording, task_id: str) -> tuple[Answers, dict[str, dict[str, Any]]]:
    """Per model, the outcome the live join would count (module docstring)."""
    first_failure: dict[str, tuple[int, dict[str, Any]]] = {}
    for failure in recording.failures.get(task_id, ()):
        model = failure.model_id
        if failure.final and model not in first_failure:
            first_failure[model] = (failure.at_ms, {"class": failure.failure_class, "latency_ms": failure.latency_ms})
    answers: Answers = {}
    for response in recording.responses.get(task_id, ()):
        model = response.model_id
        if model in answers:
            continue
        failed = first_failure.get(model)
        if failed is not None and 0 < failed[0] < response.at_ms:
            continue
        answers[model] = {
            "answer": response.answer,
            "confidence": response.confidence,
            "latency_ms": response.latency_ms,
            "cost_micros": response.cost_micros,
        }
    failures = {m: f for m, (_, f) in first_failure.items() if m not in answers}
    return answers, failures


def replay_tasks(recording: Recording) -> list[ReplayTask]:
    """The recording's consensus tasks with at least one recorded outcome, in creation order."""
    out: list[ReplayTask] = []
    for task_id in recording.task_ids:
        responses = recording.responses.get(task_id, [])
        failures = recording.failures.get(task_id, [])
        steps = responses + failures
        if not steps:
            continue
        task = recording.tasks.get(task_id)
        first = steps[0]
        mode = task.mode if task is not None else first.mode
        if mode != "consensus":
            continue
        answers, failed = _outcomes(recording, task_id)
        answers, judges = split_outcomes(answers)
        judge_failed = [m for m in failed if parse_slot(m).role != "candidate"]
        failed = {m: f for m, f in failed.items() if m not in judge_failed}
        if task is not None and task.models:
            order = list(dict.fromkeys(task.models))  # as intake orders them
        else:
            order = []  # the longest list of models the requests carried: the asked list grows by batch
            for outcome in steps:
                if len(outcome.expected_models) > len(order):
                    order = list(outcome.expected_models)
        order += sorted((set(answers) | set(failed)) - set(order))
        out.append(
            ReplayTask(
                task_id=task_id,
                answer_type=task.answer_type if task is not None else first.answer_type,
                strategy=task.strategy if task is not None else first.strategy,
                category=first.category if first.category is not None else (task.category if task else None),
                created_ms=task.created_ms if task is not None else first.created_ms,
                order=tuple(order),
                answers=answers,
                failures=failed,
                label=recording.labels.get(task_id),
                live=recording.results.get(task_id),
                wrong=frozenset(recording.wrong_answers.get(task_id, ())),
                judges=judges,
                judge_failures=tuple(judge_failed),
                seed=task.seed if task is not None else None,
            )
        )
    out.sort(key=lambda t: (t.created_ms, t.task_id))
    return out


# --------------------------------------------------------------------------- weights and decisions


class _ReliabilityFold:
    """What :class:`stats.book.ModelBook` answers from consensus quality labels, for one
    replay: per (model, category) and (model, ``*``) a discounted Beta posterior, and
    ``reliability`` = the category's posterior mean when that category has quality
    evidence, else the model's overall one (``ModelBook.get``).

    Kept as two floats per key instead of a ModelBook of frozen BetaPosteriors because
    replay updates it once per vote of every confident task (100,000 votes: 1.5 s in the
    book, 0.1 s here, on the 2-core build machine). The arithmetic is
    :func:`selection.posterior.update`'s, in the same order, so the numbers are the same
    to the bit (tests/agents/replay checks it against a real ModelBook).
    """

    def __init__(self, discount: float = QUALITY_DISCOUNT) -> None:
        self._discount = discount
        self._prior = UNIFORM_PRIOR
        self._ab: dict[tuple[str, str], list[float]] = {}  # key -> [alpha, beta, events]

    def add(self, model: str, category: str | None, reward: float) -> None:
        prior_a, prior_b = self._prior
        d = self._discount
        for key in {(model, ALL), (model, category or ALL)}:
            ab = self._ab.get(key)
            if ab is None:
                ab = self._ab[key] = [prior_a, prior_b, 0.0]
            if d < 1.0:
                ab[0] = prior_a + d * (ab[0] - prior_a)
                ab[1] = prior_b + d * (ab[1] - prior_b)
            ab[0] = ab[0] + reward
            ab[1] = ab[1] + (1.0 - reward)
            ab[2] += 1

    def reliability(self, models: Iterable[str], category: str | None) -> dict[str, float]:
        out = {}
        prior_a, prior_b = self._prior
        for model in models:
            ab = self._ab.get((model, category or ALL))
            if ab is None or not ab[2]:
                ab = self._ab.get((model, ALL))
            out[model] = prior_a / (prior_a + prior_b) if ab is None else ab[0] / (ab[0] + ab[1])
        return out

    def teach(self, category: str | None, answer: str | None, confidence: float,
              votes: Iterable[tuple[str, str]]) -> None:
        """:func:`consensus.join.quality_labels` of a result with ``answer``, ``confidence``
        and ``votes`` ((model, answer) pairs), folded in."""
        votes = list(votes)
        if answer is None or len(votes) < LABEL_MIN_VOTES or confidence < LABEL_MIN_CONFIDENCE:
            return
        for model, given in votes:
            self.add(model, category, 1.0 if given == answer else 0.0)


class ReplaySet:
    """A recording's consensus tasks with their vote weights, ready to decide with any strategy.

    Building it folds the weights (module docstring, "Weights"), deciding each task
    with its own strategy on the way (the decision that teaches the estimate); those
    decisions are kept, so ``default`` costs nothing more, and any decision that is the
    same function of the same votes is made once.
    """

    def __init__(
        self, tasks: Sequence[ReplayTask], *, weights: Weights = "live", stop_threshold: float = STOP_THRESHOLD
    ) -> None:
        if weights not in ("live", "uniform"):
            raise ReplayError(f"unknown weights {weights!r} (choose 'live' or 'uniform')")
        self.tasks = list(tasks)
        self.stop_threshold = stop_threshold
        self.weights: dict[str, dict[str, float]] = {}
        self._cache: dict[tuple[str, str], Decision] = {}
        if weights == "uniform":
            self.weights = {t.task_id: {} for t in self.tasks}
        else:
            self._fold()

    @classmethod
    def from_recording(
        cls, recording: Recording, *, weights: Weights = "live", stop_threshold: float = STOP_THRESHOLD
    ) -> ReplaySet:
        return cls(replay_tasks(recording), weights=weights, stop_threshold=stop_threshold)

    def _fold(self) -> None:
        fold = _ReliabilityFold()
        for task in self.tasks:  # creation order: a task is weighed with what earlier tasks taught
            live = task.live
            if live is not None and live.votes:
                self.weights[task.task_id] = {v.model_id: v.weight for v in live.votes}
                fold.teach(task.category, live.answer, live.confidence,  # a model's samples: one label, as live
                           ((v.model_id, v.answer) for v in live.votes if v.sample == 0))
                continue
            self.weights[task.task_id] = fold.reliability(sorted(task.answers), task.category)
            decision = self._full(task, task.own_strategy)
            fold.teach(task.category, decision.answer, decision.confidence,
                       ((m, a["answer"]) for m, a in sorted(task.answers.items()) if parse_slot(m).sample == 0))

    def _full(self, task: ReplayTask, strategy: str) -> Decision:
        """``strategy`` over all of the task's answers, the votes built as the live join builds them."""
        if strategy in JUDGE_STRATEGIES:
            strategy = task.vote_strategy
        key = (task.task_id, strategy)
        decision = self._cache.get(key)
        if decision is None:
            votes = votes_of({"answers": task.answers}, self.weights.get(task.task_id, {}))
            decision = self._cache[key] = _aggregate(task, votes, strategy)
        return decision

    def decide(self, task: ReplayTask, strategy: str) -> Replayed:
        """``task`` decided again by ``strategy`` (a registered name, ``default`` or ``early_stop``)."""
        if strategy == EARLY_STOP:
            return self._early_stop(task)
        if (task.own_strategy if strategy == DEFAULT else strategy) in JUDGE_STRATEGIES:
            return self._judged(task, task.own_strategy if strategy == DEFAULT else strategy)
        decision = self._full(task, task.own_strategy if strategy == DEFAULT else strategy)
        return Replayed(
            answer=decision.answer,
            confidence=decision.confidence,
            agreement=decision.agreement,
            cost_micros=sum(a["cost_micros"] for a in task.answers.values()),
            calls=len(task.answers) + len(task.failures),
            correct=_correct(task, decision.answer),
        )

    def _judged(self, task: ReplayTask, strategy: str) -> Replayed:
        """A judge strategy from the task's recorded verdicts (``judged.py``), no model called."""
        vote = self._full(task, strategy)
        live_seed = task.live.shuffle_seed if task.live is not None else None
        judged = replay_judged(strategy, vote, task.answers, task.judges, task.judge_failures, task_id=task.task_id,
                               seed=live_seed if live_seed is not None else task.seed)
        agreement, confidence = vote.agreement, vote.confidence  # the vote stood, or a fuser wrote the answer
        if judged.used_judge and strategy != "fuse" and judged.answer is not None:  # as join.judged scores a pick
            agreement, confidence = support_of(votes_of({"answers": task.answers}, self.weights.get(task.task_id, {})),
                                               judged.answer)
        return Replayed(
            answer=judged.answer,
            confidence=confidence,
            agreement=agreement,
            cost_micros=sum(a["cost_micros"] for a in task.answers.values()) + judged.judge_cost_micros,
            calls=len(task.answers) + len(task.failures) + judged.judge_calls,
            correct=_correct(task, judged.answer),
        )

    def _early_stop(self, task: ReplayTask) -> Replayed:
        asked, unknown = early_stop_plan(task, threshold=self.stop_threshold)
        used = [m for m in asked if m in task.answers]
        if len(used) == len(task.answers):
            decision = self._full(task, task.own_strategy)
        else:
            subset = {m: task.answers[m] for m in used}
            votes = votes_of({"answers": subset}, self.weights.get(task.task_id, {}))
            decision = _aggregate(task, votes, task.vote_strategy)  # a judge strategy's task: its vote
        return Replayed(
            answer=decision.answer,
            confidence=decision.confidence,
            agreement=decision.agreement,
            cost_micros=sum(task.answers[m]["cost_micros"] for m in used),
            calls=len(asked),
            correct=_correct(task, decision.answer),
            unknown_outcomes=unknown,
        )

    def run(self, strategy: str) -> StrategyReport:
        """One strategy's report over every task it applies to."""
        if strategy not in known_strategies():
            raise ReplayError(f"unknown strategy {strategy!r} (known: {', '.join(known_strategies())})")
        decisions = {t.task_id: self.decide(t, strategy) for t in self.tasks if applies(strategy, t.answer_type)}
        return report(strategy, decisions)

    def run_all(self, strategies: Sequence[str] | None = None) -> dict[str, StrategyReport]:
        chosen = list(strategies) if strategies is not None else default_strategies(self.tasks)
        unknown = [s for s in chosen if s not in known_strategies()]
        if unknown:
            raise ReplayError(
                f"unknown strategy {', '.join(map(repr, unknown))} (known: {', '.join(known_strategies())})"
            )
        return {s: self.run(s) for s in chosen}


def _aggregate(task: ReplayTask, votes: list[Any], strategy: str) -> Decision:
    try:
        return aggregate(votes, answer_type=task.answer_type, strategy=strategy)
    except StrategyError as exc:
        raise ReplayError(f"task {task.task_id!r}: {exc}") from None


def applies(strategy: str, answer_type: str) -> bool:
    """Whether replay runs ``strategy`` on tasks of ``answer_type`` (:data:`APPLIES_TO`)."""
    allowed = APPLIES_TO.get(strategy)
    return allowed is None or answer_type in allowed


def _correct(task: ReplayTask, answer: str | None) -> bool | None:
    """Right, wrong, or None (unscored): no label, and not an answer known to be wrong."""
    if task.label is None:
        return False if answer is not None and answer in task.wrong else None
    return answer is not None and answer == task.label


def early_stop_plan(task: ReplayTask, *, threshold: float = STOP_THRESHOLD) -> tuple[list[str], int]:
    """The models sequential consensus asks for ``task`` over its recorded outcomes,
    in asking order, and how many of them have no recorded outcome.

    Every model asked is concluded at once (its recorded outcome is known), so the
    plan always asks a prefix of the order; how long a prefix depends only on the
    *pattern* of the outcomes: which answers are equal (after ``normalise_answer``),
    which are empty, which models failed. :func:`plan_next` is run once per distinct
    pattern (a few dozen in a large recording) on stand-in models and answers, and the
    prefix length reused: the same decision, ~20x faster over 25,000 tasks.
    """
    order = task.order
    if not order:
        return [], 0
    codes: list[int] = []
    seen: dict[str, int] = {}
    for model in order:
        answer = task.answers.get(model)
        if answer is not None:
            text = normalise_answer(answer["answer"])
            codes.append(seen.setdefault(text, len(seen)) if text else _EMPTY)
        else:
            codes.append(_FAILED if model in task.failures else _UNKNOWN)
    asked = _plan_prefix(tuple(codes), threshold)
    return list(order[:asked]), sum(code == _UNKNOWN for code in codes[:asked])


_EMPTY, _FAILED, _UNKNOWN = -1, -2, -3


@functools.lru_cache(maxsize=4096)
def _plan_prefix(codes: tuple[int, ...], threshold: float) -> int:
    """How many models of an order with outcome ``codes`` (an answer's index among the distinct
    answers, or _EMPTY / _FAILED / _UNKNOWN) :func:`plan_next` asks before it is done."""
    order = [f"m{i}" for i in range(len(codes))]
    answers: dict[str, str] = {}
    failed: list[str] = []
    asked = 0
    plan = plan_next(order, {}, [], max_models=len(order))  # intake's first batch
    while plan.ask:
        for model in plan.ask:
            code = codes[int(model[1:])]
            asked += 1
            if code >= 0:
                answers[model] = f"a{code}"
            elif code == _EMPTY:
                answers[model] = ""
            else:
                failed.append(model)
        plan = plan_next(order, answers, failed, max_models=len(order), threshold=threshold)
    return asked


def simulate_early_stop(task: ReplayTask, *, threshold: float = STOP_THRESHOLD) -> list[str]:
    """:func:`early_stop_plan` the slow, direct way, on the task's own models and answers
    (the reference the pattern cache is tested against)."""
    order = list(task.order)
    if not order:
        return []
    answers: dict[str, str] = {}
    failed: list[str] = []
    asked: list[str] = []
    plan = plan_next(order, {}, [], max_models=len(order))
    while plan.ask:
        for model in plan.ask:
            asked.append(model)
            if model in task.answers:
                answers[model] = task.answers[model]["answer"]
            else:
                failed.append(model)
        plan = plan_next(order, answers, failed, max_models=len(order), threshold=threshold)
    return asked


# --------------------------------------------------------------------------- calibration


def calibration_bins(
    confidences: Sequence[float], correct: Sequence[bool], *, bins: int = CALIBRATION_BINS
) -> list[CalibrationBin]:
    """Equal-width confidence bins, [k/bins, (k+1)/bins), the last one closed at 1.0;
    empty bins are left out. Confidences outside [0, 1] are clamped."""
    if len(confidences) != len(correct):
        raise ValueError(f"calibration_bins: {len(confidences)} confidences but {len(correct)} outcomes")
    if bins < 1:
        raise ValueError(f"calibration_bins: bins must be >= 1, got {bins}")
    counts = [0] * bins
    conf_sum = [0.0] * bins
    right = [0] * bins
    for c, ok in zip(confidences, correct, strict=True):
        c = min(1.0, max(0.0, c)) if math.isfinite(c) else 0.0
        k = min(int(c * bins), bins - 1)
        counts[k] += 1
        conf_sum[k] += c
        right[k] += bool(ok)
    return [
        CalibrationBin(low=k / bins, high=(k + 1) / bins, count=counts[k], mean_confidence=conf_sum[k] / counts[k],
                       accuracy=right[k] / counts[k])
        for k in range(bins)
        if counts[k]
    ]


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], *, bins: int = CALIBRATION_BINS
) -> float | None:
    """ECE (Naeini, Cooper and Hauskrecht 2015; Guo et al. 2017): the mean, over equal-width
    confidence bins weighted by their share of decisions, of |accuracy - mean confidence|.

    0 is perfectly calibrated; a model that says 0.9 and is right 60% of the time
    scores 0.3. None for no decisions.
    """
    total = len(confidences)
    if total == 0:
        return None
    return sum(b.count / total * abs(b.accuracy - b.mean_confidence)
               for b in calibration_bins(confidences, correct, bins=bins))


# --------------------------------------------------------------------------- replay


def known_strategies() -> list[str]:
    return [DEFAULT, *STRATEGIES, EARLY_STOP, *JUDGE_STRATEGIES]


def default_strategies(tasks: Iterable[ReplayTask]) -> list[str]:
    """``default``, every registered strategy that applies to at least one task, ``early_stop``."""
    tasks = list(tasks)
    types = {t.answer_type for t in tasks}
    judged = [*JUDGE_STRATEGIES] if any(t.judges for t in tasks) else []  # only a recording with verdicts
    return [DEFAULT, *(s for s in STRATEGIES if any(applies(s, a) for a in types)), EARLY_STOP, *judged]


def report(strategy: str, decisions: Mapping[str, Replayed]) -> StrategyReport:
    """The numbers of one strategy from its per-task decisions (module docstring, "Numbers")."""
    labelled = [(d.confidence, bool(d.correct)) for d in decisions.values() if d.correct is not None]
    correct = sum(ok for _, ok in labelled)
    n = len(decisions)
    confidences = [c for c, _ in labelled]
    outcomes = [ok for _, ok in labelled]
    return StrategyReport(
        strategy=strategy,
        tasks=n,
        labelled=len(labelled),
        correct=correct,
        accuracy=correct / len(labelled) if labelled else None,
        cost_usd=sum(d.cost_micros for d in decisions.values()) / 1e6,
        calls_per_task=sum(d.calls for d in decisions.values()) / n if n else 0.0,
        ece=expected_calibration_error(confidences, outcomes),
        agreement=sum(d.agreement for d in decisions.values()) / n if n else 0.0,
        unknown_outcomes=sum(d.unknown_outcomes for d in decisions.values()),
        calibration=tuple(calibration_bins(confidences, outcomes)),
        decisions=dict(decisions),
    )


def replay(
    recording: Recording,
    strategies: Sequence[str] | None = None,
    *,
    weights: Weights = "live",
    stop_threshold: float = STOP_THRESHOLD,
) -> dict[str, StrategyReport]:
    """Each strategy re-run on every consensus task of ``recording`` (module docstring).

    ``strategies``: names from :func:`known_strategies`; default
    :func:`default_strategies` of the recording.
    """
    return ReplaySet.from_recording(recording, weights=weights, stop_threshold=stop_threshold).run_all(strategies)


# --------------------------------------------------------------------------- live vs replay


@dataclass(frozen=True)
class LiveComparison:
    """The live results against the replay of the live strategy, on the tasks that have both.

    ``identical`` holds when the two accuracies are equal and every task's answer is
    the same; ``confidence_mismatches`` lists tasks whose confidence differs (the
    answer may still agree: with ``weights="uniform"`` it always may).
    """

    strategy: str
    tasks: int
    labelled: int
    live_correct: int
    replayed_correct: int
    answer_mismatches: tuple[str, ...]
    confidence_mismatches: tuple[str, ...]

    @property
    def live_accuracy(self) -> float | None:
        return self.live_correct / self.labelled if self.labelled else None

    @property
    def replayed_accuracy(self) -> float | None:
        return self.replayed_correct / self.labelled if self.labelled else None

    @property
    def identical(self) -> bool:
        return self.live_correct == self.replayed_correct and not self.answer_mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "tasks": self.tasks,
            "labelled": self.labelled,
            "live_accuracy": _round(self.live_accuracy),
            "replayed_accuracy": _round(self.replayed_accuracy),
            "identical": self.identical,
            "answer_mismatches": list(self.answer_mismatches[:20]),
            "confidence_mismatches": len(self.confidence_mismatches),
        }


def compare_with_live(
    recording: Recording, *, strategy: str = DEFAULT, weights: Weights = "live", replayed: StrategyReport | None = None
) -> LiveComparison:
    """Live results vs the replayed ``strategy`` (default: each task's own, what the live
    join ran: ``majority`` for labels). Pass ``replayed`` to reuse a replay already run.
    For a recording of a live run, ``identical`` must hold: a difference means replay
    and the live join no longer decide alike."""
    tasks = replay_tasks(recording)
    if replayed is None:
        replayed = ReplaySet(tasks, weights=weights).run(strategy)
    mismatched_answers: list[str] = []
    mismatched_confidence: list[str] = []
    labelled = live_correct = replayed_correct = n = 0
    for task in tasks:
        live, again = task.live, replayed.decisions.get(task.task_id)
        if live is None or again is None:
            continue
        n += 1
        if live.answer != again.answer:
            mismatched_answers.append(task.task_id)
        if live.confidence != again.confidence:
            mismatched_confidence.append(task.task_id)
        if task.label is not None:
            labelled += 1
            live_correct += live.answer is not None and live.answer == task.label
            replayed_correct += bool(again.correct)
    return LiveComparison(
        strategy=strategy,
        tasks=n,
        labelled=labelled,
        live_correct=live_correct,
        replayed_correct=replayed_correct,
        answer_mismatches=tuple(mismatched_answers),
        confidence_mismatches=tuple(mismatched_confidence),
    )


# --------------------------------------------------------------------------- the CLI's view


def replay_summary(
    recording: Recording,
    strategies: Sequence[str] | None = None,
    *,
    weights: Weights = "live",
    stop_threshold: float = STOP_THRESHOLD,
) -> dict[str, Any]:
    """What ``swarmstream replay <file> --json`` prints: ``strategies`` (name -> numbers),
    the task counts, and ``live`` (:class:`LiveComparison`) when the recording has live results."""
    replay_set = ReplaySet.from_recording(recording, weights=weights, stop_threshold=stop_threshold)
    tasks = replay_set.tasks
    reports = replay_set.run_all(strategies)
    summary: dict[str, Any] = {
        "tasks": len(tasks),
        "labelled": sum(t.label is not None for t in tasks),
        "responses": recording.response_count,
        "weights": weights,
        "strategies": {name: r.to_dict() for name, r in reports.items()},
    }
    if any(t.live is not None for t in tasks):
        own = reports.get(DEFAULT)
        summary["live"] = compare_with_live(recording, weights=weights, replayed=own).to_dict()
    if recording.skipped:
        summary["skipped_kinds"] = dict(recording.skipped)
    return summary


def render(summary: Mapping[str, Any]) -> str:
    """The side-by-side table ``swarmstream replay <file>`` prints."""

    def fmt(value: object, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        (f"replay: {summary['tasks']} consensus tasks, {summary['labelled']} labelled, "
         f"{summary['responses']} responses (weights: {summary['weights']})"),
        f"  {'strategy':<16}{'tasks':>7}{'accuracy':>10}{'cost $':>12}{'calls/task':>12}{'ece':>8}{'agreement':>11}",
    ]
    for name, s in summary["strategies"].items():
        lines.append(
            f"  {name:<16}{s['tasks']:>7}{fmt(s['accuracy'], '.4f'):>10}{s['cost_usd']:>12.6f}"
            f"{s['calls_per_task']:>12.2f}{fmt(s['ece'], '.4f'):>8}{s['agreement']:>11.3f}"
        )
    live = summary.get("live")
    if live:
        verdict = "identical" if live["identical"] else f"DIFFERENT ({len(live['answer_mismatches'])}+ answers)"
        lines.append(
            f"  live results: accuracy {fmt(live['live_accuracy'], '.4f')} vs replayed "
            f"{fmt(live['replayed_accuracy'], '.4f')} on {live['labelled']} labelled tasks: {verdict}"
        )
    return "\n".join(lines)
