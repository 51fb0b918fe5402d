"""Critic-based lower bounds on I(z; c): DV, MINE, NWJ and InfoNCE.

Notation: p(z, c) is the joint, p(z)p(c) the product of marginals, T a statistics network.
Samples of the product of marginals are formed inside the minibatch: c~ = c[perm] with a
random permutation, z left in place (as in Ragonesi et al. 2020 and Belghazi et al. 2018).

* DV (Donsker-Varadhan; Belghazi et al. 2018, Eq. 10):
  I >= E_p[T] - log E_{p(z)p(c)}[e^T].
* MINE (Belghazi et al. 2018, Sec. 3.2, Eq. 12): the DV value, trained with the gradient
  whose denominator E[e^T] is replaced by an exponential moving average to reduce the
  bias of the minibatch gradient.
* NWJ (Nguyen, Wainwright & Jordan 2010; f-divergence / "MINE-f", Belghazi et al. Eq. 9;
  Poole et al. 2019, Eq. 8): I >= E_p[T] - E_{p(z)p(c)}[e^{T - 1}].
* InfoNCE (Oord et al. 2018; Poole et al. 2019, Eq. 12):
  I >= E[1/N sum_i log( e^{T(z_i, c_i)} / (1/N sum_j e^{T(z_i, c_j)}) )] using all N x N
  pairs of the minibatch. This bound can never exceed log N (N = batch size).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import MIEstimator, log_mean_exp
from .critics import make_critic


class _CriticEstimator(MIEstimator):
    """Shared constructor: an estimator built around one statistics network.

    ``critic`` is "joint" (:class:`MLPCritic`, the paper's T), "separable"
    (:class:`SeparableCritic`) or a ready module; None picks the class's ``default_critic``.
    """

    default_critic: str = "joint"
    supports_conditioning = True

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        *,
        c_categories: int | None = None,
        hidden: int = 64,
        layers: int = 3,
        critic: str | nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(z_dim, c_dim, c_categories=c_categories, generator=generator)
        kind = self.default_critic if critic is None else critic
        self.critic = make_critic(kind, z_dim, c_dim, hidden=hidden, layers=layers)

    def _joint_and_marginal(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Critic scores on the joint pairs (z_i, c_i) and the shuffled pairs (z_i, c_perm(i))."""
        z, c = self._inputs(z, c)
        perm = self._permutation(z.shape[0], z.device)
        return self.critic(z, c), self.critic(z, c[perm])


class DVEstimator(_CriticEstimator):
    """Donsker-Varadhan lower bound, as the paper's authors use it (no moving average).

    ``forward`` = mean T(z, c) - log mean exp T(z, c~) (Belghazi et al. 2018, Eq. 10),
    computed with logsumexp so large scores cannot overflow. ``loss`` = -forward, whose
    minibatch gradient is biased (the log of a minibatch mean); see :class:`MINEEstimator`.
    """

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        t_joint, t_marg = self._joint_and_marginal(z, c)
        return t_joint.mean() - log_mean_exp(t_marg)


def _exp_linear_tail(x: Tensor, cap: float = 50.0) -> Tensor:
    """exp(x) for x <= cap, continued linearly above (value and slope match at cap).

    Keeps NWJ finite and its gradient useful if a diverging critic emits huge scores;
    below ``cap`` (far beyond any sane score) it is exactly exp.
    """
    clipped = torch.clamp(x, max=cap)
    return torch.where(x <= cap, torch.exp(clipped), math.exp(cap) * (1.0 + x - cap))


class MINEEstimator(_CriticEstimator):
    """MINE: the DV value, with the bias-corrected moving-average gradient in ``loss``.

    Belghazi et al. 2018, Sec. 3.2: the gradient of log E[e^T] is E[e^T grad T] / E[e^T];
    its minibatch version is biased because the denominator is a minibatch mean. MINE
    replaces the denominator with an exponential moving average (EMA) over minibatches.
    The EMA is kept in log space (no overflow) and updated only by ``loss`` in training
    mode, so ``forward`` stays a pure DV estimate.

    Args:
        ema_rate: weight of the newest minibatch in the EMA (paper's alpha; default 0.01).
    """

    def __init__(self, z_dim: int, c_dim: int, *, ema_rate: float = 0.01, **kw) -> None:
        super().__init__(z_dim, c_dim, **kw)
        if not 0.0 < ema_rate <= 1.0:
            raise ValueError(f"ema_rate must lie in (0, 1], got {ema_rate}.")
        self.ema_rate = float(ema_rate)
        self.register_buffer("log_ema", torch.zeros(()))
        self.register_buffer("ema_started", torch.zeros((), dtype=torch.bool))

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        t_joint, t_marg = self._joint_and_marginal(z, c)
        return t_joint.mean() - log_mean_exp(t_marg)

    def loss(self, z: Tensor, c: Tensor) -> Tensor:
        t_joint, t_marg = self._joint_and_marginal(z, c)
        log_denominator = log_mean_exp(t_marg)  # log of the minibatch mean of e^T
        log_ema = self._update_ema(log_denominator.detach())
        # exp(a - log_ema) has gradient (1/EMA) * mean(e^T grad T): the corrected gradient.
        # In training a - log_ema <= -log(rate), as the EMA already holds rate * exp(a); in
        # eval mode the stored EMA may be far off, so the exp gets a linear tail (no inf).
        corrected = _exp_linear_tail(log_denominator - log_ema)
        # Report -DV as the loss value, but let the gradient come from the corrected term.
        estimate = t_joint.mean() - log_denominator.detach() - (corrected - corrected.detach())
        return -estimate

    def _update_ema(self, log_value: Tensor) -> Tensor:
        if not self.training:
            # In eval mode use the stored EMA if there is one, without changing it.
            return self.log_ema if bool(self.ema_started) else log_value
        if not bool(self.ema_started) or self.ema_rate == 1.0:
            new = log_value
            self.ema_started.fill_(True)
        else:
            # log((1 - r) * EMA + r * value), computed in log space.
            new = torch.logaddexp(
                self.log_ema + math.log1p(-self.ema_rate), log_value + math.log(self.ema_rate)
            )
        self.log_ema.copy_(new)
        return self.log_ema.clone()


class NWJEstimator(_CriticEstimator):
    """NWJ / f-divergence lower bound: mean T(z, c) - mean exp(T(z, c~) - 1).

    Nguyen, Wainwright & Jordan 2010; Belghazi et al. 2018 (MINE-f, Eq. 9); Poole et al.
    2019 (Eq. 8). Unbiased minibatch gradient (no log of a mean), but higher variance than
    DV at large MI because e^T enters linearly. ``loss`` = -forward.
    """

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        t_joint, t_marg = self._joint_and_marginal(z, c)
        return t_joint.mean() - _exp_linear_tail(t_marg - 1.0).mean()


class InfoNCEEstimator(_CriticEstimator):
    """InfoNCE lower bound (Oord et al. 2018; Poole et al. 2019, Eq. 12) over all N x N pairs.

    ``forward`` = mean_i [T(z_i, c_i) - logsumexp_j T(z_i, c_j)] + log N, a softmax
    classification of the true c_i among the batch's c values. It is at most log N for a
    batch of N samples, whatever the true MI: use large batches to measure large MI.
    It uses no random permutation and has low variance. ``critic`` defaults to the
    separable critic g(z)^T h(c) (as in CPC): all N^2 scores cost one matrix product, where
    the joint MLP needs N^2 network evaluations (``critic="joint"`` still works, slowly).
    """

    default_critic = "separable"
    supports_conditioning = False  # all N x N pairs, no shuffle to restrict

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        z, c = self._inputs(z, c)
        scores = self.critic.pairwise(z, c)  # (N, N): row i = z_i against every c_j
        n = scores.shape[0]
        return (scores.diagonal() - torch.logsumexp(scores, dim=1)).mean() + math.log(n)
