"""A folder of images with a CSV of labels and bias attributes (users' own data).

Layout (docs/images.md)::

    DIR/labels.csv          path,<target>,<bias columns...>[,split]
    DIR/<path>              one image per row (any format Pillow reads), path relative to DIR

The target column holds class names (any text; classes are sorted). Each bias column is
categorical (one-hot in the code c, one group per column) or continuous: a column whose
every value is a number and that has more than MAX_CATEGORIES distinct values. Continuous
columns are standardised, or cut into `bins` quantile bins (then categorical). The bias
index b (what the leakage audit predicts) is the joint group of all bias columns, a
continuous column entering by its quantile bins. A `split` column (train/val/test) fixes the
splits; without it, a seeded split stratified by (target, bias group) is drawn.

Only labels, codes and file paths are held in memory; pixels are read by
`midebias.datasets.streaming.StreamingSplit`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from midebias.data.sources import DataError

MAX_CATEGORIES = 20
#: Quantile bins of a continuous column in the bias index b (the audit's classes).
AUDIT_BINS = 4
SPLITS = ("train", "val", "test")


@dataclass
class ImageTable:
    """One split: image files, target y, bias code c (float32 (N, c_dim)), bias index b."""

    paths: list[str]
    labels: np.ndarray
    codes: np.ndarray
    bias: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> ImageTable:
        return ImageTable(
            [self.paths[i] for i in idx], self.labels[idx], self.codes[idx], self.bias[idx]
        )


@dataclass
class FolderData:
    """All splits of an image-folder benchmark, and what the loop needs to know of them."""

    name: str
    splits: dict[str, ImageTable]
    num_classes: int
    c_groups: list[int] | None  # one-hot group sizes of c; None if a column is continuous
    image_size: tuple[int, int] | None  # (H, W) shared by every image, None if they differ
    settings: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> ImageTable:
        return self.splits[key]


def require_pillow():
    """The PIL.Image module, or an error saying how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading image files needs Pillow: pip install midebias[images]") from None
    return Image


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file (DataError naming the file if it cannot be read)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (the CSV of image paths and labels)")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read it as a CSV file ({e})") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return header, rows


def _numbers(values: list[str]) -> np.ndarray | None:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return None


def quantile_bins(x: np.ndarray, bins: int) -> np.ndarray:
    """Bin index (0..bins-1) of each value by the quantiles of x (ties share a bin)."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, x, side="right").astype(np.int64)


@dataclass
class BiasColumn:
    name: str
    kind: str  # categorical | continuous | binned
    values: list[str] | None  # categories (categorical, binned: bin names)
    index: np.ndarray  # category / bin of each row (continuous: its AUDIT_BINS bin)
    feature: np.ndarray  # float32 (N, k): one-hot, or the standardised value (N, 1)


def encode_bias(name: str, raw: list[str], bins: int | None) -> BiasColumn:
    """Encode one bias column (see the module docstring)."""
    values = sorted(set(raw))
    if len(values) < 2:
        raise DataError(
            f"bias column {name!r} has a single value ({values[0]!r}) in every row: there is "
            "no bias to remove; choose another --bias column"
        )
    numbers = _numbers(raw)
    if numbers is not None and len(values) > MAX_CATEGORIES:
        if not np.isfinite(numbers).all():
            raise DataError(f"bias column {name!r} holds NaN or infinite values")
        if bins is not None:
            index = quantile_bins(numbers, bins)
            k = int(index.max()) + 1
            return BiasColumn(
                name,
                "binned",
                [f"q{i}" for i in range(k)],
                index,
                np.eye(k, dtype=np.float32)[index],
            )
        std = numbers.std()
        feature = ((numbers - numbers.mean()) / std).astype(np.float32)[:, None]
        return BiasColumn(name, "continuous", None, quantile_bins(numbers, AUDIT_BINS), feature)
    if numbers is not None:  # numeric categories sort as numbers
        values = sorted(values, key=float)
    lookup = {v: i for i, v in enumerate(values)}
    index = np.array([lookup[v] for v in raw], dtype=np.int64)
    return BiasColumn(
        name, "categorical", values, index, np.eye(len(values), dtype=np.float32)[index]
    )


def stratified_split(
    strata: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """A split name per row, seeded and stratified: rows are shuffled within their stratum
    and placed at evenly spaced quantiles of it; the first round(N * test_fraction) rows in
    quantile order are test, the next round(N * val_fraction) val, the rest train. Each
    stratum keeps its share in every split (to a row), and the split sizes are exact."""
    rng = np.random.default_rng(seed)
    key = np.empty(len(strata))
    for s in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == s))
        key[rows] = (np.arange(len(rows)) + rng.random()) / len(rows)
    order = np.lexsort((rng.random(len(strata)), key))
    n_test = int(round(len(strata) * test_fraction))
    n_val = int(round(len(strata) * val_fraction))
    out = np.full(len(strata), "train", dtype=object)
    out[order[:n_test]] = "test"
    out[order[n_test : n_test + n_val]] = "val"
    return out


def check_images(root: Path, paths: list[str], skip_bad: bool) -> tuple[list[bool], dict]:
    """Which images exist and open (their header parses); a DataError naming the first bad
    one and the count, unless `skip_bad` (then the count is reported in the returned info)."""
    Image = require_pillow()
    ok, sizes, missing, corrupt = [], set(), [], []
    for p in paths:
        f = root / p
        if not f.is_file():
            missing.append(p)
            ok.append(False)
            continue
        try:
            with Image.open(f) as im:
                sizes.add((im.height, im.width))
            ok.append(True)
        except Exception:  # noqa: BLE001 - Pillow raises many kinds for a bad file
            corrupt.append(p)
            ok.append(False)
    if (missing or corrupt) and not skip_bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {root / missing[0]})")
        if corrupt:
            parts.append(f"{len(corrupt)} not readable as images (first: {root / corrupt[0]})")
        raise DataError(
            f"{'; '.join(parts)}; fix or remove those rows, or pass --skip-bad-images to "
            "leave them out (the count is recorded in config.json)"
        )
    info = {"skipped_missing": len(missing), "skipped_corrupt": len(corrupt)}
    info["image_size"] = list(next(iter(sizes))) if len(sizes) == 1 else None
    return ok, info


def load_folder(
    data_dir: str | Path,
    target: str,
    bias: list[str],
    *,
    csv_name: str = "labels.csv",
    path_column: str = "path",
    bins: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    skip_bad: bool = False,
    name: str = "folder",
) -> FolderData:
    """Read DIR/labels.csv and check every image; see the module docstring."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"--data-dir {root}: no such folder")
    csv_path = root / csv_name
    header, rows = read_csv(csv_path)
    wanted = [path_column, target, *bias]
    absent = [c for c in wanted if c not in header]
    if absent:
        raise DataError(
            f"{csv_path}: no column {absent[0]!r} (columns: {', '.join(header)}); "
            "check --target/--bias"
        )
    if target in bias:
        raise DataError(f"--target {target} is also a --bias column")
    empty = [(i, c) for i, r in enumerate(rows) for c in wanted if not (r.get(c) or "").strip()]
    if empty:
        i, c = empty[0]
        raise DataError(f"{csv_path}: {len(empty)} empty cells (first: row {i + 2}, column {c!r})")
    has_split = "split" in header
    if has_split:
        bad = sorted({r["split"] for r in rows} - set(SPLITS))
        if bad:
            raise DataError(f"{csv_path}: column 'split' holds {bad[0]!r}; use train, val or test")
    ok, info = check_images(root, [r[path_column] for r in rows], skip_bad)
    rows = [r for r, good in zip(rows, ok, strict=True) if good]
    if not rows:
        raise DataError(f"{csv_path}: no readable images left")

    classes = sorted({r[target] for r in rows})
    if len(classes) < 2:
        raise DataError(f"target column {target!r} has a single class ({classes[0]!r})")
    if _numbers(classes) is not None:
        classes = sorted(classes, key=float)
    lookup = {v: i for i, v in enumerate(classes)}
    labels = np.array([lookup[r[target]] for r in rows], dtype=np.int64)
    cols = [encode_bias(b, [r[b] for r in rows], bins) for b in bias]
    codes = np.concatenate([c.feature for c in cols], axis=1).astype(np.float32)
    joint = np.stack([c.index for c in cols], axis=1)
    _, b = np.unique(joint, axis=0, return_inverse=True)
    b = b.reshape(-1).astype(np.int64)
    categorical = all(c.kind != "continuous" for c in cols)
    c_groups = [len(c.values) for c in cols] if categorical else None

    if has_split:
        which = np.array([r["split"] for r in rows], dtype=object)
    else:
        which = stratified_split(labels * (int(b.max()) + 1) + b, val_fraction, test_fraction, seed)
    table = ImageTable([r[path_column] for r in rows], labels, codes, b)
    splits = {s: table.subset(np.flatnonzero(which == s)) for s in SPLITS}
    empty_splits = [s for s, t in splits.items() if len(t) == 0]
    if empty_splits:
        raise DataError(f"{csv_path}: split {empty_splits[0]!r} has no images")
    splits = {s: _absolute(t, root) for s, t in splits.items()}
    settings = {
        "data_dir": str(root),
        "csv": csv_name,
        "target": target,
        "classes": classes,
        "bias": {c.name: {"kind": c.kind, "values": c.values} for c in cols},
        "split": "column" if has_split else f"stratified seed {seed}",
        "sizes": {s: len(t) for s, t in splits.items()},
        **info,
    }
    size = tuple(info["image_size"]) if info["image_size"] else None
    return FolderData(name, splits, len(classes), c_groups, size, settings)


def _absolute(t: ImageTable, root: Path) -> ImageTable:
    return ImageTable([str(root / p) for p in t.paths], t.labels, t.codes, t.bias)
