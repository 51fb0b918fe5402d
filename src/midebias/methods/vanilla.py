"""Plain cross-entropy training: the baseline (lambda = 0 in the paper)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from midebias.methods.base import Batch, Method
from midebias.methods.settings import Settings, setting


@dataclass(frozen=True)
class VanillaSettings(Settings):
    OWNER = "vanilla"
    weight_decay: float = setting(0.0, "Adam's L2 weight decay", low=0)


class Vanilla(Method):
    name = "vanilla"
    Settings = VanillaSettings

    def __init__(self, model, **kw):
        super().__init__(model, **kw)
        self.opt = torch.optim.Adam(
            model.parameters(), lr=self.lr, weight_decay=self.settings.weight_decay
        )

    def optimizers(self):
        return {"opt": self.opt}

    def update(self, batch: Batch) -> dict[str, float]:
        z = self.gather(self.model.features(batch.x), batch)  # the global batch's z
        loss = F.cross_entropy(self.model.head(z), self.gather(batch.y, batch))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.sync_grads(self.model)
        self.opt.step()
        return {"ce": loss.detach()}
