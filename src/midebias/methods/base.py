"""The one interface every training method implements (DomainBed style).

A method owns its optimisers and any auxiliary networks (critics, bias heads). The training
loop only calls `sample_weights`, `start_epoch` and `update` (and the state methods for
checkpoints); adding a method adds a class here and
a registry entry, never a branch in the loop.

Over several processes (torchrun; midebias.distributed) each `update` gets this process's
shard of the global batch. A method runs its encoder on the shard, takes the global
batch's z, y and c from `gather` and computes everything after the encoder on them, then
calls `sync_grads` on what it steps: the step is then the single-process step on the
global batch. With one process both helpers do nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from midebias.datasets.tensors import Batch
from midebias.distributed import Distributed
from midebias.methods.settings import Settings as BaseSettings
from midebias.models import Classifier

__all__ = ["Batch", "Method"]


class Method:
    """Base class. Subclasses set `name`, `Settings` (their typed settings) and `update`."""

    name: ClassVar[str] = "base"
    #: The method's settings: a frozen dataclass (midebias.methods.settings), presets included.
    Settings: ClassVar[type[BaseSettings]] = BaseSettings
    #: The bias head classifies c, so c must be a categorical code (checked up front).
    needs_categorical_bias: ClassVar[bool] = False

    def __init__(
        self,
        model: Classifier,
        *,
        lr: float,
        c_dim: int,
        c_groups: list[int] | None = None,
        settings: BaseSettings | Mapping[str, Any] | None = None,
        generator: torch.Generator | None = None,
        dist: Distributed | None = None,
    ):
        self.model = model
        self.lr = lr
        self.c_dim = c_dim
        #: Sizes of the one-hot groups in c (categorical bias variables); None if continuous.
        self.c_groups = c_groups
        #: The resolved settings (an instance of `Settings`; a mapping is resolved here).
        self.settings = self.Settings.resolve(settings)
        self.generator = generator
        #: This process's place in a run over several processes (None: the only one).
        self.dist = dist

    def modules(self) -> dict[str, nn.Module]:
        """Every network the method trains, by name (for checkpoints and device moves)."""
        return {"model": self.model}

    def sample_weights(self, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Weights with which the loop draws training samples (None: a plain shuffle)."""
        return None

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser the method steps, by name (for checkpoints)."""
        return {}

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimisers whose learning rate follows the run's `lr_schedule`."""
        return list(self.optimizers().values())

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly: networks, optimisers and (in
        subclasses that extend this) counters and buffers. Tensors, numbers and plain
        containers only, so that it loads with ``torch.load(weights_only=True)``."""
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (onto this method's networks and devices)."""
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])

    def start_epoch(self, batches) -> dict[str, float]:
        """Called at each epoch start with a callable returning a fresh batch iterator."""
        return {}

    def update(self, batch: Batch) -> dict[str, float]:
        """One training step on a minibatch; returns losses as 0-d tensors or floats
        (tensors avoid a device sync per step)."""
        raise NotImplementedError

    def gather(self, t: torch.Tensor, batch: Batch) -> torch.Tensor:
        """`t` (one row per sample of `batch`) for the whole global batch: every process's
        rows in rank order, differentiable (identity with one process)."""
        if self.dist is None or batch.sizes is None:
            return t
        return self.dist.gather(t, batch.sizes)

    def sync_grads(self, *modules: nn.Module) -> None:
        """Average the gradients of `modules` over the processes, before their optimiser
        steps (nothing with one process). See midebias.distributed for why this gives the
        global batch's gradient."""
        if self.dist is not None:
            self.dist.average_grads(p for m in modules for p in m.parameters())

    def train_metrics(self) -> dict[str, float]:
        """Method-specific numbers for metrics.json (e.g. the last training-time MI)."""
        return {}
