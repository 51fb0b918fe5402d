"""What MIPenalty's critic estimates when z says nothing about c, with and without
`critic_first`: 600 steps of fresh random z (16-d) and c (10 classes, one-hot), batch 256,
the default critic (10 updates per step on this and the last 8 batches). Prints the mean of
the estimate the encoder would descend (steps 100-599), how often it is above 0 (with
`floor`, only those steps move the encoder), and the same on a batch T has not seen.

    OMP_NUM_THREADS=1 python benchmarks/results/debiasing/critic_first_null.py
"""

import statistics

import torch
import torch.nn.functional as F

from midebias import MIPenalty


def batch(g):
    z = torch.randn(256, 16, generator=g)
    c = F.one_hot(torch.randint(0, 10, (256,), generator=g), 10).float()
    return z, c


for first in (True, False):
    g = torch.Generator().manual_seed(0)
    penalty = MIPenalty(16, 10, generator=g)
    used, fresh = [], []
    for t in range(600):
        z, c = batch(g)
        if first:
            penalty.train_critic(z, c)
        with torch.no_grad():
            a = float(penalty.estimate(z, c))
            b = float(penalty.estimate(*batch(g)))
        if not first:
            penalty.train_critic(z, c)
        if t >= 100:
            used.append(a)
            fresh.append(b)

    def above(xs):
        return sum(x > 0 for x in xs) / len(xs)

    print(
        f"critic_first={first}: estimate descended {statistics.mean(used):+.4f} "
        f"(> 0 in {above(used):.2f} of steps); on an unseen batch "
        f"{statistics.mean(fresh):+.4f} (> 0 in {above(fresh):.2f})"
    )
