"""Leakage audit: a fresh probe and a fresh estimator find colour in z when it is there."""

from __future__ import annotations

import pytest
import torch

from midebias.datasets import colored_mnist
from midebias.datasets.tensors import TensorSplit
from midebias.evaluation.leakage import leakage_audit


class _Features(torch.nn.Module):
    """A stand-in encoder: z = per-channel max of the image (the stroke colour), or noise."""

    def __init__(self, leak: bool):
        super().__init__()
        self.leak = leak

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.leak:
            return x.amax(dim=(2, 3))
        g = torch.Generator().manual_seed(len(x))
        return torch.randn(len(x), 3, generator=g)


@pytest.fixture(scope="module")
def splits(demo_mnist):
    d = colored_mnist(*demo_mnist, bias_var=0.02, seed=0, train_size=200)
    return {"test": TensorSplit.from_images(d["test"], "paper", 10)}


@pytest.mark.slow
def test_probe_and_estimator_see_colour_in_z(splits):
    leaky = leakage_audit(_Features(True), splits, seed=0)
    clean = leakage_audit(_Features(False), splits, seed=0)
    assert leaky["bias_probe_accuracy"] > 0.8
    assert clean["bias_probe_accuracy"] < 0.2
    assert leaky["mi_posthoc"] > 1.0
    assert abs(clean["mi_posthoc"]) < 0.15
    assert clean["bias_majority_rate"] == pytest.approx(0.1, abs=0.05)
    # The majority rate is a property of the scored half of the split, not of z.
    assert leaky["bias_majority_rate"] == clean["bias_majority_rate"]
