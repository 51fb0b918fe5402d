"""UCI Adult and German Credit: raw frames, a documented preprocessing, fixed splits.

Both files are located and checksum-verified by :func:`midebias.data.sources.resolve`
(``data_dir``, then ``MIDEBIAS_DATA_DIR``, then the user cache).

Adult (Census Income)
    * ``adult.data`` (32,561 rows) is the train file, ``adult.test`` (16,281 rows) the test
      file, as published. ``adult.test`` starts with a comment line ("|1x3 Cross
      validator"), which is skipped, and its labels end with '.' (">50K."), which is
      stripped. Blank lines at the end of the files are ignored.
    * Rows with a missing value ('?', in workclass, occupation or native-country) are
      dropped: 2,399 of the train rows and 1,221 of the test rows, leaving 30,162 and
      15,060 (the counts are recomputed and returned in ``TabularData.info``).
    * ``fnlwgt`` is dropped: it is the census sampling weight of the row, not a property
      of the person.
    * target: income > 50K -> 1, else 0.
    * sensitive ``sex``: Male -> 1, Female -> 0. Sensitive ``age``: age >= 25 -> 1
      (the threshold commonly used for German Credit, kept for both data sets; about
      85% of the Adult rows are >= 25).
    * validation: ``val_fraction`` (10%) of the train file, drawn stratified by the target
      with ``seed``; the test file is never split.

German Credit (Statlog; ``german.data``, 1,000 rows, 20 attributes + label)
    * target: label 1 (good) -> 1, 2 (bad) -> 0.
    * sensitive ``age`` (attribute 13, years): >= 25 -> 1. Sensitive ``sex`` (attribute
      9, personal status and sex): A91, A93, A94 (male) -> 1, A92, A95 (female) -> 0.
    * split: a stratified (by target) 60/20/20 train/validation/test split drawn with
      ``seed``. The benchmark keeps this split fixed (seed 0) and varies the model seed.

Features (both data sets)
    * The attribute(s) the sensitive variable is derived from are removed from the inputs
      unless ``include_sensitive=True``: ``sex`` / ``age`` for Adult; attribute 9 (which
      mixes sex with marital status) or attribute 13 (age) for German. This is the usual
      protocol of the representation-learning fairness literature (VFAE, Louizos et al.
      2016; Moyer et al. 2018): s is not an input, yet z can still recover it from
      correlated features (relationship, marital status, ...), which is what the penalty
      has to remove.
    * Categorical columns are one-hot encoded (``OneHotEncoder(handle_unknown='ignore')``:
      a category seen only in the test file encodes as all zeros); numeric columns are
      standardised (``StandardScaler``). Both are fitted on the train split only (not on
      validation or test rows) and returned as ``TabularData.preprocessor``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from midebias.data.sources import resolve

__all__ = [
    "ADULT_COLUMNS",
    "GERMAN_COLUMNS",
    "SENSITIVE",
    "TABULAR_DATASETS",
    "TabularData",
    "load_adult_frames",
    "load_german_frame",
    "load_tabular",
    "make_preprocessor",
]

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
ADULT_NUMERIC = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]

#: German Credit attributes 1..20 (names after the UCI documentation) and the label.
GERMAN_COLUMNS = [
    "checking_status",  # 1
    "duration",  # 2
    "credit_history",  # 3
    "purpose",  # 4
    "credit_amount",  # 5
    "savings",  # 6
    "employment_since",  # 7
    "installment_rate",  # 8
    "personal_status_sex",  # 9
    "other_debtors",  # 10
    "residence_since",  # 11
    "property",  # 12
    "age",  # 13
    "other_installment_plans",  # 14
    "housing",  # 15
    "existing_credits",  # 16
    "job",  # 17
    "people_liable",  # 18
    "telephone",  # 19
    "foreign_worker",  # 20
    "credit",  # label: 1 good, 2 bad
]
GERMAN_NUMERIC = [
    "duration",
    "credit_amount",
    "installment_rate",
    "residence_since",
    "age",
    "existing_credits",
    "people_liable",
]
GERMAN_MALE = ("A91", "A93", "A94")
GERMAN_FEMALE = ("A92", "A95")

AGE_THRESHOLD = 25

#: dataset -> sensitive attribute -> the raw columns it is derived from (removed from x).
SENSITIVE: dict[str, dict[str, tuple[str, ...]]] = {
    "adult": {"sex": ("sex",), "age": ("age",)},
    "german": {"age": ("age",), "sex": ("personal_status_sex",)},
}
TABULAR_DATASETS = tuple(SENSITIVE)


@dataclass
class TabularData:
    """A preprocessed tabular benchmark: float32 features, int64 target and sensitive arrays.

    ``frames`` holds the raw rows of each split (after dropping missing values, before
    encoding; target and sensitive columns removed as from X) for estimators that take
    DataFrames, e.g. :class:`midebias.sklearn.MIFairClassifier`.
    """

    name: str
    sensitive: str
    X_train: np.ndarray
    X_val: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    s_train: np.ndarray
    s_val: np.ndarray
    s_test: np.ndarray
    feature_names: list[str]
    preprocessor: ColumnTransformer
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, y, s) of split ``name`` ("train", "val" or "test")."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; choose train, val or test")
        return getattr(self, f"X_{name}"), getattr(self, f"y_{name}"), getattr(self, f"s_{name}")


# --------------------------------------------------------------------------- raw frames


def _read_adult(path: Path, *, test: bool) -> pd.DataFrame:
    df = pd.read_csv(
        path,
        header=None,
        names=ADULT_COLUMNS,
        skipinitialspace=True,
        skiprows=1 if test else 0,  # adult.test: first line is "|1x3 Cross validator"
        skip_blank_lines=True,
        dtype={c: str for c in ADULT_COLUMNS if c not in ADULT_NUMERIC + ["fnlwgt"]},
    )
    df["income"] = df["income"].str.strip().str.rstrip(".")  # adult.test: ">50K."
    return df


def load_adult_frames(
    data_dir: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Raw Adult train and test frames with the '?' rows dropped, and the row counts.

    Returns (train, test, info); info has ``raw_rows`` and ``dropped_rows`` per file.
    Columns are :data:`ADULT_COLUMNS`; ``income`` is "<=50K" or ">50K" in both files.
    """
    frames, info = [], {"raw_rows": {}, "dropped_rows": {}, "rows": {}}
    for fname, test in (("adult.data", False), ("adult.test", True)):
        df = _read_adult(resolve("uci-adult", fname, data_dir), test=test)
        missing = (df == "?").any(axis=1)
        key = "test" if test else "train"
        info["raw_rows"][key] = int(len(df))
        info["dropped_rows"][key] = int(missing.sum())
        df = df.loc[~missing].reset_index(drop=True)
        info["rows"][key] = int(len(df))
        frames.append(df)
    bad = set(frames[0]["income"]) | set(frames[1]["income"])
    if bad != {"<=50K", ">50K"}:
        raise ValueError(f"unexpected Adult income labels {sorted(bad)}")
    return frames[0], frames[1], info


def load_german_frame(data_dir: str | Path | None = None) -> pd.DataFrame:
    """The raw German Credit frame (1,000 rows, :data:`GERMAN_COLUMNS`, label 1/2)."""
    path = resolve("uci-german", "german.data", data_dir)
    return pd.read_csv(path, header=None, names=GERMAN_COLUMNS, sep=r"\s+")


# --------------------------------------------------------------------------- preprocessing


def make_preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """Standardise ``numeric``, one-hot ``categorical`` (unknown categories -> zeros)."""
    return ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ],
        verbose_feature_names_out=False,
    )


def _adult(sensitive: str, seed: int, val_fraction: float, data_dir) -> tuple:
    train, test, info = load_adult_frames(data_dir)
    y = {k: (df["income"] == ">50K").to_numpy(np.int64) for k, df in (("tr", train), ("te", test))}
    if sensitive == "sex":
        s = {k: (df["sex"] == "Male").to_numpy(np.int64) for k, df in (("tr", train), ("te", test))}
    else:
        s = {
            k: (df["age"] >= AGE_THRESHOLD).to_numpy(np.int64)
            for k, df in (("tr", train), ("te", test))
        }
    idx_tr, idx_val = train_test_split(
        np.arange(len(train)), test_size=val_fraction, random_state=seed, stratify=y["tr"]
    )
    frames = {
        "train": train.iloc[idx_tr].reset_index(drop=True),
        "val": train.iloc[idx_val].reset_index(drop=True),
        "test": test,
    }
    ys = {"train": y["tr"][idx_tr], "val": y["tr"][idx_val], "test": y["te"]}
    ss = {"train": s["tr"][idx_tr], "val": s["tr"][idx_val], "test": s["te"]}
    drop = ["income", "fnlwgt"]
    return frames, ys, ss, drop, ADULT_NUMERIC, info


def _german(sensitive: str, seed: int, data_dir) -> tuple:
    df = load_german_frame(data_dir)
    labels = set(df["credit"].unique())
    if not labels <= {1, 2}:
        raise ValueError(f"unexpected German credit labels {sorted(labels)}")
    y = (df["credit"] == 1).to_numpy(np.int64)
    if sensitive == "age":
        s = (df["age"] >= AGE_THRESHOLD).to_numpy(np.int64)
    else:
        status = df["personal_status_sex"]
        unknown = set(status) - set(GERMAN_MALE) - set(GERMAN_FEMALE)
        if unknown:
            raise ValueError(f"unexpected German attribute 9 codes {sorted(unknown)}")
        s = status.isin(GERMAN_MALE).to_numpy(np.int64)
    idx = np.arange(len(df))
    idx_tr, idx_rest = train_test_split(idx, test_size=0.4, random_state=seed, stratify=y)
    idx_val, idx_te = train_test_split(
        idx_rest, test_size=0.5, random_state=seed, stratify=y[idx_rest]
    )
    parts = {"train": idx_tr, "val": idx_val, "test": idx_te}
    frames = {k: df.iloc[v].reset_index(drop=True) for k, v in parts.items()}
    ys = {k: y[v] for k, v in parts.items()}
    ss = {k: s[v] for k, v in parts.items()}
    info = {"raw_rows": {"all": int(len(df))}, "rows": {k: int(len(v)) for k, v in parts.items()}}
    return frames, ys, ss, ["credit"], GERMAN_NUMERIC, info


def load_tabular(
    name: str,
    sensitive: str | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    *,
    include_sensitive: bool = False,
    val_fraction: float = 0.1,
) -> TabularData:
    """Load, split and preprocess a tabular benchmark (see the module docstring).

    Args:
        name: "adult" or "german".
        sensitive: "sex" or "age"; default "sex" for Adult, "age" for German.
        seed: seeds the split (Adult: the validation carve-out; German: train/val/test).
        data_dir: folder with uci-adult/ or uci-german/ (else MIDEBIAS_DATA_DIR, cache).
        include_sensitive: keep the column(s) s is derived from among the features.
        val_fraction: Adult only; share of adult.data held out for validation.
    """
    if name not in SENSITIVE:
        raise ValueError(f"unknown tabular dataset {name!r}; choose one of {TABULAR_DATASETS}")
    if sensitive is None:
        sensitive = "sex" if name == "adult" else "age"
    if sensitive not in SENSITIVE[name]:
        raise ValueError(
            f"unknown sensitive attribute {sensitive!r} for {name}; choose one of "
            f"{sorted(SENSITIVE[name])}"
        )
    if name == "adult":
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        frames, ys, ss, drop, numeric, info = _adult(sensitive, seed, val_fraction, data_dir)
    else:
        frames, ys, ss, drop, numeric, info = _german(sensitive, seed, data_dir)
    if not include_sensitive:
        drop = drop + list(SENSITIVE[name][sensitive])
    frames = {k: df.drop(columns=drop) for k, df in frames.items()}
    numeric = [c for c in numeric if c in frames["train"].columns]
    categorical = [c for c in frames["train"].columns if c not in numeric]
    pre = make_preprocessor(numeric, categorical)
    X_train = pre.fit_transform(frames["train"]).astype(np.float32)  # train split only
    X_val = pre.transform(frames["val"]).astype(np.float32)
    X_test = pre.transform(frames["test"]).astype(np.float32)
    info.update(
        {
            "seed": seed,
            "include_sensitive": include_sensitive,
            "dropped_columns": drop,
            "numeric": numeric,
            "categorical": categorical,
            "age_threshold": AGE_THRESHOLD,
        }
    )
    return TabularData(
        name=name,
        sensitive=sensitive,
        X_train=X_train,
        X_val=X_val,
        X_test=X_test,
        y_train=ys["train"],
        y_val=ys["val"],
        y_test=ys["test"],
        s_train=ss["train"],
        s_val=ss["val"],
        s_test=ss["test"],
        feature_names=[str(f) for f in pre.get_feature_names_out()],
        preprocessor=pre,
        frames=frames,
        info=info,
    )
