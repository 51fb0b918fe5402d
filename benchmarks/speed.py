"""Speed: seconds per epoch of each method (and network) in one process, as ratios to vanilla,
plus time to a target validation accuracy for the mi schedules.

    python benchmarks/speed.py --train-size 5000 --epochs 2 --out benchmarks/results/speed.json

All configurations train on the same generated data, one after the other, in this process;
the ratio to vanilla is the number to compare across machines. `--device cuda` runs the
same on a GPU. Time to target: cumulative training seconds (evaluation excluded) until
`val_accuracy` (held-out, biased like training) first reaches --target.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from midebias.benchmarks.registry import load_benchmark
from midebias.report import format_table
from midebias.training import TrainConfig, train

#: name -> (benchmark, method, model, hparams)
CONFIGS = {
    "vanilla": ("colored-mnist", "vanilla", "paper-digits", {}),
    "mi-paper": ("colored-mnist", "mi", "paper-digits", {"preset": "paper"}),
    "mi-best": ("colored-mnist", "mi", "paper-digits", {"preset": "best"}),
    "mi-fast": ("colored-mnist", "mi", "paper-digits", {"preset": "fast"}),
    "blindeye": ("colored-mnist", "blindeye", "paper-digits", {}),
    "lnl": ("colored-mnist", "lnl", "paper-digits", {}),
    "vanilla-simple-conv": ("biased-mnist", "vanilla", "simple-conv", {}),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--configs", nargs="+", default=["vanilla", "mi-paper", "mi-fast"], choices=sorted(CONFIGS)
    )
    p.add_argument("--train-size", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--target", type=float, default=0.95, help="val_accuracy to reach")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/speed.json"))
    args = p.parse_args(argv)

    data = {}
    rows = []
    for name in args.configs:
        bench, method, model, hparams = CONFIGS[name]
        if bench not in data:
            strength = 0.02 if bench == "colored-mnist" else 0.99
            data[bench] = load_benchmark(
                bench,
                strength=strength,
                seed=args.seed,
                train_size=args.train_size,
                data_dir=args.data_dir,
            )
        cfg = TrainConfig(
            benchmark=bench,
            method=method,
            model=model,
            hparams=hparams,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            device=args.device,
            audit=False,
            progress=False,
        )
        history: list[dict] = []
        t0 = time.perf_counter()
        m = train(cfg, data=data[bench], history=history)
        wall = time.perf_counter() - t0
        elapsed, reached = 0.0, None
        for rec in history:
            elapsed += rec["seconds"]
            if reached is None and rec["val_accuracy"] >= args.target:
                reached = elapsed
        rows.append(
            {
                "config": name,
                "model": model,
                "seconds_per_epoch": m["seconds_per_epoch"],
                "seconds_to_target": reached,
                "val_accuracy": m["val_accuracy"],
                "test_accuracy": m["test_accuracy"],
                "wall_seconds": wall,
            }
        )
        print(f"{name}: {m['seconds_per_epoch']:.2f} s/epoch", flush=True)
        write(args, rows)  # as results come in: a killed run keeps what it measured
    write(args, rows)
    print(
        format_table(
            rows,
            [
                "config",
                "model",
                "seconds_per_epoch",
                "ratio_to_vanilla",
                "seconds_per_full_epoch",
                "seconds_to_target",
                "val_accuracy",
                "test_accuracy",
            ],
        )
    )
    return 0


def write(args, rows: list[dict]) -> None:
    """Ratios to the vanilla row of the same network, and the JSON file."""
    base = {r["model"]: r["seconds_per_epoch"] for r in rows if r["config"].startswith("vanilla")}
    for r in rows:
        if r["model"] in base:
            r["ratio_to_vanilla"] = r["seconds_per_epoch"] / base[r["model"]]
        r["seconds_per_full_epoch"] = r["seconds_per_epoch"] * 54000 / args.train_size
    meta = {
        "command": " ".join(sys.argv),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "train_size": args.train_size,
        "epochs": args.epochs,
        "target": args.target,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
