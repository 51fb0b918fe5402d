"""Why `MIPenalty` leaves the nuisance readable in examples/shortcut_in_your_loop.py: the
`penalty.step` loop (balanced batches) traced every 250 steps under variants of the
penalty, seeds 0 and 1. Each trace point records the penalty's training estimate on that
step's batch, test accuracy, the held-out probe of the nuisance from z (chance 0.5), and
the norms of the encoder's first-layer weights on the 4 shape inputs and on the 4
shortcut inputs (`w_shape`, `w_short`). Writes one JSON row per (config, seed) to the file
given (appending; rows already there are skipped, so it can be stopped and rerun) and
prints the last trace point of each.

    OMP_NUM_THREADS=1 python benchmarks/results/debiasing/toy_penalty_dynamics.py \
        benchmarks/results/debiasing/toy-penalty-dynamics.jsonl
"""

import json
import math
import sys
import time
from pathlib import Path

out = Path(sys.argv.pop(1))  # before the example reads sys.argv[1] as its lambda_
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import shortcut_in_your_loop as ex  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from midebias import MIPenalty, balancing_weights  # noqa: E402
from midebias.estimators.critics import SeparableCritic  # noqa: E402

#: name -> MIPenalty keywords (plus "steps", "critic"); seeds 0 and 1 unless "seeds".
CONFIGS = {
    "defaults": {"seeds": [0, 1, 2, 3, 4]},
    "lambda 0 (balancing alone)": {"lambda_": 0.0, "seeds": [0, 1, 2, 3, 4]},
    "clip off": {"clip": False},
    "estimator club": {"estimator": "club"},
    "estimator nwj": {"estimator": "nwj"},
    "lambda 10": {"lambda_": 10.0},
    "critic_lr 1e-2": {"critic_lr": 1e-2},
    "separable critic": {"critic": "separable"},
    "buffer 32, critic_batch 2048": {"buffer": 32, "critic_batch": 2048},
    "floor off": {"floor": False},
    "critic_steps 50": {"critic_steps": 50, "seeds": [0]},
    "add l4 critic_first no_uphill": {
        "lambda_": 4.0,
        "update": "add",
        "critic_first": True,
        "no_uphill": True,
    },
    "4500 steps": {"steps": 4500, "seeds": [0]},
    # DV's marginal term over every (z_i, c_k) pair of the batch's distinct c values,
    # weighted by their frequencies, instead of one shuffle: no shuffle noise.
    "exact marginal": {"exact_marginal": True},
    # Every 100 steps a fresh critic (re-initialised, new optimiser) trained 500 updates on
    # the last 33 batches' z, so the encoder meets a critic it has not yet learnt to evade.
    "critic reset every 100 steps": {"reset_every": 100, "buffer": 32},
    # The loop's own optimiser with decoupled weight decay (AdamW's weight_decay; each step
    # every encoder and head weight shrinks by 1 - 1e-3 x wd), with and without the penalty.
    "wd 0.1, defaults": {"opt_wd": 0.1},
    "wd 1, lambda 0": {"lambda_": 0.0, "opt_wd": 1.0},
    "wd 1, defaults": {"opt_wd": 1.0},
    "wd 3, lambda 0": {"lambda_": 0.0, "opt_wd": 3.0, "seeds": [0, 1, 2, 3, 4]},
    "wd 3, defaults": {"opt_wd": 3.0, "seeds": [0, 1, 2, 3, 4]},
    "wd 10, lambda 0": {"lambda_": 0.0, "opt_wd": 10.0, "seeds": [0, 1, 2, 3, 4]},
    "wd 10, defaults": {"opt_wd": 10.0, "seeds": [0, 1, 2, 3, 4]},
}
EVERY = 250


def exact_marginal_dv(estimator):
    """Replace a DV estimator's forward: the marginal term over all (z_i, c_k), c_k the
    batch's distinct values of c weighted by their frequency in the batch."""

    def forward(z, c):
        z, c = estimator._inputs(z, c)
        values, index = torch.unique(c, dim=0, return_inverse=True)
        logp = (torch.bincount(index, minlength=len(values)).float() / len(c)).log()
        per_z = torch.logsumexp(estimator.critic.pairwise(z, values) + logp, dim=1)
        return estimator.critic(z, c).mean() - (torch.logsumexp(per_z, 0) - math.log(len(z)))

    estimator.forward = forward


def trace(
    seed: int,
    steps: int = 1500,
    critic: str = "joint",
    exact_marginal: bool = False,
    reset_every: int = 0,
    opt_wd: float = 0.0,
    **kw,
) -> list[dict]:
    g, (x, y, c), (xt, yt, ct), enc, head = ex.setup(seed)
    # MIPenalty's defaults as these rows were recorded: the critic alone (gaussian 0; the
    # library's default has been 1 since).
    kw = {"gaussian": 0.0, **kw}
    penalty = MIPenalty(16, 2, generator=g, params=enc.parameters(), lr=1e-3, **kw)
    if critic == "separable":
        penalty.estimator.critic = SeparableCritic(16, 2)
        # a fresh optimiser for the new critic, at the default critic_lr
        penalty.critic_opt = torch.optim.Adam(penalty.estimator.parameters(), lr=1e-3)
    if exact_marginal:
        exact_marginal_dv(penalty.estimator)
    # AdamW with weight_decay 0 is Adam, bit for bit (rerun: the defaults trace of seed 0).
    params = [*enc.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=opt_wd)
    c1 = F.one_hot(c, 2).float()
    w = balancing_weights(c1, y)
    points = []
    for step in range(1, steps + 1):
        i = torch.multinomial(w, 256, replacement=True, generator=g)
        z = enc(x[i])
        ce = F.cross_entropy(head(z), y[i])
        opt.zero_grad()
        ce.backward(retain_graph=True)
        estimate = float(penalty.step(z, c1[i]))
        opt.step()
        if reset_every and step % reset_every == 0:
            for m in penalty.estimator.modules():
                if isinstance(m, torch.nn.Linear):
                    m.reset_parameters()
            penalty.critic_opt = torch.optim.Adam(penalty.estimator.parameters(), lr=1e-3)
            penalty.train_critic(z.detach(), c1[i], steps=500)
        if step % EVERY == 0:
            with torch.no_grad():
                zt = enc(xt)
                acc = (head(zt).argmax(1) == yt).float().mean().item()
            probe = ex.probe(zt, ct, torch.Generator().manual_seed(1))
            w1 = enc[0].weight.detach()
            points.append(
                {
                    "step": step,
                    "estimate": round(estimate, 4),
                    "test_accuracy": round(acc, 4),
                    "probe": round(probe, 4),
                    "w_shape": round(w1[:, :4].norm().item(), 4),
                    "w_short": round(w1[:, 4:].norm().item(), 4),
                }
            )
    return points


done = set()
if out.exists():
    done = {(r["config"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
for name, options in CONFIGS.items():
    options = dict(options)
    seeds = options.pop("seeds", [0, 1])
    for seed in seeds:
        if (name, seed) in done:
            continue
        start = time.perf_counter()
        points = trace(seed, **options)
        row = {
            "config": name,
            "options": options,
            "seed": seed,
            "seconds": round(time.perf_counter() - start, 1),
            "trace": points,
        }
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        last = points[-1]
        print(
            f"{name:32s} seed {seed}: estimate {last['estimate']:.3f} acc "
            f"{last['test_accuracy']:.3f} probe {last['probe']:.3f} w_short {last['w_short']:.2f}",
            flush=True,
        )
rows = [json.loads(x) for x in out.read_text().splitlines()]
print("\nmean over seeds of the last point, and of the probe over the trace:")
for name in CONFIGS:
    r = [x for x in rows if x["config"] == name]
    if r:
        last = [x["trace"][-1]["probe"] for x in r]
        every = [p["probe"] for x in r for p in x["trace"]]
        print(
            f"{name:32s} probe at end {sum(last) / len(last):.3f}, over the trace "
            f"{sum(every) / len(every):.3f} ({len(r)} seeds)"
        )
