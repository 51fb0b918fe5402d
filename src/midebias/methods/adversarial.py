"""Adversarial peers of the paper: BlindEye (Alvi et al. 2018) and LNL (Kim et al. 2019).

Both put a bias classifier h on the representation z. It predicts the bias attribute c, read
as one or more categorical variables: the paper's 24-d code is three 8-way variables (the
quantised stroke colour per channel, as LNL's colour predictor), the 'index' code one
K-way variable. A continuous code ('rgb') has no classes and is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from midebias.methods.base import Batch, Method
from midebias.methods.settings import Settings, setting

_HEAD_LR = "the bias head's Adam learning rate, as a multiple of the model's"
_HEAD_HIDDEN = "hidden width of the bias head (0: linear)"


def split_code(c: torch.Tensor, groups: list[int]) -> list[torch.Tensor]:
    """Class index of each one-hot group of a bias code (N, sum(groups)) -> list of (N,)."""
    return [part.argmax(1) for part in torch.split(c, groups, dim=1)]


class BiasHead(nn.Module):
    """One linear classifier per categorical bias variable, on z."""

    def __init__(self, z_dim: int, groups: list[int], hidden: int = 0):
        super().__init__()
        self.groups = list(groups)

        def head(k: int) -> nn.Module:
            if hidden:
                return nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, k))
            return nn.Linear(z_dim, k)

        self.heads = nn.ModuleList(head(k) for k in self.groups)

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        return [h(z) for h in self.heads]

    def ce(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the bias predictions, summed over the bias variables."""
        targets = split_code(c, self.groups)
        return sum(F.cross_entropy(o, t) for o, t in zip(self(z), targets, strict=True))


class _BiasAdversary(Method):
    """Shared set-up: the model's Adam and a bias head with its own Adam."""

    needs_categorical_bias = True

    def __init__(self, model, **kw):
        super().__init__(model, **kw)
        if not self.c_groups:
            raise ValueError(
                f"method {self.name!r} needs a categorical bias code (paper or index), "
                "not a continuous one (rgb)"
            )
        s = self.settings
        self.bias_head = BiasHead(model.z_dim, self.c_groups, s.head_hidden)
        self.bias_head.to(next(model.parameters()).device)
        self.opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        self.opt_head = torch.optim.Adam(self.bias_head.parameters(), lr=self.lr * s.head_lr)

    def modules(self):
        return {"model": self.model, "bias_head": self.bias_head}

    def optimizers(self):
        return {"opt": self.opt, "opt_head": self.opt_head}


@dataclass(frozen=True)
class BlindEyeSettings(Settings):
    OWNER = "blindeye"
    alpha: float = setting(1.0, "weight of the confusion loss (Alvi et al.'s alpha)", low=0)
    head_lr: float = setting(1.0, _HEAD_LR, above=0)
    head_hidden: int = setting(0, _HEAD_HIDDEN, low=0)


class BlindEye(_BiasAdversary):
    """Alvi et al., "Turning a Blind Eye" (ECCV-W 2018).

    Per step: (1) the bias head learns to predict c from the detached z (CE); (2) encoder and
    classifier minimise CE(y) + alpha * confusion, where the confusion loss is the
    cross-entropy between the head's prediction and the uniform distribution (Eq. 4), so z is
    pushed to make the bias prediction uninformative. The head is not updated in (2).
    """

    name = "blindeye"
    Settings = BlindEyeSettings

    def update(self, batch: Batch) -> dict[str, float]:
        # Over several processes, z, c and y are the global batch's (Method.gather).
        c, y = self.gather(batch.c, batch), self.gather(batch.y, batch)
        z = self.gather(self.model.features(batch.x), batch)
        bias_ce = self.bias_head.ce(z.detach(), c)
        self.opt_head.zero_grad(set_to_none=True)
        bias_ce.backward()
        self.sync_grads(self.bias_head)
        self.opt_head.step()

        ce = F.cross_entropy(self.model.head(z), y)
        # Cross-entropy to the uniform distribution: -mean_k (1/K) log p_k, per bias variable.
        confusion = sum(-F.log_softmax(o, 1).mean(1).mean() for o in self.bias_head(z))
        self.opt.zero_grad(set_to_none=True)
        (ce + self.settings.alpha * confusion).backward()
        self.bias_head.zero_grad(set_to_none=True)  # the head learns only in its own step
        self.sync_grads(self.model)
        self.opt.step()
        return {"ce": ce.detach(), "bias_ce": bias_ce.detach(), "confusion": confusion.detach()}


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient times -scale backward (Ganin & Lempitsky 2015)."""
    return _GradReverse.apply(x, scale)


@dataclass(frozen=True)
class LNLSettings(Settings):
    OWNER = "lnl"
    preset: str = setting("paper", "the named settings to start from", choices=("paper", "stable"))
    entropy_weight: float = setting(
        0.01, "weight of the bias head's negative entropy in the model's loss (lambda)", low=0
    )
    grl_scale: float = setting(
        1.0, "scale of the reversed bias-head gradient into the encoder (mu)", low=0
    )
    head_lr: float = setting(1.0, _HEAD_LR, above=0)
    head_hidden: int = setting(0, _HEAD_HIDDEN, low=0)


LNLSettings.PRESETS = {
    # Kim et al.'s weights (lambda 0.01, mu 1).
    "paper": LNLSettings(),
    # With Adam(1e-3) on the paper's digit net, reversal scales 1 and 0.1 diverge (the
    # encoder maximises the bias head's CE by inflating z; docs/debiasing.md); 0.01 trains
    # stably.
    "stable": LNLSettings(preset="stable", grl_scale=0.01),
}


class LNL(_BiasAdversary):
    """Kim et al., "Learning Not to Learn" (CVPR 2019).

    Per step, as in their code: (1) encoder and classifier minimise CE(y) plus
    entropy_weight * the negative entropy of the bias head's prediction (sum p log p), so z
    leaves the bias predictor uncertain; (2) on a fresh forward pass, the bias head minimises
    its CE on c while the encoder receives that gradient reversed and scaled by grl_scale,
    i.e. the encoder maximises the bias head's loss. Their paper's entropy weight (lambda) is
    0.01 and the reversal scale (mu) 1.
    """

    name = "lnl"
    Settings = LNLSettings

    def update(self, batch: Batch) -> dict[str, float]:
        # Over several processes, z, c and y are the global batch's (Method.gather).
        c, y = self.gather(batch.c, batch), self.gather(batch.y, batch)
        z = self.gather(self.model.features(batch.x), batch)
        ce = F.cross_entropy(self.model.head(z), y)
        neg_entropy = sum(
            (F.softmax(o, 1) * F.log_softmax(o, 1)).sum(1).mean() for o in self.bias_head(z)
        )
        self.opt.zero_grad(set_to_none=True)
        (ce + self.settings.entropy_weight * neg_entropy).backward()
        self.bias_head.zero_grad(set_to_none=True)
        self.sync_grads(self.model)
        self.opt.step()

        z = self.gather(self.model.features(batch.x), batch)
        bias_ce = self.bias_head.ce(grad_reverse(z, self.settings.grl_scale), c)
        self.opt.zero_grad(set_to_none=True)
        self.opt_head.zero_grad(set_to_none=True)
        bias_ce.backward()
        self.sync_grads(self.model, self.bias_head)
        self.opt.step()
        self.opt_head.step()
        return {"ce": ce.detach(), "bias_ce": bias_ce.detach(), "neg_entropy": neg_entropy.detach()}
