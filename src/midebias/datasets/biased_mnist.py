"""Biased MNIST with the rho protocol of Bahng et al. (ReBias, ICML 2020).

The bias is the background colour. In a split with correlation rho, a fraction rho of each
class (rounded down) gets the class's own colour and the rest is spread evenly over the
other nine colours (in a seeded order). The digit itself is white: as in ReBias, pixels
that are non-zero in the grey digit become (255, 255, 255), all others the background
colour. Evaluation uses the 'unbiased' test set rho = 0.1 (colour independent of the label),
'aligned' (rho = 1) and 'conflicting' (rho = 0).
"""

from __future__ import annotations

import numpy as np

from midebias.datasets.base import BenchmarkData, Split, split_train_val

#: ReBias's published background palette (RGB, 0..255), one colour per class.
REBIAS_PALETTE = np.array(
    [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [225, 225, 0],
        [225, 0, 225],
        [0, 255, 255],
        [255, 128, 0],
        [255, 0, 128],
        [128, 0, 255],
        [128, 128, 128],
    ],
    dtype=np.uint8,
)

RHOS = (0.999, 0.997, 0.995, 0.990)


def assign_colors(labels: np.ndarray, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Colour index per sample: floor(n_k * rho) of class k keep colour k, the rest are split
    evenly (sizes differ by at most one) over the other colours in a random order."""
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    k = int(labels.max()) + 1 if len(labels) else 10
    k = max(k, len(REBIAS_PALETTE))
    colors = np.empty(len(labels), dtype=np.int64)
    for y in range(k):
        idx = rng.permutation(np.flatnonzero(labels == y))
        n_keep = int(np.floor(len(idx) * rho + 1e-9))
        colors[idx[:n_keep]] = y
        others = np.array([c for c in range(k) if c != y])
        rest = idx[n_keep:]
        # Round-robin over a shuffled order of the other colours: an even split.
        colors[rest] = rng.permutation(others)[np.arange(len(rest)) % len(others)]
    return colors


def paint_background(gray: np.ndarray, color_index: np.ndarray) -> np.ndarray:
    """White digit (non-zero pixels) on a background of REBIAS_PALETTE[color_index]."""
    fg = (gray != 0)[..., None]
    bg = REBIAS_PALETTE[color_index][:, None, None, :]
    return np.where(fg, np.uint8(255), bg).astype(np.uint8)


def _split(gray, labels, rho, rng) -> Split:
    labels = np.asarray(labels, dtype=np.int64)
    idx = assign_colors(labels, rho, rng)
    return Split(
        images=paint_background(gray, idx),
        labels=labels,
        bias=idx,
        colors=(REBIAS_PALETTE[idx] / 255.0).astype(np.float32),
    )


def biased_mnist(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    rho: float = 0.99,
    seed: int = 0,
    val_fraction: float = 0.1,
    train_size: int | None = None,
) -> BenchmarkData:
    """Build Biased MNIST from grey MNIST arrays; a pure function of its inputs and seed.

    Splits: train (rho), val (held-out training digits, rho), val_unbiased (same digits,
    rho = 0.1), test (unbiased, rho = 0.1: the headline), aligned (rho = 1), conflicting (rho = 0).
    """
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    rng = np.random.default_rng(seed)
    train_labels = np.asarray(train_labels, dtype=np.int64)
    tr, va = split_train_val(len(train_labels), val_fraction, train_size, rng)
    splits = {
        "train": _split(train_images[tr], train_labels[tr], rho, rng),
        "val": _split(train_images[va], train_labels[va], rho, rng),
        "val_unbiased": _split(train_images[va], train_labels[va], 0.1, rng),
        "test": _split(test_images, test_labels, 0.1, rng),
        "aligned": _split(test_images, test_labels, 1.0, rng),
        "conflicting": _split(test_images, test_labels, 0.0, rng),
    }
    settings = dict(
        benchmark="biased-mnist", rho=rho, seed=seed, val_fraction=val_fraction, train_size=len(tr)
    )
    return BenchmarkData(name="biased-mnist", splits=splits, settings=settings)
