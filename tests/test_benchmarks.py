"""Benchmark generators: determinism, colour statistics, rho per class, splits, bias code."""

from __future__ import annotations

import numpy as np
import pytest

from midebias.datasets import (
    COLORED_MNIST_PALETTE,
    REBIAS_PALETTE,
    biased_mnist,
    colored_mnist,
    paper_bias_code,
)
from midebias.datasets.biased_mnist import assign_colors
from midebias.datasets.colored_mnist import BIAS_VARIANCES, sample_colors


def test_colored_mnist_is_deterministic_and_seed_dependent(demo_mnist):
    a = colored_mnist(*demo_mnist, bias_var=0.02, seed=3)
    b = colored_mnist(*demo_mnist, bias_var=0.02, seed=3)
    c = colored_mnist(*demo_mnist, bias_var=0.02, seed=4)
    for k in a.splits:
        np.testing.assert_array_equal(a[k].images, b[k].images)
        np.testing.assert_array_equal(a[k].labels, b[k].labels)
    assert not np.array_equal(a["train"].images, c["train"].images)


def test_colored_mnist_shapes_and_splits(demo_mnist):
    d = colored_mnist(*demo_mnist, bias_var=0.03, seed=0, val_fraction=0.1)
    n_train = len(demo_mnist[1])
    assert set(d.splits) == {"train", "val", "val_unbiased", "test", "aligned"}
    assert len(d["train"]) + len(d["val"]) == n_train
    assert len(d["val"]) == len(d["val_unbiased"]) == round(0.1 * n_train)
    assert len(d["test"]) == len(demo_mnist[3])
    im = d["train"].images
    assert im.dtype == np.uint8 and im.shape[1:] == (28, 28, 3)
    # Background stays black wherever the grey digit is black.
    gray = demo_mnist[0]
    assert (d["test"].images[demo_mnist[2] == 0] == 0).all()
    assert gray.shape[1:] == (28, 28)


def test_train_size_subsamples_training_but_not_validation(demo_mnist):
    d = colored_mnist(*demo_mnist, bias_var=0.02, seed=0, train_size=500)
    full = colored_mnist(*demo_mnist, bias_var=0.02, seed=0)
    assert len(d["train"]) == 500
    assert len(d["val"]) == len(full["val"])
    with pytest.raises(ValueError, match="train_size"):
        colored_mnist(*demo_mnist, bias_var=0.02, train_size=10**6)


@pytest.mark.parametrize("bias_var", BIAS_VARIANCES)
def test_color_jitter_variance_per_class_matches_sigma2(bias_var):
    # The training protocol's jitter: per class and channel, sample variance of the sampled
    # stroke colour within 10% of sigma^2 (6,000 draws per class).
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 6000)
    sampled, painted = sample_colors(labels, bias_var, rng)
    for k in range(10):
        var = sampled[labels == k].var(axis=0, ddof=1)
        np.testing.assert_allclose(var, bias_var, rtol=0.10)
        np.testing.assert_allclose(
            sampled[labels == k].mean(0), COLORED_MNIST_PALETTE[k], atol=0.01
        )
    assert painted.min() >= 0 and painted.max() <= 1
    np.testing.assert_allclose(painted, np.clip(sampled, 0, 1), atol=1e-6)


def test_training_colours_follow_class_palette_with_sigma2(demo_mnist):
    d = colored_mnist(*demo_mnist, bias_var=0.02, seed=1)
    tr = d["train"]
    np.testing.assert_array_equal(tr.bias, tr.labels)
    for k in range(10):
        colors = tr.colors[tr.labels == k]
        # Painted colours are clipped, so compare with the clipped distribution's moments.
        mu = COLORED_MNIST_PALETTE[k]
        ref = np.clip(mu + np.random.default_rng(k).normal(0, np.sqrt(0.02), (200000, 3)), 0, 1)
        np.testing.assert_allclose(colors.mean(0), ref.mean(0), atol=0.03)
        np.testing.assert_allclose(colors.var(0), ref.var(0), rtol=0.25, atol=1e-3)
    # The image really is painted with that colour: a full-intensity pixel equals colour*255.
    gray_test = demo_mnist[2]
    n, i, j = np.nonzero(gray_test == 255)
    np.testing.assert_array_equal(
        d["test"].images[n, i, j], np.rint(d["test"].colors[n] * 255).astype(np.uint8)
    )


def test_test_colours_are_independent_of_labels(demo_mnist):
    d = colored_mnist(*demo_mnist, bias_var=0.02, seed=0)
    te = d["test"]
    # Contingency table of label x colour index: chi-square test of independence.
    from scipy.stats import chi2_contingency

    table = np.zeros((10, 10))
    np.add.at(table, (te.labels, te.bias), 1)
    assert chi2_contingency(table).pvalue > 0.01
    assert (te.bias == te.labels).mean() < 0.2
    al = d["aligned"]
    np.testing.assert_array_equal(al.bias, al.labels)


def test_paper_bias_code_is_24d_one_hot_of_quantised_channel_max():
    images = np.zeros((3, 28, 28, 3), dtype=np.uint8)
    images[0, 5, 5] = [255, 0, 31]
    images[1, 3, 3] = [32, 64, 128]
    images[2, 1, 1] = [10, 10, 10]
    images[2, 2, 2] = [200, 0, 0]  # the max is taken per channel over all pixels
    code = paper_bias_code(images)
    assert code.shape == (3, 24) and code.dtype == np.float32
    assert (code.reshape(3, 3, 8).sum(-1) == 1).all()
    bins = code.reshape(3, 3, 8).argmax(-1)
    np.testing.assert_array_equal(bins, [[7, 0, 0], [1, 2, 4], [6, 0, 0]])


def test_paper_bias_code_matches_the_plain_channel_max():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28, 3), dtype=np.uint8)
    peak = images.max(axis=(1, 2))
    want = np.zeros((50, 3, 8), dtype=np.float32)
    want[np.arange(50)[:, None], np.arange(3), peak // 32] = 1.0
    np.testing.assert_array_equal(paper_bias_code(images), want.reshape(50, 24))
    assert paper_bias_code(images[:0]).shape == (0, 24)


@pytest.mark.parametrize("rho", [0.999, 0.997, 0.995, 0.99, 0.1, 1.0, 0.0])
def test_biased_mnist_correlation_equals_rho_per_class(rho):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    colors = assign_colors(labels, rho, rng)
    for k in range(10):
        own = colors[labels == k] == k
        n = own.size
        assert own.sum() == int(np.floor(n * rho + 1e-9))
        assert abs(own.mean() - rho) <= 1.0 / n
        others = np.bincount(colors[labels == k][~own], minlength=10)
        others = np.delete(others, k)
        assert others.max() - others.min() <= 1  # the rest is split evenly


def test_biased_mnist_images_and_splits(demo_mnist):
    d = biased_mnist(*demo_mnist, rho=0.99, seed=0)
    assert {"test", "aligned", "conflicting", "val", "val_unbiased"} <= set(d.splits)
    te, al, co = d["test"], d["aligned"], d["conflicting"]
    assert (al.bias == al.labels).all() and (co.bias != co.labels).all()
    assert abs((te.bias == te.labels).mean() - 0.1) < 0.02
    gray = demo_mnist[2]
    # Digit pixels are white, background pixels carry the palette colour.
    assert (te.images[gray != 0] == 255).all()
    bg = te.images[0][gray[0] == 0]
    assert (bg == REBIAS_PALETTE[te.bias[0]]).all()
    e = biased_mnist(*demo_mnist, rho=0.99, seed=0)
    np.testing.assert_array_equal(d["train"].images, e["train"].images)


def test_generators_reject_bad_strengths(demo_mnist):
    with pytest.raises(ValueError, match="bias_var"):
        colored_mnist(*demo_mnist, bias_var=0.0)
    with pytest.raises(ValueError, match="rho"):
        biased_mnist(*demo_mnist, rho=1.5)


def test_bias_codes(demo_mnist):
    d = colored_mnist(*demo_mnist, bias_var=0.02, seed=0, train_size=100)
    tr = d["train"]
    assert tr.bias_code("paper").shape == (100, 24)
    assert tr.bias_code("index").shape == (100, 10)
    np.testing.assert_array_equal(tr.bias_code("index").argmax(1), tr.bias)
    assert tr.bias_code("rgb").shape == (100, 3)
    with pytest.raises(ValueError, match="unknown bias code"):
        tr.bias_code("hsv")


def test_kim_variant_paints_one_solid_colour_on_the_stroke_mask(demo_mnist):
    from midebias.datasets.colored_mnist import KIM_PALETTE_ESTIMATE, colored_mnist

    d = colored_mnist(*demo_mnist, bias_var=0.02, seed=0, train_size=200, variant="kim")
    tr = d["train"]
    assert d.name == "colored-mnist-kim"
    for img in tr.images[:20]:
        colours = np.unique(img.reshape(-1, 3), axis=0)
        assert len(colours) == 2 and (colours[0] == 0).all()  # black + one stroke colour
    # the painted colour is the class mean plus jitter: nearest mean is mostly the label's
    dist = ((tr.colors[:, None, :] - KIM_PALETTE_ESTIMATE[None]) ** 2).sum(-1)
    assert (dist.argmin(1) == tr.labels).mean() > 0.6
    with pytest.raises(ValueError, match="unknown variant"):
        colored_mnist(*demo_mnist, variant="nope")
