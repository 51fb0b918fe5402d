"""Benchmarks by name: how to build each from its source images, and its defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from midebias.datasets.base import BenchmarkData
from midebias.datasets.biased_mnist import biased_mnist
from midebias.datasets.colored_mnist import colored_mnist


@dataclass(frozen=True)
class BenchmarkSpec:
    """An image benchmark: its generator and its defaults."""

    build: Callable[..., BenchmarkData]
    bias_setting: str  # the keyword of the bias strength: bias_var or rho
    default_strength: float
    model: str
    bias_code: str
    batch_size: int
    lr: float
    epochs: int = 10
    #: The preset a method starts from here unless --set preset= says otherwise (none).
    presets: tuple[tuple[str, str], ...] = ()
    kind: str = "image"


#: The preset each method starts from on tabular data (mi: parity, chosen on Adult's
#: validation split; docs/tabular.md): for `midebias train` and MIFairClassifier alike.
TABULAR_PRESETS = {"mi": "parity"}


@dataclass(frozen=True)
class TabularSpec:
    """A tabular benchmark (midebias.datasets.tabular): its sensitive attribute and defaults.
    Epochs: about 2,000 minibatch updates on its training rows."""

    sensitive: str  # the default attribute s
    epochs: int
    #: The attributes it offers (as midebias.datasets.tabular.SENSITIVE, without pandas).
    sensitive_choices: tuple[str, ...] = ("sex", "age")
    model: str = "mlp"
    batch_size: int = 256
    lr: float = 1e-3
    z_dim: int = 8
    hidden: int = 64
    #: The preset a method starts from here unless --set preset= says otherwise.
    presets: tuple[tuple[str, str], ...] = tuple(TABULAR_PRESETS.items())
    kind: str = "tabular"


IMAGE_BENCHMARKS = {
    # The paper's digit network and settings (the paper and its authors' code).
    "colored-mnist": BenchmarkSpec(
        colored_mnist, "bias_var", 0.020, "paper-digits", "paper", 128, 1e-3
    ),
    # The same protocol on a generator calibrated to Kim et al.'s files (palette estimated
    # from renderings of them, solid strokes): colour is a weaker shortcut than above.
    "colored-mnist-kim": BenchmarkSpec(
        partial(colored_mnist, variant="kim"), "bias_var", 0.020, "paper-digits", "paper", 128, 1e-3
    ),
    # ReBias's SimpleConvNet, batch 256, Adam 1e-3 (Bahng et al. 2020). The paper's 24-d code
    # is constant here (white strokes), so the bias attribute is the colour index.
    "biased-mnist": BenchmarkSpec(biased_mnist, "rho", 0.990, "simple-conv", "index", 256, 1e-3),
}


@dataclass(frozen=True)
class FolderSpec:
    """Image files on disk (midebias.datasets.folder / imdb), streamed by StreamingSplit:
    the network and training defaults."""

    model: str = "resnet18"
    batch_size: int = 64
    lr: float = 1e-3
    epochs: int = 10
    #: Side of the square images the network sees (None: the files' own size).
    image_size: int | None = None
    #: mi starts from "staged", without the default's Gaussian term: a ResNet's z is 512
    #: wide, and at batch 64 the batch and the kept ones (576 samples) are too few for the
    #: term's covariances (MIPenalty warns below 8 x the width of z and c).
    presets: tuple[tuple[str, str], ...] = (("mi", "staged"),)
    kind: str = "folder"


#: Image files with their labels: a user's folder + CSV, or IMDB faces (Kim et al.'s splits).
FOLDER_BENCHMARKS = {
    "folder": FolderSpec(),
    # The authors trained on 224x224 crops (Kim et al. 2019; Ragonesi et al.'s code).
    "imdb": FolderSpec(image_size=224),
}


TABULAR_BENCHMARKS = {
    "adult": TabularSpec("sex", epochs=20),
    "german": TabularSpec("age", epochs=200),
}

#: Every benchmark `midebias train` runs, by name.
BENCHMARKS: dict[str, BenchmarkSpec | TabularSpec | FolderSpec] = {
    **IMAGE_BENCHMARKS,
    **TABULAR_BENCHMARKS,
    **FOLDER_BENCHMARKS,
}


#: Training images of each image source, before the validation split.
SOURCE_TRAIN_IMAGES = {"mnist": 60000, "demo": 6000}


def max_train_size(source: str, val_fraction: float) -> int:
    """The most training images a run can use (as benchmarks.base.split_train_val)."""
    n = SOURCE_TRAIN_IMAGES[source]
    return n - int(round(n * val_fraction))


def mnist_arrays(source: str = "mnist", data_dir: str | None = None):
    """(train_images, train_labels, test_images, test_labels) of grey MNIST.

    source 'mnist' reads the full data set (data dir, MIDEBIAS_DATA_DIR, cache or download);
    'demo' reads the small subset shipped inside the package (no data needed).
    """
    from midebias.data.mnist import load_demo_mnist, load_mnist

    if source == "demo":
        d = load_demo_mnist()
        return d["train_images"], d["train_labels"], d["test_images"], d["test_labels"]
    if source == "mnist":
        tr_x, tr_y = load_mnist("train", data_dir)
        te_x, te_y = load_mnist("test", data_dir)
        return tr_x, tr_y, te_x, te_y
    raise ValueError(f"unknown image source {source!r}; choose 'mnist' or 'demo'")


def load_benchmark(
    name: str,
    *,
    strength: float | None = None,
    seed: int = 0,
    train_size: int | None = None,
    val_fraction: float = 0.1,
    source: str = "mnist",
    data_dir: str | None = None,
) -> BenchmarkData:
    """Build a named image benchmark at a bias strength (sigma^2 or rho)."""
    try:
        spec = IMAGE_BENCHMARKS[name]
    except KeyError:
        known = ", ".join(IMAGE_BENCHMARKS)
        raise ValueError(f"unknown benchmark {name!r}; choose one of {known}") from None
    arrays = mnist_arrays(source, data_dir)
    kw = {spec.bias_setting: spec.default_strength if strength is None else strength}
    return spec.build(*arrays, seed=seed, train_size=train_size, val_fraction=val_fraction, **kw)
