"""Shared fixtures: small grey MNIST arrays (the embedded subset, no data dir needed)."""

from __future__ import annotations

import pytest

from midebias.data.mnist import load_demo_mnist


@pytest.fixture(scope="session")
def demo_mnist():
    d = load_demo_mnist()
    return d["train_images"], d["train_labels"], d["test_images"], d["test_labels"]
