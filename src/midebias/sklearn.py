"""`MIFairClassifier`: the paper's method behind the scikit-learn / Fairlearn contract.

    clf = MIFairClassifier().fit(X, y, sensitive_features=s)   # or ="sex"
    clf.predict(X); clf.predict_proba(X); clf.transform(X)  # z = f(x)

A front end over the library's one implementation of each method: the data are encoded
here, then an encoder f (MLP, x -> z) and a classifier head g (z -> logits) are trained by
the same loop and the same method classes as ``midebias train`` (``midebias.methods``,
``midebias.training.loop.fit``). ``method="mi"`` (Ragonesi et al.: min CE + lambda_ *
I(z; s)) with its settings (``MISettings``: presets, lambda_, the critic's schedule);
peers on the same network: ``"vanilla"``, ``"blindeye"`` (Alvi et al. 2018) and ``"lnl"``
(Kim et al. 2019), each with its own settings. The default (mi, preset and lambda_
chosen on Adult's validation split) is explained in docs/tabular.md.

Inputs. ``X`` is a numeric array or a pandas DataFrame. A DataFrame's object, string,
category and bool columns are one-hot encoded (unknown categories at predict time encode
as zeros) and its numeric columns standardised; an array's columns are all standardised.
Both are fitted in ``fit`` only. ``sensitive_features`` is an array with one value per
row (one column, or several whose combinations form the groups) or the name of a column
of X; a named column is removed from the features (``include_sensitive=False``), both in
``fit`` and, when present, in ``predict`` / ``transform``.

Without ``sensitive_features`` the penalty has nothing to act on: ``fit`` then trains the
encoder and head on cross-entropy alone (the method is not used), warns, sets ``fair_`` to
False. This keeps the estimator usable wherever scikit-learn calls ``fit(X, y)`` (e.g.
``check_estimator``, a plain ``cross_val_score``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data
from torch.func import functional_call

from midebias.datasets.registry import TABULAR_PRESETS
from midebias.datasets.tensors import TensorSplit
from midebias.methods import METHODS, Vanilla
from midebias.models import TabularMLP
from midebias.training.loop import TrainingError, fit

__all__ = ["FAIR_METHODS", "MIFairClassifier", "auto_epochs"]

FAIR_METHODS = tuple(METHODS)
AUTO_UPDATES = 2000  # epochs=None: about this many minibatch updates
MAX_GROUPS = 100  # more distinct sensitive values than this is taken for a continuous s


def auto_epochs(n_rows: int, batch_size: int) -> int:
    """Epochs for about AUTO_UPDATES minibatch updates, at least 10 and at most 200."""
    per_epoch = max(1, n_rows // batch_size)  # a short remainder joins the last batch
    return int(np.clip(-(-AUTO_UPDATES // per_epoch), 10, 200))


def _is_frame(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


# --------------------------------------------------------------------------- estimator


class MIFairClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Classifier whose representation z is trained to carry no information on s.

    A front end: the network is :class:`midebias.models.TabularMLP`, the training method
    one of :data:`midebias.methods.METHODS` with its own typed settings, trained by the one
    loop :func:`midebias.training.loop.fit` (the same code as ``midebias train``).

    Parameters
    ----------
    lambda_ : float or None, default=None
        method "mi" only: the weight of the MI term (``MISettings.lambda_``). None: the
        preset's value. BlindEye's and LNL's strengths are their own settings (``alpha``;
        ``entropy_weight`` and ``grl_scale``), passed through ``settings``.
    method : {"mi", "vanilla", "blindeye", "lnl"}, default="mi"
    preset : str or None, default=None
        The method's named settings (mi: "parity", "staged-gaussian", "staged", "balanced",
        "strict", "guarded", "best", "paper", "fast";
        lnl: "paper", "stable"). None: "parity" for mi (chosen on Adult's validation
        split, docs/tabular.md), the method's own default otherwise.
    settings : dict or None, default=None
        Any other setting of the method, by the name it has in the method's Settings
        class (e.g. ``{"critic_steps": 5, "conditional": True}`` for mi; see
        ``midebias settings mi``).
    z_dim, hidden : int, default=8, 64
        Width of z and of the hidden layers (encoder x -> hidden -> z, head z -> hidden ->
        classes).
    epochs : int or None, default=None
        Passes over the training rows. None: enough for about 2,000 minibatch updates,
        at least 10 and at most 200 epochs.
    batch_size, lr : default=256, 1e-3
        Minibatch size and the Adam learning rate of encoder and head.
    include_sensitive : bool, default=False
        Keep a sensitive column named by ``sensitive_features=`` among the features.
    random_state : int, RandomState or None, default=0
        Seeds the weights, the minibatch order and the method's own draws; the same
        value gives the same model on the same device and thread count.
    device : str, default="cpu"

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ (DataFrame input) : as in scikit-learn.
    sensitive_groups_ : the distinct values of s seen in fit (None without s).
    sensitive_column_ : the column of X named by ``sensitive_features`` (or None).
    fair_ : whether the fairness term was trained (s given, method not vanilla).
    settings_ : the method's resolved settings (a frozen dataclass).
    history_ : one dict of mean training losses per epoch.
    epochs_ : the number of epochs trained (``epochs`` resolved).
    model_ : the fitted :class:`~midebias.models.TabularMLP`; ``encoder_``, ``head_`` its
        parts; ``adversary_`` the method's other networks; ``preprocessor_`` the encoding.
    """

    def __init__(
        self,
        lambda_: float | None = None,
        *,
        method: str = "mi",
        preset: str | None = None,
        settings: dict | None = None,
        z_dim: int = 8,
        hidden: int = 64,
        epochs: int | None = None,
        batch_size: int = 256,
        lr: float = 1e-3,
        include_sensitive: bool = False,
        random_state=0,
        device: str = "cpu",
    ):
        self.lambda_ = lambda_
        self.method = method
        self.preset = preset
        self.settings = settings
        self.z_dim = z_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.include_sensitive = include_sensitive
        self.random_state = random_state
        self.device = device

    # ----------------------------------------------------------------- settings

    def _check_params(self):
        """The method's resolved settings; ValueError naming the parameter if one is bad."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {tuple(METHODS)}, got {self.method!r}")
        for name in ("z_dim", "hidden", "epochs", "batch_size"):
            v = getattr(self, name)
            if name == "epochs" and v is None:
                continue
            if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size!r}")
        if not (isinstance(self.lr, Real) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        if self.settings is not None and not isinstance(self.settings, dict):
            raise ValueError(f"settings must be a dict or None, got {self.settings!r}")
        spec = METHODS[self.method].Settings
        values = dict(self.settings or {})
        preset = TABULAR_PRESETS.get(self.method) if self.preset is None else self.preset
        if preset is not None:
            values["preset"] = preset
        if self.lambda_ is not None:
            if "lambda_" not in spec.names():
                raise ValueError(
                    f"lambda_ is the weight of method 'mi'; {self.method!r} takes its "
                    f"strength through settings ({', '.join(spec.names()) or 'none'})"
                )
            if not (isinstance(self.lambda_, Real) and not isinstance(self.lambda_, bool)):
                raise ValueError(f"lambda_ must be a number >= 0, got {self.lambda_!r}")
            values["lambda_"] = self.lambda_
        return spec.resolve(values)

    # ----------------------------------------------------------------- inputs

    def _split_sensitive(self, X, sensitive_features):
        """(X without a named sensitive column, s values or None, the column name or None)."""
        if sensitive_features is None:
            return X, None, None
        if isinstance(sensitive_features, (str, int, np.integer)) and not isinstance(
            sensitive_features, bool
        ):
            name = sensitive_features
            if not _is_frame(X):
                raise ValueError(
                    f"sensitive_features={name!r} names a column, but X has no column names: "
                    "pass X as a pandas DataFrame, or pass the sensitive values themselves"
                )
            if name not in X.columns:
                raise ValueError(
                    f"sensitive_features={name!r} is not a column of X; its columns are "
                    f"{list(X.columns)}"
                )
            s = X[name].to_numpy()
            if not self.include_sensitive:
                X = X.drop(columns=[name])
            return X, s, name
        return X, sensitive_features, None

    def _encode_sensitive(self, s, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Group index per row and the distinct groups (rows of a 2-D s are combined)."""
        s = np.asarray(s.to_numpy() if hasattr(s, "to_numpy") else s, dtype=object)
        if s.ndim == 0:
            raise ValueError("sensitive_features must have one value per row of X, got a scalar")
        if s.ndim > 2:
            raise ValueError(f"sensitive_features must be 1-D or 2-D, got shape {s.shape}")
        if s.shape[0] != n_rows:
            raise ValueError(
                f"sensitive_features has {s.shape[0]} rows but X has {n_rows}: pass one "
                "sensitive value per row of X"
            )
        s2 = s.reshape(n_rows, -1)
        missing = np.array(
            [[v is None or (isinstance(v, float) and np.isnan(v)) for v in r] for r in s2]
        )
        if missing.any():
            raise ValueError(
                f"sensitive_features has {int(missing.any(1).sum())} missing value(s) "
                "(NaN/None): drop or label those rows before fit"
            )
        keys = np.array(
            ["\x1f".join(map(repr, r)) if s2.shape[1] > 1 else r[0] for r in s2], dtype=object
        )
        try:
            groups, index = np.unique(keys, return_inverse=True)
        except TypeError:  # mixed types: compare as text
            groups, index = np.unique(keys.astype(str), return_inverse=True)
        if len(groups) < 2:
            raise ValueError(
                f"sensitive_features has 1 group ({groups[0]!r}): there is nothing to make z "
                "independent of; pass an attribute with at least two groups"
            )
        if len(groups) > MAX_GROUPS:
            raise ValueError(
                f"sensitive_features has {len(groups)} distinct values; it is read as groups "
                f"(at most {MAX_GROUPS}): bin a continuous attribute first"
            )
        return index.astype(np.int64), groups

    def _check_frame(self, X) -> None:
        if len(X) == 0:
            raise ValueError(
                "Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required."
            )
        if X.shape[1] == 0:
            raise ValueError("Found array with 0 feature(s) while a minimum of 1 is required.")
        nan_cols = [c for c in X.columns if X[c].isna().any()]
        if nan_cols:
            raise ValueError(
                f"Input X contains NaN in column(s) {nan_cols}: impute or drop those rows "
                "before calling MIFairClassifier"
            )
        for c in self._numeric_columns(X):
            if not np.isfinite(X[c].to_numpy(dtype=float)).all():
                raise ValueError(f"Input X contains infinity in column {c!r}")

    @staticmethod
    def _numeric_columns(X) -> list:
        return [c for c in X.columns if X[c].dtype.kind in "iufc"]

    def _features(self, X, *, fit: bool) -> np.ndarray:
        """Validate and encode X into the float32 matrix the encoder reads."""
        if fit:
            self.frame_input_ = _is_frame(X)
        elif self.sensitive_column_ is not None and not self.include_sensitive and _is_frame(X):
            if self.sensitive_column_ in X.columns:
                X = X.drop(columns=[self.sensitive_column_])
        if self.frame_input_:
            if not _is_frame(X):
                X = check_array(X, dtype=None, ensure_all_finite=False)
                validate_data(self, X, reset=False, skip_check_array=True)
                import pandas as pd

                X = pd.DataFrame(X, columns=self.feature_names_in_)
            else:
                validate_data(self, X, reset=fit, skip_check_array=True)
            self._check_frame(X)
            if fit:
                numeric = self._numeric_columns(X)
                other = [c for c in X.columns if c not in numeric]
                self.preprocessor_ = ColumnTransformer(
                    [
                        ("num", StandardScaler(), numeric),
                        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), other),
                    ]
                )
                out = self.preprocessor_.fit_transform(X)
            else:
                out = self.preprocessor_.transform(X)
        else:
            X = validate_data(self, X, reset=fit, dtype=[np.float64, np.float32])
            if fit:
                self.preprocessor_ = StandardScaler()
                out = self.preprocessor_.fit_transform(X)
            else:
                out = self.preprocessor_.transform(X)
        return np.ascontiguousarray(out, dtype=np.float32)

    # ----------------------------------------------------------------- fit

    def fit(
        self,
        X,
        y,
        *,
        sensitive_features=None,
        callback: Callable[[int, MIFairClassifier, dict], None] | None = None,
    ) -> MIFairClassifier:
        """Train encoder and head (and the method's adversary) on (X, y, s).

        Args:
            X: array (n, d) or DataFrame.
            y: class labels (n,), at least two classes.
            sensitive_features: array (n,) or (n, k), or the name of a column of X.
                Without it, plain cross-entropy training (see the module docstring).
            callback: called as ``callback(epoch, self, record)`` after every epoch, with
                the model ready for predict/transform and ``record`` the epoch's mean losses.
        """
        settings = self._check_params()
        if y is None:
            raise ValueError(
                f"This {type(self).__name__} estimator requires y to be passed, but the target "
                "y is None."
            )
        X, s, self.sensitive_column_ = self._split_sensitive(X, sensitive_features)
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y", ensure_all_finite=False)
        y = column_or_1d(y, warn=True)
        Xf = self._features(X, fit=True)
        if len(y) != len(Xf):
            raise ValueError(f"X has {len(Xf)} rows but y has {len(y)}: pass one label per row")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError("Input y contains NaN: drop or label those rows before fit")
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has 1 class ({self.classes_[0]!r}): a classifier needs at least two "
                "classes in y"
            )
        if s is not None:
            s_idx, self.sensitive_groups_ = self._encode_sensitive(s, len(Xf))
        else:
            s_idx, self.sensitive_groups_ = None, None
        self.fair_ = s is not None and self.method != "vanilla"
        if s is None and self.method != "vanilla":
            warnings.warn(
                f"{type(self).__name__}.fit got no sensitive_features: trained on "
                f"cross-entropy alone (method {self.method!r} not used). Pass "
                "sensitive_features=... for a fair fit.",
                UserWarning,
                stacklevel=2,
            )
        if not self.fair_ and self.method != "vanilla":
            settings = Vanilla.Settings()
        self._train(Xf, y_idx.astype(np.int64), s_idx, settings, callback)
        return self

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _train(self, X, y, s, settings, callback) -> None:
        seed = self._seed()
        device = torch.device(self.device)
        n, d = X.shape
        n_groups = len(self.sensitive_groups_) if s is not None else 1
        groups = s if s is not None else np.zeros(n, dtype=np.int64)
        split = TensorSplit.from_arrays(X, y, groups, n_groups, device)
        method_cls = METHODS[self.method] if self.fair_ else Vanilla
        gen = torch.Generator().manual_seed(seed)  # data order and, on CPU, the method's draws
        method_gen = gen if device.type == "cpu" else torch.Generator(device).manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # initial weights of every network built here
            model = TabularMLP(d, len(self.classes_), z_dim=self.z_dim, hidden=self.hidden)
            model.to(device)
            method = method_cls(
                model,
                lr=self.lr,
                c_dim=n_groups,
                c_groups=[n_groups],
                settings=settings,
                generator=method_gen,
            )
        self.model_, self.encoder_, self.head_ = model, model.encoder, model.head
        self.settings_ = method.settings
        self.adversary_ = {k: m for k, m in method.modules().items() if k != "model"}
        self.epochs_ = self._resolve_epochs(n)
        self.history_ = []

        def on_epoch(record: dict) -> None:
            entry = {"epoch": record["epoch"], **record["losses"]}
            self.history_.append(entry)
            if callback is not None:
                model.eval()
                callback(record["epoch"], self, entry)

        try:
            fit(
                method,
                split,
                epochs=self.epochs_,
                batch_size=self.batch_size,
                generator=gen,
                method_generator=method_gen,
                on_epoch=on_epoch,
                min_last=self.batch_size // 2,
            )
        except TrainingError as e:
            raise FloatingPointError(f"{e} (here: lr={self.lr}, lambda_={self.lambda_})") from None
        model.eval()

    def _resolve_epochs(self, n: int) -> int:
        return int(self.epochs) if self.epochs is not None else auto_epochs(n, self.batch_size)

    # ----------------------------------------------------------------- inference

    @torch.no_grad()
    def _forward(self, X, what: str) -> np.ndarray:
        check_is_fitted(self)
        Xf = torch.from_numpy(self._features(X, fit=False)).to(self.device, torch.float64)
        # Inference in float64: a row's output must not depend on the other rows of the
        # call (float32 matrix products differ in the last bits with the batch shape).
        enc = {k: v.double() for k, v in self.encoder_.state_dict().items()}
        head = {k: v.double() for k, v in self.head_.state_dict().items()}
        out = []
        for part in Xf.split(8192):
            z = functional_call(self.encoder_, enc, (part,))
            out.append(
                z if what == "z" else torch.softmax(functional_call(self.head_, head, (z,)), 1)
            )
        return torch.cat(out).cpu().numpy()

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes_``."""
        return self._forward(X, "proba")

    def predict(self, X) -> np.ndarray:
        """Predicted class labels (n,)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(1)]

    def transform(self, X) -> np.ndarray:
        """The representation z = f(x), (n, z_dim)."""
        return self._forward(X, "z")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the columns of ``transform``'s output: z0 ... z{z_dim-1}."""
        check_is_fitted(self)
        return np.asarray([f"z{i}" for i in range(self.z_dim)], dtype=object)

    def __sklearn_is_fitted__(self) -> bool:
        # `lambda_` is a setting whose name ends in "_", so the default test would pass
        # on an unfitted estimator.
        return hasattr(self, "encoder_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
