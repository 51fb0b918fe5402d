"""Fairness report of a fitted model on one split of a tabular benchmark (Adult, German).

* ``accuracy``: of the model's predictions of y.
* ``sensitive_probe_accuracy``: a fresh MLP probe (:func:`probe_accuracy`) trained to
  predict s from z on the train split (at most ``probe_rows`` rows, drawn with ``seed``)
  and scored on the evaluated split; ``sensitive_majority_rate`` beside it is the share of
  the evaluated split's largest s group, the accuracy of a probe that learnt nothing.
* ``demographic_parity_difference``, ``equalized_odds_difference``: of the predictions,
  between the s groups, from :mod:`fairlearn.metrics`.
* ``mi_posthoc``: held-out estimate of I(z; s) in nats by a fresh estimator
  (:func:`midebias.estimators.estimate_mi`) on the evaluated split.

Models without a representation (no ``transform``, e.g. Fairlearn's mitigators) get the
accuracy and group metrics only.
"""

from __future__ import annotations

import numpy as np
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from midebias.datasets.tabular import TabularData
from midebias.evaluation.leakage import probe_accuracy

__all__ = ["fairness_report", "group_metrics"]


def group_metrics(y_true, y_pred, s) -> dict[str, float]:
    """accuracy, demographic parity and equalized odds differences of predictions y_pred."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "demographic_parity_difference": float(
            demographic_parity_difference(y_true, y_pred, sensitive_features=s)
        ),
        "equalized_odds_difference": float(
            equalized_odds_difference(y_true, y_pred, sensitive_features=s)
        ),
    }


def fairness_report(
    clf,
    data: TabularData,
    split: str = "test",
    *,
    seed: int = 0,
    probe: bool = True,
    mi: bool = True,
    probe_rows: int = 10_000,
    mi_estimator: str = "mine",
) -> dict[str, float]:
    """Metrics of a fitted classifier on ``split`` ("val" or "test") of ``data``.

    Args:
        clf: fitted, with ``predict``; ``transform`` (z) for the probe and MI metrics.
        data: the benchmark (:func:`midebias.datasets.tabular.load_tabular`).
        seed: seeds the probe's training rows and weights and the MI estimator.
        probe, mi: compute the probe accuracy / the post-hoc MI (the slow parts).
        probe_rows: at most this many train rows fit the probe.
        mi_estimator: estimator name for ``mi_posthoc``.
    """
    if split not in ("val", "test"):
        raise ValueError(f"report on 'val' or 'test', not {split!r}")
    X, y, s = data.split(split)
    report = group_metrics(y, clf.predict(X), s)
    report["sensitive_majority_rate"] = float(np.bincount(s).max() / len(s))
    if not hasattr(clf, "transform") or not (probe or mi):
        return report
    z = clf.transform(X)
    if probe:
        rng = np.random.default_rng(seed)
        n = len(data.X_train)
        rows = rng.choice(n, size=min(n, probe_rows), replace=False)
        z_fit = clf.transform(data.X_train[rows])
        report["sensitive_probe_accuracy"] = probe_accuracy(
            z_fit, data.s_train[rows], z, s, seed=seed
        )
    if mi:
        from midebias.estimators import estimate_mi

        report["mi_posthoc"] = float(estimate_mi(z, s, estimator=mi_estimator, seed=seed))
    return report
