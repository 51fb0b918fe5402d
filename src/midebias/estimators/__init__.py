"""Neural estimators of the mutual information I(z; c) between a representation and a bias.

Every estimator is an :class:`MIEstimator` (an ``nn.Module``): ``forward(z, c)`` returns the
estimate in nats on a minibatch (differentiable w.r.t. z), ``loss(z, c)`` the estimator's own
training loss. Pick one by name with :func:`make_estimator`:

=========  ===========================================================  ============
name       estimator                                                    bound
=========  ===========================================================  ============
"dv"       Donsker-Varadhan, as in Ragonesi et al. 2020 (no EMA)        lower
"mine"     DV with MINE's moving-average gradient (Belghazi et al.)     lower
"nwj"      NWJ / f-divergence (Nguyen et al. 2010)                      lower
"infonce"  InfoNCE over all N x N pairs (Oord et al. 2018), <= log N    lower
"club"     CLUB with a variational q(c | z) (Cheng et al. 2020)         upper
=========  ===========================================================  ============

:func:`gaussian_mi` is the closed-form MI of a Gaussian with a batch's covariances (no
critic; linear dependence only). :func:`estimate_mi` audits a fixed pair of samples: it
trains a fresh estimator on one part and reports the estimate on the held-out part.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import MIEstimator
from .bounds import DVEstimator, InfoNCEEstimator, MINEEstimator, NWJEstimator
from .club import CLUBEstimator
from .critics import MLPCritic, SeparableCritic, make_critic
from .gaussian import gaussian_mi
from .heldout import FittedEstimator, estimate_mi, fit_estimator, held_out_estimate
from .synthetic import correlated_gaussians, gaussian_mixture_categorical, rho_for_mi

#: Estimators by name; :func:`make_estimator` builds them.
ESTIMATORS: dict[str, type[MIEstimator]] = {
    "dv": DVEstimator,
    "mine": MINEEstimator,
    "nwj": NWJEstimator,
    "infonce": InfoNCEEstimator,
    "club": CLUBEstimator,
}


def check_estimator_name(name: str) -> str:
    """`name` if it names an estimator of :data:`ESTIMATORS` (case-insensitive); else a
    ValueError that lists them (for settings checked before any work is done)."""
    if str(name).lower() not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {name!r}")
    return name


def make_estimator(
    name: str,
    z_dim: int,
    c_dim: int | None,
    *,
    c_categories: int | None = None,
    hidden: int = 64,
    layers: int = 3,
    generator: torch.Generator | None = None,
    **kw: Any,
) -> MIEstimator:
    """Build the estimator registered as ``name``.

    Args:
        name: one of :data:`ESTIMATORS` (case-insensitive).
        z_dim: width of z.
        c_dim: width of c; with ``c_categories=K`` it must be K or None.
        c_categories: pass c as integer class indices in [0, K) (one-hot encoded inside).
        hidden, layers: width and number of hidden layers of the critic / q network.
        generator: optional ``torch.Generator`` for the in-batch shuffles.
        **kw: estimator-specific options, e.g. ``ema_rate`` (mine), ``critic``
            ("joint" or "separable"; dv, mine, nwj, infonce).
    """
    key = name.lower()
    if key not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; known estimators: {sorted(ESTIMATORS)}.")
    if c_categories is not None and c_dim is None:
        c_dim = c_categories
    if c_dim is None:
        raise ValueError("c_dim is required unless c_categories is given.")
    return ESTIMATORS[key](
        z_dim,
        c_dim,
        c_categories=c_categories,
        hidden=hidden,
        layers=layers,
        generator=generator,
        **kw,
    )


__all__ = [
    "check_estimator_name",
    "ESTIMATORS",
    "CLUBEstimator",
    "DVEstimator",
    "FittedEstimator",
    "InfoNCEEstimator",
    "MIEstimator",
    "MINEEstimator",
    "MLPCritic",
    "NWJEstimator",
    "SeparableCritic",
    "correlated_gaussians",
    "estimate_mi",
    "fit_estimator",
    "gaussian_mi",
    "gaussian_mixture_categorical",
    "held_out_estimate",
    "make_critic",
    "make_estimator",
    "rho_for_mi",
]
