"""A split whose images stay on disk: decoded by Pillow in DataLoader worker processes.

`StreamingSplit` has the interface of `TensorSplit` (batches, num_batches, labels, codes,
bias, c_dim, len), so the training loop, the evaluation and the leakage audit take it
unchanged. Labels, bias codes and bias indices are small tensors on the device; only the
pixels are streamed, one minibatch at a time, so memory does not grow with the number of
images. The sample order of each pass is drawn exactly as TensorSplit draws it
(`tensors.draw_order`, same generator, same calls): the same images in the same order give
the same minibatches, pixel for pixel (x is uint8 / 255 in both).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from midebias.data.sources import DataError
from midebias.datasets.folder import ImageTable, require_pillow
from midebias.datasets.tensors import Batch, batch_bounds, draw_order, shard_bounds


class ImageFiles(Dataset):
    """Item (index, seed) -> uint8 image (3, H, W): decoded, converted to RGB, resized to
    `size` if it differs, then (seed not None) augmented: a random crop of the image padded
    by size/8 on each side (reflected) and a random horizontal flip, drawn from `seed`."""

    def __init__(self, paths: list[str], size: tuple[int, int]):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: tuple[int, int | None]) -> torch.Tensor:
        i, seed = item
        Image = require_pillow()
        path = self.paths[i]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                h, w = self.size
                if (im.height, im.width) != (h, w):
                    im = im.resize((w, h), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for a bad file
            raise DataError(f"{path}: cannot decode the image ({type(e).__name__}: {e})") from e
        if seed is not None:
            a = augment(a, np.random.default_rng(seed))
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def augment(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random crop (padding size/8, reflected) and horizontal flip of an (H, W, 3) image."""
    h, w = a.shape[:2]
    ph, pw = max(h // 8, 1), max(w // 8, 1)
    padded = np.pad(a, ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    dy, dx = rng.integers(0, 2 * ph + 1), rng.integers(0, 2 * pw + 1)
    a = padded[dy : dy + h, dx : dx + w]
    return a[:, ::-1] if rng.random() < 0.5 else a


class StreamingSplit:
    """One split of image files; see the module docstring. `augment`: train-time
    augmentation (each shuffled pass draws one seed from the generator for it)."""

    def __init__(
        self,
        table: ImageTable,
        size: tuple[int, int],
        device: str | torch.device = "cpu",
        *,
        augment: bool = False,
        workers: int = 0,
        channels_last: bool = False,
    ):
        device = torch.device(device)
        self.files = ImageFiles(table.paths, size)
        self.labels = torch.from_numpy(table.labels).to(device)
        self.codes = torch.from_numpy(table.codes).to(device)
        self.bias = torch.from_numpy(table.bias).to(device)
        self.augment, self.workers = augment, workers
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def c_dim(self) -> int:
        return self.codes.shape[1]

    def num_batches(self, batch_size: int, min_last: int = 0) -> int:
        return len(batch_bounds(len(self), batch_size, False, min_last))

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
        """As TensorSplit.batches (`shard` too: this process reads only its part of each
        global batch); the images of each minibatch are read by `workers` processes (0: in
        this one) while the network works on the previous ones."""
        device = self.labels.device
        order = draw_order(len(self), shuffle, generator, weights, device)
        bounds = batch_bounds(len(self), batch_size, drop_last, min_last)
        seeds: list[int | None] = [None] * len(self)
        if self.augment and (shuffle or weights is not None):
            base = int(torch.randint(2**62, (1,), generator=generator))
            seeds = [base + k for k in range(len(self))]
        index = order.cpu().tolist()
        parts = shard_bounds(bounds, shard)  # (start, end, shard sizes) of each batch
        plan = [[(index[k], seeds[k]) for k in range(s, e)] for s, e, _ in parts]
        loader = DataLoader(
            self.files,
            batch_sampler=plan,
            num_workers=self.workers,
            pin_memory=device.type == "cuda",
        )
        try:
            for (s, e, sizes), x in zip(parts, loader, strict=True):
                idx = order[s:e]
                x = x.to(device, non_blocking=True).float().div_(255.0)
                x = x.contiguous(memory_format=self.memory_format)
                yield Batch(
                    x=x, y=self.labels[idx], c=self.codes[idx], b=self.bias[idx], sizes=sizes
                )
        except DataError as e:
            lines = str(e).strip().splitlines()
            if len(lines) > 1:  # a worker's error comes with its traceback: keep the message
                raise DataError(lines[-1].split("DataError: ", 1)[-1]) from None
            raise
