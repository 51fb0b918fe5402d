"""Colored MNIST with the sigma^2 protocol of Kim et al. (LNL, CVPR 2019), as used by the paper.

Every training digit's strokes are coloured with mu_y + eps, eps ~ N(0, sigma^2 I) in RGB
([0, 1], clipped), on a black background. Smaller sigma^2 means a stronger colour bias.
Test digits are coloured with the colour of a class drawn independently of the label (same
jitter); the 'aligned' test set uses each digit's own class colour.

The original LNL files were distributed prebuilt and their palette is unpublished. We use
ReBias's published palette (Bahng et al. 2020) as the ten mean colours: saturated and at
least 0.5 apart in RGB (3.5 sigma at sigma^2 = 0.020, 2.2 sigma at 0.050), so that colour
alone predicts the training label almost perfectly at the strong-bias end, as in the paper.
The jitter eps is drawn exactly N(0, sigma^2 I); the painted colour is clip(mu_y + eps, 0, 1),
so channels whose mean sits at 0 or 1 keep only part of that variance in the image (about
a third for a channel at 0): `sample_colors` returns both the sampled and the painted colour.
"""

from __future__ import annotations

import numpy as np

from midebias.datasets.base import BenchmarkData, Split, split_train_val
from midebias.datasets.biased_mnist import REBIAS_PALETTE

#: Mean stroke colour of each digit class, RGB in [0, 1] (ReBias's palette / 255).
COLORED_MNIST_PALETTE = REBIAS_PALETTE.astype(np.float64) / 255.0

#: Kim et al.'s class colours as far as they can be read off published renderings of
#: their prebuilt files (about +-15/255 per channel; the palette itself was never
#: published). Less saturated and closer together than ReBias's: the closest pair is about
#: 0.21 apart in RGB, against 0.40 (docs/debiasing.md, "Calibration").
KIM_PALETTE_ESTIMATE = (
    np.array(
        [
            (213, 24, 49),
            (24, 138, 145),
            (229, 207, 57),
            (33, 109, 190),
            (229, 142, 45),
            (145, 44, 177),
            (75, 209, 213),
            (221, 178, 188),
            (176, 223, 81),
            (116, 24, 38),
        ],
        dtype=np.float64,
    )
    / 255.0
)

#: Generator variants: (palette, how strokes are painted).
#: "rebias" (midebias 0.1, the default): ReBias's palette, grey level as opacity.
#: "kim": the estimated Kim et al. palette, one solid colour on the pixels whose grey level
#: exceeds 128 (what their files show: two colours per image), background black.
VARIANTS = {"rebias": (COLORED_MNIST_PALETTE, "opacity"), "kim": (KIM_PALETTE_ESTIMATE, "solid")}

#: The sigma^2 values of the protocol.
BIAS_VARIANCES = (0.020, 0.025, 0.030, 0.035, 0.040, 0.045, 0.050)


def sample_colors(
    color_index: np.ndarray,
    bias_var: float,
    rng: np.random.Generator,
    palette: np.ndarray = COLORED_MNIST_PALETTE,
) -> tuple[np.ndarray, np.ndarray]:
    """(sampled, painted) colours: mu + eps with eps ~ N(0, bias_var I), and its clip to [0, 1]."""
    mean = palette[np.asarray(color_index)]
    sampled = mean + rng.normal(0.0, np.sqrt(bias_var), size=mean.shape)
    return sampled, np.clip(sampled, 0.0, 1.0).astype(np.float32)


def color_digits(
    gray: np.ndarray,
    labels: np.ndarray,
    color_index: np.ndarray,
    bias_var: float,
    rng: np.random.Generator,
    variant: str = "rebias",
) -> Split:
    """Colour grey digits (uint8 (N, 28, 28)) with clip(palette[color_index] + eps)."""
    palette, paint = VARIANTS[variant]
    colors = sample_colors(color_index, bias_var, rng, palette)[1]
    images = np.empty(gray.shape + (3,), dtype=np.uint8)
    chunk = 8192  # bounds the float temporaries to ~80 MB for the 60k set
    for s in range(0, len(gray), chunk):
        g = gray[s : s + chunk, :, :, None].astype(np.float32)
        if paint == "solid":  # one solid colour on the stroke mask
            g = np.where(g > 128, 255.0, 0.0).astype(np.float32)
        # Otherwise the grey level acts as stroke opacity on a black background.
        images[s : s + chunk] = np.rint(g * colors[s : s + chunk, None, None, :])
    return Split(
        images=images,
        labels=np.asarray(labels, dtype=np.int64),
        bias=np.asarray(color_index, dtype=np.int64),
        colors=colors,
    )


def colored_mnist(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    bias_var: float = 0.020,
    seed: int = 0,
    val_fraction: float = 0.1,
    train_size: int | None = None,
    variant: str = "rebias",
) -> BenchmarkData:
    """Build Colored MNIST from grey MNIST arrays; a pure function of its inputs and seed.
    `variant` picks the palette and painting (see VARIANTS).

    The validation digits are held out from the training images (never the test set) and
    come twice: 'val' coloured like training (biased), 'val_unbiased' coloured independently.
    """
    if not 0.0 < bias_var <= 1.0:
        raise ValueError(f"bias_var (sigma^2) must be in (0, 1], got {bias_var}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    rng = np.random.default_rng(seed)
    train_labels = np.asarray(train_labels, dtype=np.int64)
    test_labels = np.asarray(test_labels, dtype=np.int64)
    tr, va = split_train_val(len(train_labels), val_fraction, train_size, rng)
    k = len(COLORED_MNIST_PALETTE)

    def paint(images, labels, color_index):
        return color_digits(images, labels, color_index, bias_var, rng, variant)

    splits = {
        "train": paint(train_images[tr], train_labels[tr], train_labels[tr]),
        "val": paint(train_images[va], train_labels[va], train_labels[va]),
        "val_unbiased": paint(train_images[va], train_labels[va], rng.integers(0, k, len(va))),
        "test": paint(test_images, test_labels, rng.integers(0, k, len(test_labels))),
        "aligned": paint(test_images, test_labels, test_labels),
    }
    name = "colored-mnist" if variant == "rebias" else f"colored-mnist-{variant}"
    settings = dict(
        benchmark=name,
        variant=variant,
        bias_var=bias_var,
        seed=seed,
        val_fraction=val_fraction,
        train_size=len(tr),
    )
    return BenchmarkData(name=name, splits=splits, settings=settings)
