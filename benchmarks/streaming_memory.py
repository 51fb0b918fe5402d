"""Memory of the image-folder path: a large folder is checked and streamed in bounded memory.

Writes --images synthetic JPEG files (size x size, smooth colour fields) with a labels.csv
into --work (the first run does only that), then measures (every later run), in this
process and its DataLoader workers: loading the folder (CSV, bias codes, every image's
header checked) and one shuffled pass of
`StreamingSplit.batches` over the training split (every image decoded, batch 256, the
minibatches moved to float as the loop sees them). Prints and writes the seconds and the
peak resident memory (ru_maxrss) of this process and of its largest worker, next to the
bytes the same images would take held in memory.

    python benchmarks/streaming_memory.py --images 100000 --size 64 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch


def write_images(root: Path, n: int, size: int, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    rows = []
    for i in range(n):
        a, b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
        img = a[None, None] * ramp[:, None, None] + b[None, None] * ramp[None, :, None]
        arr = np.clip(img * 127, 0, 255).astype(np.uint8)
        name = f"img/{i // 1000:03d}/{i:06d}.jpg"
        (root / name).parent.mkdir(exist_ok=True)
        Image.fromarray(arr).save(root / name, quality=90)
        rows.append([name, i % 2, int(a[0] > 0.5), f"{20 + 60 * b[1]:.2f}"])
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group", "age"])
        w.writerows(rows)


def peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kB on Linux


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("benchmarks/results/streaming/work"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/streaming"))
    args = p.parse_args(argv)

    from midebias.datasets.folder import load_folder
    from midebias.datasets.streaming import StreamingSplit

    folder = args.work / f"n{args.images}-s{args.size}"
    if not (folder / "labels.csv").is_file():
        # Writing leaves this process's peak memory higher than loading and streaming
        # need (measured: 1.27 GiB against 0.30 GiB after writing 100,000 files), so the
        # measurement is made by a fresh process.
        t0 = time.perf_counter()
        write_images(folder, args.images, args.size)
        took = time.perf_counter() - t0
        print(f"wrote {args.images} images to {folder} in {took:.0f} s; run again to measure")
        return 0
    base = peak_mib(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    data = load_folder(folder, "label", ["group", "age"], bins=4)
    t_load = time.perf_counter() - t0
    train = StreamingSplit(data["train"], (args.size, args.size), workers=args.workers)
    t0 = time.perf_counter()
    seen, total = 0, 0.0
    for batch in train.batches(256, shuffle=True, generator=torch.Generator().manual_seed(0)):
        seen += len(batch.y)
        total += float(batch.x.mean())
    t_pass = time.perf_counter() - t0
    result = {
        "images": args.images,
        "size": args.size,
        "workers": args.workers,
        "train_images": len(train),
        "streamed": seen,
        "seconds_load_and_check": round(t_load, 1),
        "seconds_pass": round(t_pass, 1),
        "images_per_second": round(seen / t_pass, 1),
        "peak_rss_mib_before_load": round(base, 1),
        "peak_rss_mib_main": round(peak_mib(resource.RUSAGE_SELF), 1),
        "peak_rss_mib_largest_worker": round(peak_mib(resource.RUSAGE_CHILDREN), 1),
        "in_memory_uint8_mib": round(len(train) * 3 * args.size**2 / 2**20, 1),
        "in_memory_float32_mib": round(len(train) * 3 * args.size**2 * 4 / 2**20, 1),
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"memory-n{args.images}-s{args.size}-w{args.workers}.json"
    (args.out / name).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if seen == len(train) else 1


if __name__ == "__main__":
    sys.exit(main())
