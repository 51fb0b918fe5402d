"""The common interface of every mutual-information estimator.

An estimator is an ``nn.Module`` with two calls, kept apart on purpose (as in torch-mist):

* ``forward(z, c)`` returns the scalar estimate of I(z; c) in nats on the minibatch. It is
  differentiable w.r.t. ``z``: during debiasing the encoder descends it.
* ``loss(z, c)`` returns the estimator's own training objective; minimising it w.r.t. the
  estimator's parameters trains the statistics network (critic) or variational network.
  It may differ from ``-forward`` in its gradient (MINE's bias correction) or in kind
  (CLUB's negative log-likelihood).

The bias attribute ``c`` is either a float matrix (N, c_dim) -- continuous values or a
one-hot code -- or, when the estimator was built with ``c_categories=K``, a vector (N,) of
integer class indices that is one-hot encoded here, so callers never do it themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class MIEstimator(nn.Module):
    """Base class: input checks, encoding of ``c`` and the in-batch shuffle.

    Args:
        z_dim: width of the representation z.
        c_dim: width of the bias attribute c after encoding (K for categorical c).
        c_categories: if given, ``c`` is passed as integer class indices in ``[0, K)``.
        generator: optional ``torch.Generator`` used for every random permutation, so that
            an estimate is reproducible without touching torch's global RNG.
    """

    #: True only for estimators whose value bounds I(z; c) from above (CLUB).
    is_upper_bound: bool = False
    #: True for estimators whose marginal pairs come from an in-batch shuffle, which
    #: :meth:`conditioned_on` can restrict to groups (DV, MINE, NWJ).
    supports_conditioning: bool = False

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        *,
        c_categories: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if z_dim < 1:
            raise ValueError(f"z_dim must be >= 1, got {z_dim}.")
        if c_categories is not None:
            if c_categories < 2:
                raise ValueError(f"c_categories must be >= 2, got {c_categories}.")
            if c_dim != c_categories:
                raise ValueError(
                    f"c_dim ({c_dim}) must equal c_categories ({c_categories}): categorical "
                    "c is one-hot encoded to c_categories columns."
                )
        if c_dim < 1:
            raise ValueError(f"c_dim must be >= 1, got {c_dim}.")
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.c_categories = None if c_categories is None else int(c_categories)
        self.generator = generator
        self._groups: Tensor | None = None  # set by conditioned_on

    # ------------------------------------------------------------------ inputs
    def _check_z(self, z: Tensor) -> Tensor:
        if z.dim() == 1 and self.z_dim == 1:
            z = z.unsqueeze(1)
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}.")
        if not z.is_floating_point():
            raise ValueError(f"z must be a float tensor, got dtype {z.dtype}.")
        return z

    def _encode_c(self, c: Tensor, dtype: torch.dtype) -> Tensor:
        """Return c as a float (N, c_dim) matrix, one-hot encoding class indices."""
        if self.c_categories is not None:
            if c.is_floating_point() or c.dim() != 1:
                raise ValueError(
                    "this estimator was built with c_categories="
                    f"{self.c_categories}: c must be integer class indices of shape (N,), "
                    f"got dtype {c.dtype} and shape {tuple(c.shape)}."
                )
            if c.numel() and (int(c.min()) < 0 or int(c.max()) >= self.c_categories):
                raise ValueError(
                    f"class indices in c must lie in [0, {self.c_categories}), "
                    f"got range [{int(c.min())}, {int(c.max())}]."
                )
            return nn.functional.one_hot(c.long(), self.c_categories).to(dtype)
        if c.dim() == 1 and self.c_dim == 1:
            c = c.unsqueeze(1)
        if c.dim() != 2 or c.shape[1] != self.c_dim:
            raise ValueError(
                f"c must have shape (N, {self.c_dim}), got {tuple(c.shape)}; for integer "
                "class labels build the estimator with c_categories=K."
            )
        return c.to(dtype)

    def _inputs(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        z = self._check_z(z)
        c = self._encode_c(c, z.dtype)
        if z.shape[0] != c.shape[0]:
            raise ValueError(f"z and c differ in length: {z.shape[0]} vs {c.shape[0]}.")
        if z.shape[0] < 2:
            raise ValueError("need a minibatch of at least 2 samples to form marginal pairs.")
        return z, c

    def _permutation(self, n: int, device: torch.device) -> Tensor:
        """Indices of the marginal partners: c[perm] is paired with z.

        A random permutation of range(n) drawn from ``self.generator`` if set (fixed points
        allowed, as in the authors' shuffle); within a :meth:`conditioned_on` block each
        index is paired with another of the same group (see :func:`within_group_pairs`).
        """
        # randperm with a generator must run on the generator's device; move afterwards.
        gen_device = self.generator.device if self.generator is not None else device
        perm = torch.randperm(n, generator=self.generator, device=gen_device).to(device)
        if self._groups is None:
            return perm
        if self._groups.shape[0] != n:
            raise ValueError(
                f"conditioned_on got {self._groups.shape[0]} group labels for a minibatch of {n}."
            )
        return within_group_pairs(self._groups.to(device), perm)

    @contextmanager
    def conditioned_on(self, groups: Tensor) -> Iterator[MIEstimator]:
        """Within this block the marginal pairs (z_i, c_j) are drawn with groups[j] ==
        groups[i], so a shuffle-based bound estimates the conditional I(z; c | groups)
        (DV/NWJ with the product of conditionals p(z|g) p(c|g) as the reference).

        ``groups`` are integer labels aligned with the minibatch passed to forward/loss.
        Only estimators with ``supports_conditioning`` (dv, mine, nwj) accept it.
        """
        if not self.supports_conditioning:
            raise ValueError(
                f"{type(self).__name__} does not draw marginal pairs by shuffling, so it cannot "
                "be conditioned; use dv, mine or nwj."
            )
        if groups.dim() != 1 or groups.is_floating_point():
            raise ValueError(
                f"groups must be integer labels of shape (N,), got {groups.dtype} "
                f"of shape {tuple(groups.shape)}."
            )
        previous, self._groups = self._groups, groups
        try:
            yield self
        finally:
            self._groups = previous

    # --------------------------------------------------------------- interface
    def forward(self, z: Tensor, c: Tensor) -> Tensor:  # pragma: no cover - abstract
        """The MI estimate in nats on this minibatch (scalar, differentiable w.r.t. z)."""
        raise NotImplementedError

    def loss(self, z: Tensor, c: Tensor) -> Tensor:
        """The estimator's training loss; by default the negated estimate."""
        return -self.forward(z, c)


def within_group_pairs(groups: Tensor, perm: Tensor) -> Tensor:
    """A permutation ``partner`` with groups[partner] == groups, random through ``perm``.

    Members of each group are visited in the order of the random permutation ``perm`` and
    each is paired with the next one of its group, cyclically: no sample of a group of two
    or more is paired with itself; a group of one is paired with itself.
    """
    order = perm[torch.sort(groups[perm], stable=True).indices]  # grouped, random within
    g = groups[order]
    n = g.shape[0]
    pos = torch.arange(n, device=g.device)
    is_start = torch.ones(n, dtype=torch.bool, device=g.device)
    is_start[1:] = g[1:] != g[:-1]
    start = torch.cummax(torch.where(is_start, pos, 0), dim=0).values  # group's first pos
    is_last = torch.ones(n, dtype=torch.bool, device=g.device)
    is_last[:-1] = g[1:] != g[:-1]
    nxt = torch.where(is_last, start, pos + 1)
    partner = torch.empty_like(order)
    partner[order] = order[nxt]
    return partner


def log_mean_exp(x: Tensor) -> Tensor:
    """log(mean(exp(x))) over all elements, computed stably with logsumexp."""
    return torch.logsumexp(x.reshape(-1), dim=0) - math.log(x.numel())
