"""IMDB faces with Kim et al.'s extreme-bias splits (gender the target, age the bias).

Files (docs/images.md says where to obtain them), under --data-dir DIR:

    DIR/imdb_crop/NN/<name>.jpg    the IMDB-WIKI cropped faces (imdb_crop.tar, "faces only")
    imdb_age_gender.npy            {image path: {"age": ..., "gender": 0 female / 1 male}}
    imdb_split.npy                 {"train_list": [...], "test_list": [...]}
    eb1_img_list.npy               EB1: women aged 0-29 and men aged 40+ (from train_list)
    eb2_img_list.npy               EB2: women aged 40+ and men aged 0-29 (from train_list)

The four .npy files are looked for in DIR, DIR/auxiliary and DIR/imdb_crop. They hold
pickled Python objects; they are read with an unpickler that only rebuilds numpy arrays
and plain containers (anything else is refused), never with np.load(allow_pickle=True).
No checksums are published for them; the sha256 of each file read is recorded in the run's
config.json.

Age enters the bias code as the authors binned it (Ragonesi et al.'s code, after Alvi et
al. 2018): 12 bins with edges 0, 20, 25, ..., 70, 120 (one-hot, 12 groups). Training uses
EB1 or EB2 (a seeded, stratified val_fraction held out as `val`); the other extreme split
and the unbiased test list are the evaluation splits.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

from midebias.data.sources import DataError, MissingDataError
from midebias.datasets.folder import FolderData, ImageTable, check_images, stratified_split

#: Upper edges of the age bins (years): [0, 20), [20, 25), ..., [65, 70), [70, 120].
AGE_EDGES = np.array([0, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 120])
AGE_BINS = len(AGE_EDGES) - 1
LIST_FILES = ("imdb_age_gender.npy", "imdb_split.npy", "eb1_img_list.npy", "eb2_img_list.npy")
WHERE = (
    "the faces: imdb_crop.tar ('faces only') from "
    "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/ ; imdb_age_gender.npy and "
    "imdb_split.npy: Kim et al.'s release linked from "
    "https://github.com/feidfoe/learning-not-to-learn (dataset/IMDB); eb1_img_list.npy and "
    "eb2_img_list.npy: the auxiliary files of https://github.com/rugrag/learn-unbiased (imdb)"
)


def age_bin(age: np.ndarray) -> np.ndarray:
    """The authors' age bin (0..11) of each age in years."""
    return np.clip(np.digitize(age, AGE_EDGES) - 1, 0, AGE_BINS - 1).astype(np.int64)


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        try:
            from numpy._core import multiarray  # numpy 2
        except ImportError:
            from numpy.core import multiarray
        return getattr(np, name) if module == "numpy" else getattr(multiarray, name)


def load_npy(path: Path):
    """The content of a .npy file; object arrays unpickled with numpy types only."""
    with path.open("rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                _, _, dtype = np.lib.format.read_array_header_2_0(f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            arr = _ArraysOnly(f, encoding="latin1").load()
        except (ValueError, EOFError, pickle.UnpicklingError, TypeError) as e:
            raise DataError(f"{path}: not a readable list file ({e})") from None
    return arr.item() if isinstance(arr, np.ndarray) and arr.shape == () else arr


def _text(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def find_files(root: Path) -> dict[str, Path]:
    """Kim et al.'s list files and the image folder, or a MissingDataError naming them."""
    found, missing = {}, []
    for name in LIST_FILES:
        hits = [d / name for d in (root, root / "auxiliary", root / "imdb_crop")]
        hit = next((p for p in hits if p.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found[name] = hit
    if not (root / "imdb_crop").is_dir():
        missing.append("imdb_crop/ (the face images)")
    if missing:
        raise MissingDataError(
            f"--data-dir {root}: missing {', '.join(missing)}. Obtain {WHERE}; layout: "
            "docs/images.md",
            dataset="imdb",
            missing=tuple(missing),
        )
    return found


def load_imdb(
    data_dir: str | Path,
    train_split: str = "eb1",
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    skip_bad: bool = False,
) -> FolderData:
    """Splits train (EB1 or EB2, less val), val, the other EB split, and test."""
    root = Path(data_dir)
    files = find_files(root)
    gt = load_npy(files["imdb_age_gender.npy"])
    split = load_npy(files["imdb_split.npy"])
    if not isinstance(gt, dict) or not isinstance(split, dict) or "test_list" not in split:
        raise DataError(
            f"{files['imdb_split.npy']} / {files['imdb_age_gender.npy']}: not Kim et al.'s "
            "format (a dict with test_list; a dict of age and gender per image)"
        )
    gt = {_text(k): v for k, v in gt.items()}
    lists = {
        "eb1": [_text(p) for p in load_npy(files["eb1_img_list.npy"])],
        "eb2": [_text(p) for p in load_npy(files["eb2_img_list.npy"])],
        "test": [_text(p) for p in split["test_list"]],
    }
    other = "eb2" if train_split == "eb1" else "eb1"
    images = root / "imdb_crop"
    info: dict = {"skipped_missing": 0, "skipped_corrupt": 0, "skipped_unlabelled": 0}
    tables = {}
    for name in (train_split, other, "test"):
        paths = [p for p in lists[name] if p in gt]
        info["skipped_unlabelled"] += len(lists[name]) - len(paths)
        ok, checked = check_images(images, paths, skip_bad)
        info["skipped_missing"] += checked["skipped_missing"]
        info["skipped_corrupt"] += checked["skipped_corrupt"]
        paths = [p for p, good in zip(paths, ok, strict=True) if good]
        if not paths:
            raise DataError(f"{name}: no readable labelled images under {images}")
        gender = np.array([int(gt[p]["gender"]) for p in paths], dtype=np.int64)
        if not set(np.unique(gender)) <= {0, 1}:
            raise DataError(f"{files['imdb_age_gender.npy']}: gender must be 0 or 1")
        ages = np.array([float(gt[p]["age"]) for p in paths])
        b = age_bin(ages)
        codes = np.eye(AGE_BINS, dtype=np.float32)[b]
        tables[name] = ImageTable([str(images / p) for p in paths], gender, codes, b)
    train = tables.pop(train_split)
    which = stratified_split(train.labels * AGE_BINS + train.bias, val_fraction, 0.0, seed)
    splits = {
        "train": train.subset(np.flatnonzero(which == "train")),
        "val": train.subset(np.flatnonzero(which == "val")),
        other: tables[other],
        "test": tables["test"],
    }
    settings = {
        "data_dir": str(root),
        "target": "gender",
        "classes": ["female", "male"],
        "bias": {"age": {"kind": "binned", "values": [str(e) for e in AGE_EDGES[:-1]]}},
        "train_split": train_split,
        "split": f"{train_split} less a stratified val (seed {seed})",
        "sizes": {s: len(t) for s, t in splits.items()},
        "sha256": {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in files.items()},
        **info,
    }
    return FolderData("imdb", splits, 2, [AGE_BINS], None, settings)
