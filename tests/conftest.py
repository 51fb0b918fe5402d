"""Shared fixtures: small grey MNIST arrays (the embedded subset, no data dir needed)."""

from __future__ import annotations

import os

import pytest
import torch

from midebias.data.mnist import load_demo_mnist

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core (pytest-xdist): one thread each, so the
    # workers do not fight over the cores. Tests that need threads set them themselves.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def demo_mnist():
    d = load_demo_mnist()
    return d["train_images"], d["train_labels"], d["test_images"], d["test_labels"]
