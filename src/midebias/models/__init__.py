"""Networks: an encoder producing the representation z and a classifier head on z."""

from midebias.models.digits import MODELS, Classifier, PaperDigitNet, SimpleConvNet, make_model

__all__ = ["Classifier", "PaperDigitNet", "SimpleConvNet", "MODELS", "make_model"]
