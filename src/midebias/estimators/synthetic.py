"""Data with a known mutual information, to test and benchmark the estimators.

Every generator is a pure function of its settings and an explicit
``numpy.random.Generator`` (an int seed is accepted too) and returns ``(z, c, true_mi)``
with ``true_mi`` in nats.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: Seed and size of the fixed Monte Carlo sample behind the mixture's true MI, so that the
#: reported value depends only on (k, d, separation), never on the caller's generator.
MC_SEED = 20200313
MC_SAMPLES = 200_000


def _as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def correlated_gaussians(
    n: int, d: int, rho: float, rng: np.random.Generator | int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Pairs (x, y) of d-dimensional standard Gaussians, correlated coordinate by coordinate.

    x ~ N(0, I_d), y = rho x + sqrt(1 - rho^2) e with e ~ N(0, I_d), so each pair
    (x_k, y_k) has correlation rho and the pairs are independent. The true MI is
    I(x; y) = -d/2 log(1 - rho^2) nats (Belghazi et al. 2018, Sec. 4.1; Poole et al. 2019).

    Returns:
        x (n, d) float64, y (n, d) float64, true MI in nats.
    """
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must lie in (-1, 1), got {rho}.")
    if n < 1 or d < 1:
        raise ValueError(f"need n >= 1 and d >= 1, got n={n}, d={d}.")
    rng = _as_rng(rng)
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1.0 - rho**2) * rng.standard_normal((n, d))
    return x, y, -0.5 * d * math.log1p(-(rho**2))


def rho_for_mi(mi: float, d: int) -> float:
    """The correlation rho at which :func:`correlated_gaussians` has MI ``mi`` nats."""
    if mi < 0 or d < 1:
        raise ValueError(f"need mi >= 0 and d >= 1, got mi={mi}, d={d}.")
    return math.sqrt(-math.expm1(-2.0 * mi / d))


def mixture_means(k: int, d: int, separation: float) -> np.ndarray:
    """Class means, (k, d), with every pair (or neighbouring pair) ``separation`` apart.

    d >= k: a regular simplex, mu_c = separation / sqrt(2) * e_c (all pairs equidistant).
    d == 1: points on a line, separation apart. Otherwise: a regular k-gon in the first two
    coordinates with side ``separation``.
    """
    means = np.zeros((k, d))
    if d >= k:
        means[np.arange(k), np.arange(k)] = separation / math.sqrt(2.0)
    elif d == 1:
        means[:, 0] = separation * (np.arange(k) - (k - 1) / 2.0)
    else:
        radius = separation / (2.0 * math.sin(math.pi / k))
        angle = 2.0 * math.pi * np.arange(k) / k
        means[:, 0], means[:, 1] = radius * np.cos(angle), radius * np.sin(angle)
    return means


def _log_joint_terms(z: np.ndarray, means: np.ndarray) -> np.ndarray:
    """log N(z; mu_c, I) for every class, up to the shared constant: (n, k)."""
    sq = (z**2).sum(1)[:, None] - 2.0 * z @ means.T + (means**2).sum(1)[None, :]
    return -0.5 * sq


@lru_cache(maxsize=64)
def mixture_true_mi(k: int, d: int, separation: float, mc_samples: int = MC_SAMPLES) -> float:
    """I(z; c) for z | c ~ N(mu_c, I), c uniform on k classes, by Monte Carlo.

    I = E[log p(z | c) - log p(z)] with p(z) = 1/k sum_c N(z; mu_c, I), averaged over a
    fixed sample of ``mc_samples`` draws (seed ``MC_SEED``); standard error is below 1e-2
    nats at the default size. Cached: a pure function of its arguments.
    """
    rng = np.random.default_rng(MC_SEED)
    means = mixture_means(k, d, separation)
    c = rng.integers(0, k, size=mc_samples)
    z = means[c] + rng.standard_normal((mc_samples, d))
    total = 0.0
    for start in range(0, mc_samples, 50_000):  # chunks bound memory for large k
        log_pz_c = _log_joint_terms(z[start : start + 50_000], means)
        own = log_pz_c[np.arange(log_pz_c.shape[0]), c[start : start + 50_000]]
        top = log_pz_c.max(1)
        log_pz = top + np.log(np.exp(log_pz_c - top[:, None]).mean(1))
        total += float((own - log_pz).sum())
    # Clip tiny negative Monte Carlo noise: MI is non-negative and at most log k.
    return float(min(max(total / mc_samples, 0.0), math.log(k)))


def gaussian_mixture_categorical(
    n: int, k: int, d: int, separation: float, rng: np.random.Generator | int
) -> tuple[np.ndarray, np.ndarray, float]:
    """A categorical c uniform on k classes and z | c ~ N(mu_c, I_d).

    Means come from :func:`mixture_means`. The true MI (at most log k) comes from
    :func:`mixture_true_mi`: a Monte Carlo average of log p(z | c) - log p(z) over a large
    fixed sample of the known densities.

    Returns:
        z (n, d) float64, c (n,) int64 class indices, true MI in nats.
    """
    if k < 2 or d < 1 or n < 1:
        raise ValueError(f"need n >= 1, k >= 2 and d >= 1, got n={n}, k={k}, d={d}.")
    if separation < 0:
        raise ValueError(f"separation must be >= 0, got {separation}.")
    rng = _as_rng(rng)
    means = mixture_means(k, d, separation)
    c = rng.integers(0, k, size=n).astype(np.int64)
    z = means[c] + rng.standard_normal((n, d))
    return z, c, mixture_true_mi(k, d, float(separation))
