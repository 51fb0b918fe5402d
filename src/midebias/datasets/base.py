"""Containers shared by the image benchmarks, and the paper's 24-d bias code."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Names of the bias codes a Split can provide as the attribute c.
BIAS_CODES = ("paper", "index", "rgb")


def bias_code_groups(kind: str, num_colors: int = 10) -> list[int] | None:
    """Sizes of the one-hot groups of a bias code (categorical variables), None if continuous."""
    return {"paper": [8, 8, 8], "index": [num_colors], "rgb": None}[kind]


@dataclass
class Split:
    """One split of an image benchmark.

    images: uint8 RGB, shape (N, 28, 28, 3). labels: int64 target y, shape (N,).
    bias: int64 colour index (the bias attribute as a class), shape (N,).
    colors: float32 RGB in [0, 1] actually used for each image, shape (N, 3).
    """

    images: np.ndarray
    labels: np.ndarray
    bias: np.ndarray
    colors: np.ndarray
    _code: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def paper_code(self) -> np.ndarray:
        """The authors' 24-d quantised colour code of every image (computed once)."""
        if self._code is None:
            self._code = paper_bias_code(self.images)
        return self._code

    def bias_code(self, kind: str, num_colors: int = 10) -> np.ndarray:
        """The bias attribute c as float32 features: 'paper' (24-d), 'index' (one-hot), 'rgb'."""
        if kind == "paper":
            return self.paper_code
        if kind == "index":
            return np.eye(num_colors, dtype=np.float32)[self.bias]
        if kind == "rgb":
            return self.colors.astype(np.float32)
        raise ValueError(f"unknown bias code {kind!r}; choose one of {', '.join(BIAS_CODES)}")


@dataclass
class BenchmarkData:
    """All splits of a benchmark plus the settings that produced them.

    splits always has 'train', 'val' (held out from training images, biased like train),
    'val_unbiased' (the same held-out digits, colour independent of the label), 'test'
    (unbiased, the headline) and 'aligned' (test digits in their class colour).
    """

    name: str
    splits: dict[str, Split]
    settings: dict
    num_classes: int = 10
    num_colors: int = 10

    def __getitem__(self, key: str) -> Split:
        return self.splits[key]


def paper_bias_code(images: np.ndarray, bins: int = 8) -> np.ndarray:
    """Ragonesi et al.'s bias code: per-channel max over pixels, 8 bins of width 32, one-hot.

    images: uint8 (N, H, W, 3). Returns float32 (N, 3 * bins) with exactly one 1 per channel.
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError("paper_bias_code expects uint8 images of shape (N, H, W, 3)")
    # (N, 3): about the stroke colour. The max over pixels of a channel-first copy: ~10x
    # faster than images.max(axis=(1, 2)), which reduces over strided axes, and the same.
    n, h, w, _ = images.shape
    planes = np.ascontiguousarray(images.reshape(n, h * w, 3).transpose(0, 2, 1))
    peak = planes.max(axis=2).astype(np.int64)
    q = np.minimum(peak * bins // 256, bins - 1)
    code = np.zeros((n, 3, bins), dtype=np.float32)
    code[np.arange(n)[:, None], np.arange(3)[None, :], q] = 1.0
    return code.reshape(n, 3 * bins)


def split_train_val(
    n: int, val_fraction: float, train_size: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded indices of a held-out validation split and an (optionally smaller) train split."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = rng.permutation(n)
    n_val = int(round(n * val_fraction))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if train_size is not None:
        if not 0 < train_size <= len(train_idx):
            raise ValueError(
                f"train_size must be between 1 and {len(train_idx)} (training images left "
                f"after holding out {n_val} for validation), got {train_size}"
            )
        train_idx = train_idx[:train_size]
    return np.sort(train_idx), np.sort(val_idx)
