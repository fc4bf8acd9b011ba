"""Models that err like real models: correlated mistakes, shared distractors, miscalibrated
confidence, and repeated samples that are not independent voters. Pure numpy, no I/O.

Why: ``behaviour.decide_answer`` draws every model's mistakes independently and makes a wrong
answer less confident by construction. Real models do neither (Kim et al., "Correlated Errors
in Large Language Models", ICML 2025: on 14,042 MMLU questions two models that are both wrong
pick the same wrong option ~60% of the time, against 33% by chance), so every consensus gain
measured on the independent fleet is flattering. This model is fitted to published numbers.

The latent model, per prompt (an *item*) and model ``m``:

- correctness: ``Z_m = L_m . eps`` with ``eps`` one standard normal per model of the fleet,
  drawn from the item alone, and ``L`` the Cholesky factor of the fitted correlation matrix
  ``R``; the model is right iff ``Z_m < tau_m = Phi^-1(accuracy)``. ``eps``'s first
  principal direction is the item's difficulty (every model's ``Z`` loads on it); the rest
  is what families and vintages share beyond it. ``R[m, n]`` is the tetrachoric
  correlation that makes ``P(both right)`` the pair's both-correct rate;
- which wrong answer: each distractor ``j`` of the item has a utility ``U_jm = K_m . xi_j``
  (``K`` the Cholesky factor of a second fitted matrix ``S``), and a wrong model picks the
  distractor of highest utility. The part of ``xi_j`` every model loads on is the
  distractor's attractiveness; ``S[m, n]`` makes ``P(same wrong answer | both wrong)`` the
  pair's both-wrong agreement (``normal.agreement``). Fitted for MMLU's 3 distractors; a
  prompt with more distractors agrees a little less;
- confidence: the model sees its own margin ``tau_m - Z_m`` through noise of sd ``sigma_m``
  (fitted so right and wrong answers separate with the stated AUROC), turns it into the
  calibrated P(right), then shifts it by ``overconfidence`` on the logit scale. A wrong
  answer with a lucky noise draw is confidently wrong; nothing is by construction;
- sample ``k >= 1`` at temperature ``t > 0`` (self-consistency): every latent of the
  model is ``sqrt(r) * latent + sqrt(1 - r) * fresh`` with ``r = 1 - (1 - r1) * t``
  (``r1`` = ``sample_correlation``): correlated through the item, so five samples of one
  model are worth far less than five models. Sample 0 (and any sample at t = 0) is the
  greedy answer. ``r`` linear in t is a modelling choice: no public data fits it.

Determinism: an answer is a pure function of (seed, model, prompt, sample) for a fitted fleet
(the latents are drawn from a hash of seed and prompt; which latent coordinate a model owns
is its position in the fleet). Raising a model's accuracy only turns wrong answers right.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import normal
from .behaviour import AnswerDecision
from .profile import SimProfile
from .taskset import Truth

MMLU_DISTRACTORS = 3
"""Wrong options per MMLU question (four-way multiple choice): the agreement fit's ``options``."""
DEFAULT_BOTH_WRONG_AGREEMENT = 0.60
"""A pair with no stated agreement: Kim et al.'s "about 60%" over 71 HELM models."""
DEFAULT_LATENT_CORRELATION = 0.74
"""A pair with no stated both-correct rate: the median tetrachoric correlation of the helm-mmlu
preset's 28 pairs (they range 0.63-0.85), so an added model errs like a typical one of them."""
DEFAULT_CONFIDENCE_AUROC = 0.75
DEFAULT_SAMPLE_CORRELATION = 0.8
CONFIDENCE_BOUNDS = (1e-4, 1 - 1e-4)
"""Reported confidence is clipped here so that its logprob stays finite."""


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """What one model should look like: its accuracy, how well its confidence separates right
    from wrong (AUROC), how far it is shifted (logit units, > 0 overconfident), and how alike
    two of its samples at temperature 1 are (latent correlation)."""

    accuracy: float
    confidence_auroc: float = DEFAULT_CONFIDENCE_AUROC
    overconfidence: float = 0.0
    sample_correlation: float = DEFAULT_SAMPLE_CORRELATION


@dataclass(frozen=True, slots=True)
class PairTarget:
    """Two models' published pairwise statistics (either may be None: the default is used)."""

    both_correct: float | None = None  # share of items both answer right
    both_wrong_agreement: float | None = None  # P(same wrong answer | both wrong)


@dataclass(frozen=True)
class CorrelatedErrors:
    """A fitted fleet: answer with :meth:`decide` (one model) or :meth:`answers` (all of them)."""

    models: tuple[str, ...]
    targets: Mapping[str, ModelTarget]
    correctness: np.ndarray  # R, fitted latent correlations of correctness
    distractors: np.ndarray  # S, fitted latent correlations of distractor choice
    confidence_noise: np.ndarray  # sigma per model
    _correctness_factor: np.ndarray = field(repr=False)
    _distractor_factor: np.ndarray = field(repr=False)
    _index: Mapping[str, int] = field(repr=False)

    def __contains__(self, model: object) -> bool:
        return model in self._index

    def decide(
        self,
        seed: int,
        model: str,
        prompt: str,
        truth: Truth,
        accuracy: float | None = None,
        *,
        sample: int = 0,
        temperature: float = 0.0,
    ) -> AnswerDecision:
        """Model ``model``'s answer to ``prompt``: its greedy answer, or its ``sample``-th sample
        at ``temperature``. ``accuracy`` overrides the fitted one (a category's, or a drifted one)."""
        m = self._index[model]
        z, nu, utilities = self._latents(seed, prompt, len(truth.wrong))
        z_m, nu_m, u_m = z[m], nu[m], utilities[:, m]
        r = self.sample_r(model, temperature)
        if sample > 0 and r < 1.0:
            fresh = _rng(seed, prompt, "sample", model, sample).standard_normal(2 + len(truth.wrong))
            keep, new = math.sqrt(r), math.sqrt(1.0 - r)
            z_m, nu_m = keep * z_m + new * fresh[0], keep * nu_m + new * fresh[1]
            u_m = keep * u_m + new * fresh[2:]
        p = self.targets[model].accuracy if accuracy is None else accuracy
        return self._decision(m, model, truth, p, float(z_m), float(nu_m), u_m)

    def answers(self, seed: int, prompt: str, truth: Truth, accuracy: Mapping[str, float] | None = None) -> dict[str, AnswerDecision]:
        """Every model's greedy answer to one item (one latent draw for all of them)."""
        z, nu, utilities = self._latents(seed, prompt, len(truth.wrong))
        out = {}
        for model, m in self._index.items():
            p = accuracy[model] if accuracy is not None and model in accuracy else self.targets[model].accuracy
            out[model] = self._decision(m, model, truth, p, float(z[m]), float(nu[m]), utilities[:, m])
        return out

    def sample_r(self, model: str, temperature: float) -> float:
        """The latent correlation of two samples of ``model`` at ``temperature`` (1 at t = 0)."""
        r1 = self.targets[model].sample_correlation
        return min(1.0, max(0.0, 1.0 - (1.0 - r1) * max(0.0, temperature)))

    # --- internals ------------------------------------------------------------------------

    def _latents(self, seed: int, prompt: str, distractors: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = _rng(seed, prompt, "item")
        size = len(self.models)
        eps, nu = rng.standard_normal(size), rng.standard_normal(size)
        xi = rng.standard_normal((distractors, size))
        return self._correctness_factor @ eps, nu, xi @ self._distractor_factor.T

    def _decision(
        self, m: int, model: str, truth: Truth, accuracy: float, z: float, nu: float, utilities: np.ndarray
    ) -> AnswerDecision:
        tau = normal.norm_ppf(accuracy)
        correct = z < tau or not truth.wrong
        answer = truth.answer if correct else truth.wrong[int(np.argmax(utilities))]
        sigma = float(self.confidence_noise[m])
        believed = calibrated_confidence(tau, (tau - z) + sigma * nu, sigma)
        shown = shift_logit(believed, self.targets[model].overconfidence)
        return AnswerDecision(correct, answer, math.log(shown))


def calibrated_confidence(tau: float, score: float, sigma: float) -> float:
    """P(right | score) when ``score = margin + sigma * e`` and ``margin = tau - Z ~ N(tau, 1)``:
    the margin given the score is normal with mean ``tau + (score - tau) / (1 + s^2)`` and
    variance ``s^2 / (1 + s^2)``, and the answer is right iff the margin is positive."""
    if sigma <= 0:
        return 1.0 if score > 0 else 0.0
    var = sigma * sigma
    mean = tau + (score - tau) / (1.0 + var)
    return normal.norm_cdf(mean / math.sqrt(var / (1.0 + var)))


def shift_logit(p: float, shift: float) -> float:
    low, high = CONFIDENCE_BOUNDS
    p = min(high, max(low, p))
    return min(high, max(low, 1.0 / (1.0 + math.exp(-(math.log(p / (1.0 - p)) + shift)))))


def _rng(seed: int, prompt: str, *parts: object) -> np.random.Generator:
    digest = hashlib.blake2b("\x00".join(map(str, (seed, prompt, *parts))).encode(), digest_size=16).digest()
    return np.random.default_rng([int.from_bytes(digest[i : i + 4], "big") for i in range(0, 16, 4)])


# --- fitting --------------------------------------------------------------------------------


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def fit(
    targets: Mapping[str, ModelTarget],
    pairs: Mapping[tuple[str, str], PairTarget],
    *,
    options: int = MMLU_DISTRACTORS,
) -> CorrelatedErrors:
    """Fit a fleet to its targets: each pair's latent correlations by inversion
    (``normal.tetrachoric``, ``normal.agreement_correlation``), missing pairs at the defaults,
    both matrices repaired to the nearest positive-definite one, and each model's confidence
    noise to its AUROC. Deterministic: no randomness in the fit."""
    models = tuple(targets)
    for a, b in pairs:
        for model in (a, b):
            if model not in targets:
                raise ValueError(f"correlated fleet: pair ({a}, {b}) names {model!r}, which has no target "
                                 f"(models: {', '.join(models)})")
    size = len(models)
    correctness, distractors = np.eye(size), np.eye(size)
    for (i, a), (j, b) in itertools.combinations(enumerate(models), 2):
        pair = pairs.get(pair_key(a, b), PairTarget())
        rho = DEFAULT_LATENT_CORRELATION
        if pair.both_correct is not None:
            _check_both_correct(a, b, targets[a].accuracy, targets[b].accuracy, pair.both_correct)
            rho = normal.tetrachoric(targets[a].accuracy, targets[b].accuracy, pair.both_correct)
        agree = DEFAULT_BOTH_WRONG_AGREEMENT if pair.both_wrong_agreement is None else pair.both_wrong_agreement
        if not 1.0 / options <= agree <= 1.0:
            raise ValueError(f"correlated fleet: both-wrong agreement of {a} and {b} is {agree}; it must lie "
                             f"in [1/{options}, 1] (chance to certainty)")
        s = normal.agreement_correlation(agree, options)
        correctness[i, j] = correctness[j, i] = rho
        distractors[i, j] = distractors[j, i] = s
    correctness = normal.nearest_correlation(correctness)
    distractors = normal.nearest_correlation(distractors)
    noise = np.array([
        normal.noise_for_auroc(normal.norm_ppf(targets[m].accuracy), targets[m].confidence_auroc) for m in models
    ])
    return CorrelatedErrors(
        models=models,
        targets=dict(targets),
        correctness=correctness,
        distractors=distractors,
        confidence_noise=noise,
        _correctness_factor=np.linalg.cholesky(correctness),
        _distractor_factor=np.linalg.cholesky(distractors),
        _index={m: i for i, m in enumerate(models)},
    )


def _check_both_correct(a: str, b: str, p_a: float, p_b: float, both: float) -> None:
    low, high = max(0.0, p_a + p_b - 1.0), min(p_a, p_b)
    if not low <= both <= high:
        raise ValueError(f"correlated fleet: both-correct rate of {a} and {b} is {both}, outside "
                         f"[{low:.4f}, {high:.4f}], what accuracies {p_a} and {p_b} allow")


# --- measuring (what the fidelity test and the benchmarks read) -----------------------------


@dataclass(frozen=True, slots=True)
class PairStats:
    both_correct: float
    both_wrong_agreement: float
    both_wrong: int  # items both got wrong (the agreement's denominator)


def pair_stats(correct: Sequence[Sequence[bool]], answers: Sequence[Sequence[str]], a: int, b: int) -> PairStats:
    """Both-correct rate and both-wrong agreement of columns ``a`` and ``b`` over items (rows),
    as Kim et al.'s ``analyze_model_correlations`` computes them."""
    right = np.asarray(correct, dtype=bool)
    given = np.asarray(answers, dtype=object)
    both_right = right[:, a] & right[:, b]
    both_wrong = ~right[:, a] & ~right[:, b]
    agree = both_wrong & (given[:, a] == given[:, b])
    n_wrong = int(both_wrong.sum())
    return PairStats(float(both_right.mean()), float(agree.sum() / n_wrong) if n_wrong else 0.0, n_wrong)


# --- from simulated profiles (what SimFleet and the benchmarks hold) ------------------------

_FITTED: dict[str, CorrelatedErrors] = {}
"""Fits by the JSON of their profiles: a fleet restarted with the same catalog (every test of
a module, every benchmark repeat) fits once per process. Fitting eight models takes ~0.3 s."""


def fit_profiles(profiles: Mapping[str, SimProfile]) -> CorrelatedErrors | None:
    """The fitted correlated-error model of the profiles that have ``correlated`` targets, or
    None when none has (the fleet then answers every model independently, as before)."""
    chosen = {model: p for model, p in profiles.items() if p.correlated is not None}
    if not chosen:
        return None
    key = "\x00".join(f"{model}\x01{p.model_dump_json()}" for model, p in chosen.items())
    if key not in _FITTED:
        targets, pairs = targets_of(chosen)
        _FITTED[key] = fit(targets, pairs)
    return _FITTED[key]


def targets_of(profiles: Mapping[str, SimProfile]) -> tuple[dict[str, ModelTarget], dict[tuple[str, str], PairTarget]]:
    """The fit's targets from profiles with ``correlated`` set; a pair stated on both of its
    models must say the same, and may name only models of the same set."""
    targets = {}
    stated: dict[tuple[str, str], dict[str, float]] = {}
    for model, profile in profiles.items():
        spec = profile.correlated
        assert spec is not None
        targets[model] = ModelTarget(profile.accuracy, spec.confidence_auroc, spec.overconfidence,
                                     spec.sample_correlation)
        for what, values in (("both_correct", spec.both_correct), ("both_wrong_agreement", spec.both_wrong_agreement)):
            for other, value in values.items():
                if other not in profiles:
                    raise ValueError(f"simulated model {model!r}: correlated.{what}.{other}: no such correlated model "
                                     f"(correlated models: {', '.join(profiles)})")
                entry = stated.setdefault(pair_key(model, other), {})
                if what in entry and abs(entry[what] - value) > 1e-12:
                    raise ValueError(f"simulated models {model!r} and {other!r}: correlated.{what} is stated twice, "
                                     f"as {entry[what]} and {value}")
                entry[what] = value
    pairs = {key: PairTarget(v.get("both_correct"), v.get("both_wrong_agreement")) for key, v in stated.items()}
    return targets, pairs
