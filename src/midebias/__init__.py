"""midebias: learning representations that do not encode a known bias attribute.

Implements Ragonesi et al., "Learning Unbiased Representations via Mutual Information
Backpropagation" (CVPR-W 2021), with its baselines, benchmarks and a leakage audit.
"""

__version__ = "0.1.0"

from midebias.estimators import estimate_mi  # noqa: E402
from midebias.penalty import MIPenalty  # noqa: E402
from midebias.sampling import balancing_weights  # noqa: E402

__all__ = ["MIPenalty", "balancing_weights", "estimate_mi", "__version__"]
