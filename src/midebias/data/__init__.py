"""Data sources: registry of known files, checksummed lookup/download, MNIST readers."""

from .mnist import (
    IDXError,
    load_demo_mnist,
    load_mnist,
    read_idx,
)
from .sources import (
    REGISTRY,
    ChecksumError,
    DataError,
    FileEntry,
    MissingDataError,
    cache_dir,
    dataset_files,
    downloads_enabled,
    fetch_dataset,
    file_sha256,
    get_entry,
    list_datasets,
    resolve,
    search_dirs,
    verify_file,
)

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "DataError",
    "FileEntry",
    "IDXError",
    "MissingDataError",
    "cache_dir",
    "dataset_files",
    "downloads_enabled",
    "fetch_dataset",
    "file_sha256",
    "get_entry",
    "list_datasets",
    "load_demo_mnist",
    "load_mnist",
    "read_idx",
    "resolve",
    "search_dirs",
    "verify_file",
]
