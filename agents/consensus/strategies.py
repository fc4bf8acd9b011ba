"""Aggregation strategies: votes in, one ``Decision`` out. Pure functions, no Faust, no I/O.

| strategy        | default for | answer                              | agreement                         |
| --------------- | ----------- | ----------------------------------- | --------------------------------- |
| ``majority``    | label       | most common answer                  | its votes / usable votes          |
| ``weighted``    |             | highest sum of weight x confidence  | its score / total score           |
| ``median``      | number      | median of the values kept           | kept share x closeness (below)    |
| ``trimmed_mean``|             | 20%-trimmed mean of the values kept | kept share x closeness            |
| ``weighted_mean``|            | mean weighted by weight x confidence| kept weight share x closeness     |
| ``cluster``     | text        | medoid of the largest cluster       | its answers / usable answers      |
| ``json_fields`` | json        | per-field majority, canonical JSON  | mean per-field agreement          |

Common rules:

* An empty answer (after NFC and stripping) is a failed answer: it is dropped and is not
  counted as a voice. An answer of the wrong kind (not a number, not a JSON object) is
  counted as a voice that backs nothing, so it lowers agreement.
* Ties are broken deterministically, always the same way, and reported in
  ``Decision.tie`` and ``Decision.reason``: first the lowest total latency of the
  backers (the faster camp), then lexicographic order of the answer, because a reviewer
  must be able to reproduce every decision from the recorded votes.
* ``confidence`` is ``confidence.confidence(agreement, supporters' weights, supporters'
  answer confidences)`` for every strategy.

Numeric strategies:

* parse each answer with ``float``; NaN, infinities and non-numbers are dropped
  (reported in ``reason``);
* outliers are rejected with the modified z-score of Iglewicz and Hoaglin (1993):
  ``M = 0.6745 * (x - median) / MAD`` with ``MAD = median(|x - median|)``; a value
  with ``|M| > 3.5`` is rejected (their recommended cut-off; 0.6745 makes MAD a
  consistent estimate of the standard deviation for normal data). With fewer than 3
  values nothing is rejected (no majority to measure against). When ``MAD == 0`` more
  than half the values are identical, and every value that differs from them is
  rejected;
* ``interval`` is (min, max) of the kept values;
* ``agreement = kept_share * exp(-relative_spread / 0.10)``, where ``kept_share`` is
  the share of the usable answers (by weight for ``weighted_mean``) that were kept,
  ``relative_spread = mean(|x - value|) / max(|value|, mean(|x|))`` over the kept
  values. A 10% relative spread costs a factor of e^-1 = 0.37, a 1% spread a factor
  0.90, exact agreement none. The denominator falls back to the values' magnitude so
  that an answer of 0 does not divide by zero.

Custom strategies: ``register_strategy(name, fn)`` or ``load_custom("pkg.mod:fn")``, called
by the operator at start-up; ``aggregate`` only runs registered names, because the
strategy name arrives in task events and must not make a worker import code.
``aggregate(..., options={...})`` passes options as keyword arguments to the strategy.
"""

from __future__ import annotations

import importlib
import inspect
import math
import statistics
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import orjson

from .clustering import (
    DEFAULT_THRESHOLD,
    Embedder,
    HashedNgramEmbedder,
    medoid,
    similarity_matrix,
)
from .clustering import cluster as cluster_indices
from .confidence import confidence
from .votes import Decision, Vote, usable_votes

Strategy = Callable[[Sequence[Vote]], Decision]
"""A strategy takes the votes (and, optionally, keyword options) and returns a Decision."""

K = TypeVar("K", bound=Hashable)

ANSWER_TYPES = ("label", "number", "json", "text")
DEFAULT_STRATEGY: dict[str, str] = {
    "label": "majority",
    "number": "median",
    "text": "cluster",
    "json": "json_fields",
}

MAD_CUTOFF = 3.5
"""Modified z-score above which a numeric answer is an outlier (Iglewicz and Hoaglin, 1993)."""
MAD_CONSISTENCY = 0.6745
"""Phi^-1(0.75): scales MAD to the standard deviation of normal data."""
SPREAD_SCALE = 0.10
"""Relative spread that costs a factor e^-1 of numeric agreement (module docstring)."""
TRIM_PROPORTION = 0.2
"""Share cut from each end by ``trimmed_mean``: 20% is Wilcox's usual recommendation
(Introduction to Robust Estimation and Hypothesis Testing), robust and still efficient."""

_TIE_REL_TOL = 1e-9
_TIE_ABS_TOL = 1e-12


class StrategyError(ValueError):
    """A strategy name, option or custom strategy that cannot be used."""


class StrategyLoadError(StrategyError):
    """``load_custom`` could not import or use the named function."""


# --------------------------------------------------------------------------- helpers


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _decision(
    strategy: str,
    answer: str,
    agreement: float,
    supporters: Sequence[Vote],
    *,
    tie: bool,
    reason: str,
    interval: tuple[float, float] | None = None,
    clusters: int | None = None,
) -> Decision:
    agreement = min(1.0, max(0.0, agreement))
    return Decision(
        answer=answer,
        agreement=agreement,
        confidence=confidence(agreement, [v.weight for v in supporters], [v.confidence for v in supporters]),
        tie=tie,
        strategy=strategy,
        support=tuple(v.model_id for v in supporters),
        interval=interval,
        clusters=clusters,
        reason=reason,
    )


def _pick(
    groups: Mapping[K, Sequence[Vote]],
    scores: Mapping[K, float],
    label: Callable[[K], str],
    unit: str,
    order: Callable[[K], tuple[Any, ...]] | None = None,
) -> tuple[K, bool, str]:
    """The top-scoring group; a tie goes to the lowest total latency, then ``order`` (default: label).

    Returns (winner, tie, note) where note explains a broken tie ("" without a tie).
    """
    best = max(scores.values())
    tied = [k for k in groups if math.isclose(scores[k], best, rel_tol=_TIE_REL_TOL, abs_tol=_TIE_ABS_TOL)]
    if len(tied) == 1:
        return tied[0], False, ""
    latency_ms = {k: sum(v.latency_ms for v in groups[k]) for k in tied}
    secondary = order or (lambda k: (label(k),))
    ranked = sorted(tied, key=lambda k: (latency_ms[k], secondary(k)))
    winner, runner_up = ranked[0], ranked[1]
    names = ", ".join(repr(_short(label(k))) for k in sorted(tied, key=label))
    if latency_ms[runner_up] > latency_ms[winner]:
        how = f"broken by lowest total latency ({latency_ms[winner]} ms vs {latency_ms[runner_up]} ms)"
    else:
        how = f"equal total latency ({latency_ms[winner]} ms), broken by lexicographic order"
    return winner, True, f"tie at {_fmt(best)} {unit} between {names}; {how}"


def _group_by_answer(votes: Sequence[Vote]) -> dict[str, list[Vote]]:
    groups: dict[str, list[Vote]] = {}
    for vote in votes:
        groups.setdefault(vote.answer, []).append(vote)
    return groups


def _dropped_note(dropped: int) -> str:
    return f"; dropped {dropped} empty answer{'s' if dropped != 1 else ''}" if dropped else ""


def _vote_score(vote: Vote) -> float:
    return vote.weight * (vote.confidence if vote.confidence is not None else 1.0)


# --------------------------------------------------------------------------- label votes


def majority(votes: Sequence[Vote]) -> Decision:
    """Most common normalised answer wins; a tie is broken deterministically and reported,
    because downstream reviewers must be able to reproduce every decision from the votes."""
    usable, dropped = usable_votes(votes)
    if not usable:
        return Decision.empty("majority", "no usable answers" + _dropped_note(dropped))
    return _plurality(usable, dropped, "majority")


def _plurality(
    usable: Sequence[Vote], dropped: int, strategy: str, prefix: str = "", n_voices: int | None = None
) -> Decision:
    """Plain count vote; ``n_voices`` (default: all usable votes) is the agreement denominator."""
    n_voices = n_voices or len(usable)
    groups = _group_by_answer(usable)
    counts = {answer: float(len(group)) for answer, group in groups.items()}
    winner, tie, note = _pick(groups, counts, label=lambda a: a, unit="votes")
    supporters = groups[winner]
    reason = f"{prefix}{len(supporters)} of {n_voices} votes for {_short(winner)!r}"
    if note:
        reason += f"; {note}"
    return _decision(
        strategy, winner, len(supporters) / n_voices, supporters, tie=tie, reason=reason + _dropped_note(dropped)
    )


def weighted(votes: Sequence[Vote]) -> Decision:
    """Each vote counts ``weight x confidence`` (confidence 1 when absent): a reliable
    minority beats an unreliable majority. Ties as in ``majority``; when every score is
    0 (no weights known) it falls back to plain counts and says so."""
    usable, dropped = usable_votes(votes)
    if not usable:
        return Decision.empty("weighted", "no usable answers" + _dropped_note(dropped))
    groups = _group_by_answer(usable)
    scores = {answer: sum(_vote_score(v) for v in group) for answer, group in groups.items()}
    total = sum(scores.values())
    if total <= 0.0:
        return _plurality(usable, dropped, "weighted", prefix="all weights are 0, counted votes instead: ")
    winner, tie, note = _pick(groups, scores, label=lambda a: a, unit="weight")
    supporters = groups[winner]
    reason = (
        f"weight {_fmt(scores[winner])} of {_fmt(total)} for {_short(winner)!r} "
        f"({len(supporters)} of {len(usable)} votes)"
    )
    if note:
        reason += f"; {note}"
    return _decision(
        "weighted", winner, scores[winner] / total, supporters, tie=tie, reason=reason + _dropped_note(dropped)
    )


# --------------------------------------------------------------------------- numbers


def parse_number(answer: str) -> float | None:
    """A finite float, or None for NaN, infinities and anything that is not a number."""
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def format_number(value: float) -> str:
    """Canonical numeric string, as the provider layer writes them: "42", "3.5", "-0.001".

    Rounded to 15 significant digits first (every decimal with 15 digits survives a
    round trip through a float), so that arithmetic noise such as a weighted mean of
    equal values coming out as -7.000000000000001 does not reach the answer.
    """
    value = float(f"{value:.15g}")
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def reject_outliers(values: Sequence[float], cutoff: float = MAD_CUTOFF) -> list[bool]:
    """Which values the modified z-score rule (module docstring) keeps."""
    if len(values) < 3:
        return [True] * len(values)
    centre = statistics.median(values)
    deviation = [abs(value - centre) for value in values]
    mad = statistics.median(deviation)
    if mad == 0.0:
        return [d == 0.0 for d in deviation]
    return [MAD_CONSISTENCY * d / mad <= cutoff for d in deviation]


def _trimmed_mean(values: Sequence[float], proportion: float) -> float:
    ordered = sorted(values)
    cut = math.floor(proportion * len(ordered))
    if len(ordered) - 2 * cut < 1:
        cut = (len(ordered) - 1) // 2
    return statistics.fmean(ordered[cut : len(ordered) - cut])


def _average(values: Sequence[float], weights: Sequence[float]) -> float:
    return math.fsum(v * w for v, w in zip(values, weights, strict=True)) / math.fsum(weights)


def _numeric(
    votes: Sequence[Vote],
    strategy: str,
    estimate: Callable[[list[float], list[float]], float],
    *,
    by_weight: bool,
    mad_cutoff: float,
    spread_scale: float,
    describe: str,
) -> Decision:
    """Plain floats, not numpy: a task has a handful of votes, and numpy's call overhead on
    three values was 6% of a worker's CPU in the pipeline benchmark."""
    usable, dropped = usable_votes(votes)
    if not usable:
        return Decision.empty(strategy, "no usable answers" + _dropped_note(dropped))
    parsed = [(vote, parse_number(vote.answer)) for vote in usable]
    numeric = [(vote, value) for vote, value in parsed if value is not None]
    rejected_answers = [vote.answer for vote, value in parsed if value is None]
    notes: list[str] = []
    if rejected_answers:
        shown = ", ".join(repr(_short(a, 20)) for a in sorted(set(rejected_answers))[:5])
        notes.append(f"dropped {len(rejected_answers)} non-numeric, NaN or infinite answer(s) ({shown})")
    if dropped:
        notes.append(f"dropped {dropped} empty answer(s)")
    if not numeric:
        return Decision.empty(strategy, "no numeric answers; " + "; ".join(notes))

    keep = reject_outliers([value for _, value in numeric], mad_cutoff)
    outliers = [value for (_, value), kept in zip(numeric, keep, strict=True) if not kept]
    if outliers:
        shown = ", ".join(format_number(v) for v in outliers[:5])
        notes.append(f"rejected {len(outliers)} outlier(s) ({shown}): modified z-score > {_fmt(mad_cutoff)}")

    kept_pairs = [pair for pair, k in zip(numeric, keep, strict=True) if k]
    kept_votes = [vote for vote, _ in kept_pairs]
    kept = [value for _, value in kept_pairs]
    kept_scores = [_vote_score(v) for v in kept_votes]
    kept_weight = math.fsum(kept_scores)
    use_weights = by_weight and kept_weight > 0.0
    if by_weight and not use_weights:
        notes.append("all weights are 0, used equal weights")
    weights = kept_scores if use_weights else [1.0] * len(kept)
    value = estimate(kept, weights)

    kept_share = kept_weight / math.fsum(_vote_score(v) for v in usable) if use_weights else len(kept) / len(usable)
    deviation = _average([abs(v - value) for v in kept], weights)
    scale = max(abs(value), statistics.fmean(abs(v) for v in kept))
    relative_spread = deviation / scale if deviation > 0.0 and scale > 0.0 else 0.0
    agreement = kept_share * math.exp(-relative_spread / spread_scale)

    low, high = min(kept), max(kept)
    reason = (
        f"{describe} of {len(kept)} of {len(usable)} answers = {format_number(value)}; "
        f"range [{format_number(low)}, {format_number(high)}], relative spread {_fmt(relative_spread)}"
    )
    if notes:
        reason += "; " + "; ".join(notes)
    return _decision(
        strategy, format_number(value), agreement, kept_votes, tie=False, reason=reason, interval=(low, high)
    )


def median(votes: Sequence[Vote], *, mad_cutoff: float = MAD_CUTOFF, spread_scale: float = SPREAD_SCALE) -> Decision:
    """Median of the numeric answers left after outlier rejection; each answer counts once."""
    return _numeric(
        votes,
        "median",
        lambda kept, _weights: statistics.median(kept),
        by_weight=False,
        mad_cutoff=mad_cutoff,
        spread_scale=spread_scale,
        describe="median",
    )


def trimmed_mean(
    votes: Sequence[Vote],
    *,
    proportion: float = TRIM_PROPORTION,
    mad_cutoff: float = MAD_CUTOFF,
    spread_scale: float = SPREAD_SCALE,
) -> Decision:
    """Mean after outlier rejection and cutting ``proportion`` of the values from each end
    (at least one value always remains); each answer counts once."""
    if not 0.0 <= proportion < 0.5:
        raise StrategyError(f"trimmed_mean: proportion must be in [0, 0.5), got {proportion}")
    return _numeric(
        votes,
        "trimmed_mean",
        lambda kept, _weights: _trimmed_mean(kept, proportion),
        by_weight=False,
        mad_cutoff=mad_cutoff,
        spread_scale=spread_scale,
        describe=f"{_fmt(proportion * 100)}%-trimmed mean",
    )


def weighted_mean(
    votes: Sequence[Vote], *, mad_cutoff: float = MAD_CUTOFF, spread_scale: float = SPREAD_SCALE
) -> Decision:
    """Mean of the kept numeric answers weighted by ``weight x confidence``; agreement counts weight too."""
    return _numeric(
        votes,
        "weighted_mean",
        _average,
        by_weight=True,
        mad_cutoff=mad_cutoff,
        spread_scale=spread_scale,
        describe="weighted mean",
    )


# --------------------------------------------------------------------------- free text


_DEFAULT_EMBEDDER = HashedNgramEmbedder()


def cluster(votes: Sequence[Vote], *, threshold: float | None = None, embedder: Embedder | None = None) -> Decision:
    """Group answers that say the same thing (``clustering.py``); the medoid of the largest
    group is the answer. Equal-sized groups: lowest total latency, then the lexicographically
    first medoid. Agreement is the largest group's share of the usable answers.

    ``threshold`` defaults to the embedder's ``default_threshold`` attribute when it has
    one (0.35 for the built-in hashed n-gram embedder), else ``clustering.DEFAULT_THRESHOLD``.
    """
    usable, dropped = usable_votes(votes)
    if not usable:
        return Decision.empty("cluster", "no usable answers" + _dropped_note(dropped))
    # A canonical order (fastest first, then by text) makes the medoid choice independent
    # of arrival order when two members are equally central.
    usable = sorted(usable, key=lambda v: (v.latency_ms, v.answer, v.model_id))
    embedder = embedder or _DEFAULT_EMBEDDER
    if threshold is None:
        threshold = float(getattr(embedder, "default_threshold", DEFAULT_THRESHOLD))
    embeddings = embedder.embed([v.answer for v in usable])
    if len(embeddings) != len(usable):
        raise StrategyError(f"cluster: embedder returned {len(embeddings)} vectors for {len(usable)} answers")
    similarity = similarity_matrix(np.asarray(embeddings))
    groups_idx = cluster_indices(embeddings, threshold)
    centres = {k: medoid(similarity, members) for k, members in enumerate(groups_idx)}
    groups = {k: [usable[i] for i in members] for k, members in enumerate(groups_idx)}
    sizes = {k: float(len(members)) for k, members in enumerate(groups_idx)}
    winner, tie, note = _pick(groups, sizes, label=lambda k: usable[centres[k]].answer, unit="answers")
    supporters = groups[winner]
    centre = usable[centres[winner]]
    reason = (
        f"largest of {len(groups_idx)} cluster(s) (cosine >= {_fmt(threshold)}) holds {len(supporters)} "
        f"of {len(usable)} answers; answer is its medoid, from {centre.model_id}"
    )
    if note:
        reason += f"; {note}"
    return _decision(
        "cluster",
        centre.answer,
        len(supporters) / len(usable),
        supporters,
        tie=tie,
        reason=reason + _dropped_note(dropped),
        clusters=len(groups_idx),
    )


# --------------------------------------------------------------------------- JSON


def canonical_json(value: Any) -> str:
    """Sorted keys, compact: the same text for the same value."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


_ABSENT = None  # group key of "this answer has no such field"


def json_fields(votes: Sequence[Vote]) -> Decision:
    """Field-by-field majority over the answers that parse as JSON objects.

    For each top-level field the candidates are the canonical values given and "absent";
    the most common wins (absent winning means the field is left out). Nested values are
    compared whole. Ties: lowest total latency, then a present value over absent, then
    lexicographic. Answers that are not JSON objects back nothing and count against
    every field. ``agreement`` is the mean over fields of the winner's share of the
    usable answers; ``support`` is the models that agree with the winner on at least
    half the fields. When no answer is an object but some are valid JSON (lists,
    scalars), the whole canonical values are put to a plain majority vote.
    """
    usable, dropped = usable_votes(votes)
    if not usable:
        return Decision.empty("json_fields", "no usable answers" + _dropped_note(dropped))
    objects: list[tuple[Vote, dict[str, str]]] = []
    other_json: list[Vote] = []
    invalid = 0
    for vote in usable:
        try:
            parsed = orjson.loads(vote.answer)
        except orjson.JSONDecodeError:
            invalid += 1
            continue
        if isinstance(parsed, dict):
            objects.append((vote, {key: canonical_json(value) for key, value in parsed.items()}))
        else:
            other_json.append(
                Vote(vote.model_id, canonical_json(parsed), vote.weight, vote.confidence, vote.latency_ms)
            )

    notes: list[str] = []
    if invalid:
        notes.append(f"{invalid} answer(s) not valid JSON")
    if not objects:
        if not other_json:
            return Decision.empty("json_fields", "no answer parses as JSON" + _dropped_note(dropped))
        return _plurality(
            other_json,
            dropped,
            "json_fields",
            prefix="no answer is a JSON object, whole values voted: ",
            n_voices=len(usable),
        )

    n_usable = len(usable)
    fields = sorted({key for _, obj in objects for key in obj})
    winners: dict[str, str | None] = {}
    field_agreement: list[float] = []
    tie_any = False
    for field in fields:
        groups: dict[str | None, list[Vote]] = {}
        for vote, obj in objects:
            groups.setdefault(obj.get(field, _ABSENT), []).append(vote)
        counts = {key: float(len(group)) for key, group in groups.items()}
        winner, tie, note = _pick(
            groups,
            counts,
            label=lambda key: "<absent>" if key is None else key,
            unit="votes",
            order=lambda key: (key is None, key or ""),
        )
        winners[field] = winner
        field_agreement.append(len(groups[winner]) / n_usable)
        if tie:
            tie_any = True
            notes.append(f"field {field!r}: {note}")

    answer = canonical_json({field: orjson.loads(value) for field, value in winners.items() if value is not None})
    if fields:
        agreement = sum(field_agreement) / len(fields)
        supporters = [
            vote
            for vote, obj in objects
            if 2 * sum(obj.get(field, _ABSENT) == winners[field] for field in fields) >= len(fields)
        ]
    else:
        agreement = len(objects) / n_usable
        supporters = [vote for vote, _ in objects]
    reason = f"{len(fields)} field(s) voted over {len(objects)} JSON object(s) of {n_usable} answers"
    if notes:
        reason += "; " + "; ".join(notes)
    return _decision("json_fields", answer, agreement, supporters, tie=tie_any, reason=reason + _dropped_note(dropped))


# --------------------------------------------------------------------------- registry


STRATEGIES: dict[str, Strategy] = {
    "majority": majority,
    "weighted": weighted,
    "median": median,
    "trimmed_mean": trimmed_mean,
    "weighted_mean": weighted_mean,
    "cluster": cluster,
    "json_fields": json_fields,
}


def register_strategy(name: str, fn: Strategy, *, replace: bool = False) -> None:
    """Make ``fn`` available as ``aggregate(..., strategy=name)``.

    Registering the same function twice is a no-op; replacing a different one (a
    built-in included) needs ``replace=True``, so a typo cannot silently shadow one.
    """
    if not isinstance(name, str) or not name.strip():
        raise StrategyError(f"register_strategy: name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise StrategyError(f"register_strategy({name!r}): {fn!r} is not callable")
    current = STRATEGIES.get(name)
    if current is not None and current is not fn and not replace:
        raise StrategyError(
            f"register_strategy: {name!r} is already registered ({_qualname(current)}); pass replace=True to replace it"
        )
    STRATEGIES[name] = fn


def _qualname(fn: object) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def load_custom(dotted_path: str, *, name: str | None = None) -> str:
    """Import ``"package.module:function"`` (or ``"package.module.function"``) and register it.

    The function must take ``votes`` (and any options as keyword arguments) and return a
    ``Decision``. It is registered under ``name``, by default the dotted path itself, so
    ``aggregate(..., strategy=dotted_path)`` works; the registered name is returned.
    """
    path = dotted_path.strip() if isinstance(dotted_path, str) else ""
    if ":" in path:
        module_name, _, attribute = path.partition(":")
    else:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise StrategyLoadError(
            f"custom strategy {dotted_path!r}: expected 'package.module:function' or 'package.module.function'"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise StrategyLoadError(
            f"custom strategy {dotted_path!r}: cannot import module {module_name!r} ({error}); "
            "is the package installed in this environment and the path spelled 'package.module:function'?"
        ) from error
    except Exception as error:  # the module itself raised while importing
        raise StrategyLoadError(
            f"custom strategy {dotted_path!r}: importing module {module_name!r} raised {type(error).__name__}: {error}"
        ) from error
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as error:
            raise StrategyLoadError(
                f"custom strategy {dotted_path!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from error
    if not callable(target):
        raise StrategyLoadError(
            f"custom strategy {dotted_path!r}: {attribute!r} is a {type(target).__name__}, not a function taking votes"
        )
    registered = name or dotted_path
    register_strategy(registered, target, replace=True)
    return registered


def _resolve(name: str) -> Strategy:
    fn = STRATEGIES.get(name)
    if fn is not None:
        return fn
    # No import on demand: the name comes from the task event, and a publisher must not
    # be able to make a worker import modules. Custom code is loaded by the operator.
    raise StrategyError(
        f"unknown consensus strategy {name!r} (known: {', '.join(sorted(STRATEGIES))}); "
        "register a custom one at start-up with load_custom('package.module:function')"
    )


def aggregate(
    votes: Sequence[Vote],
    *,
    answer_type: str,
    strategy: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Decision:
    """Aggregate ``votes`` with ``strategy`` (default: the one for ``answer_type``).

    ``strategy`` is a registered name: a built-in, or a custom function registered with
    ``register_strategy`` / ``load_custom`` (a dotted path is never imported here, since
    the name may come from a task event). ``options`` are passed to the strategy as keyword
    arguments (e.g. ``{"threshold": 0.5}`` for ``cluster``). No votes give an empty
    Decision without calling the strategy.
    """
    if answer_type not in DEFAULT_STRATEGY:
        raise StrategyError(f"unknown answer_type {answer_type!r} (known: {', '.join(ANSWER_TYPES)})")
    name = strategy or DEFAULT_STRATEGY[answer_type]
    fn = _resolve(name)
    if not votes:
        return Decision.empty(name, "no answers: every model failed or none was asked")
    kwargs = dict(options or {})
    if kwargs:
        try:
            inspect.signature(fn).bind(votes, **kwargs)
        except TypeError as error:
            raise StrategyError(
                f"consensus strategy {name!r} does not accept options {sorted(kwargs)}: {error}"
            ) from error
        except ValueError:  # no signature available (some builtins): let the call decide
            pass
    decision = fn(votes, **kwargs)
    if not isinstance(decision, Decision):
        raise StrategyError(f"consensus strategy {name!r} returned {type(decision).__name__}, expected Decision")
    return decision
