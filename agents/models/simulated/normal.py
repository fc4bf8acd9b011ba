"""The normal-distribution arithmetic the correlated-error fit needs, in numpy (no scipy).

Three inversions, each by bisection on a function that is monotone in its unknown:

- ``tetrachoric(p_a, p_b, both)``: the correlation of two standard normals that makes
  ``P(Z_a < Phi^-1(p_a), Z_b < Phi^-1(p_b)) = both`` (two models' both-correct rate);
- ``agreement_correlation(agreement, options)``: the correlation of two models' utilities
  for each of ``options`` distractors that makes them pick the same one with probability
  ``agreement`` (the both-wrong agreement);
- ``noise_for_auroc(threshold, auroc)``: how noisy a model's view of its own latent
  margin must be for its confidence to separate right from wrong answers this well.

``nearest_correlation`` repairs a matrix of pairwise fits that is not positive
semi-definite (each pair is fitted on its own, so nothing guarantees a joint Gaussian).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

_STD = NormalDist()

_LEGENDRE_NODES = 48
"""Gauss-Legendre nodes for Plackett's integral: its integrand is smooth for |rho| <= 0.99
(where the fit lives), and 48 nodes put the bivariate CDF within 1e-9 of Owen's T there."""
_LEGENDRE = np.polynomial.legendre.leggauss(_LEGENDRE_NODES)
_HERMITE_NODES = 32
"""Gauss-Hermite nodes per axis for the agreement integral (a smooth integrand: a power of a
CDF); 32 x 32 nodes move :func:`agreement` by under 1e-4 against 64 x 64."""
_AUROC_GRID = 96
"""Quantile points per class for the AUROC integral; 96 x 96 is within 1e-4 of 400 x 400."""
_BISECTION_STEPS = 50


def norm_cdf(x: float) -> float:
    return _STD.cdf(x)


def norm_cdf_array(x: np.ndarray) -> np.ndarray:
    """Phi on an array, from ``erf`` by Abramowitz and Stegun 7.1.26 (absolute error < 1.5e-7),
    because numpy has no erf and the integrals below need thousands of values per step."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def norm_ppf(p: float) -> float:
    """Phi^-1(p), with p clipped into (0, 1) so a model at accuracy 0 or 1 still has a threshold."""
    return _STD.inv_cdf(min(max(p, 1e-9), 1 - 1e-9))


def bivariate_cdf(h: np.ndarray | float, k: np.ndarray | float, rho: float) -> np.ndarray:
    """P(X < h, Y < k) for standard normals of correlation ``rho`` (element-wise over arrays), by
    Plackett's identity ``dPhi2/drho = phi2(h, k; rho)`` integrated from 0, where it is Phi(h) Phi(k)."""
    h, k = np.asarray(h, dtype=float)[..., None], np.asarray(k, dtype=float)[..., None]
    nodes, weights = _LEGENDRE
    r = 0.5 * rho * (nodes + 1.0)
    one_minus = 1.0 - r * r
    density = np.exp(-(h * h - 2.0 * r * h * k + k * k) / (2.0 * one_minus)) / (2.0 * math.pi * np.sqrt(one_minus))
    independent = norm_cdf_array(h[..., 0]) * norm_cdf_array(k[..., 0])
    return independent + 0.5 * rho * (density @ weights)


def _bisect(f: Callable[[float], float], target: float, low: float, high: float, *, increasing: bool) -> float:
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (low + high)
        if (f(mid) < target) == increasing:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def tetrachoric(p_a: float, p_b: float, both: float) -> float:
    """The latent correlation giving both-correct rate ``both`` at accuracies ``p_a``, ``p_b``;
    clipped to [-0.99, 0.99] when the rate lies outside what a Gaussian pair can give."""
    h, k = norm_ppf(p_a), norm_ppf(p_b)
    return _bisect(lambda rho: float(bivariate_cdf(h, k, rho)), both, -0.99, 0.99, increasing=True)


def agreement(s: float, options: int) -> float:
    """P(two models pick the same distractor) when each picks the one of ``options`` with the
    highest utility, the two models' utilities for each option being normals of correlation ``s``:
    ``options * E[Phi2(x, y; s) ** (options - 1)]`` over (x, y) of correlation ``s``."""
    if options <= 1:
        return 1.0
    nodes, weights = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
    weights = weights / weights.sum()
    x, y = np.meshgrid(nodes, nodes, indexing="ij")
    w = np.outer(weights, weights)
    other = s * x + math.sqrt(max(0.0, 1.0 - s * s)) * y
    return float(options * np.sum(w * bivariate_cdf(x, other, s) ** (options - 1)))


_AGREEMENT_GRID = np.linspace(0.0, 0.98, 197)
"""Where :func:`agreement` is tabulated for inversion: steps of 0.005 in ``s``, over which the
curve is smooth enough that linear interpolation is within 1e-5 of bisection."""
_AGREEMENT_TABLES: dict[int, np.ndarray] = {}


def agreement_correlation(target: float, options: int) -> float:
    """The utility correlation ``s`` in [0, 0.98] whose :func:`agreement` is ``target``
    (chance, ``1 / options``, at s = 0; certainty as s -> 1), from a table of the curve
    built once per ``options`` (fitting 28 pairs by bisection took seconds)."""
    if options not in _AGREEMENT_TABLES:
        _AGREEMENT_TABLES[options] = np.array([agreement(float(s), options) for s in _AGREEMENT_GRID])
    return float(np.interp(target, _AGREEMENT_TABLES[options], _AGREEMENT_GRID))


def confidence_auroc(threshold: float, noise: float) -> float:
    """AUROC of the score ``margin + noise * e`` for telling right answers (margin > 0) from wrong,
    where ``margin = threshold - Z``, Z standard normal: ``E[Phi((m1 - m0) / (noise sqrt 2))]``
    over a right answer's margin m1 and a wrong one's m0, on a grid of their quantiles."""
    u = (np.arange(_AUROC_GRID) + 0.5) / _AUROC_GRID
    p_right = norm_cdf(threshold)  # P(margin > 0) = P(Z < threshold)
    right = threshold - np.array([norm_ppf(q * p_right) for q in u])  # Z below the threshold
    wrong = threshold - np.array([norm_ppf(p_right + q * (1 - p_right)) for q in u])  # Z above it
    gap = right[:, None] - wrong[None, :]
    if noise <= 0:
        return 1.0
    return float(np.mean(norm_cdf_array(gap / (noise * math.sqrt(2.0)))))


def noise_for_auroc(threshold: float, auroc: float) -> float:
    """The noise (in latent standard deviations, 0..20) whose :func:`confidence_auroc` is ``auroc``."""
    return _bisect(lambda noise: confidence_auroc(threshold, noise), auroc, 1e-6, 20.0, increasing=False)


def nearest_correlation(matrix: np.ndarray, *, floor: float = 1e-6, rounds: int = 100) -> np.ndarray:
    """A positive-definite correlation matrix close to ``matrix``: eigenvalues clipped at ``floor``
    and the diagonal restored to 1, alternately, until both hold (Higham's alternating
    projections without the Dykstra correction: the pairwise fits here are nearly consistent,
    so the plain iteration moves them by thousandths)."""
    current = (matrix + matrix.T) / 2.0
    for _ in range(rounds):
        values, vectors = np.linalg.eigh(current)
        if values.min() >= floor:
            break
        current = vectors @ np.diag(np.maximum(values, floor)) @ vectors.T
        scale = 1.0 / np.sqrt(np.diag(current))
        current = current * np.outer(scale, scale)
    np.fill_diagonal(current, 1.0)
    return current
