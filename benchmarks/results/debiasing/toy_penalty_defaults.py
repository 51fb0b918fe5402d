"""examples/shortcut_in_your_loop.py's `penalty.step` loop under candidate `MIPenalty`
defaults, seeds 0-4: test accuracy and the probe of the nuisance from z (chance 0.5).
Writes one JSON row per (config, seed) to the file given (appending; rows already there
are skipped, so it can be stopped and rerun) and prints the means.

    OMP_NUM_THREADS=1 python benchmarks/results/debiasing/toy_penalty_defaults.py \
        benchmarks/results/debiasing/toy-penalty-defaults.jsonl
"""

import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
out = Path(sys.argv.pop(1))  # before the example reads sys.argv[1] as its lambda_
import shortcut_in_your_loop as ex  # noqa: E402

from midebias import MIPenalty  # noqa: E402

#: name: (lambda_, update, critic_first, no_uphill, delay): with delay, the first `delay`
#: calls of penalty.step only train T (the loop's first fifth: 300 of 1500 steps).
CONFIGS = {
    "adam l1 (0.2 default)": (1.0, "adam", False, False, 0),
    "add l2 critic_first (strict)": (2.0, "add", True, False, 0),
    "add l2 critic_first no_uphill": (2.0, "add", True, True, 0),
    "add l4 critic_first no_uphill": (4.0, "add", True, True, 0),
    "add l8 critic_first no_uphill": (8.0, "add", True, True, 0),
    "add l2 critic_first no_uphill delay 300": (2.0, "add", True, True, 300),
    "adam l1 delay 300": (1.0, "adam", False, False, 300),
}


class Delayed(MIPenalty):
    """MIPenalty whose first `delay` step calls train T only (the encoder is left alone)."""

    def __init__(self, *args, delay: int = 0, **kw):
        super().__init__(*args, **kw)
        self.delay, self.calls = delay, 0

    def step(self, z, c, y=None, **kw):
        self.calls += 1
        if self.calls <= self.delay:
            self.train_critic(z, c, y)
            return self.estimate(z, c, y).detach()
        return super().step(z, c, y, **kw)


SEEDS = range(5)

done = set()
if out.exists():
    done = {(r["config"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
for name, (lam, update, first, noup, delay) in CONFIGS.items():
    for seed in SEEDS:
        if (name, seed) in done:
            continue
        ex.LAMBDA = lam
        ex.MIPenalty = functools.partial(
            Delayed, update=update, critic_first=first, no_uphill=noup, delay=delay
        )
        # the example's step with the critic alone, as recorded (before gaussian=1 was default)
        acc, probe = ex.run("critic-only step", seed=seed)
        row = {
            "config": name,
            "lambda_": lam,
            "update": update,
            "critic_first": first,
            "no_uphill": noup,
            "delay": delay,
            "seed": seed,
            "test_accuracy": acc,
            "probe": probe,
        }
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name:30s} seed {seed}: acc {acc:.3f} probe {probe:.3f}", flush=True)
rows = [json.loads(x) for x in out.read_text().splitlines()]
for name in CONFIGS:
    r = [x for x in rows if x["config"] == name]
    if r:
        acc = sum(x["test_accuracy"] for x in r) / len(r)
        probe = sum(x["probe"] for x in r) / len(r)
        print(f"{name:30s} n={len(r)} mean acc {acc:.3f} mean probe {probe:.3f}")
