"""Per-epoch curves of every run folder below a folder, as one JSON file to commit (raw run
folders stay out of git): each run's label, whether it finished, its settings and every
epoch's record (losses, including mi's training-time estimate, and the evaluations), with
its benchmark and bias strength (`benchmarks/plot_curves.py` draws them).

    python benchmarks/collect_curves.py benchmarks/results/debiasing/full \\
        --out benchmarks/results/debiasing/full/curves.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def collect(parent: Path) -> dict:
    runs = {}
    for cfg_file in sorted(parent.glob("*/config.json")):
        folder = cfg_file.parent
        cfg = json.loads(cfg_file.read_text())
        log = folder / "metrics.jsonl"
        epochs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        runs[folder.name] = {
            "label": cfg.get("label", cfg["method"]),
            "benchmark": cfg.get("benchmark"),
            "strength": cfg.get("strength"),
            "finished": (folder / "metrics.json").exists(),
            "device": cfg.get("device"),
            "epochs_planned": cfg.get("epochs"),
            "train_size": cfg.get("train_size"),
            "seed": cfg.get("seed"),
            "settings": cfg.get("settings", {}),
            "epochs": epochs,
        }
    return {"note": f"per-epoch records of the run folders in {parent}", "runs": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("parent", type=Path, help="the folder holding the run folders")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    data = collect(args.parent)
    if not data["runs"]:
        p.error(f"no run folders (with config.json) in {args.parent}")
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(data['runs'])} runs -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
