"""Where the time of one mi training step goes, next to a vanilla step (CPU or GPU).

Times, round-robin in one process, on one batch of Colored MNIST digits and the paper's
digit network: a vanilla step (forward, CE backward, Adam); the same step with the batch
run through the network in two halves, as `grad_fraction` runs it (on a CPU two halves
can be faster than one batch, a saving vanilla could have too); the encoder's forward alone;
the MI backward through the encoder (whole batch, and the first half as with
`grad_fraction` 0.5); and the critic's training after a step (`critic_steps` updates of
`critic_batch` samples from the recent z). Each as the median over --repeats timings of
--steps calls, and as a fraction of the vanilla step:

    OMP_NUM_THREADS=1 python benchmarks/step_cost.py --out benchmarks/results/step-cost.json
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
from midebias.penalty import MIPenalty


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=8, help="calls per timing")
    p.add_argument("--repeats", type=int, default=7, help="timings per part, round-robin")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--source", default="mnist", choices=["mnist", "demo"], help="digits")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    data = load_benchmark(
        "colored-mnist", strength=0.02, train_size=2000, source=args.source, data_dir=args.data_dir
    )
    train = data.splits["train"]
    n = args.batch_size
    x = (torch.from_numpy(train.images[:n]).permute(0, 3, 1, 2).float() / 255.0).to(dev)
    y = torch.from_numpy(train.labels[:n]).to(dev)
    c = torch.from_numpy(train.paper_code[:n]).float().to(dev)
    torch.manual_seed(0)
    model = PaperDigitNet(num_classes=10).to(dev)
    params = list(model.encoder.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    penalties = {
        b: MIPenalty(model.z_dim, c.shape[1], critic_batch=b, generator=None).to(dev)
        for b in (512, 256)
    }
    with torch.no_grad():
        z0 = model.features(x)
    for pen in penalties.values():
        for _ in range(9):  # fill the buffer of recent z, as after 9 steps
            pen.train_critic(z0, c)

    def vanilla():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def vanilla_halves():
        opt.zero_grad(set_to_none=True)
        z = torch.cat([model.features(part) for part in x.chunk(2)])
        F.cross_entropy(model.head(z), y).backward()
        opt.step()

    def forward():
        with torch.no_grad():
            model.features(x)

    def mi_backward(half: bool):
        """A forward, then the MI estimate's backward into the encoder (whole batch or its
        first half); the MI backward's own cost is this minus `encoder_forward`."""

        def run():
            pen = penalties[512]
            if half:
                k = n // 2
                za = model.features(x[:k])
                with torch.no_grad():
                    zb = model.features(x[k:])
                z = torch.cat([za, zb])
            else:
                z = model.features(x)
            torch.autograd.grad(pen.estimate(z, c), params)

        return run

    def critic(b: int):
        return lambda: penalties[b].train_critic(z0, c)

    parts = {
        "vanilla_step": vanilla,
        "vanilla_step_two_halves": vanilla_halves,
        "encoder_forward": forward,
        "forward_and_mi_backward_whole": mi_backward(False),
        "forward_and_mi_backward_half": mi_backward(True),
        "critic_10x512": critic(512),
        "critic_10x256": critic(256),
    }
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(args.repeats):
        for name, fn in parts.items():
            fn()
            sync()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            sync()
            times[name].append((time.perf_counter() - t0) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    fwd = med["encoder_forward"]
    derived = {
        "mi_backward_whole": med["forward_and_mi_backward_whole"] - fwd,
        "mi_backward_half": med["forward_and_mi_backward_half"] - fwd,
    }
    base = med["vanilla_step"]
    rows = {**med, **derived}
    result = {
        "command": " ".join(sys.argv),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": n,
        "seconds": rows,
        "fraction_of_vanilla_step": {k: v / base for k, v in rows.items()},
        "repeats": times,
    }
    for k, v in rows.items():
        print(f"{k:32s} {v * 1e3:8.1f} ms  {v / base:5.2f} x vanilla step")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
