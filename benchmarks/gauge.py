"""The quick debiasing gauge: train configurations on one benchmark setting and record
unbiased test accuracy, val_unbiased accuracy, the bias probe (on test, and on val_unbiased:
`val_probe`, the one to choose settings on) and the MI estimates.

Each line of SPECS is a JSON object: "name" (row label), optional "method", "settings",
"benchmark", "strength", "seed", "epochs", "train_size", "bias_code", "model",
"lr_schedule" (defaults: Colored MNIST, sigma^2 0.020, 10,000 digits, 5 epochs, seed 0,
the benchmark's network, a constant learning rate).
Results go to OUT (JSON lines, one per run, with the per-epoch losses); names already in
OUT are skipped, so a run resumes. Every spec's keys are checked before the first run.
Two processes with one thread each use both cores of a 2-core machine:

    OMP_NUM_THREADS=1 python benchmarks/gauge.py benchmarks/results/debiasing/gauge.specs \
        --out benchmarks/results/debiasing/gauge.jsonl --part 0/2 &
    OMP_NUM_THREADS=1 python benchmarks/gauge.py benchmarks/results/debiasing/gauge.specs \
        --out benchmarks/results/debiasing/gauge.jsonl --part 1/2
    python benchmarks/gauge.py --table benchmarks/results/debiasing/gauge.jsonl
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from midebias.report import format_table
from midebias.training import TrainConfig, train
from midebias.training.config import LR_SCHEDULES
from midebias.training.reaudit import audit_split

KEYS = (
    "method",
    "benchmark",
    "strength",
    "seed",
    "epochs",
    "train_size",
    "bias_code",
    "model",
    "lr_schedule",
)


def run_spec(spec: dict) -> dict:
    cfg = TrainConfig(
        benchmark=spec.get("benchmark", "colored-mnist"),
        strength=spec.get("strength", 0.020),
        method=spec.get("method", "vanilla"),
        epochs=spec.get("epochs", 5),
        train_size=spec.get("train_size", 10000),
        seed=spec.get("seed", 0),
        bias_code=spec.get("bias_code"),
        model=spec.get("model"),  # None: the benchmark's network
        lr_schedule=spec.get("lr_schedule", "constant"),
        settings=spec.get("settings", {}),
        eval_every=spec.get("epochs", 5),  # evaluate once, at the end
        progress=False,
    )
    history: list[dict] = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as run:
        m = train(cfg, out=Path(run) / "run", history=history)
        # the bias probe on val_unbiased too: held-out training digits, for choosing settings
        val = audit_split(Path(run) / "run", "val_unbiased")
    return {
        "spec": spec,
        "name": spec["name"],
        "test": m["test_accuracy"],
        "val_unbiased": m["val_unbiased_accuracy"],
        "aligned": m["aligned_accuracy"],
        "probe": m.get("bias_probe_accuracy"),
        "val_probe": val["bias_probe_accuracy"],
        "mi_posthoc": m.get("mi_posthoc"),
        "mi_train": m.get("mi_train"),
        "seconds_per_epoch": m["seconds_per_epoch"],
        "wall_seconds": time.time() - t0,
        "losses": [h["losses"] for h in history],
        "config": cfg.resolve().to_dict(),
        "torch": torch.__version__,
    }


def table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    cols = ["name", "test", "val_unbiased", "aligned", "probe", "val_probe", "mi_posthoc"]
    cols += ["seconds_per_epoch"]
    return format_table([{k: r.get(k) for k in cols} for r in rows], cols)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("specs", nargs="?", type=Path, help="file with one JSON spec per line")
    p.add_argument("--out", type=Path, help="JSON lines file of results (appended)")
    p.add_argument("--part", default="0/1", help="K/N: run every N-th spec from the K-th")
    p.add_argument("--table", type=Path, help="print the table of a results file and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    if args.specs is None or args.out is None:
        p.error("give SPECS and --out (or --table FILE)")
    k, n = (int(v) for v in args.part.split("/"))
    specs = [json.loads(s) for s in args.specs.read_text().splitlines() if s.strip()]
    done = set()
    if args.out.exists():
        done = {json.loads(s)["name"] for s in args.out.read_text().splitlines() if s.strip()}
    for spec in specs:  # every spec, before the first run: a typo fails in seconds
        unknown = set(spec) - {"name", "settings", *KEYS}
        if unknown:
            p.error(f"spec {spec.get('name')!r}: unknown keys {sorted(unknown)}")
        if spec.get("lr_schedule", "constant") not in LR_SCHEDULES:
            p.error(
                f"spec {spec.get('name')!r}: lr_schedule {spec['lr_schedule']!r} is not one "
                f"of {', '.join(LR_SCHEDULES)}"
            )
    for spec in specs[k::n]:
        if spec["name"] in done:
            continue
        record = run_spec(spec)
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"{record['name']}: test {record['test']:.3f} probe {record['probe']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
