"""MIPenalty against a shortcut: in training, a nuisance c agrees with the label y 95% of
the time and is far easier to read from x than y is; at test time c is independent of y.

python examples/shortcut_in_your_loop.py       # plain / term / step / step without the term
python examples/shortcut_in_your_loop.py 10    # the penalty's lambda_ (default 1)

Four runs of the same loop: plain cross-entropy; MIPenalty as a loss term; MIPenalty's own
encoder step (`penalty.step`, the form that debiases on Colored MNIST), with its defaults,
which add the closed-form Gaussian MI of z and c (what a linear read of c finds) to the
loss beside the critic's estimate; the same step with the critic alone (`gaussian=0`).
The penalty runs draw their batches with `balancing_weights`
(samples weighted by 1 / q(y | c), so that c says little about y in what the network
sees). Prints test accuracy and how well a fresh linear probe reads c from z (chance 0.5).
"""

import os
import sys

import torch
import torch.nn.functional as F

from midebias import MIPenalty, balancing_weights

STEPS = int(os.environ.get("STEPS", 1500))
LAMBDA = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0


def make(n, agree, g):
    y = torch.randint(0, 2, (n,), generator=g)
    c = torch.where(torch.rand(n, generator=g) < agree, y, 1 - y)
    shape = y[:, None] + 0.8 * torch.randn(n, 4, generator=g)  # the signal we want: weak, 4-d
    short = c[:, None] + 0.05 * torch.randn(n, 4, generator=g)  # the shortcut: strong
    return torch.cat([shape, short], 1), y, c


def probe(z, c, g):
    """Held-out accuracy of a fresh logistic probe reading c from z."""
    z = (z - z.mean(0)) / (z.std(0) + 1e-6)
    half = len(z) // 2
    w = torch.zeros(z.shape[1], 2, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(300):
        loss = F.cross_entropy(z[:half] @ w, c[:half])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ((z[half:] @ w).argmax(1) == c[half:]).float().mean().item()


def setup(seed):
    """The generator, the training data (the shortcut agrees 95% of the time), the test data
    (it agrees by chance), and a fresh encoder and head, seeded by `seed`."""
    g = torch.Generator().manual_seed(seed)
    train = make(8192, 0.95, g)
    test = make(4096, 0.5, g)
    torch.manual_seed(seed)
    enc = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
    head = torch.nn.Linear(16, 2)
    return g, train, test, enc, head


def run(mode, seed=0):
    g, (x, y, c), (xt, yt, ct), enc, head = setup(seed)
    # params: the encoder's tensors, for penalty.step's own Adam (lr x lambda_)
    penalty = MIPenalty(
        z_dim=16,
        c_dim=2,
        lambda_=LAMBDA,
        generator=g,
        params=enc.parameters(),
        lr=1e-3,
        gaussian=0.0 if mode == "critic-only step" else 1.0,  # 1: the default
    )
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-3)
    c1 = F.one_hot(c, 2).float()
    w = torch.ones(len(y)) if mode == "plain" else balancing_weights(c1, y)
    for _ in range(STEPS):
        i = torch.multinomial(w, 256, replacement=True, generator=g)
        z = enc(x[i])
        ce = F.cross_entropy(head(z), y[i])
        opt.zero_grad()
        if mode.endswith("step"):  # task gradient first; the MI step is clipped to it
            ce.backward(retain_graph=True)
            penalty.step(z, c1[i])  # trains T, then descends I_hat with its own Adam
        elif mode == "term":
            (ce + penalty(z, c1[i], task_loss=ce)).backward()
        else:
            ce.backward()
        opt.step()
    with torch.no_grad():
        z = enc(xt)
        acc = (head(z).argmax(1) == yt).float().mean().item()
    return acc, probe(z, ct, g)


if __name__ == "__main__":
    for name, mode in [
        ("plain", "plain"),
        ("term + balancing", "term"),
        ("step + balancing", "step"),
        ("critic-only step + balancing", "critic-only step"),
    ]:
        acc, p = run(mode)
        print(f"{name:28s} test accuracy {acc:.3f}  probe of c from z {p:.3f}")
