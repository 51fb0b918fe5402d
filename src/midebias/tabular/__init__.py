"""Tabular fairness benchmarks (UCI Adult, German Credit): loaders, metrics, command line.

The scikit-learn estimator lives in :mod:`midebias.sklearn` (``MIFairClassifier``). The
loaders and metrics need the ``fair`` extra (pandas, fairlearn); they are imported on
first use so that ``midebias.tabular.cli`` (the options of ``midebias train``) loads
without it.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "SENSITIVE": "data",
    "TABULAR_DATASETS": "data",
    "TabularData": "data",
    "load_adult_frames": "data",
    "load_german_frame": "data",
    "load_tabular": "data",
    "fairness_report": "evaluate",
    "group_metrics": "evaluate",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"midebias.tabular.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'midebias.tabular' has no attribute {name!r}")
