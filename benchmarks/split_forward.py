"""How much of a cheaper step comes from running the encoder on a batch in two halves.

mi's `grad_fraction` runs the encoder on each batch in two parts (so that the MI backward
goes through one of them only). On a CPU, two convolutions over 64 images can be faster
than one over 128 (the activations fit the caches better), so part of what mi saves may be
a saving vanilla training could have too. This script times vanilla's training step on
the paper's digit network both ways, round-robin in one process, and writes the ratio:

    OMP_NUM_THREADS=1 python benchmarks/split_forward.py --out benchmarks/results/split.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from midebias.datasets.registry import load_benchmark
from midebias.models import PaperDigitNet


def step(model, opt, x, y, parts: int) -> None:
    opt.zero_grad(set_to_none=True)
    z = torch.cat([model.features(p) for p in x.chunk(parts)]) if parts > 1 else model.features(x)
    F.cross_entropy(model.head(z), y).backward()
    opt.step()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=8, help="steps per timing")
    p.add_argument("--repeats", type=int, default=7, help="timings per way, round-robin")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--source", default="mnist", choices=["mnist", "demo"], help="digits")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    data = load_benchmark(
        "colored-mnist", strength=0.02, train_size=2000, source=args.source, data_dir=args.data_dir
    )
    train = data.splits["train"]
    n = args.batch_size
    x = torch.from_numpy(train.images[:n]).permute(0, 3, 1, 2).float() / 255.0
    y = torch.from_numpy(train.labels[:n])
    torch.manual_seed(0)
    model = PaperDigitNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for parts in times:
            step(model, opt, x, y, parts)  # one untimed step after switching
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(model, opt, x, y, parts)
            times[parts].append((time.perf_counter() - t0) / args.steps)
    whole, halves = (statistics.median(times[k]) for k in (1, 2))
    result = {
        "command": " ".join(sys.argv),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": n,
        "seconds_per_step_whole": whole,
        "seconds_per_step_halves": halves,
        "halves_over_whole": halves / whole,
        "repeats": {str(k): v for k, v in times.items()},
    }
    print(
        f"vanilla step, whole batch {whole * 1e3:.1f} ms, two halves {halves * 1e3:.1f} ms "
        f"(ratio {halves / whole:.3f})"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
