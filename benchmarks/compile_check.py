"""Does torch.compile pay for the paper's digit network? Median seconds per training step
(CE, backward, Adam; batch 128) of the eager encoder and of torch.compile(encoder), eager
measured before and after, in one process; plus the first compiled step (compilation).

    python benchmarks/compile_check.py --device cpu --out benchmarks/results/compile-cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from midebias.models import make_model


def step_seconds(model, x, y, steps: int) -> tuple[float, float]:
    """(first step, median of `steps` later steps) in seconds."""
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step():
        loss = F.cross_entropy(model.head(model.encoder(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return first, sorted(times)[steps // 2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--model", default="paper-digits")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/compile-cpu.json"))
    args = p.parse_args(argv)
    torch.manual_seed(0)
    x = torch.rand(128, 3, 28, 28, device=args.device)
    y = torch.randint(0, 10, (128,), device=args.device)
    eager = make_model(args.model).to(args.device)
    compiled = make_model(args.model).to(args.device)
    compiled.encoder = torch.compile(compiled.encoder)
    e1 = step_seconds(eager, x, y, args.steps)
    c = step_seconds(compiled, x, y, args.steps)
    e2 = step_seconds(eager, x, y, args.steps)
    result = {
        "command": " ".join(sys.argv),
        "device": args.device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": args.model,
        "eager_step_seconds": [e1[1], e2[1]],
        "compiled_step_seconds": c[1],
        "compile_seconds": c[0],
        "ratio_compiled_to_eager": c[1] / min(e1[1], e2[1]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
