"""Data-source layer: IDX parsing, checksums, lookup order, error texts, pooch downloads.

Fast, deterministic and offline: downloads only go to an http.server on 127.0.0.1.
Tests on the real files run when MIDEBIAS_DATA_DIR is set (e.g. /work/shared/data).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from midebias.data import (
    ChecksumError,
    DataError,
    FileEntry,
    IDXError,
    MissingDataError,
    fetch_dataset,
    file_sha256,
    load_mnist,
    mnist,
    read_idx,
    resolve,
    sources,
)

REAL_DATA_DIR = os.environ.get("MIDEBIAS_DATA_DIR")
needs_real = pytest.mark.skipif(
    not REAL_DATA_DIR, reason="MIDEBIAS_DATA_DIR not set (real MNIST/UCI files)"
)

MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No ambient data dir, a private cache, downloads off unless a test turns them on."""
    monkeypatch.delenv("MIDEBIAS_DATA_DIR", raising=False)
    monkeypatch.setenv("MIDEBIAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MIDEBIAS_OFFLINE", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX serialisation written independently of the reader under test."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[array.dtype.kind + str(array.dtype.itemsize)]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("as_path", [False, True])
def test_read_idx_roundtrip(tmp_path, dtype, compress, as_path):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    data = idx_bytes(array)
    if compress:
        data = gzip.compress(data)
    source = data
    if as_path:
        source = tmp_path / ("x.idx.gz" if compress else "x.idx")
        source.write_bytes(data)
    out = read_idx(source)
    assert out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    assert out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


def test_read_idx_1d_and_0_length():
    np.testing.assert_array_equal(read_idx(idx_bytes(np.arange(7, dtype=np.uint8))), np.arange(7))
    assert read_idx(idx_bytes(np.zeros((0, 28, 28), np.uint8))).shape == (0, 28, 28)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
        (b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
        (b"\x00\x00", "too short"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 1), "truncated header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x00" * 9, "truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x00" * 11, "trailing"),
    ],
)
def test_read_idx_errors(data, match):
    with pytest.raises(IDXError, match=match):
        read_idx(data)


def test_read_idx_truncated_gzip():
    data = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    with pytest.raises(IDXError, match="truncated"):
        read_idx(data[: len(data) // 2])
    assert issubclass(IDXError, DataError) and issubclass(IDXError, ValueError)


# ----------------------------------------------------------------------------- fake registry


CONTENT = b"midebias test payload\n" * 100


@pytest.fixture
def fake(monkeypatch):
    """A registered dataset 'fake' with two plain files and one gzip-content file."""
    gz_raw = idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    entries = {
        "a.bin": FileEntry(
            "fake",
            "a.bin",
            ("http://invalid.invalid/a.bin",),
            sha256(CONTENT),
            f"sha256:{sha256(CONTENT)}",
        ),
        "b.bin": FileEntry(
            "fake",
            "b.bin",
            ("http://invalid.invalid/b.bin",),
            sha256(CONTENT + b"b"),
            f"sha256:{sha256(CONTENT + b'b')}",
        ),
        "c.idx.gz": FileEntry(
            "fake",
            "c.idx.gz",
            ("http://invalid.invalid/c.idx.gz",),
            sha256(gz_raw),
            None,
            gzip_content=True,
        ),
    }
    monkeypatch.setitem(sources.REGISTRY, "fake", entries)
    return {"a.bin": CONTENT, "b.bin": CONTENT + b"b", "c.idx.gz": gz_raw}


def put(directory: Path, name: str, data: bytes, *, nested: bool = True) -> Path:
    path = directory / "fake" / name if nested else directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- resolution


def test_resolution_order_explicit_env_cache(tmp_path, monkeypatch, fake):
    explicit, env, cache = tmp_path / "explicit", tmp_path / "env", tmp_path / "cache"
    paths = {d: put(d, "a.bin", fake["a.bin"]) for d in (explicit, env, cache)}
    monkeypatch.setenv("MIDEBIAS_DATA_DIR", str(env))

    assert resolve("fake", "a.bin", explicit) == paths[explicit]
    assert resolve("fake", "a.bin") == paths[env]
    paths[explicit].unlink()
    assert resolve("fake", "a.bin", explicit) == paths[env]  # falls through to the env dir
    paths[env].unlink()
    assert resolve("fake", "a.bin", explicit) == paths[cache]
    monkeypatch.delenv("MIDEBIAS_DATA_DIR")
    assert resolve("fake", "a.bin") == paths[cache]


def test_flat_layout_and_uncompressed_alternative(tmp_path, fake):
    flat = put(tmp_path / "d", "a.bin", fake["a.bin"], nested=False)
    assert resolve("fake", "a.bin", tmp_path / "d") == flat
    # gzip-content entries: any gzip wrapper, or the raw file without .gz, is accepted
    regz = put(tmp_path / "e", "c.idx.gz", gzip.compress(fake["c.idx.gz"], compresslevel=1))
    assert resolve("fake", "c.idx.gz", tmp_path / "e") == regz
    raw = put(tmp_path / "f", "c.idx", fake["c.idx.gz"])
    assert resolve("fake", "c.idx.gz", tmp_path / "f") == raw
    np.testing.assert_array_equal(read_idx(raw), read_idx(regz))


def test_fetch_dataset_returns_all_files(tmp_path, fake):
    for name in ("a.bin", "b.bin"):
        put(tmp_path, name, fake[name])
    put(tmp_path, "c.idx.gz", gzip.compress(fake["c.idx.gz"]))
    out = fetch_dataset("fake", tmp_path)
    assert list(out) == ["a.bin", "b.bin", "c.idx.gz"]
    assert all(p.is_file() for p in out.values())


def test_unknown_dataset_and_file():
    with pytest.raises(DataError, match="Unknown dataset 'nope'.*mnist"):
        resolve("nope", "x")
    with pytest.raises(DataError, match="Unknown file 'x'.*train-images"):
        resolve("mnist", "x")


def test_downloads_enabled_env(monkeypatch):
    assert not sources.downloads_enabled()
    assert sources.downloads_enabled(True)
    monkeypatch.setenv("MIDEBIAS_OFFLINE", "0")
    assert sources.downloads_enabled()
    assert not sources.downloads_enabled(False)
    monkeypatch.delenv("MIDEBIAS_OFFLINE")
    assert sources.downloads_enabled()


# ----------------------------------------------------------------------------- checksums


def test_corrupted_file_raises_checksum_error(tmp_path, fake):
    bad = bytearray(fake["a.bin"])
    bad[10] ^= 0xFF
    path = put(tmp_path, "a.bin", bytes(bad))
    with pytest.raises(ChecksumError) as info:
        resolve("fake", "a.bin", tmp_path)
    text = str(info.value)
    assert str(path) in text
    assert "checksum" in text.lower()
    assert sha256(fake["a.bin"]) in text and sha256(bytes(bad)) in text
    assert "replace it with a good copy" in text and "Delete it" not in text  # the user's file
    assert info.value.path == path
    assert info.value.expected == sha256(fake["a.bin"])


def test_truncated_files_raise_checksum_error(tmp_path, fake):
    put(tmp_path, "a.bin", fake["a.bin"][:-5])
    with pytest.raises(ChecksumError, match="Checksum mismatch"):
        resolve("fake", "a.bin", tmp_path)
    gz = gzip.compress(fake["c.idx.gz"])
    path = put(tmp_path, "c.idx.gz", gz[: len(gz) // 2])
    with pytest.raises(ChecksumError, match="(?i)checksum.*truncated") as info:
        resolve("fake", "c.idx.gz", tmp_path)
    assert str(path) in str(info.value)


def test_corrupt_file_is_never_skipped_for_a_later_dir(tmp_path, monkeypatch, fake):
    put(tmp_path / "explicit", "a.bin", b"wrong")
    put(tmp_path / "env", "a.bin", fake["a.bin"])
    monkeypatch.setenv("MIDEBIAS_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(ChecksumError):
        resolve("fake", "a.bin", tmp_path / "explicit")


def test_hash_cache_keyed_by_size_and_mtime(tmp_path, monkeypatch, fake):
    path = put(tmp_path, "a.bin", fake["a.bin"])
    expected = sha256(fake["a.bin"])
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    assert file_sha256(path) == expected
    resolve("fake", "a.bin", tmp_path)
    resolve("fake", "a.bin", tmp_path)
    assert len(calls) == 1
    path.write_bytes(fake["a.bin"][:-1])  # changed: rehashed and rejected
    with pytest.raises(ChecksumError):
        resolve("fake", "a.bin", tmp_path)
    assert len(calls) == 2


# ----------------------------------------------------------------------------- missing data


def test_missing_data_message_offline(tmp_path, monkeypatch):
    data_dir = tmp_path / "nowhere"
    env_dir = tmp_path / "envdir"
    env_dir.mkdir()
    monkeypatch.setenv("MIDEBIAS_DATA_DIR", str(env_dir))
    with pytest.raises(MissingDataError) as info:
        load_mnist("test", data_dir)
    text = str(info.value)
    for name in MNIST_FILES:  # all missing files of the dataset, not just the first
        assert name in text
    assert str(data_dir) in text and str(env_dir) in text and str(tmp_path / "cache") in text
    assert "MIDEBIAS_DATA_DIR" in text and "--data-dir" in text
    assert "<dir>/mnist/train-images-idx3-ubyte.gz" in text
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in text
    assert "MIDEBIAS_OFFLINE" in text
    assert set(info.value.missing) == set(MNIST_FILES)


def test_missing_data_lists_only_missing_files(tmp_path, monkeypatch, fake):
    monkeypatch.delenv("MIDEBIAS_OFFLINE")
    put(tmp_path, "a.bin", fake["a.bin"])
    with pytest.raises(MissingDataError, match="download=False") as info:
        fetch_dataset("fake", tmp_path, download=False)
    assert info.value.missing == ("b.bin", "c.idx.gz")
    assert "  - a.bin" not in str(info.value)


# ----------------------------------------------------------------------------- downloads


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"requests": []})

    def make(*args, **kwargs):
        return handler(*args, directory=str(root), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, handler.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_download_good_then_cached(monkeypatch, tmp_path, server, fake):
    url, root, requests = server
    (root / "a.bin").write_bytes(fake["a.bin"])
    entry = FileEntry(
        "fake",
        "a.bin",
        (f"{url}/missing.bin", f"{url}/a.bin"),
        sha256(fake["a.bin"]),
        f"sha256:{sha256(fake['a.bin'])}",
    )
    monkeypatch.setitem(sources.REGISTRY["fake"], "a.bin", entry)

    path = resolve("fake", "a.bin", tmp_path / "empty", download=True)
    assert path == tmp_path / "cache" / "fake" / "a.bin"
    assert path.read_bytes() == fake["a.bin"]
    assert requests == ["/missing.bin", "/a.bin"]  # 404 on the first mirror, then fallback

    assert resolve("fake", "a.bin", download=False) == path  # found in cache, no request
    assert len(requests) == 2


def test_download_bad_hash(monkeypatch, tmp_path, server, fake):
    url, root, _ = server
    (root / "a.bin").write_bytes(b"tampered" + fake["a.bin"])
    entry = FileEntry(
        "fake",
        "a.bin",
        (f"{url}/a.bin",),
        sha256(fake["a.bin"]),
        f"sha256:{sha256(fake['a.bin'])}",
    )
    monkeypatch.setitem(sources.REGISTRY["fake"], "a.bin", entry)
    monkeypatch.setenv("MIDEBIAS_OFFLINE", "0")

    with pytest.raises(ChecksumError) as info:
        resolve("fake", "a.bin")
    text = str(info.value)
    assert "Checksum mismatch" in text and f"{url}/a.bin" in text
    assert sha256(fake["a.bin"]) in text
    assert info.value.actual == sha256(b"tampered" + fake["a.bin"])
    assert "MIDEBIAS_DATA_DIR" in text
    assert not (tmp_path / "cache" / "fake" / "a.bin").exists()  # nothing wrong kept


def test_download_gzip_content_verified_after_download(monkeypatch, tmp_path, server, fake):
    url, root, _ = server
    good = gzip.compress(fake["c.idx.gz"], mtime=0)
    wrong = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x07", mtime=0)
    (root / "good.gz").write_bytes(good)
    (root / "wrong.gz").write_bytes(wrong)
    base = sources.REGISTRY["fake"]["c.idx.gz"]
    for name, data in (("wrong.gz", wrong), ("good.gz", good)):
        entry = FileEntry(
            "fake",
            "c.idx.gz",
            (f"{url}/{name}",),
            base.sha256,
            f"md5:{hashlib.md5(data).hexdigest()}",
            gzip_content=True,
        )
        monkeypatch.setitem(sources.REGISTRY["fake"], "c.idx.gz", entry)
        if name == "wrong.gz":  # right download hash, wrong content: rejected and deleted
            with pytest.raises(ChecksumError, match="decompressed content"):
                resolve("fake", "c.idx.gz", download=True)
            assert not (tmp_path / "cache" / "fake" / "c.idx.gz").exists()
        else:
            path = resolve("fake", "c.idx.gz", download=True)
            np.testing.assert_array_equal(read_idx(path), read_idx(fake["c.idx.gz"]))


def test_download_unreachable_gives_missing_data_error(monkeypatch, tmp_path, server, fake):
    url, _, _ = server
    entry = FileEntry("fake", "b.bin", (f"{url}/nothing",), "0" * 64, "sha256:" + "0" * 64)
    monkeypatch.setitem(sources.REGISTRY["fake"], "b.bin", entry)
    with pytest.raises(MissingDataError) as info:
        resolve("fake", "b.bin", download=True)
    text = str(info.value)
    assert "Download attempts" in text and "404" in text
    assert "a.bin" in text and "b.bin" in text and "c.idx.gz" in text
    assert not isinstance(info.value, ChecksumError)


# ----------------------------------------------------------------------------- registry


def test_registry_contents():
    assert set(sources.list_datasets()) >= {"mnist", "uci-adult", "uci-german"}
    assert sources.dataset_files("mnist") == MNIST_FILES
    md5 = {e.filename: e.download_hash for e in sources.REGISTRY["mnist"].values()}
    assert md5["train-images-idx3-ubyte.gz"] == "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert md5["t10k-labels-idx1-ubyte.gz"] == "md5:ec29112dd5afa0611ce80d1b7f02629c"
    for files in sources.REGISTRY.values():
        for e in files.values():
            assert len(e.sha256) == 64 and e.urls and all(u.endswith(e.filename) for u in e.urls)
            assert e.gzip_content == (e.dataset == "mnist")
    assert (
        sources.REGISTRY["mnist"]["train-images-idx3-ubyte.gz"]
        .urls[0]
        .startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")
    )


# ----------------------------------------------------------------------------- real data


@needs_real
def test_real_mnist():
    counts = {
        "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    }
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = load_mnist(split, REAL_DATA_DIR)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert labels.min() == 0 and labels.max() == 9
        if split in counts:
            assert np.bincount(labels).tolist() == counts[split]
            mean = float(images.mean(dtype=np.float64)) / 255
            sq = sum(
                np.einsum("ij,ij->", c, c, dtype=np.float64)
                for c in np.array_split(images.reshape(n, -1), 60)
            )
            std = float(np.sqrt(sq / images.size / 255**2 - mean**2))
            assert abs(mean - 0.1307) < 1e-4 and abs(std - 0.3081) < 1e-4


@needs_real
def test_real_files_verified_via_env(monkeypatch):
    monkeypatch.setenv("MIDEBIAS_DATA_DIR", REAL_DATA_DIR)
    root = Path(REAL_DATA_DIR)
    assert fetch_dataset("mnist") == {n: root / "mnist" / n for n in MNIST_FILES}
    assert fetch_dataset("uci-adult") == {
        n: root / "uci-adult" / n for n in ("adult.data", "adult.test")
    }
    assert fetch_dataset("uci-german") == {"german.data": root / "uci-german" / "german.data"}


@needs_real
def test_real_mnist_regzipped_ok_corrupted_rejected(tmp_path):
    src = Path(REAL_DATA_DIR) / "mnist" / "train-labels-idx1-ubyte.gz"
    raw = gzip.decompress(src.read_bytes())
    regz = tmp_path / "a" / "mnist" / "train-labels-idx1-ubyte.gz"
    regz.parent.mkdir(parents=True)
    regz.write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
    assert resolve("mnist", "train-labels-idx1-ubyte.gz", tmp_path / "a") == regz

    bad = bytearray(raw)
    bad[100] = (bad[100] + 1) % 10  # a wrong label
    corrupt = tmp_path / "b" / "mnist" / "train-labels-idx1-ubyte.gz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(ChecksumError, match="checksum|Checksum") as info:
        resolve("mnist", "train-labels-idx1-ubyte.gz", tmp_path / "b")
    assert str(corrupt) in str(info.value)


def test_demo_subset():
    if not mnist.DEMO_PATH.is_file():
        pytest.skip("demo subset not built (scripts/build_demo_subset.py)")
    assert mnist.DEMO_PATH.stat().st_size < 2_000_000
    data = mnist.load_demo_mnist()
    for split, n in (("train", 6000), ("test", 1000)):
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.dtype == np.int64
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
        assert len(np.unique(data[f"{split}_indices"])) == n


# ------------------------------------------------------------ advice that fits the case


def _corrupt(fake) -> bytes:
    bad = bytearray(fake["a.bin"])
    bad[10] ^= 0xFF
    return bytes(bad)


def test_bad_file_in_own_folder_is_not_told_to_redownload(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("MIDEBIAS_DATA_DIR", str(tmp_path / "mine"))
    put(tmp_path / "mine", "a.bin", _corrupt(fake))
    with pytest.raises(ChecksumError) as info:
        resolve("fake", "a.bin")
    text = str(info.value)
    assert "re-download" not in text and "your own data folder" in text


def test_bad_file_in_cache_offline_says_how_to_redownload(tmp_path, fake):
    put(tmp_path / "cache", "a.bin", _corrupt(fake))  # MIDEBIAS_OFFLINE=1 (fixture)
    with pytest.raises(ChecksumError) as info:
        resolve("fake", "a.bin")
    text = str(info.value)
    assert "Delete it and run again to re-download it" not in text
    assert "without MIDEBIAS_OFFLINE=1" in text


def test_bad_file_in_cache_online_may_be_redownloaded(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("MIDEBIAS_OFFLINE", "0")
    put(tmp_path / "cache", "a.bin", _corrupt(fake))
    with pytest.raises(ChecksumError, match="Delete it and run again to re-download it"):
        resolve("fake", "a.bin")


def test_data_dir_env_that_is_a_file_has_its_own_error(tmp_path, fake, monkeypatch):
    f = tmp_path / "data.txt"
    f.write_text("not a folder")
    monkeypatch.setenv("MIDEBIAS_DATA_DIR", str(f))
    with pytest.raises(DataError, match="MIDEBIAS_DATA_DIR=.* is a file, not a folder"):
        resolve("fake", "a.bin")


def test_mnist_mirrors_use_https():
    urls = [u for e in sources.REGISTRY["mnist"].values() for u in e.urls]
    assert urls and all(u.startswith("https://") for u in urls)
