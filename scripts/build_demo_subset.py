"""Build the embedded MNIST demo subset, src/midebias/_data/mnist_demo.npz.

A class-balanced, seeded subset of the real MNIST splits (default 600 train and 100 test
digits per class = 6,000 / 1,000), saved with ``np.savez_compressed`` under the keys
train_images, train_labels, test_images, test_labels (uint8) and train_indices,
test_indices (positions in the full splits, uint16). Fails if the file would exceed
--max-bytes (default 2 MB).

Usage:
    MIDEBIAS_DATA_DIR=/path/to/data python scripts/build_demo_subset.py
    python scripts/build_demo_subset.py --data-dir /path/to/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    from midebias.data.mnist import load_mnist
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))
    from midebias.data.mnist import load_mnist


def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random indices of each class, sorted (keeps the original order)."""
    chosen = []
    for cls in np.unique(labels):
        pool = np.flatnonzero(labels == cls)
        if len(pool) < per_class:
            raise ValueError(f"class {cls} has only {len(pool)} examples, need {per_class}")
        chosen.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data directory (else MIDEBIAS_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=ROOT / "src/midebias/_data/mnist_demo.npz")
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-bytes", type=int, default=2_000_000)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    arrays: dict[str, np.ndarray] = {}
    for split, per_class in (("train", args.train_per_class), ("test", args.test_per_class)):
        images, labels = load_mnist(split, args.data_dir, download=False)
        idx = balanced_indices(labels, per_class, rng)
        arrays[f"{split}_images"] = images[idx].astype(np.uint8)
        arrays[f"{split}_labels"] = labels[idx].astype(np.uint8)
        arrays[f"{split}_indices"] = idx.astype(np.uint16)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    size = tmp.stat().st_size
    if size > args.max_bytes:
        tmp.unlink()
        print(
            f"error: subset is {size:,} bytes > --max-bytes {args.max_bytes:,}; "
            "reduce --train-per-class",
            file=sys.stderr,
        )
        return 1
    tmp.replace(args.out)
    for key, value in arrays.items():
        print(f"{key:14s} {value.dtype} {value.shape}")
    print(f"wrote {args.out} ({size:,} bytes = {size / 2**20:.2f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
