"""A prototype, not in the library: a kernel dependence term in the shortcut loop of
examples/shortcut_in_your_loop.py, beside `MIPenalty` (its defaults, `penalty.step` form,
balanced batches, 1,500 steps). The term is hsic x the normalised HSIC (centred kernel
alignment) of an RBF kernel on z (bandwidth: the median squared distance of the batch,
or the mean of kernels at several multiples of it) and the linear kernel on the one-hot
c, computed on the batch and added to the task loss. Unlike a critic it cannot be steered
around by moving c where the critic does not look; unlike `gaussian` it sees non-linear
dependence. The loop, the probes (linear and MLP, chance 0.5) and the JSON rows are
toy_gaussian.py's (`run` with `extra`, `record`).

    OMP_NUM_THREADS=1 python benchmarks/results/debiasing/toy_hsic.py \
        benchmarks/results/debiasing/toy-hsic.jsonl
"""

import sys
from pathlib import Path

ARGS = sys.argv[1:]  # taken off before the example reads sys.argv[1] as its lambda_
del sys.argv[1:]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import toy_gaussian as tg  # noqa: E402


def rbf(z, scales):
    d2 = torch.cdist(z, z).pow(2)
    med = d2.detach()[d2.detach() > 0].median()
    return sum(torch.exp(-d2 / (s * med)) for s in scales) / len(scales)


def cka(z, c, scales=(1.0,)):
    n = len(z)
    h = torch.eye(n) - 1.0 / n
    k = h @ rbf(z, scales) @ h
    l = h @ (c @ c.T) @ h
    return (k * l).sum() / (k.norm() * l.norm() + 1e-12)


CONFIGS = {
    "defaults + hsic 1": {"hsic": 1.0},
    "defaults + hsic 10": {"hsic": 10.0},
    "defaults + gaussian 1 + hsic 1": {"gaussian": 1.0, "hsic": 1.0},
    "defaults + gaussian 1 + hsic 10": {"gaussian": 1.0, "hsic": 10.0},
    "hsic 10 alone": {"lambda_": 0.0, "hsic": 10.0},
    "defaults + hsic 10 multiscale": {"hsic": 10.0, "scales": (0.25, 1.0, 4.0)},
}


def run(seed, hsic=0.0, scales=(1.0,), **kw):
    extra = (lambda z, c: hsic * cka(z, c, scales)) if hsic else None
    return tg.run(seed, extra=extra, **kw)


if __name__ == "__main__":
    tg.record(Path(ARGS[0]), CONFIGS, run)
