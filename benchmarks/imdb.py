"""The paper's IMDB table: gender classification with age as the bias (Kim et al.'s splits).

For each training split (EB1: young women and old men; EB2: the reverse) and each method,
trains on that split and reports the accuracy on the other extreme split and on the
unbiased test list, plus the leakage audit of the test split. Needs the IMDB files
(docs/images.md: where to obtain them and their layout) and, at the authors' scale, a GPU.

    python benchmarks/imdb.py --data-dir DIR --device cuda --init-checkpoint r18-imagenet.pt
    python benchmarks/imdb.py --data-dir DIR --methods vanilla mi --epochs 1 --image-size 64

Runs as `midebias sweep` does (one `midebias train` process per run, --jobs at once;
finished runs are skipped, unfinished ones resumed). Writes one run folder per run under
--out and <out>/summary.json (one row per run) and
prints the table (rows: methods; columns: EB1 -> EB2, EB1 -> test, EB2 -> EB1, EB2 -> test).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from midebias import sweep

METHODS = ["vanilla", "blindeye", "lnl", "mi"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", required=True, help="the IMDB folder (docs/images.md)")
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--splits", nargs="+", choices=["eb1", "eb2"], default=["eb1", "eb2"])
    p.add_argument("--model", default="resnet18", choices=["resnet18", "resnet50"])
    p.add_argument("--init-checkpoint", help="ImageNet weights of the trunk (recommended)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--image-size", type=int, default=None, help="default 224")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--skip-bad-images", action="store_true")
    p.add_argument("--no-audit", action="store_true")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (processes)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/imdb"))
    args = p.parse_args(argv)

    # The grid (training split x method x seed) runs through `midebias sweep`'s machinery:
    # one `midebias train` process per run, finished runs skipped, unfinished ones resumed.
    base = {
        "benchmark": "imdb",
        "model": args.model,
        "device": args.device,
        "workers": args.workers,
        "data_dir": args.data_dir,
    }
    optional = {
        "init_checkpoint": args.init_checkpoint,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "image_size": args.image_size,
    }
    base |= {k: v for k, v in optional.items() if v is not None}
    base |= {"skip_bad_images": args.skip_bad_images, "no_audit": args.no_audit}
    spec = {
        "name": "{train_split}-{method}-s{seed}",
        "label": "{method}",
        "base": base,
        "grid": {"train_split": args.splits, "method": args.methods, "seed": args.seeds},
    }
    try:
        grid = sweep.expand(spec, source="imdb.py")
        sweep.check(grid, args.out)
    except sweep.SpecError as e:
        p.error(str(e))
    todo = [(r, s) for r in grid.runs if (s := sweep.run_state(args.out / r.name)) != "finished"]
    outcomes = sweep.run_processes(todo, args.out, jobs=args.jobs, threads=None)
    rows = []
    for run in grid.runs:
        folder = args.out / run.name
        if not (folder / "metrics.json").exists():
            continue
        m = json.loads((folder / "metrics.json").read_text())
        split, method = run.values["train_split"], run.values["method"]
        other = "eb2" if split == "eb1" else "eb1"
        rows.append(
            {
                "train_split": split,
                "method": method,
                "seed": run.values["seed"],
                "other_split_accuracy": m[f"{other}_accuracy"],
                "test_accuracy": m["test_accuracy"],
                "val_accuracy": m["val_accuracy"],
                "bias_probe_accuracy": m.get("bias_probe_accuracy"),
                "mi_posthoc": m.get("mi_posthoc"),
                "epochs": m["epochs"],
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(table(rows))
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"imdb.py: run {o.name} failed: {o.error}", file=sys.stderr)
    return 1 if failed else 0


def table(rows: list[dict]) -> str:
    """Mean accuracy per method and (training split -> evaluation split)."""
    cols = [("eb1", "other_split_accuracy", "EB1->EB2"), ("eb1", "test_accuracy", "EB1->test")]
    cols += [("eb2", "other_split_accuracy", "EB2->EB1"), ("eb2", "test_accuracy", "EB2->test")]
    lines = ["method    " + "".join(f"{c[2]:>11}" for c in cols)]
    for method in dict.fromkeys(r["method"] for r in rows):
        cells = []
        for split, key, _ in cols:
            v = [r[key] for r in rows if r["method"] == method and r["train_split"] == split]
            cells.append(f"{sum(v) / len(v):>11.4f}" if v else f"{'-':>11}")
        lines.append(f"{method:<10}" + "".join(cells))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
