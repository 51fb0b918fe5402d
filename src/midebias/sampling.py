"""Bias-balanced sampling: draw training samples so that the bias attribute c and the
target y are (approximately) independent in what the network sees.

Why the MI method needs it: where c almost determines y (Colored MNIST's training set:
I(c; y) is about 2.1 of H(y) = 2.3 nats), every z that predicts y carries nearly as much
information about c as a z that reads c directly, so the objective CE + lambda * I(z; c)
hardly prefers shape to colour, and a strong penalty removes the label with the colour.
Drawing sample i with probability proportional to 1 / q(y_i | c_i), where q is a model of
y from c alone, gives a training stream in which c carries (almost) no information about
y (importance weighting to the product p(c) p(y), as in Shimodaira 2000 / Sagawa et al.
2020's group reweighting, here with q learned from c so that c may be any code). In that
stream a shape-based z has I(z; c) near 0 and a colour-based one does not, so descending
I(z; c) now points at the colour.

The samples whose colour is ambiguous (q(y | c) well below 1) get the large weights; they
are the only ones that show the network colour and label disagreeing. `min_prob` caps
the weights at 1 / min_prob so that a handful of samples cannot take over the stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bias_only_model(c_dim: int, num_classes: int, hidden: int = 64) -> nn.Module:
    """q(y | c): a one-hidden-layer MLP on the bias code alone."""
    return nn.Sequential(nn.Linear(c_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def balancing_weights(
    c: torch.Tensor,
    y: torch.Tensor,
    *,
    num_classes: int | None = None,
    min_prob: float = 0.02,
    steps: int = 300,
    lr: float = 1e-2,
    seed: int = 0,
) -> torch.Tensor:
    """Per-sample weights 1 / max(q(y | c), min_prob), with q fitted on (c, y) here.

    Args:
        c: bias code, float (N, c_dim) (one-hot or continuous).
        y: integer targets (N,).
        num_classes: number of target classes (default: max(y) + 1).
        min_prob: floor of q in the weights (the largest weight is 1 / min_prob).
        steps, lr: full-batch Adam steps of q and their learning rate.
        seed: seed of q's initialisation (the caller's RNG state is left as it was).

    Returns float32 weights (N,) on c's device, for `torch.multinomial` or
    `torch.utils.data.WeightedRandomSampler`.
    """
    if c.dim() != 2 or not c.is_floating_point():
        raise ValueError(f"c must be a float (N, c_dim) tensor, got {c.dtype} {tuple(c.shape)}")
    if y.dim() != 1 or y.is_floating_point() or len(y) != len(c):
        raise ValueError(f"y must be integer labels of shape ({len(c)},), got {tuple(y.shape)}")
    if not torch.isfinite(c).all():
        raise ValueError("c holds NaN or infinite values")
    if not 0 < min_prob <= 1:
        raise ValueError(f"min_prob must be in (0, 1], got {min_prob}")
    k = int(y.max()) + 1 if num_classes is None else num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        q = bias_only_model(c.shape[1], k).to(c.device)
    opt = torch.optim.Adam(q.parameters(), lr=lr)
    c = c.detach().float()
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy(q(c), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        p = q(c).softmax(1).gather(1, y[:, None]).squeeze(1)
    return (1.0 / p.clamp(min=min_prob)).float()
