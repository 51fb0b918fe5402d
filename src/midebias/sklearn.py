"""`MIFairClassifier`: the paper's method behind the scikit-learn / Fairlearn contract.

    clf = MIFairClassifier(lambda_=1.0).fit(X, y, sensitive_features=s)   # or ="sex"
    clf.predict(X); clf.predict_proba(X); clf.transform(X)  # z = f(x)

An encoder f (MLP, x -> z) and a classifier head g (z -> logits) are trained on
cross-entropy; with ``method="mi"`` the encoder also descends lambda * I(z; s), estimated
by a statistics network (Donsker-Varadhan bound by default) trained against it (Ragonesi et
al.: min CE + lambda * I(z; c)). The penalty is :class:`midebias.penalty.MIPenalty`'s
single joint step: the MI gradient on z is clipped to the norm of the cross-entropy
gradient on z and added times lambda, so lambda is a loss weight here, not the learning-
rate scale of the authors' separate second step (see ``midebias.methods.mi``). Peers on the same
encoder: ``"vanilla"`` (cross-entropy only), ``"blindeye"`` (Alvi et al. 2018: confusion
loss of a bias head, weight lambda_) and ``"lnl"`` (Kim et al. 2019: gradient reversal of
a bias head scaled by lambda_, plus LNL's entropy term with weight 0.01).

Inputs. ``X`` is a numeric array or a pandas DataFrame. A DataFrame's object, string,
category and bool columns are one-hot encoded (unknown categories at predict time encode
as zeros) and its numeric columns standardised; an array's columns are all standardised.
Both are fitted in ``fit`` only. ``sensitive_features`` is an array with one value per
row (one column, or several whose combinations form the groups) or the name of a column
of X; a named column is removed from the features (``include_sensitive=False``), both in
``fit`` and, when present, in ``predict`` / ``transform``.

Without ``sensitive_features`` the penalty has nothing to act on: ``fit`` then trains the
encoder and head on cross-entropy alone (lambda_ ignored), warns, and sets ``fair_`` to
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
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data
from torch import nn
from torch.func import functional_call

from midebias.estimators import check_estimator_name
from midebias.methods.adversarial import BiasHead, grad_reverse
from midebias.penalty import CONDITIONAL_ESTIMATORS, MIPenalty

__all__ = ["FAIR_METHODS", "MIFairClassifier", "auto_epochs"]

FAIR_METHODS = ("vanilla", "mi", "blindeye", "lnl")
LNL_ENTROPY_WEIGHT = 0.01  # Kim et al. 2019's lambda for the entropy term
AUTO_UPDATES = 2000  # epochs=None: about this many minibatch updates
MAX_GROUPS = 100  # more distinct sensitive values than this is taken for a continuous s


def auto_epochs(n_rows: int, batch_size: int) -> int:
    """Epochs for about AUTO_UPDATES minibatch updates, at least 10 and at most 200."""
    per_epoch = max(1, n_rows // batch_size)  # a short remainder joins the last batch
    return int(np.clip(-(-AUTO_UPDATES // per_epoch), 10, 200))


# --------------------------------------------------------------------------- objectives
# One class per method, each with the same call: step(x, y, c) -> dict of losses.


class _Objective:
    def __init__(self, clf, encoder, head, opt, n_groups, generator):
        self.clf, self.encoder, self.head, self.opt = clf, encoder, head, opt

    def ce(self, x, y):
        z = self.encoder(x)
        return z, F.cross_entropy(self.head(z), y)

    def modules(self) -> dict[str, nn.Module]:
        return {}


class _Vanilla(_Objective):
    def step(self, x, y, c):
        _, ce = self.ce(x, y)
        self.opt.zero_grad(set_to_none=True)
        ce.backward()
        self.opt.step()
        return {"ce": ce.item()}


class _MI(_Objective):
    """CE + lambda * I(z; s) (or I(z; s | y) with conditional), one joint step."""

    def __init__(self, clf, encoder, head, opt, n_groups, generator):
        super().__init__(clf, encoder, head, opt, n_groups, generator)
        self.penalty = MIPenalty(
            clf.z_dim,
            n_groups,
            lambda_=clf.lambda_,
            estimator=clf.estimator,
            conditional=clf.conditional,
            clip=clf.clip,
            critic_steps=clf.critic_steps,
            critic_lr=clf.critic_lr,
            critic_hidden=clf.critic_hidden,
            generator=generator,
        )

    def step(self, x, y, c):
        z, ce = self.ce(x, y)
        term = self.penalty(z, c, y=y, task_loss=ce)
        self.opt.zero_grad(set_to_none=True)
        (ce + term).backward()
        self.opt.step()
        return {"ce": ce.item(), "mi": float(self.penalty.last_estimate)}

    def modules(self):
        return {"penalty": self.penalty}  # its critic and the running statistics of z


class _BiasAdversary(_Objective):
    def __init__(self, clf, encoder, head, opt, n_groups, generator):
        super().__init__(clf, encoder, head, opt, n_groups, generator)
        self.bias_head = BiasHead(clf.z_dim, [n_groups], clf.hidden)
        self.opt_bias = torch.optim.Adam(self.bias_head.parameters(), lr=clf.lr)

    def modules(self):
        return {"bias_head": self.bias_head}


class _BlindEye(_BiasAdversary):
    """Alvi et al. 2018: the bias head learns s from detached z; the encoder minimises
    CE + lambda * CE(bias prediction, uniform)."""

    def step(self, x, y, c):
        z, ce = self.ce(x, y)
        bias_ce = self.bias_head.ce(z.detach(), c)
        self.opt_bias.zero_grad(set_to_none=True)
        bias_ce.backward()
        self.opt_bias.step()
        confusion = -F.log_softmax(self.bias_head(z)[0], 1).mean(1).mean()
        self.opt.zero_grad(set_to_none=True)
        (ce + self.clf.lambda_ * confusion).backward()
        self.bias_head.zero_grad(set_to_none=True)  # the head learns only in its own step
        self.opt.step()
        return {"ce": ce.item(), "bias_ce": bias_ce.item()}


class _LNL(_BiasAdversary):
    """Kim et al. 2019: CE + 0.01 * negative entropy of the bias prediction, then the bias
    head's CE with its gradient reversed (scale lambda) into the encoder."""

    def step(self, x, y, c):
        z, ce = self.ce(x, y)
        logits = self.bias_head(z)[0]
        neg_entropy = (F.softmax(logits, 1) * F.log_softmax(logits, 1)).sum(1).mean()
        self.opt.zero_grad(set_to_none=True)
        (ce + LNL_ENTROPY_WEIGHT * neg_entropy).backward()
        self.bias_head.zero_grad(set_to_none=True)
        self.opt.step()
        z = self.encoder(x)
        bias_ce = self.bias_head.ce(grad_reverse(z, self.clf.lambda_), c)
        self.opt.zero_grad(set_to_none=True)
        self.opt_bias.zero_grad(set_to_none=True)
        bias_ce.backward()
        self.opt.step()
        self.opt_bias.step()
        return {"ce": ce.item(), "bias_ce": bias_ce.item()}


_OBJECTIVES = {"vanilla": _Vanilla, "mi": _MI, "blindeye": _BlindEye, "lnl": _LNL}


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def _is_frame(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


# --------------------------------------------------------------------------- estimator


class MIFairClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Classifier whose representation z is trained to carry no information on s.

    Parameters
    ----------
    lambda_ : float, default=1.0
        Weight of the fairness term: of I(z; s) for "mi", of the confusion loss for
        "blindeye", of the gradient reversal for "lnl". Ignored by "vanilla".
    method : {"mi", "vanilla", "blindeye", "lnl"}, default="mi"
    estimator : str, default="dv"
        MI estimator of the penalty (``midebias.estimators.ESTIMATORS``); "dv" as in the paper.
    conditional : bool, default=False
        Penalise I(z; s | y) instead of I(z; s) (equalised-odds flavour; "mi" only).
    clip : bool, default=True
        Rescale the MI gradient on z to the norm of the cross-entropy gradient (MINE).
    z_dim, hidden : int, default=8, 64
        Width of z and of the hidden layers (encoder x -> hidden -> z, head z -> hidden ->
        classes, bias heads z -> hidden -> groups).
    epochs : int or None, default=None
        Passes over the training rows. None: enough for about 2,000 minibatch updates,
        at least 10 and at most 200 epochs (Adult, 27k rows: 19; 300 rows: 200).
    batch_size, lr, weight_decay : default=256, 1e-3, 0
        Adam on encoder and head, minibatches drawn by a seeded permutation each epoch.
    critic_steps, critic_lr, critic_hidden :
        Updates of the statistics network per step, its learning rate and width ("mi").
    include_sensitive : bool, default=False
        Keep a sensitive column named by ``sensitive_features=`` among the features.
    random_state : int, RandomState or None, default=0
        Seeds the weights, the minibatch order and the estimator's shuffles; the same
        value gives the same model on the same device and thread count.
    device : str, default="cpu"

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ (DataFrame input) : as in scikit-learn.
    sensitive_groups_ : the distinct values of s seen in fit (None without s).
    sensitive_column_ : the column of X named by ``sensitive_features`` (or None).
    fair_ : whether the fairness term was trained (s given, method not vanilla).
    history_ : one dict of mean training losses per epoch.
    epochs_ : the number of epochs trained (``epochs`` resolved).
    encoder_, head_ : the fitted torch modules; ``preprocessor_``: the fitted encoding.
    """

    def __init__(
        self,
        lambda_: float = 1.0,
        *,
        method: str = "mi",
        estimator: str = "dv",
        conditional: bool = False,
        clip: bool = True,
        z_dim: int = 8,
        hidden: int = 64,
        epochs: int | None = None,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        critic_steps: int = 5,
        critic_lr: float = 1e-3,
        critic_hidden: int = 64,
        include_sensitive: bool = False,
        random_state=0,
        device: str = "cpu",
    ):
        self.lambda_ = lambda_
        self.method = method
        self.estimator = estimator
        self.conditional = conditional
        self.clip = clip
        self.z_dim = z_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.critic_steps = critic_steps
        self.critic_lr = critic_lr
        self.critic_hidden = critic_hidden
        self.include_sensitive = include_sensitive
        self.random_state = random_state
        self.device = device

    # ----------------------------------------------------------------- settings

    def _check_params(self) -> None:
        if self.method not in FAIR_METHODS:
            raise ValueError(f"method must be one of {FAIR_METHODS}, got {self.method!r}")
        if not (isinstance(self.lambda_, Real) and self.lambda_ >= 0):
            raise ValueError(f"lambda_ must be a number >= 0, got {self.lambda_!r}")
        for name in ("z_dim", "hidden", "epochs", "batch_size", "critic_hidden"):
            v = getattr(self, name)
            if name == "epochs" and v is None:
                continue
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
        if not (isinstance(self.critic_steps, (int, np.integer)) and self.critic_steps >= 0):
            raise ValueError(f"critic_steps must be a whole number >= 0, got {self.critic_steps!r}")
        for name in ("lr", "critic_lr"):
            v = getattr(self, name)
            if not (isinstance(v, Real) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size!r}")
        check_estimator_name(self.estimator)
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.conditional and self.estimator not in CONDITIONAL_ESTIMATORS:
            raise ValueError(
                "conditional=True needs a shuffle-based estimator "
                f"({', '.join(CONDITIONAL_ESTIMATORS)}), not {self.estimator!r}"
            )

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
        self._check_params()
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
        if s is None and self.method != "vanilla" and self.lambda_ > 0:
            warnings.warn(
                f"{type(self).__name__}.fit got no sensitive_features: trained on "
                f"cross-entropy alone, lambda_={self.lambda_} ignored. Pass "
                "sensitive_features=... for a fair fit.",
                UserWarning,
                stacklevel=2,
            )
        self._train(Xf, y_idx.astype(np.int64), s_idx, callback)
        return self

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _train(self, X, y, s, callback) -> None:
        seed = self._seed()
        device = torch.device(self.device)
        n, d = X.shape
        n_groups = len(self.sensitive_groups_) if s is not None else 0
        kind = self.method if self.fair_ else "vanilla"
        shuffle_gen = torch.Generator().manual_seed(seed)
        estimator_gen = torch.Generator(device=device).manual_seed(seed + 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # initial weights of every module built here
            self.encoder_ = _mlp(d, self.hidden, self.z_dim).to(device)
            self.head_ = _mlp(self.z_dim, self.hidden, len(self.classes_)).to(device)
            params = list(self.encoder_.parameters()) + list(self.head_.parameters())
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
            objective = _OBJECTIVES[kind](
                self, self.encoder_, self.head_, opt, n_groups, estimator_gen
            )
            for m in objective.modules().values():
                m.to(device)
        self.adversary_ = objective.modules()
        Xt = torch.from_numpy(X).to(device)
        yt = torch.from_numpy(y).to(device)
        ct = F.one_hot(torch.from_numpy(s), n_groups).float().to(device) if s is not None else None
        self.epochs_ = self._resolve_epochs(n)
        self.history_ = []
        for epoch in range(1, self.epochs_ + 1):
            self.encoder_.train()
            self.head_.train()
            sums: dict[str, float] = {}
            batches = self._batches(n, shuffle_gen)
            for idx in batches:
                idx = idx.to(device)
                losses = objective.step(Xt[idx], yt[idx], ct[idx] if ct is not None else None)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
            record = {"epoch": epoch, **{k: v / len(batches) for k, v in sums.items()}}
            if not np.isfinite(record.get("ce", 0.0)):
                raise FloatingPointError(
                    f"training diverged: the cross-entropy is {record['ce']} after epoch "
                    f"{epoch}; lower lr (now {self.lr}) or lambda_ (now {self.lambda_})"
                )
            self.history_.append(record)
            self.encoder_.eval()
            self.head_.eval()
            if callback is not None:
                callback(epoch, self, record)
        self.encoder_.eval()
        self.head_.eval()

    def _resolve_epochs(self, n: int) -> int:
        return int(self.epochs) if self.epochs is not None else auto_epochs(n, self.batch_size)

    def _batches(self, n: int, gen: torch.Generator) -> list[torch.Tensor]:
        """A seeded permutation cut into minibatches; a remainder under half a batch joins
        the previous one (the estimators' in-batch shuffles need more than a few rows)."""
        batches = list(torch.randperm(n, generator=gen).split(self.batch_size))
        if len(batches) > 1 and len(batches[-1]) < self.batch_size // 2:
            last = batches.pop()
            batches[-1] = torch.cat([batches[-1], last])
        return batches

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
