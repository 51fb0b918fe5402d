"""CLUB: a contrastive log-ratio upper bound on I(z; c) (Cheng et al. 2020, ICML).

With a variational conditional q(c | z) (Eq. 11 of the paper):

    I_CLUB = E_{p(z, c)}[log q(c | z)] - E_{p(z)} E_{p(c)}[log q(c | z)],

an upper bound on I(z; c) when q is close to p(c | z) (Theorem 3.2 and Sec. 3.2: exact
if q = p, up to KL(p(z, c) || q(z, c)) otherwise). q is fitted by maximum likelihood on
the joint samples: ``loss`` is the negative log-likelihood. The negative term averages
over all N x N pairs of the minibatch, in closed form (no sampling):

* categorical c: q is a softmax classifier; E_j[log q(c_j | z_i)] = sum_k p_k log q(k | z_i)
  with p_k the class frequencies in the batch;
* continuous c: q(c | z) = N(mu(z), diag exp(logvar(z))); E_j[(c_j - mu_i)^2] =
  (mean_c - mu_i)^2 + var_c per dimension.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import MIEstimator
from .critics import mlp

#: Soft bound on the log-variance of q: keeps the likelihood finite early in training while
#: still allowing conditional variances down to e^-15 (about 7.5 nats per dimension).
LOGVAR_BOUND = 15.0


class CLUBEstimator(MIEstimator):
    """CLUB upper bound with a learned q(c | z); see the module docstring.

    ``forward`` is differentiable w.r.t. z through q's outputs (for the encoder to descend);
    ``loss`` is the negative log-likelihood of q on the joint pairs (constants dropped).
    """

    is_upper_bound = True

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        *,
        c_categories: int | None = None,
        hidden: int = 64,
        layers: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(z_dim, c_dim, c_categories=c_categories, generator=generator)
        if c_categories is not None:
            self.logits = mlp(z_dim, c_categories, hidden, layers)
        else:
            self.mean = mlp(z_dim, c_dim, hidden, layers)
            self.logvar = mlp(z_dim, c_dim, hidden, layers)

    def _gaussian(self, z: Tensor) -> tuple[Tensor, Tensor]:
        raw = self.logvar(z)
        # Smooth clamp of the log-variance to (-LOGVAR_BOUND, LOGVAR_BOUND).
        return self.mean(z), LOGVAR_BOUND * torch.tanh(raw / LOGVAR_BOUND)

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        if self.c_categories is not None:
            z, c_onehot = self._inputs(z, c)
            log_q = torch.log_softmax(self.logits(z), dim=1)  # (N, K)
            positive = (log_q * c_onehot).sum(dim=1)
            negative = log_q @ c_onehot.mean(dim=0)  # sum_k p_k log q(k | z_i)
            return (positive - negative).mean()
        z, c = self._inputs(z, c)
        mu, logvar = self._gaussian(z)
        inv_var = torch.exp(-logvar)
        # The log-variance terms and constants are the same in both terms and cancel.
        positive = -0.5 * ((c - mu) ** 2 * inv_var).sum(dim=1)
        c_mean, c_var = c.mean(dim=0), c.var(dim=0, unbiased=False)
        negative = -0.5 * (((c_mean - mu) ** 2 + c_var) * inv_var).sum(dim=1)
        return (positive - negative).mean()

    def log_likelihood(self, z: Tensor, c: Tensor) -> Tensor:
        """Mean log q(c_i | z_i) on the joint pairs, without the Gaussian constant."""
        if self.c_categories is not None:
            z, c_onehot = self._inputs(z, c)
            return (torch.log_softmax(self.logits(z), dim=1) * c_onehot).sum(dim=1).mean()
        z, c = self._inputs(z, c)
        mu, logvar = self._gaussian(z)
        return (-0.5 * ((c - mu) ** 2 * torch.exp(-logvar) + logvar)).sum(dim=1).mean()

    def loss(self, z: Tensor, c: Tensor) -> Tensor:
        """Negative log-likelihood of q(c | z): minimise it to fit q (Cheng et al., Alg. 1)."""
        return -self.log_likelihood(z, c)
