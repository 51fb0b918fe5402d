"""In-memory minibatches by index: a split as tensors on one device (images or features)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from midebias.datasets.base import Split
from midebias.distributed import shard_sizes


@dataclass
class Batch:
    """A minibatch: inputs x (float, scaled to [0, 1]), target y, bias attribute c as float
    features (the chosen bias code), and the bias class index b (e.g. the colour index).

    In a run over several processes (midebias.distributed) a Batch is this process's shard
    of the global batch, and `sizes` holds every process's shard size (None: one process)."""

    x: torch.Tensor
    y: torch.Tensor
    c: torch.Tensor
    b: torch.Tensor
    sizes: tuple[int, ...] | None = None


class TensorSplit:
    """One split held as tensors on one device, cut into minibatches by index (no per-item
    Dataset overhead). x is uint8 images (N, C, H, W), scaled to [0, 1] per batch, or float
    features (N, D); y the target, c the bias attribute as float features, b its class."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        c: torch.Tensor,
        b: torch.Tensor,
        *,
        channels_last: bool = False,
    ):
        self.x, self.labels, self.codes, self.bias = x, y, c, b
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    @classmethod
    def from_images(
        cls,
        split: Split,
        bias_code: str,
        num_colors: int,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
    ) -> TensorSplit:
        """An image benchmark's Split with bias code `bias_code` as c."""
        images = np.ascontiguousarray(split.images.transpose(0, 3, 1, 2))
        return cls(
            torch.from_numpy(images).to(device),
            torch.from_numpy(split.labels).to(device),
            torch.from_numpy(split.bias_code(bias_code, num_colors)).to(device),
            torch.from_numpy(split.bias).to(device),
            channels_last=channels_last,
        )

    @classmethod
    def from_arrays(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        num_groups: int,
        device: str | torch.device = "cpu",
    ) -> TensorSplit:
        """Float features x with class indices y and the bias as a group index per row
        (c is its one-hot code)."""
        b = torch.as_tensor(np.asarray(groups, dtype=np.int64))
        return cls(
            torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)).to(device),
            torch.as_tensor(np.asarray(y, dtype=np.int64)).to(device),
            torch.nn.functional.one_hot(b, num_groups).float().to(device),
            b.to(device),
        )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def c_dim(self) -> int:
        return self.codes.shape[1]

    def batch(self, idx: torch.Tensor) -> Batch:
        x = self.x[idx]
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0).contiguous(memory_format=self.memory_format)
        return Batch(x=x, y=self.labels[idx], c=self.codes[idx], b=self.bias[idx])

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        weights: torch.Tensor | None = None,
        min_last: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> Iterator[Batch]:
        """Minibatches in a seeded order: a shuffle, n weighted draws with replacement
        (`weights`), or the stored order. A last batch smaller than `min_last` joins the
        one before it (in-batch shuffles of the MI estimators need more than a few rows).

        `shard` = (rank, world_size): the same global batches (the same draws), of which
        this process gets its contiguous part (`midebias.distributed.shard_sizes`)."""
        order = draw_order(len(self), shuffle, generator, weights, self.labels.device)
        bounds = batch_bounds(len(self), batch_size, drop_last, min_last)
        for s, end, sizes in shard_bounds(bounds, shard):
            batch = self.batch(order[s:end])
            batch.sizes = sizes
            yield batch

    def num_batches(self, batch_size: int, min_last: int = 0) -> int:
        """How many minibatches `batches` yields (drop_last off)."""
        return len(batch_bounds(len(self), batch_size, False, min_last))


def draw_order(
    n: int,
    shuffle: bool,
    generator: torch.Generator | None,
    weights: torch.Tensor | None,
    device: torch.device,
) -> torch.Tensor:
    """The sample order of one pass over n samples: n weighted draws with replacement
    (`weights`), a shuffle, or 0..n-1; drawn from `generator` (every split class draws its
    order here, so the same generator gives the same order whatever holds the pixels)."""
    if weights is not None:  # n draws with replacement, probability ~ weights
        dev = generator.device if generator is not None else weights.device
        order = torch.multinomial(weights.to(dev), n, replacement=True, generator=generator)
        return order.to(device)
    if shuffle:
        return torch.randperm(n, generator=generator).to(device)
    return torch.arange(n, device=device)


def shard_bounds(
    bounds: list[tuple[int, int]], shard: tuple[int, int] | None
) -> list[tuple[int, int, tuple[int, ...] | None]]:
    """(start, end, every process's part size) of this process's part of each minibatch
    in `bounds`; `shard` = (rank, world_size), or None for the whole minibatch (sizes
    None). Every split class cuts its shards here."""
    if shard is None:
        return [(s, e, None) for s, e in bounds]
    rank, world = shard
    out = []
    for s, e in bounds:
        sizes = shard_sizes(e - s, world)
        start = s + sum(sizes[:rank])
        out.append((start, start + sizes[rank], sizes))
    return out


def batch_bounds(n: int, batch_size: int, drop_last: bool, min_last: int) -> list[tuple[int, int]]:
    """(start, end) of each minibatch of a pass over n samples. A last batch smaller than
    `min_last` joins the one before it."""
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    starts = list(range(0, stop, batch_size))
    if len(starts) > 1 and stop - starts[-1] < min_last:
        starts.pop()  # the remainder joins the previous batch
    return list(zip(starts, [*starts[1:], stop], strict=True))
