"""Statistics networks (critics) T(z, c) for the variational MI bounds.

Two families, both exposing ``forward(z, c) -> (N,)`` (scores of aligned pairs) and
``pairwise(z, c) -> (N, M)`` (scores of every z_i with every c_j, used by InfoNCE):

* :class:`MLPCritic` -- the *joint* critic of MINE and of Ragonesi et al. (2020): an MLP on
  concat(z, c) with ``layers`` hidden layers of ``hidden`` units, leaky ReLU, scalar output.
* :class:`SeparableCritic` -- T(z, c) = g(z)^T h(c) with two MLP embeddings (the bilinear /
  separable critic of CPC, Oord et al. 2018; Poole et al. 2019, Sec. 2). Pairwise scores
  cost one matrix product instead of N*M network evaluations.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int, slope: float = 0.2) -> nn.Sequential:
    """``layers`` hidden Linear + LeakyReLU blocks of width ``hidden``, then a linear head."""
    if layers < 0 or hidden < 1:
        raise ValueError(f"need layers >= 0 and hidden >= 1, got {layers}, {hidden}.")
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.LeakyReLU(slope)]
        width = hidden
    blocks.append(nn.Linear(width, out_dim))
    return nn.Sequential(*blocks)


class MLPCritic(nn.Module):
    """Joint statistics network T(z, c) = MLP(concat(z, c)) with a scalar output.

    The paper's critic (Ragonesi et al. 2020, Sec. 3; authors' code): 3 hidden layers,
    leaky ReLU, 64 units for digits and 512 for faces.
    """

    def __init__(self, z_dim: int, c_dim: int, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.net = mlp(z_dim + c_dim, 1, hidden, layers)

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        return self.net(torch.cat([z, c], dim=1)).squeeze(1)

    def pairwise(self, z: Tensor, c: Tensor, chunk_elems: int = 1 << 22) -> Tensor:
        """Scores T(z_i, c_j) for all i, j as an (N, M) matrix.

        The first linear layer is separable, W [z; c] = W_z z + W_c c, so it is applied to
        z and c once each and broadcast; only the deeper layers see N*M rows. Rows of z
        are processed in chunks to bound memory (about ``chunk_elems`` activations).
        """
        first = self.net[0]
        w_z, w_c = first.weight[:, : self.z_dim], first.weight[:, self.z_dim :]
        if len(self.net) == 1:
            # No hidden layer: T is linear, so the broadcast sum is already the score.
            return (z @ w_z.T) + (c @ w_c.T).T + first.bias
        a = z @ w_z.T + first.bias  # (N, H)
        b = c @ w_c.T  # (M, H)
        rest = self.net[1:]
        n, m, h = a.shape[0], b.shape[0], a.shape[1]
        rows = max(1, chunk_elems // max(1, m * h))
        out = []
        for start in range(0, n, rows):
            pre = a[start : start + rows, None, :] + b[None, :, :]  # (r, M, H)
            out.append(rest(pre).squeeze(-1))
        return torch.cat(out, dim=0)


class SeparableCritic(nn.Module):
    """Separable critic T(z, c) = g(z)^T h(c) / sqrt(embed_dim).

    g and h are MLPs with ``layers`` hidden layers of ``hidden`` units. The 1/sqrt(d)
    scale keeps initial scores O(1). With an MLP on each side it can represent any log
    density ratio up to terms in z alone, which InfoNCE ignores (they cancel in its
    softmax over c).
    """

    def __init__(
        self, z_dim: int, c_dim: int, hidden: int = 64, layers: int = 3, embed_dim: int = 32
    ) -> None:
        super().__init__()
        self.g = mlp(z_dim, embed_dim, hidden, layers)
        self.h = mlp(c_dim, embed_dim, hidden, layers)
        self.scale = embed_dim**-0.5

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        return (self.g(z) * self.h(c)).sum(dim=1) * self.scale

    def pairwise(self, z: Tensor, c: Tensor) -> Tensor:
        return (self.g(z) @ self.h(c).T) * self.scale


CRITICS: dict[str, type[nn.Module]] = {"joint": MLPCritic, "separable": SeparableCritic}


def make_critic(
    kind: str | nn.Module, z_dim: int, c_dim: int, hidden: int = 64, layers: int = 3
) -> nn.Module:
    """Build a critic by name (``"joint"`` or ``"separable"``) or pass a module through."""
    if isinstance(kind, nn.Module):
        return kind
    if kind not in CRITICS:
        raise ValueError(f"unknown critic {kind!r}; known critics: {sorted(CRITICS)}.")
    return CRITICS[kind](z_dim, c_dim, hidden=hidden, layers=layers)
