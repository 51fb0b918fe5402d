"""MNIST: an IDX reader, the full data set from verified files, and a small embedded subset.

``load_mnist`` reads the four standard IDX files (found, verified or downloaded by
:mod:`midebias.data.sources`). ``load_demo_mnist`` reads the class-balanced subset shipped
inside the package (``midebias/_data/mnist_demo.npz``, built by
``scripts/build_demo_subset.py``), for examples and tests that must run without the data.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from .sources import DataError, MissingDataError, resolve

__all__ = [
    "DEMO_PATH",
    "IDXError",
    "MNIST_FILES",
    "load_demo_mnist",
    "load_mnist",
    "read_idx",
]

#: IDX type code -> numpy dtype (big-endian, as stored).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: split -> (images file, labels file) in the ``mnist`` dataset folder.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

MNIST_SIZES = {"train": 60_000, "test": 10_000}

#: The embedded demo subset.
DEMO_PATH = Path(__file__).resolve().parent.parent / "_data" / "mnist_demo.npz"
DEMO_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


class IDXError(DataError, ValueError):
    """Bytes that are not a valid IDX file (bad magic, unknown type, truncated data)."""


def _read_bytes(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "<bytes>"
    path = Path(source)
    return path.read_bytes(), str(path)


def read_idx(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> np.ndarray:
    """Parse an IDX file (path or bytes, gzip-compressed or not) into an array.

    Supports the IDX type codes 0x08 (uint8), 0x09 (int8), 0x0B (int16), 0x0C (int32),
    0x0D (float32) and 0x0E (float64); multi-byte values are big-endian in the file and
    returned in native byte order. Raises :class:`IDXError` on a bad magic number, an
    unknown type code, or data that is shorter or longer than the header says.
    """
    raw, name = _read_bytes(source)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise IDXError(
                f"{name}: cannot decompress ({exc}); the gzip file is corrupt or truncated. "
                "Delete it and fetch a good copy."
            ) from None
    if len(raw) < 4:
        raise IDXError(f"{name}: {len(raw)} bytes, too short for an IDX header (4 bytes).")
    zero, code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES:
        raise IDXError(
            f"{name}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000 followed by a "
            f"type code in {{{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}}} and the number "
            "of dimensions). This is not an IDX file."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(
            f"{name}: truncated header: {ndim} dimensions need {header} bytes, got {len(raw)}."
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        kind = "truncated" if got < expected else "has trailing bytes"
        raise IDXError(
            f"{name}: IDX data {kind}: shape {shape} of {dtype.name} needs {expected} bytes "
            f"after the header, got {got}. The file is corrupt; fetch a good copy."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def load_mnist(
    split: Literal["train", "test"] = "train",
    data_dir: str | Path | None = None,
    *,
    download: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` as (images uint8 (N, 28, 28), labels int64 (N,)), N = 60000 / 10000.

    The files are found and verified (or downloaded) by :func:`midebias.data.sources.resolve`
    with ``data_dir`` / ``download``; raises :class:`DataError` if they are unavailable.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images_name, labels_name = MNIST_FILES[split]
    images_path = resolve("mnist", images_name, data_dir, download=download)
    labels_path = resolve("mnist", labels_name, data_dir, download=download)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IDXError(
            f"{images_path}: expected uint8 images (N, 28, 28), got {images.dtype} {images.shape}."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise IDXError(f"{labels_path}: expected {len(images)} labels, got shape {labels.shape}.")
    return images, labels.astype(np.int64)


def load_demo_mnist() -> dict[str, np.ndarray]:
    """The small MNIST subset embedded in the package.

    Keys ``train_images``/``test_images`` (uint8, (N, 28, 28)), ``train_labels``/
    ``test_labels`` (int64, (N,)), and ``train_indices``/``test_indices`` (int64 positions in
    the full MNIST splits). Class-balanced; see ``scripts/build_demo_subset.py``.
    """
    if not DEMO_PATH.is_file():
        raise MissingDataError(
            f"The embedded MNIST demo subset {DEMO_PATH} is missing from this installation. "
            "Reinstall midebias, or rebuild it with scripts/build_demo_subset.py."
        )
    with np.load(DEMO_PATH) as npz:
        out = {key: npz[key] for key in npz.files}
    for key in ("train_labels", "test_labels", "train_indices", "test_indices"):
        if key in out:
            out[key] = out[key].astype(np.int64)
    return out
