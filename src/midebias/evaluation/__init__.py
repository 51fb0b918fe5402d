"""Evaluation: accuracy on every split, and the leakage audit of a trained encoder."""

from midebias.evaluation.metrics import accuracy, embed

__all__ = ["accuracy", "embed"]
