"""Runs per second when N runs train as one batched computation (midebias.training.batched)
against the same runs one after the other, and what that makes of the full table.

    python benchmarks/batched.py --methods vanilla mi --n 1 8 32 \\
        --out benchmarks/results/batched/cpu.json

For each method: one single run (`train`, the sequential baseline), then batches of N runs
(seeds 0..N-1). Every run trains --warmup-epochs + --epochs epochs on --train-size
digits; the warm-up epochs are left out of the times (CUDA start-up, allocator). Reported:
seconds per run-epoch (a batch's epoch time divided by N), run-epochs per second, the
speed-up over the single run, peak memory per run (process RSS, and CUDA max allocated,
divided by N), and the projected wall time of the full Colored MNIST table at 54k digits
and 100 epochs (7 sigma^2 x 3 seeds x 6 rows = 126 runs, the time per run-epoch scaled
linearly from --train-size to 54k), at the largest N measured. `--vectorize` forces the
vmap path (the default on CUDA) or the loop (the default on CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from speed import PeakRSS, machine  # noqa: E402

from midebias.report import format_table  # noqa: E402
from midebias.training import TrainConfig, train  # noqa: E402
from midebias.training.batched import train_batched  # noqa: E402

TABLE_RUNS = 7 * 3 * 6
TABLE_EPOCHS = 100
FULL_TRAIN = 54_000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["vanilla", "mi"], choices=["vanilla", "mi"])
    p.add_argument("--n", nargs="+", type=int, default=[1, 8, 32])
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--source", default="mnist", choices=["mnist", "demo"])
    p.add_argument("--vectorize", choices=["auto", "yes", "no"], default="auto")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/batched/cpu.json"))
    args = p.parse_args(argv)
    vectorize = {"auto": None, "yes": True, "no": False}[args.vectorize]
    cuda = args.device.startswith("cuda")

    def cfg(method: str, seed: int) -> TrainConfig:
        return TrainConfig(
            benchmark="colored-mnist",
            method=method,
            source=args.source,
            train_size=args.train_size,
            batch_size=args.batch_size,
            epochs=args.warmup_epochs + args.epochs,
            seed=seed,
            device=args.device,
            audit=False,
            progress=False,
            eval_every=10_000,  # evaluate after the last epoch only (not timed anyway)
        )

    def timed(history: list[dict]) -> float:
        recs = history[args.warmup_epochs :]
        return sum(r["seconds"] for r in recs) / len(recs)

    rows: list[dict] = []
    for method in args.methods:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        history: list[dict] = []
        with PeakRSS() as rss:
            train(cfg(method, 0), history=history)
        single = timed(history)
        rows.append(_row(method, "single", 1, single, single, rss.peak, cuda))
        print(f"{method} single: {single:.3f} s/epoch", flush=True)
        write(args, rows)
        for n in args.n:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            histories: list[list[dict]] = [[] for _ in range(n)]
            t0 = time.perf_counter()
            with PeakRSS() as rss:
                train_batched(
                    [cfg(method, s) for s in range(n)], histories=histories, vectorize=vectorize
                )
            per_run = timed(histories[0])  # every run's record holds the batch's time / N
            rows.append(_row(method, "batched", n, per_run, single, rss.peak, cuda))
            rows[-1]["wall_seconds"] = time.perf_counter() - t0
            print(f"{method} batched N={n}: {per_run:.3f} s per run-epoch", flush=True)
            write(args, rows)
    print(
        format_table(
            rows,
            [
                "method",
                "mode",
                "n",
                "seconds_per_run_epoch",
                "run_epochs_per_second",
                "speedup_vs_single",
                "table_hours",
                "peak_rss_mib_per_run",
                "peak_gpu_mib_per_run",
            ],
        )
    )
    return 0


def _row(method, mode, n, per_run, single, rss_peak, cuda) -> dict:
    gpu = torch.cuda.max_memory_allocated() / 2**20 / n if cuda else None
    return {
        "method": method,
        "mode": mode,
        "n": n,
        "seconds_per_run_epoch": per_run,
        "run_epochs_per_second": 1.0 / per_run,
        "speedup_vs_single": single / per_run,
        "peak_rss_mib_per_run": None if rss_peak is None else rss_peak / n,
        "peak_gpu_mib_per_run": gpu,
    }


def write(args, rows: list[dict]) -> None:
    scale = FULL_TRAIN / args.train_size
    for r in rows:
        # The full table (126 runs x 100 epochs at 54k digits) at this row's rate.
        r["table_hours"] = TABLE_RUNS * TABLE_EPOCHS * r["seconds_per_run_epoch"] * scale / 3600
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        **machine(args.device),
        "train_size": args.train_size,
        "epochs_timed": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "vectorize": args.vectorize,
        "table": f"{TABLE_RUNS} runs x {TABLE_EPOCHS} epochs at {FULL_TRAIN} digits",
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
