"""Seeded, pure generators of the biased benchmarks (data only, no training)."""

from midebias.datasets.base import BenchmarkData, Split, paper_bias_code
from midebias.datasets.biased_mnist import REBIAS_PALETTE, biased_mnist
from midebias.datasets.colored_mnist import COLORED_MNIST_PALETTE, colored_mnist

__all__ = [
    "BenchmarkData",
    "Split",
    "paper_bias_code",
    "colored_mnist",
    "biased_mnist",
    "COLORED_MNIST_PALETTE",
    "REBIAS_PALETTE",
]
