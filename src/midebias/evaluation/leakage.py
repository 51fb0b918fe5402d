"""Leakage audit: how much bias a frozen encoder's z still carries, measured after training
by a fresh probe and a fresh MI estimator on held-out data (Elazar & Goldberg 2018: the
adversary a method trained against is no proof that the attribute is gone)."""

from __future__ import annotations

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from midebias.evaluation.metrics import embed


def probe_accuracy(
    z_train: np.ndarray, s_train: np.ndarray, z_test: np.ndarray, s_test: np.ndarray, seed: int = 0
) -> float:
    """Held-out accuracy of a fresh MLP classifier predicting attribute s from z."""
    probe = make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(128,),
            max_iter=300,
            early_stopping=True,
            n_iter_no_change=10,
            random_state=seed,
        ),
    )
    probe.fit(z_train, s_train)
    return float(probe.score(z_test, s_test))


def leakage_audit(model, splits: dict, *, seed: int = 0, split: str = "test") -> dict[str, float]:
    """bias_probe_accuracy and mi_posthoc (nats) of z on `split`, whose colour is independent
    of the label, so that neither number can come from z knowing the digit. The split is cut
    in two halves: fit on one, score on the other."""
    from midebias.estimators import estimate_mi

    held = splits[split]
    z = embed(model, held).numpy()
    b = held.bias.cpu().numpy()
    perm = np.random.default_rng(seed).permutation(len(b))
    half = len(b) // 2
    a, t = perm[:half], perm[half:]
    return {
        "bias_probe_accuracy": probe_accuracy(z[a], b[a], z[t], b[t], seed=seed),
        "bias_majority_rate": float(np.bincount(b[t]).max() / len(t)),
        "mi_posthoc": float(estimate_mi(z, b, seed=seed)),
    }
