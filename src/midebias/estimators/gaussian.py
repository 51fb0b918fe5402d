"""The closed-form Gaussian MI: what the second moments of a batch say about I(z; c).

For jointly Gaussian (z, c), I(z; c) = 1/2 [log det S_zz - log det S_zz|c], where S_zz|c =
S_zz - S_zc S_cc^-1 S_cz is the covariance of z left after the best linear prediction
from c. On any batch this is the MI of the Gaussian with the batch's covariances: zero
exactly when no linear function of z correlates with c (every canonical correlation is
zero), and growing as -1/2 sum log(1 - rho_i^2) over the canonical correlations rho_i. It
needs no critic, so it cannot be evaded by moving c to where a critic does not look, but
it sees only linear dependence: a z that carries c non-linearly can score zero.
`MIPenalty(..., gaussian=w)` adds w times it to the task loss, beside the critic's step.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _centre(x: Tensor) -> Tensor:
    return x - x.mean(0, keepdim=True)


def _residual(x: Tensor, given: Tensor, ridge: float) -> Tensor:
    """x minus its least-squares prediction from `given` (both centred). The normal
    equations are solved in float64 with a ridge: one-hot blocks make `given`'s Gram
    matrix singular (its null directions carry no covariance with x, so the ridge leaves
    the prediction as it is)."""
    gram = (given.T @ given).double()
    gram = gram + ridge * (gram.diagonal().mean() + 1e-12) * torch.eye(
        gram.shape[0], dtype=gram.dtype, device=gram.device
    )
    coef = torch.linalg.solve(gram, (given.T @ x).double()).to(x.dtype)
    return x - given @ coef


def gaussian_mi(
    z: Tensor,
    c: Tensor,
    given: Tensor | None = None,
    *,
    eps: float = 1e-3,
    ridge: float = 1e-4,
) -> Tensor:
    """1/2 [log det S_zz - log det S_zz|c] on the batch, in nats (differentiable in z).

    Args:
        z: (N, d) float.
        c: (N, k) float: a one-hot code, several one-hot blocks, or continuous features.
        given: optional (N, m) float (e.g. one-hot labels): the conditional version
            I(z; c | given), with z and c first stripped of their linear prediction from it.
        eps: added to the diagonal of both z covariances, times their mean variance (a
            batch smaller than z's width has a singular covariance).
        ridge: the same for the covariance of c (a one-hot block's columns sum to one).
    """
    if z.ndim != 2 or c.ndim != 2 or len(z) != len(c):
        raise ValueError(
            f"gaussian_mi: z and c must be matrices of the same length, got {tuple(z.shape)} "
            f"and {tuple(c.shape)}"
        )
    if len(z) < 2:
        raise ValueError("gaussian_mi: need at least 2 samples")
    z, c = _centre(z), _centre(c.to(z.dtype))
    if given is not None:
        if given.ndim != 2 or len(given) != len(z):
            raise ValueError(
                f"gaussian_mi: given must be a matrix of length {len(z)}, got {tuple(given.shape)}"
            )
        g = _centre(given.to(z.dtype))
        z, c = _residual(z, g, ridge), _residual(c, g, ridge)
    n, d = z.shape
    rest = _residual(z, c, ridge)  # z after its linear prediction from c
    szz = z.T @ z / n
    jitter = eps * (szz.diagonal().mean().detach() + 1e-12)
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    cond = rest.T @ rest / n
    return 0.5 * (
        torch.linalg.slogdet(szz + jitter * eye)[1] - torch.linalg.slogdet(cond + jitter * eye)[1]
    )
