"""Speed: seconds per epoch of each method (and network) in one process, as ratios to vanilla,
plus time to a target validation accuracy for the mi schedules.

    python benchmarks/speed.py --train-size 5000 --epochs 2 --out benchmarks/results/speed.json

All configurations train on the same generated data, one after the other, in this process;
the ratio to vanilla is the number to compare across machines. `--device cuda` runs the
same on a GPU. Time to target: cumulative training seconds (evaluation excluded, warm-up
epochs included) until --target-metric (default `val_accuracy`: held-out, biased like
training) first reaches --target; and, when mi-paper is among the configs, until it first
reaches the best value mi-paper reached in its run (`seconds_to_paper_best`: the wall time
each schedule needs for the paper schedule's validation accuracy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

from midebias.datasets.registry import load_benchmark
from midebias.report import format_table
from midebias.training import TrainConfig, train

NHWC = {"channels_last": True}

#: name -> (benchmark, method, model, settings, other TrainConfig settings)
CONFIGS = {
    "vanilla": ("colored-mnist", "vanilla", "paper-digits", {}, {}),
    "mi-paper": ("colored-mnist", "mi", "paper-digits", {"preset": "paper"}, {}),
    "mi-balanced": ("colored-mnist", "mi", "paper-digits", {"preset": "balanced"}, {}),
    "mi-strict": ("colored-mnist", "mi", "paper-digits", {"preset": "strict"}, {}),
    "mi-staged": ("colored-mnist", "mi", "paper-digits", {"preset": "staged"}, {}),
    "mi-staged-gaussian": ("colored-mnist", "mi", "paper-digits", {}, {}),  # the default
    "mi-balanced-separate": (
        "colored-mnist",
        "mi",
        "paper-digits",
        {"preset": "balanced-separate"},
        {},
    ),
    "mi-balanced-critic5": (
        "colored-mnist",
        "mi",
        "paper-digits",
        {"preset": "balanced", "critic_steps": 5},
        {},
    ),
    "mi-balanced-whole": (
        "colored-mnist",
        "mi",
        "paper-digits",
        {"preset": "balanced", "grad_fraction": 1.0},
        {},
    ),
    "mi-balanced-half": (
        "colored-mnist",
        "mi",
        "paper-digits",
        {"preset": "balanced", "grad_fraction": 0.5},
        {},
    ),
    "mi-balanced-quarter": (
        "colored-mnist",
        "mi",
        "paper-digits",
        {"preset": "balanced", "grad_fraction": 0.25},
        {},
    ),
    "mi-balanced-quarter-critic7": (
        "colored-mnist",
        "mi",
        "paper-digits",
        {"preset": "balanced", "grad_fraction": 0.25, "critic_steps": 7},
        {},
    ),
    "mi-balanced-half-cb256": (
        "colored-mnist",
        "mi",
        "paper-digits",
        {"preset": "balanced", "grad_fraction": 0.5, "critic_batch": 256},
        {},
    ),
    "mi-best": ("colored-mnist", "mi", "paper-digits", {"preset": "best"}, {}),
    "mi-fast": ("colored-mnist", "mi", "paper-digits", {"preset": "fast"}, {}),
    "blindeye": ("colored-mnist", "blindeye", "paper-digits", {}, {}),
    "lnl": ("colored-mnist", "lnl", "paper-digits", {}, {}),
    "vanilla-channels-last": ("colored-mnist", "vanilla", "paper-digits", {}, NHWC),
    "vanilla-simple-conv": ("biased-mnist", "vanilla", "simple-conv", {}, {}),
    "vanilla-simple-conv-channels-last": ("biased-mnist", "vanilla", "simple-conv", {}, NHWC),
    "mi-fast-simple-conv": ("biased-mnist", "mi", "simple-conv", {"preset": "fast"}, {}),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--configs", nargs="+", default=["vanilla", "mi-paper", "mi-fast"], choices=sorted(CONFIGS)
    )
    p.add_argument("--train-size", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--target", type=float, default=0.95, help="value of --target-metric")
    p.add_argument(
        "--target-metric", default="val_accuracy", choices=["val_accuracy", "val_unbiased_accuracy"]
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        default=1,
        help="epochs trained first and left out of seconds_per_epoch (CUDA/cuDNN start-up)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=1,
        help="evaluate every N epochs (and after the last): time to target needs 1; a larger "
        "N makes a speed-only run much shorter (evaluation is not timed either way)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="train every config this many times, round-robin (config after config, then "
        "again), and report the median seconds per epoch: on a shared machine a change of "
        "load then falls on every config alike",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/speed.json"))
    args = p.parse_args(argv)

    data = {}
    rows = []
    by_name: dict[str, dict] = {}
    for name in [c for _ in range(args.repeats) for c in args.configs]:
        bench, method, model, settings, options = CONFIGS[name]
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
            settings=settings,
            epochs=args.warmup_epochs + args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            device=args.device,
            audit=False,
            progress=False,
            eval_every=args.eval_every,
            **options,
        )
        history: list[dict] = []
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        with PeakRSS() as rss:
            m = train(cfg, data=data[bench], history=history)
        wall = time.perf_counter() - t0
        gpu_mib = None
        if args.device.startswith("cuda"):
            gpu_mib = torch.cuda.max_memory_allocated() / 2**20
        curve, elapsed = [], 0.0  # (cumulative training seconds, metric) after each epoch
        for rec in history:
            elapsed += rec["seconds"]
            if args.target_metric in rec:  # an evaluated epoch
                curve.append((elapsed, rec[args.target_metric]))
        timed = history[args.warmup_epochs :]
        per_epoch = sum(rec["seconds"] for rec in timed) / len(timed)
        if name in by_name:  # a repeat: only its time is kept
            row = by_name[name]
            row["seconds_per_epoch_repeats"].append(per_epoch)
            row["seconds_per_epoch"] = statistics.median(row["seconds_per_epoch_repeats"])
            print(f"{name}: {per_epoch:.2f} s/epoch (repeat)", flush=True)
            write(args, rows)
            continue
        rows.append(
            {
                "config": name,
                "model": model,
                "options": options,
                "seconds_per_epoch": per_epoch,
                "seconds_per_epoch_repeats": [per_epoch],
                "seconds_to_target": seconds_to(curve, args.target),
                "curve": curve,
                "val_accuracy": m["val_accuracy"],
                "test_accuracy": m["test_accuracy"],
                "wall_seconds": wall,
                "peak_rss_mib": rss.peak,  # the whole process (data included), this config
                "peak_gpu_mib": gpu_mib,  # torch.cuda.max_memory_allocated, this config
            }
        )
        by_name[name] = rows[-1]
        print(f"{name}: {per_epoch:.2f} s/epoch", flush=True)
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
                "seconds_to_paper_best",
                "val_accuracy",
                "test_accuracy",
                "peak_rss_mib",
                "peak_gpu_mib",
            ],
        )
    )
    return 0


class PeakRSS:
    """Peak resident memory (MiB) of this process while the block runs, sampled every 20 ms
    from /proc/self/statm (Linux; None elsewhere). Per configuration, unlike ru_maxrss,
    which only grows over the process's life."""

    def __enter__(self):
        self.peak, self._stop = self._now(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self):
        while not self._stop.wait(0.02):
            now = self._now()
            if now is not None and (self.peak is None or now > self.peak):
                self.peak = now

    @staticmethod
    def _now() -> float | None:
        try:
            pages = int(open("/proc/self/statm").read().split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def seconds_to(curve: list[tuple[float, float]], target: float) -> float | None:
    """Cumulative seconds at the first epoch whose metric reaches `target` (None: never)."""
    return next((t for t, v in curve if v >= target), None)


def machine(device: str) -> dict:
    """Where a timing was taken, for a result file's meta: the command, device, GPU,
    platform, torch and its threads."""
    return {
        "command": "python " + " ".join(sys.argv),
        "device": device,
        "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def write(args, rows: list[dict]) -> None:
    """Ratios to the vanilla row of the same network, time to the paper schedule's best
    validation value, and the JSON file."""
    paper = next((r for r in rows if r["config"] == "mi-paper"), None)
    if paper is not None:
        best = max(v for _, v in paper["curve"])
        for r in rows:
            r["paper_best"] = best
            r["seconds_to_paper_best"] = seconds_to(r["curve"], best)
    base = {
        r["model"]: r["seconds_per_epoch"]
        for r in rows
        if r["config"].startswith("vanilla") and not r["options"]
    }
    for r in rows:
        if r["model"] in base:
            r["ratio_to_vanilla"] = r["seconds_per_epoch"] / base[r["model"]]
        r["seconds_per_full_epoch"] = r["seconds_per_epoch"] * 54000 / args.train_size
    meta = {
        **machine(args.device),
        "cpu": platform.processor() or platform.machine(),
        "train_size": args.train_size,
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "repeats": args.repeats,
        "target": args.target,
        "target_metric": args.target_metric,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
