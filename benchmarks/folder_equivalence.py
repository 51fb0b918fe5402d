"""The folder path reproduces the in-memory benchmark: same images, same numbers.

Builds Colored MNIST in memory (the registry's generator), writes every image of its train,
val and test splits as a PNG file plus a labels.csv (path, digit, colour index, split), then
trains the same methods twice with the same flags: on the in-memory benchmark
(`--benchmark colored-mnist --bias-code index`) and on the folder (`--benchmark folder
--target digit --bias colour --no-augment`, the images decoded by Pillow in DataLoader
workers). PNG is lossless and the streamed split draws its order exactly as the in-memory
one, so the two runs see the same minibatches and their numbers agree to the last digit.

    python benchmarks/folder_equivalence.py --source demo --methods vanilla mi --epochs 2
    python benchmarks/folder_equivalence.py --train-size 10000 --epochs 5   # real MNIST

Writes <out>/summary.json (both runs' metrics, per method) and the folder and run folders
under <out>/work (kept out of git).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from midebias.datasets.registry import load_benchmark
from midebias.training import TrainConfig, train

KEYS = [
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "bias_probe_accuracy",
    "mi_posthoc",
    "final_losses",
]


def write_folder(data, root: Path) -> None:
    """Every image of train/val/test as root/<split>/<i>.png, and root/labels.csv."""
    from PIL import Image

    rows = []
    for split in ("train", "val", "test"):
        s = data[split]
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(len(s)):
            name = f"{split}/{i:05d}.png"
            Image.fromarray(s.images[i]).save(root / name)
            rows.append([name, int(s.labels[i]), int(s.bias[i]), split])
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "digit", "colour", "split"])
        w.writerows(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["vanilla", "mi"])
    p.add_argument("--source", choices=["mnist", "demo"], default="mnist")
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--bias-var", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data-dir", default=None, help="MNIST files (else MIDEBIAS_DATA_DIR)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/folder-equivalence"))
    args = p.parse_args(argv)

    data = load_benchmark(
        "colored-mnist",
        strength=args.bias_var,
        seed=args.seed,
        train_size=args.train_size,
        source=args.source,
        data_dir=args.data_dir,
    )
    folder = args.out / "work" / "images"
    if not (folder / "labels.csv").is_file():
        write_folder(data, folder)
    common = {
        "method": "",
        "epochs": args.epochs,
        "seed": args.seed,
        "batch_size": 128,
        "lr": 1e-3,
        "model": "paper-digits",
        "progress": False,
    }
    rows = []
    for method in args.methods:
        common["method"] = method
        memory = TrainConfig(
            benchmark="colored-mnist",
            strength=args.bias_var,
            bias_code="index",
            train_size=args.train_size,
            source=args.source,
            data_dir=args.data_dir,
            **common,
        )
        files = TrainConfig(
            benchmark="folder",
            data_dir=str(folder),
            target="digit",
            bias_columns=["colour"],
            augment=False,
            workers=args.workers,
            **common,
        )
        m = train(memory, data=data)
        f = train(files)
        same = {k: m[k] == f[k] for k in KEYS}
        rows.append(
            {
                "method": method,
                "in_memory": {k: m[k] for k in KEYS + ["seconds_per_epoch"]},
                "folder": {k: f[k] for k in KEYS + ["seconds_per_epoch"]},
                "equal": same,
            }
        )
        print(
            f"{method}: test {m['test_accuracy']:.4f} / {f['test_accuracy']:.4f}  "
            f"probe {m['bias_probe_accuracy']:.4f} / {f['bias_probe_accuracy']:.4f}  "
            f"MI {m['mi_posthoc']:.4f} / {f['mi_posthoc']:.4f}  "
            f"s/epoch {m['seconds_per_epoch']:.1f} / {f['seconds_per_epoch']:.1f}  "
            f"all equal: {all(same.values())}"
        )
    summary = {
        "settings": {
            k: getattr(args, k) for k in ("source", "train_size", "epochs", "bias_var", "seed")
        }
        | {"workers": args.workers, "images": {s: len(data[s]) for s in ("train", "val", "test")}},
        "runs": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all(all(r["equal"].values()) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
