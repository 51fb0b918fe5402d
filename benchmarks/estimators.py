"""Benchmark the MI estimators against data with a known mutual information.

For every setting (correlated Gaussians of width d at a given true MI, and categorical
Gaussian mixtures), every estimator and every seed, this trains a fresh estimator with
`midebias.estimators.fit_estimator` (the procedure behind `estimate_mi`) and records:

* estimate: the held-out estimate in nats (what `estimate_mi` returns);
* batch_sd: the standard deviation of the estimator's value over random minibatches of
  128 held-out samples: the noise of the signal the encoder would descend during
  training (Ragonesi et al. use minibatches of 128);
* seconds: the wall time of fitting and evaluation.

It prints, per setting and estimator, the mean estimate over seeds, its bias (mean - true
MI), the standard deviation over seeds and the mean batch_sd, then a summary per
estimator. Results are appended to a JSON file as they come in.

    python benchmarks/estimators.py --quick            # < 2 min on 2 idle CPU cores
    python benchmarks/estimators.py --seeds 3          # full grid, several minutes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from midebias.estimators import (
    ESTIMATORS,
    correlated_gaussians,
    fit_estimator,
    gaussian_mixture_categorical,
    held_out_estimate,
    rho_for_mi,
)

FULL_DIMS = (1, 5, 10, 20)
FULL_MIS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
# Quick: low, moderate and high MI in one dimension, moderate MI spread over 20, and the
# two mixtures; fewer steps: a few minutes on a small CPU.
QUICK_GAUSSIANS = ((1, 0.1), (1, 2.0), (1, 8.0), (20, 2.0))
# (k classes, d dims, separation): low-d easy, and a 64-d z like the digits encoder's.
FULL_MIXTURES = ((4, 3, 2.0), (10, 64, 1.5), (10, 64, 3.0))
QUICK_MIXTURES = ((4, 3, 2.0), (10, 64, 3.0))
QUICK_FIT = {"steps": 800, "patience": 4}
BATCH_FOR_NOISE = 128


def settings(quick: bool) -> list[dict]:
    """The benchmark grid: one dict per data setting."""
    gaussians = QUICK_GAUSSIANS if quick else [(d, mi) for d in FULL_DIMS for mi in FULL_MIS]
    mixtures = QUICK_MIXTURES if quick else FULL_MIXTURES
    out = [{"kind": "gaussian", "d": d, "mi": mi} for d, mi in gaussians]
    out += [{"kind": "mixture", "k": k, "d": d, "separation": s} for k, d, s in mixtures]
    return out


def make_data(setting: dict, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(1000 + seed)
    if setting["kind"] == "gaussian":
        return correlated_gaussians(n, setting["d"], rho_for_mi(setting["mi"], setting["d"]), rng)
    return gaussian_mixture_categorical(n, setting["k"], setting["d"], setting["separation"], rng)


def label(setting: dict) -> str:
    if setting["kind"] == "gaussian":
        return f"gauss d={setting['d']:<2} I={setting['mi']:g}"
    return f"mix k={setting['k']} d={setting['d']} s={setting['separation']:g}"


def minibatch_sd(fit, seed: int, batches: int = 20) -> float:
    """Std of the estimator's value over random held-out minibatches of BATCH_FOR_NOISE."""
    est, x, y = fit.estimator, fit.x_test, fit.y_test
    gen = torch.Generator().manual_seed(seed)
    size = min(BATCH_FOR_NOISE, x.shape[0])
    values = []
    with torch.no_grad():
        for _ in range(batches):
            idx = torch.randperm(x.shape[0], generator=gen)[:size]
            values.append(float(est(x[idx], y[idx])))
    return statistics.stdev(values)


def run_one(name: str, setting: dict, n: int, seed: int, fit_kw: dict) -> dict:
    x, y, true = make_data(setting, n, seed)
    t0 = time.perf_counter()
    fit = fit_estimator(x, y, estimator=name, seed=seed, **fit_kw)
    estimate = held_out_estimate(fit)
    seconds = time.perf_counter() - t0
    return {
        "setting": setting,
        "label": label(setting),
        "estimator": name,
        "seed": seed,
        "n": n,
        "true_mi": true,
        "estimate": estimate,
        "batch_sd": minibatch_sd(fit, seed),
        "steps": fit.steps,
        "seconds": seconds,
    }


def write_json(path: Path, meta: dict, rows: list[dict]) -> None:
    """Rewrite the whole file atomically, so that it is valid after every result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    os.replace(tmp, path)


def _f(v: float, width: int = 8, signed: bool = False) -> str:
    """Fixed 3 decimals, or 3 significant digits for huge values (CLUB at high MI)."""
    spec = ("+" if signed else "") + (".3f" if abs(v) < 1e4 else ".2e")
    return f"{v:{spec}}".rjust(width)


def summarise(rows: list[dict], names: list[str]) -> str:
    """Per setting and estimator: mean estimate, bias, sd over seeds, mean batch_sd."""
    lines = [
        f"{'setting':<24}{'true':>6}  {'estim.':<8}{'mean':>10}{'bias':>10}{'sd':>10}"
        f"{'batch_sd':>10}{'sec':>6}"
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["label"], r["estimator"]), []).append(r)
    labels = list(dict.fromkeys(r["label"] for r in rows))
    per_est: dict[str, dict[str, list[float]]] = {
        n: {"abs_bias_low": [], "abs_bias_all": [], "rel_bias": [], "sd": [], "bsd": []}
        for n in names
    }
    for lab in labels:
        lines.append("-" * 84)
        for name in names:
            rs = groups.get((lab, name))
            if not rs:
                continue
            est = [r["estimate"] for r in rs]
            true = statistics.mean(r["true_mi"] for r in rs)
            mean = statistics.mean(est)
            sd = statistics.stdev(est) if len(est) > 1 else float("nan")
            bsd = statistics.mean(r["batch_sd"] for r in rs)
            sec = statistics.mean(r["seconds"] for r in rs)
            lines.append(
                f"{lab:<24}{true:>6.2f}  {name:<8}{_f(mean, 10)}{_f(mean - true, 10, True)}"
                f"{_f(sd, 10)}{_f(bsd, 10)}{sec:>6.1f}"
            )
            agg = per_est[name]
            agg["abs_bias_all"].append(abs(mean - true))
            if true <= 2.05:
                agg["abs_bias_low"].append(abs(mean - true))
            if true > 0.05:
                agg["rel_bias"].append((mean - true) / true)
            if not math.isnan(sd):
                agg["sd"].append(sd)
            agg["bsd"].append(bsd)
    lines.append("=" * 84)
    lines.append(
        "summary per estimator over settings: mean |bias| where true MI <= 2 and over all;"
        " median relative bias; median sd over seeds; median batch_sd"
    )
    for name in names:
        agg = per_est[name]
        if not agg["abs_bias_all"]:
            continue

        def m(v: list[float]) -> float:
            return statistics.mean(v) if v else float("nan")

        def med(v: list[float]) -> float:
            return statistics.median(v) if v else float("nan")

        lines.append(
            f"  {name:<8} |bias| {_f(m(agg['abs_bias_low']), 0)} / {_f(m(agg['abs_bias_all']), 0)}"
            f"   rel.bias {_f(med(agg['rel_bias']), 0, True)}   sd {_f(med(agg['sd']), 0)}"
            f"   batch_sd {_f(med(agg['bsd']), 0)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds per cell (default 3; 2 with --quick)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller grid, data and training: < 2 min on 2 idle cores",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/estimators.json"), help="JSON path"
    )
    parser.add_argument(
        "--estimators", nargs="+", default=list(ESTIMATORS), choices=list(ESTIMATORS)
    )
    parser.add_argument("--n", type=int, default=None, help="samples per run (5000; quick 2000)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per fit")
    args = parser.parse_args(argv)

    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 3)
    n = args.n if args.n is not None else (2000 if args.quick else 5000)
    # Quick runs cap training; full runs use estimate_mi's defaults.
    fit_kw: dict = {"num_threads": args.threads}
    if args.quick:
        fit_kw.update(QUICK_FIT)
    grid = settings(args.quick)
    meta = {
        "quick": args.quick,
        "seeds": seeds,
        "n": n,
        "fit_kwargs": fit_kw,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    rows: list[dict] = []
    total = len(grid) * len(args.estimators) * seeds
    t0 = time.perf_counter()
    for setting in grid:
        for name in args.estimators:
            for seed in range(seeds):
                row = run_one(name, setting, n, seed, fit_kw)
                rows.append(row)
                write_json(args.out, meta, rows)
                print(
                    f"[{len(rows)}/{total} {time.perf_counter() - t0:6.0f}s] {row['label']:<24} "
                    f"{name:<8} seed {seed}: {row['estimate']:.3f} (true {row['true_mi']:.3f})",
                    file=sys.stderr,
                    flush=True,
                )
    meta["seconds"] = time.perf_counter() - t0
    write_json(args.out, meta, rows)
    print(summarise(rows, args.estimators))
    print(f"\n{len(rows)} runs in {meta['seconds']:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
