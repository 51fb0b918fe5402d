"""Reproduce the paper's Colored MNIST table: methods x sigma^2, mean +- std over seeds.

CPU schedule (default): 10,000 training digits, 5 epochs, batch 128, Adam 1e-3 (the numbers
it produced: docs/results.md). `--full` is the paper's scale for a GPU: all 54,000
training digits, 100 epochs, seeds 0-2. Writes one run folder per run under --out, a
summary.json, a table, and accuracy-vs-sigma^2.png.

    python benchmarks/colored_mnist.py --methods vanilla mi:fast --seeds 0 1 2
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import sweep  # noqa: E402
from plot import plot_summary  # noqa: E402

from midebias.datasets.colored_mnist import BIAS_VARIANCES

SIGMAS = [f"{s:g}" for s in BIAS_VARIANCES]  # the protocol's sigma^2 values


def main(argv=None) -> int:
    p = sweep.protocol_parser(
        __doc__,
        "--sigmas",
        SIGMAS,
        "paper scale (GPU): all digits, 100 ep.",
        "benchmarks/results/colored-mnist",
    )
    args = p.parse_args(argv)
    scale = (
        ["--epochs", "100"]
        if args.full
        else ["--epochs", "5", "--train-size", "10000", "--eval-every", "5"]
    )
    seeds = ["0", "1", "2"] if args.full and args.seeds == ["0"] else args.seeds
    sweep.run_protocol("colored-mnist", args, seeds, scale)
    plot_summary(
        args.out / "summary.json",
        "bias_var",
        args.out / "accuracy-vs-sigma2.png",
        "Colored MNIST (" + ("full" if args.full else "CPU schedule") + ")",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
