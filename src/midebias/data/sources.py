"""Where the data files come from: a registry of known files, lookup, verification, download.

Every file the library reads from disk is listed in :data:`REGISTRY` with its canonical
download URL(s) and a checksum. :func:`resolve` finds a file, in this order:

1. the ``data_dir`` argument,
2. the directory named by the environment variable ``MIDEBIAS_DATA_DIR``,
3. the user cache (``pooch.os_cache("midebias")``, or ``MIDEBIAS_CACHE_DIR`` if set).

In each directory a file is looked for at ``<dir>/<dataset>/<filename>`` (the layout of a
data directory such as ``<dir>/mnist/train-images-idx3-ubyte.gz``) and then at
``<dir>/<filename>``. A file that is found is always verified against its checksum; a
mismatch raises :class:`ChecksumError`, never a silent wrong dataset. A file found nowhere
is downloaded with :mod:`pooch` into the user cache (unless downloads are disabled with
``download=False`` or ``MIDEBIAS_OFFLINE=1``) and verified; if that is impossible a
:class:`MissingDataError` says which files are missing, where they were looked for, and
how to provide them.

MNIST files are verified by the sha256 of their *decompressed* content, because the
gzip wrapper differs between copies of the same data; an uncompressed copy (the file
name without ``.gz``) is accepted as well.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "DataError",
    "FileEntry",
    "MissingDataError",
    "cache_dir",
    "dataset_files",
    "downloads_enabled",
    "fetch_dataset",
    "file_sha256",
    "get_entry",
    "list_datasets",
    "resolve",
    "search_dirs",
    "verify_file",
]

ENV_DATA_DIR = "MIDEBIAS_DATA_DIR"
ENV_CACHE_DIR = "MIDEBIAS_CACHE_DIR"
ENV_OFFLINE = "MIDEBIAS_OFFLINE"

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------- errors


class DataError(Exception):
    """A data file could not be provided; the message says what happened and what to do."""


class MissingDataError(DataError):
    """Data files are not on disk and could not be downloaded."""

    def __init__(self, message: str, *, dataset: str = "", missing: tuple[str, ...] = ()):
        super().__init__(message)
        self.dataset = dataset
        self.missing = missing


class ChecksumError(DataError):
    """A file's content does not match its registered checksum (corrupt, truncated, or a
    different version)."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ):
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.expected = expected
        self.actual = actual


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class FileEntry:
    """One known data file.

    ``sha256`` is the checksum every copy is verified against: of the file's bytes, or, when
    ``gzip_content`` is true, of its decompressed bytes (a raw copy without ``.gz`` is then
    also accepted). ``download_hash`` is the pooch ``known_hash`` of the file as served at
    ``urls`` (e.g. ``"md5:..."``), checked by pooch during the download.
    """

    dataset: str
    filename: str
    urls: tuple[str, ...]
    sha256: str
    download_hash: str | None = None
    gzip_content: bool = False

    @property
    def alternative_names(self) -> tuple[str, ...]:
        """File names accepted on disk, in order of preference."""
        if self.gzip_content and self.filename.endswith(".gz"):
            return (self.filename, self.filename[: -len(".gz")])
        return (self.filename,)


_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_ADULT_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
_GERMAN_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/statlog/german/"


def _mnist(filename: str, md5: str, sha256_decompressed: str) -> FileEntry:
    return FileEntry(
        dataset="mnist",
        filename=filename,
        urls=tuple(base + filename for base in _MNIST_URLS),
        sha256=sha256_decompressed,
        download_hash=f"md5:{md5}",
        gzip_content=True,
    )


def _plain(dataset: str, base: str, filename: str, sha256: str) -> FileEntry:
    return FileEntry(
        dataset=dataset,
        filename=filename,
        urls=(base + filename,),
        sha256=sha256,
        download_hash=f"sha256:{sha256}",
    )


#: dataset folder name -> file name -> entry. Tests may add entries (e.g. monkeypatch.setitem).
REGISTRY: dict[str, dict[str, FileEntry]] = {
    "mnist": {
        e.filename: e
        for e in (
            _mnist(
                "train-images-idx3-ubyte.gz",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            _mnist(
                "train-labels-idx1-ubyte.gz",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            _mnist(
                "t10k-images-idx3-ubyte.gz",
                "9fb629c4189551a2d022fa330f9573f3",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            _mnist(
                "t10k-labels-idx1-ubyte.gz",
                "ec29112dd5afa0611ce80d1b7f02629c",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        )
    },
    "uci-adult": {
        e.filename: e
        for e in (
            _plain(
                "uci-adult",
                _ADULT_URL,
                "adult.data",
                "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
            ),
            _plain(
                "uci-adult",
                _ADULT_URL,
                "adult.test",
                "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
            ),
        )
    },
    "uci-german": {
        e.filename: e
        for e in (
            _plain(
                "uci-german",
                _GERMAN_URL,
                "german.data",
                "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871",
            ),
        )
    },
}


def list_datasets() -> list[str]:
    """Names of the registered datasets (the folder names of a data directory)."""
    return sorted(REGISTRY)


def dataset_files(dataset: str) -> list[str]:
    """File names registered for ``dataset``, in registry order."""
    return list(_dataset(dataset))


def _dataset(dataset: str) -> dict[str, FileEntry]:
    try:
        return REGISTRY[dataset]
    except KeyError:
        raise DataError(
            f"Unknown dataset {dataset!r}. Known datasets: {', '.join(list_datasets())}."
        ) from None


def get_entry(dataset: str, filename: str) -> FileEntry:
    """The registry entry of ``dataset``/``filename``; :class:`DataError` if unknown."""
    files = _dataset(dataset)
    try:
        return files[filename]
    except KeyError:
        raise DataError(
            f"Unknown file {filename!r} for dataset {dataset!r}. Known files: {', '.join(files)}."
        ) from None


# --------------------------------------------------------------------------- locations


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"1", "true", "yes", "on"}


def downloads_enabled(download: bool | None = None) -> bool:
    """Whether a missing file may be downloaded: ``download`` if given, else not
    ``MIDEBIAS_OFFLINE``."""
    if download is not None:
        return bool(download)
    return not _truthy(os.environ.get(ENV_OFFLINE))


def cache_dir() -> Path:
    """The user cache where downloads go: ``MIDEBIAS_CACHE_DIR`` or
    ``pooch.os_cache("midebias")``."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    try:
        import pooch
    except ImportError:  # running from a source tree without the dependencies installed
        return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "midebias"
    return Path(pooch.os_cache("midebias")).expanduser()


def search_dirs(data_dir: str | Path | None = None) -> list[tuple[Path, str]]:
    """Directories searched for data, in order, each with a label saying where it came from."""
    dirs: list[tuple[Path, str]] = []
    if data_dir is not None and str(data_dir) != "":
        dirs.append((Path(data_dir).expanduser(), "data_dir argument"))
    if data_dir is not None and str(data_dir) != "" and Path(data_dir).expanduser().is_file():
        raise DataError(f"the data folder {data_dir} is a file, not a folder")
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        if Path(env).expanduser().is_file():
            raise DataError(
                f"{ENV_DATA_DIR}={env} is a file, not a folder: point it at the folder that "
                "holds the data (e.g. mnist/*.gz) or unset it"
            )
        dirs.append((Path(env).expanduser(), ENV_DATA_DIR))
    cache_label = f"user cache, {ENV_CACHE_DIR}" if os.environ.get(ENV_CACHE_DIR) else "user cache"
    dirs.append((cache_dir(), cache_label))
    seen: set[Path] = set()
    unique = []
    for path, label in dirs:
        key = path.resolve() if path.exists() else path.absolute()
        if key not in seen:
            seen.add(key)
            unique.append((path, label))
    return unique


def _candidates(directory: Path, entry: FileEntry) -> Iterator[Path]:
    for name in entry.alternative_names:
        yield directory / entry.dataset / name
    for name in entry.alternative_names:
        yield directory / name


def _find(entry: FileEntry, dirs: list[tuple[Path, str]]) -> Path | None:
    for directory, _ in dirs:
        for candidate in _candidates(directory, entry):
            if candidate.is_file():
                return candidate
    return None


def unreadable_files(dataset: str, data_dir: str | Path | None = None) -> list[Path]:
    """The files of `dataset` found in the search folders that this process cannot read
    (checked up front, before any data work). An unknown dataset has none."""
    if dataset not in REGISTRY:
        return []
    dirs = search_dirs(data_dir)
    found = (_find(entry, dirs) for entry in _dataset(dataset).values())
    return [p for p in found if p is not None and not os.access(p, os.R_OK)]


# --------------------------------------------------------------------------- checksums

# (absolute path, size, mtime_ns, decompress) -> hex sha256 of the content.
_HASH_CACHE: dict[tuple[str, int, int, bool], str] = {}
_HASH_LOCK = threading.Lock()


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _in_cache(path: Path) -> bool:
    try:
        path.resolve().relative_to(cache_dir().resolve())
    except ValueError:
        return False
    return True


def _repair_advice(path: Path, url: str | None = None) -> str:
    """How to fix a bad file: re-downloading only helps for a file in the user cache with
    downloads on; a file in the user's own folder (data_dir, MIDEBIAS_DATA_DIR) is theirs
    to replace."""
    source = f" (from {url})" if url else ""
    if not _in_cache(Path(path)):
        return f"It is in your own data folder: replace it with a good copy{source}."
    if not downloads_enabled():
        return (
            f"Replace it with a good copy{source}, or delete it and run again without "
            f"{ENV_OFFLINE}=1 to re-download it."
        )
    return f"Delete it and run again to re-download it{source}, or replace it with a good copy."


def file_sha256(path: str | Path, *, decompress: bool = False) -> str:
    """Hex sha256 of a file's bytes, streamed; with ``decompress``, of its gunzipped content
    (a file without the gzip magic is hashed as is). Results are cached in-process, keyed by
    path, size and mtime, so a file is hashed once per process unless it changes.

    Raises :class:`ChecksumError` if a gzip file cannot be decompressed (truncated/corrupt).
    """
    path = Path(path)
    st = path.stat()
    key = (str(path.absolute()), st.st_size, st.st_mtime_ns, decompress)
    with _HASH_LOCK:
        cached = _HASH_CACHE.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    try:
        if decompress and _is_gzip(path):
            with gzip.open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
        else:
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
    except (EOFError, OSError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError | PermissionError):
            raise
        raise ChecksumError(
            f"Checksum could not be computed for {path}: the file is not a complete gzip "
            f"file ({exc}). It is corrupt or truncated (an interrupted download?). "
            + _repair_advice(path),
            path=path,
        ) from None
    digest = h.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = digest
    return digest


def verify_file(path: str | Path, entry: FileEntry) -> None:
    """Check ``path`` against ``entry``'s sha256; :class:`ChecksumError` if it differs."""
    path = Path(path)
    actual = file_sha256(path, decompress=entry.gzip_content)
    if actual != entry.sha256:
        what = "decompressed content" if entry.gzip_content else "file"
        raise ChecksumError(
            f"Checksum mismatch for {path} ({entry.dataset}/{entry.filename}): the sha256 of "
            f"the {what} is {actual}, expected {entry.sha256}. The file is corrupt, truncated "
            "or a different version of the data. " + _repair_advice(path, entry.urls[0]),
            path=path,
            expected=entry.sha256,
            actual=actual,
        )


# --------------------------------------------------------------------------- download


_POOCH_MISMATCH = re.compile(r"expected (\S+) but got (\S+?)\.?\s")


def _progressbar() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _download(entry: FileEntry) -> tuple[Path | None, list[str], ChecksumError | None]:
    """Try each URL of ``entry`` with pooch into the user cache.

    Returns (path or None, one line per failed attempt, the last checksum failure if any).
    """
    import pooch

    target_dir = cache_dir() / entry.dataset
    failures: list[str] = []
    mismatch: ChecksumError | None = None
    for url in entry.urls:
        try:
            fetched = pooch.retrieve(
                url,
                known_hash=entry.download_hash,
                fname=entry.filename,
                path=target_dir,
                progressbar=_progressbar(),
            )
        except ValueError as exc:
            text = str(exc)
            if "does not match the known hash" in text:
                m = _POOCH_MISMATCH.search(text)
                mismatch = ChecksumError(
                    f"Checksum mismatch for the file downloaded from {url}: "
                    f"expected {entry.download_hash}, got "
                    f"{m.group(2) if m else 'a different hash'}. The download was deleted.",
                    path=target_dir / entry.filename,
                    expected=entry.download_hash,
                    actual=m.group(2) if m else None,
                )
                failures.append(f"{url}: checksum mismatch (download deleted)")
            else:
                failures.append(f"{url}: {type(exc).__name__}: {text}")
            continue
        except Exception as exc:  # network errors, HTTP errors, unwritable cache, ...
            failures.append(f"{url}: {type(exc).__name__}: {_short(exc)}")
            continue
        path = Path(fetched)
        try:
            verify_file(path, entry)
        except ChecksumError as exc:
            path.unlink(missing_ok=True)
            mismatch = exc
            failures.append(f"{url}: content checksum mismatch after download (deleted)")
            continue
        return path, failures, None
    return None, failures, mismatch


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- messages


def _missing_message(
    dataset: str,
    dirs: list[tuple[Path, str]],
    reason: str,
    failures: list[str],
) -> tuple[str, tuple[str, ...]]:
    files = _dataset(dataset)
    missing = tuple(name for name, e in files.items() if _find(e, dirs) is None)
    lines = [f"Data for dataset {dataset!r} not found: {reason}."]
    lines.append("Missing files:")
    lines += [f"  - {name}" for name in missing]
    lines.append(
        f"Looked for <dir>/{dataset}/<file> and <dir>/<file> in these directories, in order:"
    )
    for path, label in dirs:
        note = "" if path.is_dir() else ", does not exist"
        lines.append(f"  - {path}  ({label}{note})")
    if failures:
        lines.append("Download attempts:")
        lines += [f"  - {f}" for f in failures]
    lines.append(f"What to do: set {ENV_DATA_DIR} (or pass --data-dir) to a folder laid out as")
    lines += [f"  <dir>/{dataset}/{name}" for name in files]
    lines.append("with the files downloaded from:")
    for name in missing or tuple(files):
        lines.append(f"  {files[name].urls[0]}")
    if not failures and reason.startswith("downloads are disabled"):
        lines.append(f"or allow the automatic download (unset {ENV_OFFLINE} / pass download=True).")
    return "\n".join(lines), missing


# --------------------------------------------------------------------------- public API


def resolve(
    dataset: str,
    filename: str,
    data_dir: str | Path | None = None,
    *,
    download: bool | None = None,
) -> Path:
    """Local path of a verified copy of ``dataset``/``filename``, downloading it if needed.

    Looks in ``data_dir``, then ``MIDEBIAS_DATA_DIR``, then the user cache, each as
    ``<dir>/<dataset>/<filename>`` and ``<dir>/<filename>``. ``download=None`` downloads a
    missing file into the user cache unless ``MIDEBIAS_OFFLINE`` is set; ``True``/``False``
    force it on/off.

    Raises :class:`ChecksumError` if the copy found (or downloaded) does not match its
    checksum, :class:`MissingDataError` if the file is nowhere and cannot be downloaded.
    """
    entry = get_entry(dataset, filename)
    dirs = search_dirs(data_dir)
    found = _find(entry, dirs)
    if found is not None:
        verify_file(found, entry)
        return found

    if not downloads_enabled(download):
        why = "download=False" if download is False else f"{ENV_OFFLINE}=1"
        message, missing = _missing_message(dataset, dirs, f"downloads are disabled ({why})", [])
        raise MissingDataError(message, dataset=dataset, missing=missing)

    path, failures, mismatch = _download(entry)
    if path is not None:
        return path
    message, missing = _missing_message(dataset, dirs, f"download of {filename} failed", failures)
    if mismatch is not None:
        raise ChecksumError(
            f"{mismatch}\n{message}",
            path=mismatch.path,
            expected=mismatch.expected,
            actual=mismatch.actual,
        )
    raise MissingDataError(message, dataset=dataset, missing=missing)


def fetch_dataset(
    dataset: str,
    data_dir: str | Path | None = None,
    *,
    download: bool | None = None,
) -> dict[str, Path]:
    """Verified local paths of all files of ``dataset`` (file name -> path); see
    :func:`resolve`."""
    return {name: resolve(dataset, name, data_dir, download=download) for name in _dataset(dataset)}
