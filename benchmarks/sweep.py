"""Sweep methods x bias strengths x seeds on an image benchmark; one run folder per run.

Each run is a `midebias train` process run by the machinery of `midebias sweep`
(docs/sweeps.md), `--jobs` at once: finished runs are skipped and unfinished ones resumed,
so a sweep can be stopped and started again. A summary JSON (every run's metrics plus
mean/std per method and strength) is rewritten after every run, and a table is printed at
the end. Example (vanilla on Colored MNIST):

    python benchmarks/sweep.py --benchmark colored-mnist --methods vanilla \
        --strengths 0.02 0.03 0.05 --epochs 5 --train-size 20000 --out benchmarks/results/cm

Anything a table shows can be rebuilt from the run folders (`collect`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

import torch

from midebias import sweep
from midebias.cli import add_settings_option
from midebias.datasets.registry import IMAGE_BENCHMARKS
from midebias.report import format_table, mean_std

#: Every method row of the benchmark tables (method or method:preset).
ALL_METHODS = ["vanilla", "mi:balanced", "mi:best", "mi:fast", "blindeye", "lnl", "lnl:stable"]


def protocol_parser(
    doc: str, strengths_flag: str, strengths: list[str], full_help: str, out: str
) -> argparse.ArgumentParser:
    """The command line shared by the benchmark protocol scripts (colored_mnist.py, ...)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--methods", nargs="+", default=ALL_METHODS)
    p.add_argument(strengths_flag, dest="strengths", nargs="+", default=strengths)
    p.add_argument("--seeds", nargs="+", default=["0"])
    p.add_argument("--full", action="store_true", help=full_help)
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (processes)")
    p.add_argument("--out", type=Path, default=Path(out))
    return p


def run_protocol(benchmark: str, args: argparse.Namespace, seeds: list[str], scale: list[str]):
    """Run this sweep for a protocol script's parsed arguments (see `protocol_parser`)."""
    main(
        [
            "--benchmark",
            benchmark,
            "--methods",
            *args.methods,
            "--strengths",
            *args.strengths,
            "--seeds",
            *seeds,
            *scale,
            "--device",
            args.device,
            "--jobs",
            str(args.jobs),
            "--out",
            str(args.out),
        ]
    )


def parse_method(spec: str) -> tuple[str, dict]:
    """'mi:fast' -> ('mi', {'preset': 'fast'}); 'vanilla' -> ('vanilla', {})."""
    name, _, preset = spec.partition(":")
    return name, ({"preset": preset} if preset else {})


def run_name(method: str, strength: float, seed: int, tag: str = "") -> str:
    label = method.replace(":", "-")
    return f"{label}{('-' + tag) if tag else ''}_s{strength:g}_seed{seed}"


def collect(out: Path) -> list[dict]:
    """Final metrics of every finished run below `out`, with its config's settings."""
    rows = []
    for f in sorted(out.glob("*/metrics.json")):
        m = json.loads(f.read_text())
        cfg = json.loads((f.parent / "config.json").read_text())
        label = cfg.get("label", m["method"])
        rows.append(
            {**m, "label": label, "run": f.parent.name, "settings": cfg.get("settings", {})}
        )
    return rows


def summarise(rows: list[dict], strength_key: str, metrics: list[str]) -> list[dict]:
    """mean +- std over seeds of each metric, per (method label, strength)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("label", r["method"]), r[strength_key]), []).append(r)
    out = []
    for (label, s), rs in sorted(groups.items()):
        row = {"method": label, strength_key: s, "seeds": len(rs), "epochs": rs[0]["epochs"]}
        out.append({**row, **mean_std(rs, metrics)})
    return out


def table(summary: list[dict], strength_key: str, metrics: list[str]) -> str:
    rows = []
    for s in summary:
        r = {"method": s["method"], strength_key: s[strength_key], "n": s["seeds"]}
        for m in metrics:
            if m in s:
                r[m] = f"{s[m]:.3f} +- {s[m + '_std']:.3f}"
        rows.append(r)
    return format_table(rows, ["method", strength_key, "n", *metrics])


DEFAULT_METRICS = [
    "test_accuracy",
    "aligned_accuracy",
    "val_unbiased_accuracy",
    "bias_probe_accuracy",
    "mi_posthoc",
    "seconds_per_epoch",
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--benchmark", required=True, choices=sorted(IMAGE_BENCHMARKS))
    p.add_argument(
        "--methods", nargs="+", default=["vanilla"], help="method or method:preset, e.g. mi:fast"
    )
    p.add_argument("--strengths", nargs="+", type=float, default=[], help="sigma^2 or rho")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--model", default=None, help="default: the benchmark's network")
    p.add_argument("--lr", type=float, default=None)
    add_settings_option(p.add_argument, "method setting applied to every non-vanilla method")
    p.add_argument("--tag", default="", help="suffix of run names (e.g. a preset)")
    p.add_argument("--eval-every", type=int, default=1, help="evaluate every N epochs")
    p.add_argument("--no-audit", action="store_true")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (processes)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--summary-only", action="store_true", help="rebuild summary.json from --out; train none"
    )
    args = p.parse_args(argv)
    if not args.strengths and not args.summary_only:
        p.error("--strengths is required (unless --summary-only)")

    key = IMAGE_BENCHMARKS[args.benchmark].bias_setting
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    try:
        grid = [] if args.summary_only else runs(args)
    except sweep.SpecError as e:
        p.error(str(e))
    todo = [(r, s) for r in grid if (s := sweep.run_state(args.out / r.name)) != "finished"]

    def done(o: sweep.Outcome) -> None:  # called once per run, one at a time
        if not o.ok:
            print(f"{o.name}: FAILED: {o.error}", flush=True)
            return
        m = json.loads((args.out / o.name / "metrics.json").read_text())
        print(
            f"{o.name}: test {m['test_accuracy']:.3f} aligned "
            f"{m['aligned_accuracy']:.3f} ({m['seconds_per_epoch']:.1f} s/epoch)",
            flush=True,
        )
        write_summary(args, key)

    # Each run is its own `midebias train` process (threads as this process's: the
    # summary records them); one diverged run does not end the sweep.
    outcomes = sweep.run_processes(todo, args.out, jobs=args.jobs, threads=None, on_done=done)
    summary = write_summary(args, key)
    print(table(summary, key, DEFAULT_METRICS))
    print(f"({time.time() - started:.0f} s; runs in {args.out})")
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"sweep.py: run {o.name} failed: {o.error}", file=sys.stderr)
    return 1 if failed else 0


def runs(args: argparse.Namespace) -> list[sweep.Run]:
    """The runs of this command line, in the order of its loops (strength, seed, method),
    each exactly `midebias train ... --out OUT/run_name(...)` (checked before any runs)."""
    base = {"benchmark": args.benchmark, "epochs": args.epochs, "eval_every": args.eval_every}
    optional = {
        "train_size": args.train_size,
        "batch_size": args.batch_size,
        "model": args.model,
        "lr": args.lr,
        "data_dir": args.data_dir,
    }
    base |= {k: v for k, v in optional.items() if v is not None}
    base |= {"device": args.device, "no_audit": args.no_audit}
    tag = f"-{args.tag}" if args.tag else ""
    found: list[sweep.Run] = []
    for method in args.methods:
        settings = dict(args.settings) if parse_method(method)[0] != "vanilla" else {}
        spec = {
            "name": "{method}" + tag + "_s{strength}_seed{seed}",
            "label": "{method}" + (f"[{args.tag}]" if args.tag else ""),
            "base": {**base, "method": method, "set": settings},
            "grid": {"strength": args.strengths, "seed": args.seeds},
        }
        grid = sweep.expand(spec, source="sweep.py")
        sweep.check(grid, args.out)
        found += grid.runs
    order = {
        (s, seed): i for i, (s, seed) in enumerate(itertools.product(args.strengths, args.seeds))
    }
    return sorted(found, key=lambda r: order[r.values["strength"], r.values["seed"]])


def write_summary(args, key: str) -> list[dict]:
    """summary.json from the run folders in args.out, keeping the rows of an earlier
    summary whose run folders are not here (raw run folders are not kept in git, so a
    rerun in a fresh checkout adds to the committed summary instead of replacing it)."""
    rows = collect(args.out)
    old = args.out / "summary.json"
    if old.exists():
        here = {r["run"] for r in rows}
        kept = [r for r in json.loads(old.read_text()).get("runs", []) if r.get("run") not in here]
        rows = sorted(kept + rows, key=lambda r: r["run"])
    summary = summarise(rows, key, DEFAULT_METRICS)
    meta = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()} {platform.processor()} torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
    }
    (args.out / "summary.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": rows}, indent=2) + "\n"
    )
    return summary


if __name__ == "__main__":
    sys.exit(main())
