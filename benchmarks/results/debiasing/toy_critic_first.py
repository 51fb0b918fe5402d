"""examples/shortcut_in_your_loop.py's `penalty.step` loop with and without
`MIPenalty(critic_first=True)`, seeds 0 and 1: test accuracy and the probe of the nuisance
from z (chance 0.5). The numbers are in docs/debiasing.md (targets table, MIPenalty row).

    OMP_NUM_THREADS=1 python benchmarks/results/debiasing/toy_critic_first.py
"""

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import shortcut_in_your_loop as ex  # noqa: E402

from midebias import MIPenalty  # noqa: E402

for lam, update in ((1.0, "adam"), (1.0, "add"), (2.0, "adam")):
    for first in (False, True):
        ex.LAMBDA = lam
        ex.MIPenalty = functools.partial(MIPenalty, update=update, critic_first=first)
        # the example's step with the critic alone, as recorded (before gaussian=1 was default)
        res = [ex.run("critic-only step", seed=s) for s in (0, 1)]
        cells = "  ".join(f"acc {a:.3f} probe {p:.3f}" for a, p in res)
        print(f"lambda {lam} update {update} critic_first {first}: {cells}", flush=True)
