"""Audit the mutual information between two fixed samples with a fresh, held-out estimate.

A representation trained against an estimator can fool that estimator; leakage is
measured credibly only by a *fresh* estimator trained after the fact and evaluated on data
it was not trained on (Elazar & Goldberg 2018). :func:`estimate_mi` does exactly that;
:func:`fit_estimator` is the same procedure returning the trained estimator and the
held-out tensors, for callers that want more than one number.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .base import MIEstimator
from .bounds import InfoNCEEstimator

#: Fewest samples accepted in total; each of the train and held-out parts keeps MIN_PART.
MIN_SAMPLES = 20
MIN_PART = 10


class FittedEstimator(NamedTuple):
    """A trained estimator with the held-out data it has never seen."""

    estimator: MIEstimator
    x_test: Tensor  # standardised with the train part's statistics
    y_test: Tensor  # standardised, or class indices 0..K-1 when categorical
    steps: int  # optimiser steps actually taken (early stopping may end sooner)


class SingleClassError(ValueError):
    """Categorical y holds one class only: I(x; y) = 0, nothing to train."""


def _to_numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D (samples first), got shape {arr.shape}.")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued, got dtype {arr.dtype}.")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite values; remove or impute them.")
    return arr


def _standardise(a: np.ndarray, train: np.ndarray, squash: bool = True) -> np.ndarray:
    """Scale columns to zero mean and unit variance with the *train* part's statistics,
    then squash tails with arcsinh. Both are invertible per column, so the MI is unchanged;
    the squashing keeps held-out values of a column that was (nearly) constant on the train
    part, e.g. a rarely firing ReLU unit, from reaching the critic as values in the
    thousands, where its exp(T) term ruined DV/MINE estimates (large negative values).
    CLUB is not squashed: its value depends on how well a Gaussian q fits the data as is."""
    mean = a[train].mean(axis=0)
    std = a[train].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)  # a constant column stays constant (zero)
    scaled = (a - mean) / std
    return np.arcsinh(scaled) if squash else scaled


def _validation_loss(est: MIEstimator, z: Tensor, c: Tensor, seed: int) -> float:
    """The estimator's loss on the validation slice, in eval mode, with a fixed shuffle.

    Re-seeding the shuffle generator makes successive checkpoints face the same negative
    pairs, so their comparison is not blurred by shuffle noise.
    """
    saved = est.generator
    est.generator = torch.Generator().manual_seed(seed + 3)
    est.eval()
    try:
        with torch.no_grad():
            value = float(est.loss(z, c))
    finally:
        est.generator = saved
    return value if math.isfinite(value) else math.inf


def _prepare(
    x: Any, y: Any, seed: int, test_fraction: float, categorical: bool | None, squash: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int | None]:
    """Check, split and standardise; returns x, y, train and test indices, and K or None."""
    x_arr, y_arr = _to_numpy(x, "x"), _to_numpy(y, "y")
    n = x_arr.shape[0]
    if y_arr.shape[0] != n:
        raise ValueError(
            f"x and y must have the same number of samples, got {n} and {y_arr.shape[0]}."
        )
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}.")
    n_test = int(round(n * test_fraction))
    if n < MIN_SAMPLES or min(n_test, n - n_test) < MIN_PART:
        raise ValueError(
            f"too few samples: got {n}, need at least {MIN_SAMPLES} and at least {MIN_PART} "
            f"in each of the train and held-out parts (test_fraction={test_fraction})."
        )

    is_int = np.issubdtype(y_arr.dtype, np.integer) or np.issubdtype(y_arr.dtype, np.bool_)
    if categorical is None:
        categorical = y_arr.ndim == 1 and is_int
    n_classes = None
    if categorical:
        if y_arr.ndim != 1:
            raise ValueError(f"categorical y must be 1-D class labels, got shape {y_arr.shape}.")
        _, y_arr = np.unique(y_arr, return_inverse=True)  # any labels -> 0..K-1
        n_classes = int(y_arr.max()) + 1

    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    x_arr = _standardise(x_arr.reshape(n, -1).astype(np.float64), train, squash)
    if not categorical:
        y_arr = _standardise(y_arr.reshape(n, -1).astype(np.float64), train, squash)
    return x_arr, y_arr, train, test, n_classes


def fit_estimator(
    x: Any,
    y: Any,
    *,
    estimator: str = "mine",
    seed: int = 0,
    test_fraction: float = 0.5,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    hidden: int = 64,
    layers: int = 2,
    val_fraction: float = 0.2,
    eval_every: int = 50,
    patience: int = 10,
    device: str | torch.device = "cpu",
    categorical: bool | None = None,
    num_threads: int | None = 1,
    **estimator_kw: Any,
) -> FittedEstimator:
    """Split, standardise and train a fresh estimator; see :func:`estimate_mi` for the args.

    Returns the trained estimator (best validation checkpoint, in eval mode) together with
    the held-out part, standardised like the train part.
    """
    from . import ESTIMATORS  # here, not at the top: the package imports this module

    if estimator.lower() not in ESTIMATORS:
        raise ValueError(
            f"unknown estimator {estimator!r}; known estimators: {sorted(ESTIMATORS)}."
        )
    if steps < 1 or batch_size < 2:
        raise ValueError(f"need steps >= 1 and batch_size >= 2, got {steps} and {batch_size}.")
    if not 0.0 <= val_fraction < 1.0 or eval_every < 1 or patience < 1:
        raise ValueError("need 0 <= val_fraction < 1, eval_every >= 1 and patience >= 1.")
    squash = str(estimator).lower() != "club"
    x_arr, y_arr, train, test, n_classes = _prepare(x, y, seed, test_fraction, categorical, squash)
    if n_classes is not None and n_classes < 2:
        raise SingleClassError("categorical y has a single class: its MI with anything is 0.")

    device = torch.device(device)
    x_t = torch.as_tensor(x_arr, dtype=torch.float32, device=device)
    y_dtype = torch.long if n_classes is not None else torch.float32
    y_t = torch.as_tensor(y_arr, dtype=y_dtype, device=device)
    with _torch_threads(num_threads):
        est, step = _train(
            estimator,
            x_t[train],
            y_t[train],
            n_classes,
            seed=seed,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            hidden=hidden,
            layers=layers,
            val_fraction=val_fraction,
            eval_every=eval_every,
            patience=patience,
            **estimator_kw,
        )
    est.eval()
    return FittedEstimator(est, x_t[test], y_t[test], step)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (None: unchanged), then restore."""
    if n is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _train(
    estimator: str,
    x_train: Tensor,
    y_train: Tensor,
    n_classes: int | None,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    hidden: int,
    layers: int,
    val_fraction: float,
    eval_every: int,
    patience: int,
    **estimator_kw: Any,
) -> tuple[MIEstimator, int]:
    """Build and train a fresh estimator; returns it (best checkpoint) and the steps taken."""
    from . import make_estimator  # here, not at the top: the package imports this module

    # Every random choice has its own seeded generator: same seed, same float.
    shuffle_gen = torch.Generator().manual_seed(seed + 1)
    batch_gen = torch.Generator().manual_seed(seed + 2)
    # Initial weights come from torch's global RNG; fork it so the caller's state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        est = make_estimator(
            estimator,
            x_train.shape[1],
            n_classes if n_classes is not None else y_train.shape[1],
            c_categories=n_classes,
            hidden=hidden,
            layers=layers,
            generator=shuffle_gen,
            **estimator_kw,
        ).to(x_train.device)
    opt = torch.optim.AdamW(est.parameters(), lr=lr, weight_decay=weight_decay)

    # Early stopping on a validation slice of the train part: with few samples or a wide z
    # the critic overfits and its held-out estimate collapses, even below zero. The
    # held-out part never influences training or the choice of checkpoint.
    n_val = max(2, int(round(len(x_train) * val_fraction))) if val_fraction > 0 else 0
    x_val, y_val = x_train[:n_val], y_train[:n_val]  # train is already in random order
    x_fit, y_fit = x_train[n_val:], y_train[n_val:]
    n_fit = x_fit.shape[0]
    bs = min(batch_size, n_fit)

    best_loss, best_state, since_best, step = math.inf, None, 0, 0
    perm, pos = torch.randperm(n_fit, generator=batch_gen), 0
    for step in range(1, steps + 1):
        est.train()
        if pos + bs > n_fit:  # a new epoch: reshuffle, sample without replacement
            perm, pos = torch.randperm(n_fit, generator=batch_gen), 0
        idx = perm[pos : pos + bs].to(x_train.device)
        pos += bs
        loss = est.loss(x_fit[idx], y_fit[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if n_val and (step % eval_every == 0 or step == steps):
            val = _validation_loss(est, x_val, y_val, seed)
            if val < best_loss:
                best_loss, since_best = val, 0
                best_state = {k: v.detach().clone() for k, v in est.state_dict().items()}
            else:
                since_best += 1
                if since_best >= patience:
                    break
    if best_state is not None:
        est.load_state_dict(best_state)
    return est, step


def held_out_estimate(
    fit: FittedEstimator, *, eval_batch_size: int = 1024, eval_repeats: int = 8
) -> float:
    """The fitted estimator's value on its held-out part (see :func:`estimate_mi`)."""
    if eval_batch_size < 2 or eval_repeats < 1:
        raise ValueError("need eval_batch_size >= 2 and eval_repeats >= 1.")
    est, x_test, y_test = fit.estimator, fit.x_test, fit.y_test
    n_test = x_test.shape[0]
    est.eval()
    with torch.no_grad():
        if isinstance(est, InfoNCEEstimator):
            # Equal-size batches; each contributes in proportion to its size.
            parts = torch.arange(n_test).tensor_split(math.ceil(n_test / eval_batch_size))
            parts = [p for p in parts if len(p) >= 2]
            total = sum(float(est(x_test[p], y_test[p])) * len(p) for p in parts)
            value = total / sum(len(p) for p in parts)
        elif est.is_upper_bound:
            value = float(est(x_test, y_test))  # CLUB's negative term is exact: no shuffle
        else:
            value = float(np.mean([float(est(x_test, y_test)) for _ in range(eval_repeats)]))
    if not math.isfinite(value):
        raise FloatingPointError(
            f"the {type(est).__name__} estimate diverged to {value}; "
            "try a smaller lr or more samples."
        )
    return value


def estimate_mi(
    x: Any,
    y: Any,
    *,
    estimator: str = "mine",
    seed: int = 0,
    test_fraction: float = 0.5,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    hidden: int = 64,
    layers: int = 2,
    val_fraction: float = 0.2,
    eval_every: int = 50,
    patience: int = 10,
    eval_batch_size: int = 1024,
    eval_repeats: int = 8,
    device: str | torch.device = "cpu",
    categorical: bool | None = None,
    num_threads: int | None = 1,
    **estimator_kw: Any,
) -> float:
    """Estimate I(x; y) in nats with a fresh estimator, trained and evaluated on disjoint parts.

    Procedure: split the samples at random (``seed``) into a train part and a held-out part
    (``test_fraction``); standardise continuous columns with the train part's mean and
    standard deviation; train a new estimator with Adam(W) on the train part, early-stopped
    on a validation slice of it; return its estimate on the held-out part.

    Held-out evaluation: DV / MINE / NWJ use the whole held-out part at once, averaged over
    ``eval_repeats`` random shuffles; CLUB uses the whole part (its negative term is exact);
    InfoNCE averages over held-out batches of ``eval_batch_size`` and therefore can never
    report more than log(eval_batch_size) nats (6.93 at the default 1024).

    Accuracy depends on the sample size per dimension: with a few thousand samples the
    lower bounds are close for low-dimensional data but underestimate when the
    information is spread over many dimensions (see benchmarks/estimators.py).

    Args:
        x: samples of the first variable, (N, dx) or (N,); numpy array or tensor.
        y: samples of the second variable, (N, dy) or (N,). A 1-D integer (or bool) ``y``
            is treated as categorical (class labels, one-hot inside) unless
            ``categorical=False``.
        estimator: a name from ``midebias.estimators.ESTIMATORS``.
        seed: seeds the split, the initial weights, the minibatches and the shuffles;
            the same seed gives the same float (on the same device and thread count).
        test_fraction: share of the samples held out for the reported estimate.
        steps, batch_size, lr, weight_decay: at most ``steps`` AdamW updates.
        hidden, layers: width and number of hidden layers of the critic (of q for CLUB).
        val_fraction, eval_every, patience: early stopping. A ``val_fraction`` slice of
            the train part is scored every ``eval_every`` steps; training stops after
            ``patience`` scores without improvement and the best checkpoint is kept
            (``val_fraction=0`` disables it and trains for exactly ``steps``).
        eval_batch_size: InfoNCE's held-out batch size (its estimate is <= log of it).
        eval_repeats: shuffles averaged in the held-out DV / MINE / NWJ estimate.
        device: torch device to train on.
        categorical: force (True) or forbid (False) treating ``y`` as class labels.
        num_threads: torch CPU threads while fitting, restored afterwards. 1 by default:
            the critic is small, so thread synchronisation costs more than it saves, and
            on a loaded machine far more.
            None keeps torch's current setting.
        **estimator_kw: passed to the estimator (e.g. ``critic="separable"``).

    Returns:
        The held-out MI estimate in nats (lower bounds can come out slightly negative on
        independent data). 0.0 if categorical ``y`` has a single class.

    Raises:
        ValueError: mismatched lengths, NaN/inf values, too few samples, bad settings or
            an unknown estimator name.
    """
    try:
        fit = fit_estimator(
            x,
            y,
            estimator=estimator,
            seed=seed,
            test_fraction=test_fraction,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            hidden=hidden,
            layers=layers,
            val_fraction=val_fraction,
            eval_every=eval_every,
            patience=patience,
            device=device,
            categorical=categorical,
            num_threads=num_threads,
            **estimator_kw,
        )
    except SingleClassError:
        return 0.0  # a constant carries no information about anything
    with _torch_threads(num_threads):
        return held_out_estimate(fit, eval_batch_size=eval_batch_size, eval_repeats=eval_repeats)
