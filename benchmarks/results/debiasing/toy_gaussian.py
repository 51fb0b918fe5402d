"""`MIPenalty(gaussian=...)` in the shortcut loop of examples/shortcut_in_your_loop.py (the
`penalty.step` form, balanced batches, 1,500 steps): test accuracy and how well a fresh
probe reads the nuisance c from the frozen z of the test set, linear (the example's
logistic probe) and non-linear (scikit-learn's MLPClassifier, one hidden layer of 64);
chance 0.5 for both. Rows "linear term alone" add lambda x the closed-form Gaussian MI
(`gaussian_mi`) of the batch to the loss, with no critic. Writes one JSON row per
(config, seed) to the file given (appending; rows already there are skipped).

    OMP_NUM_THREADS=1 python benchmarks/results/debiasing/toy_gaussian.py \
        benchmarks/results/debiasing/toy-gaussian.jsonl
"""

import json
import sys
import time
import warnings
from pathlib import Path

ARGS = sys.argv[1:]  # taken off before the example reads sys.argv[1] as its lambda_
del sys.argv[1:]
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import shortcut_in_your_loop as ex  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from midebias import MIPenalty, balancing_weights  # noqa: E402
from midebias.estimators.gaussian import gaussian_mi  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
#: name -> MIPenalty keywords; "term": weight of gaussian_mi as a plain loss term instead.
CONFIGS = {
    "balanced batches alone": {"lambda_": 0.0},
    "defaults": {},
    "linear term alone, 1": {"lambda_": 0.0, "term": 1.0},
    "defaults + gaussian 1": {"gaussian": 1.0},
    "defaults + gaussian 3": {"gaussian": 3.0},
    "defaults + gaussian 10": {"gaussian": 10.0},
    "lambda 10 + gaussian 1": {"lambda_": 10.0, "gaussian": 1.0},
    "add l4 critic_first no_uphill + gaussian 1": {
        "lambda_": 4.0,
        "update": "add",
        "critic_first": True,
        "no_uphill": True,
        "gaussian": 1.0,
    },
}


def mlp_probe(z, c):
    z = ((z - z.mean(0)) / (z.std(0) + 1e-6)).numpy()
    half = len(z) // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MLPClassifier((64,), max_iter=500, random_state=0).fit(z[:half], c[:half].numpy())
    return float(m.score(z[half:], c[half:].numpy()))


def run(seed: int, term: float = 0.0, steps: int = 1500, extra=None, **kw) -> dict:
    """One loop; `extra(z, c)`, if given, is one more term of the loss (toy_hsic.py)."""
    g, (x, y, c), (xt, yt, ct), enc, head = ex.setup(seed)
    # MIPenalty's defaults as these rows were recorded: the critic alone (gaussian 0; the
    # library's default has been 1 since).
    kw = {"gaussian": 0.0, **kw}
    penalty = MIPenalty(16, 2, generator=g, params=enc.parameters(), lr=1e-3, **kw)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-3)
    c1 = F.one_hot(c, 2).float()
    w = balancing_weights(c1, y)
    for _ in range(steps):
        i = torch.multinomial(w, 256, replacement=True, generator=g)
        z = enc(x[i])
        loss = F.cross_entropy(head(z), y[i])
        if term:
            loss = loss + term * gaussian_mi(z, c1[i])
        if extra is not None:
            loss = loss + extra(z, c1[i])
        opt.zero_grad()
        loss.backward(retain_graph=True)
        penalty.step(z, c1[i])
        opt.step()
    with torch.no_grad():
        zt = enc(xt)
        acc = (head(zt).argmax(1) == yt).float().mean().item()
        linear_mi = float(gaussian_mi(zt, F.one_hot(ct, 2).float()))
    return {
        "test_accuracy": round(acc, 4),
        "probe": round(ex.probe(zt, ct, torch.Generator().manual_seed(1)), 4),
        "mlp_probe": round(mlp_probe(zt, ct), 4),
        "gaussian_mi_test": round(linear_mi, 4),
    }


def record(out: Path, configs: dict, run_one) -> None:
    """Run every (config, seed) not yet in `out`, appending one JSON row each, then print
    the means over seeds."""
    done = set()
    if out.exists():
        done = {(r["config"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
    for name, options in configs.items():
        for seed in SEEDS:
            if (name, seed) in done:
                continue
            start = time.perf_counter()
            row = {"config": name, "options": options, "seed": seed, **run_one(seed, **options)}
            row["seconds"] = round(time.perf_counter() - start, 1)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    print(f"\n{'config':34s} {'accuracy':>8s} {'probe':>7s} {'mlp':>7s}  (means over seeds)")
    for name in configs:
        r = [x for x in rows if x["config"] == name]
        if r:

            def mean(k, r=r):
                return sum(x[k] for x in r) / len(r)

            print(
                f"{name:34s} {mean('test_accuracy'):8.3f} {mean('probe'):7.3f} "
                f"{mean('mlp_probe'):7.3f}  ({len(r)} seeds)"
            )


if __name__ == "__main__":
    record(Path(ARGS[0]), CONFIGS, run)
