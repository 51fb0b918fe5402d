"""A prototype, not in the library: a kernel dependence term in the shortcut loop of
examples/shortcut_in_your_loop.py, beside `MIPenalty` (its defaults, `penalty.step` form,
balanced batches, 1,500 steps). The term is hsic x the normalised HSIC (centred kernel
alignment) of an RBF kernel on z (bandwidth: the median squared distance of the batch,
or the mean of kernels at several multiples of it) and the linear kernel on the one-hot
c, computed on the batch and added to the task loss. Unlike a critic it cannot be steered
around by moving c where the critic does not look; unlike `gaussian` it sees non-linear
dependence. Probes as in toy_gaussian.py (linear and MLP, chance 0.5). One JSON row per
(config, seed), appended; rows already there are skipped; optional config names after
OUT run only those.

    OMP_NUM_THREADS=1 python benchmarks/results/debiasing/toy_hsic.py \
        benchmarks/results/debiasing/toy-hsic.jsonl
"""

import json
import sys
import time
import warnings
from pathlib import Path

out = Path(sys.argv.pop(1))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import shortcut_in_your_loop as ex  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from midebias import MIPenalty, balancing_weights  # noqa: E402


def mlp_probe(z, c):
    z = ((z - z.mean(0)) / (z.std(0) + 1e-6)).numpy()
    half = len(z) // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier((64,), max_iter=500, random_state=0).fit(z[:half], c[:half].numpy())
    return float(m.score(z[half:], c[half:].numpy()))


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
SEEDS = [0, 1, 2, 3, 4]


def run(seed, hsic=0.0, scales=(1.0,), steps=1500, **kw):
    g, (x, y, c), (xt, yt, ct), enc, head = ex.setup(seed)
    penalty = MIPenalty(16, 2, generator=g, params=enc.parameters(), lr=1e-3, **kw)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-3)
    c1 = F.one_hot(c, 2).float()
    w = balancing_weights(c1, y)
    for _ in range(steps):
        i = torch.multinomial(w, 256, replacement=True, generator=g)
        z = enc(x[i])
        loss = F.cross_entropy(head(z), y[i])
        if hsic:
            loss = loss + hsic * cka(z, c1[i], scales)
        opt.zero_grad()
        loss.backward(retain_graph=True)
        penalty.step(z, c1[i])
        opt.step()
    with torch.no_grad():
        zt = enc(xt)
        acc = (head(zt).argmax(1) == yt).float().mean().item()
    return {
        "test_accuracy": round(acc, 4),
        "probe": round(ex.probe(zt, ct, torch.Generator().manual_seed(1)), 4),
        "mlp_probe": round(mlp_probe(zt, ct), 4),
    }


done = set()
if out.exists():
    done = {(r["config"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
only = sys.argv[1:]  # optional config names
for name, options in CONFIGS.items():
    if only and name not in only:
        continue
    for seed in SEEDS:
        if (name, seed) in done:
            continue
        t = time.perf_counter()
        row = {
            "config": name,
            "options": {k: v for k, v in options.items()},
            "seed": seed,
            **run(seed, **options),
        }
        row["seconds"] = round(time.perf_counter() - t, 1)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
