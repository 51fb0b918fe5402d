"""Networks: an encoder producing the representation z and a classifier head on z."""

from midebias.models.digits import (
    MODELS,
    Classifier,
    PaperDigitNet,
    SimpleConvNet,
    TabularMLP,
    has_batchnorm,
    make_model,
)

__all__ = [
    "Classifier",
    "PaperDigitNet",
    "SimpleConvNet",
    "TabularMLP",
    "MODELS",
    "make_model",
    "has_batchnorm",
]
