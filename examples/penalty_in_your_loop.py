"""MIPenalty in a plain PyTorch loop: z must predict y and forget the nuisance c.

python examples/penalty_in_your_loop.py 1.0   # penalty weight (0 = plain training)
"""

import os
import sys

import torch
import torch.nn.functional as F

from midebias import MIPenalty, estimate_mi

torch.manual_seed(0)
n = 4096
y = torch.randint(0, 2, (n,))  # target
c = torch.randint(0, 2, (n,))  # nuisance attribute, readable from x[:, 1]
x = torch.stack([y + 0.5 * torch.randn(n), c + 0.2 * torch.randn(n)], 1)
encoder = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
head = torch.nn.Linear(2, 2)
weight = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
penalty = MIPenalty(z_dim=2, c_dim=2, lambda_=weight, params=encoder.parameters(), lr=1e-2)
opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-2)
for _ in range(int(os.environ.get("STEPS", 500))):
    i = torch.randint(0, n, (256,))
    z = encoder(x[i])
    ce = F.cross_entropy(head(z), y[i])
    opt.zero_grad()
    ce.backward(retain_graph=True)
    penalty.step(z, F.one_hot(c[i], 2).float())
    opt.step()
with torch.no_grad():
    z = encoder(x)
    acc = (head(z).argmax(1) == y).float().mean()
print(
    f"weight {weight}: accuracy {acc:.3f}, I(z; c) = {estimate_mi(z.numpy(), c.numpy()):.3f} nats"
)
