"""The one interface every training method implements (DomainBed style).

A method owns its optimisers and any auxiliary networks (critics, bias heads). The training
loop only calls `start_epoch`, `update` and `predict`; adding a method adds a class here and
a registry entry, never a branch in the loop.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from midebias.datasets.tensors import Batch
from midebias.models import Classifier

__all__ = ["Batch", "Method"]


class Method:
    """Base class. Subclasses set `name`, `defaults` (hyper-parameters) and `update`."""

    name: ClassVar[str] = "base"
    #: Hyper-parameters with their defaults; users override any of them by name.
    defaults: ClassVar[dict[str, Any]] = {}
    #: Named bundles of settings (a 'preset' setting picks one; explicit settings win).
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(
        self,
        model: Classifier,
        *,
        lr: float,
        c_dim: int,
        c_groups: list[int] | None = None,
        hparams: dict[str, Any] | None = None,
        generator: torch.Generator | None = None,
    ):
        self.model = model
        self.lr = lr
        self.c_dim = c_dim
        #: Sizes of the one-hot groups in c (categorical bias variables); None if continuous.
        self.c_groups = c_groups
        self.hparams = self.resolve_hparams(hparams or {})
        self.generator = generator

    @classmethod
    def resolve_hparams(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        """Defaults updated with overrides; unknown names and wrong types are errors."""
        unknown = sorted(set(overrides) - set(cls.defaults))
        if unknown:
            known = ", ".join(sorted(cls.defaults)) or "none"
            raise ValueError(
                f"method {cls.name!r} has no setting {', '.join(unknown)}; its settings: {known}"
            )
        out = dict(cls.defaults)
        preset = overrides.get("preset", cls.defaults.get("preset"))
        if preset is not None:
            if preset not in cls.presets:
                raise ValueError(
                    f"method {cls.name!r} has no preset {preset!r}; "
                    f"its presets: {', '.join(cls.presets)}"
                )
            out.update(cls.presets[preset])
        for key, value in overrides.items():
            default = cls.defaults[key]
            if isinstance(default, bool):
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(f"setting {key} expects true/false, got {value!r}")
                    value = value.lower() in ("true", "1", "yes")
                out[key] = bool(value)
            elif isinstance(default, (int, float)):
                try:
                    value = type(default)(value)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"setting {key} expects a {type(default).__name__}, got {value!r}"
                    ) from None
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"setting {key} must be a finite number, got {value}")
                out[key] = value
            else:
                out[key] = value
        cls.check_hparams(out)
        return out

    @classmethod
    def check_hparams(cls, hparams: dict[str, Any]) -> None:
        """Raise ValueError for out-of-range settings (override in subclasses)."""

    def modules(self) -> dict[str, nn.Module]:
        """Every network the method trains, by name (for checkpoints and device moves)."""
        return {"model": self.model}

    def sample_weights(self, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Weights with which the loop draws training samples (None: a plain shuffle)."""
        return None

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser the method steps, by name (for checkpoints)."""
        return {}

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

    def train_metrics(self) -> dict[str, float]:
        """Method-specific numbers for metrics.json (e.g. the last training-time MI)."""
        return {}
