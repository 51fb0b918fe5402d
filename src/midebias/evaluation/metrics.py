"""Accuracy and representations of a split, computed under inference mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the loader imports the training package, which imports this module
    from midebias.datasets.tensors import TensorSplit
    from midebias.models import Classifier


@torch.inference_mode()
def accuracy(model: Classifier, split: TensorSplit, batch_size: int = 1024) -> float:
    """Fraction of correctly classified samples of a split."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=split.labels.device)
    for batch in split.batches(batch_size):
        correct += (model(batch.x).argmax(1) == batch.y).sum()
    model.train(was_training)
    return correct.item() / max(len(split), 1)


@torch.inference_mode()
def embed(model: Classifier, split: TensorSplit, batch_size: int = 1024) -> torch.Tensor:
    """The representation z of every sample of a split (on the CPU)."""
    was_training = model.training
    model.eval()
    zs = [model.features(b.x).float().cpu() for b in split.batches(batch_size)]
    model.train(was_training)
    return torch.cat(zs)
