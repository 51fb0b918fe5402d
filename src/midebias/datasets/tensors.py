"""In-memory minibatches by index: no per-item Dataset overhead for image benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from midebias.datasets.base import Split


@dataclass
class Batch:
    """A minibatch: inputs x (float, scaled to [0, 1]), target y, bias attribute c as float
    features (the chosen bias code), and the bias class index b (e.g. the colour index)."""

    x: torch.Tensor
    y: torch.Tensor
    c: torch.Tensor
    b: torch.Tensor


class TensorSplit:
    """A Split held as tensors on one device: images uint8 NCHW, converted per batch."""

    def __init__(
        self,
        split: Split,
        bias_code: str,
        num_colors: int,
        device: str = "cpu",
        channels_last: bool = False,
    ):
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        images = np.ascontiguousarray(split.images.transpose(0, 3, 1, 2))
        self.images = torch.from_numpy(images).to(device)
        self.labels = torch.from_numpy(split.labels).to(device)
        self.codes = torch.from_numpy(split.bias_code(bias_code, num_colors)).to(device)
        self.bias = torch.from_numpy(split.bias).to(device)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def c_dim(self) -> int:
        return self.codes.shape[1]

    def batch(self, idx: torch.Tensor) -> Batch:
        x = self.images[idx].float().div_(255.0).contiguous(memory_format=self.memory_format)
        return Batch(x=x, y=self.labels[idx], c=self.codes[idx], b=self.bias[idx])

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        weights: torch.Tensor | None = None,
    ) -> Iterator[Batch]:
        n = len(self)
        if weights is not None:  # n draws with replacement, probability ~ weights
            dev = generator.device if generator is not None else weights.device
            order = torch.multinomial(weights.to(dev), n, replacement=True, generator=generator)
            order = order.to(self.labels.device)
        elif shuffle:
            order = torch.randperm(n, generator=generator).to(self.labels.device)
        else:
            order = torch.arange(n, device=self.labels.device)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for s in range(0, stop, batch_size):
            yield self.batch(order[s : s + batch_size])
