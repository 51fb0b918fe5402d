"""Per-epoch curves of runs as one figure: unbiased test accuracy at each evaluated epoch
(left) and the method's training-time MI estimate, the epoch's mean of `losses.mi` (right),
one line per run, coloured by bias strength, one line style per label. Reads the
curves.json files that `benchmarks/collect_curves.py` writes.

    python benchmarks/plot_curves.py benchmarks/results/debiasing/full-staged71/curves.json \\
        --out benchmarks/results/debiasing/full-staged71/curves.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STYLES = ("-", "--", ":", "-.")


def series(run: dict) -> tuple[list, list, list, list]:
    """(epochs, test accuracy) at the evaluated epochs and (epochs, mi estimate) at all."""
    ev = [e for e in run["epochs"] if e.get("test_accuracy") is not None]
    mi = [e for e in run["epochs"] if "mi" in e.get("losses", {})]
    return (
        [e["epoch"] for e in ev],
        [e["test_accuracy"] for e in ev],
        [e["epoch"] for e in mi],
        [e["losses"]["mi"] for e in mi],
    )


def plot(curves: list[dict], out: Path, title: str | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for c in curves for r in c["runs"].values()]
    strengths = sorted({r.get("strength") for r in runs}, key=lambda s: (s is None, s))
    labels = sorted({r["label"] for r in runs})
    colours = plt.get_cmap("viridis")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = set()
    for r in runs:
        ex, acc, em, mi = series(r)
        i = strengths.index(r.get("strength"))
        colour = colours(i / max(1, len(strengths) - 1))
        style = STYLES[labels.index(r["label"]) % len(STYLES)]
        key = (r.get("strength"), r["label"])
        name = f"{r['label']}, sigma^2 {r.get('strength')}" if key not in drawn else None
        drawn.add(key)
        left.plot(ex, acc, style, color=colour, marker="o", ms=3, label=name)
        right.plot(em, mi, style, color=colour, marker=".", ms=3)
    left.set(xlabel="epoch", ylabel="unbiased test accuracy")
    right.set(xlabel="epoch", ylabel="training MI estimate (nats)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return len(runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("curves", type=Path, nargs="+", help="curves.json files")
    p.add_argument("--out", type=Path, required=True, help="the figure (.png)")
    p.add_argument("--title")
    args = p.parse_args(argv)
    curves = [json.loads(c.read_text()) for c in args.curves]
    missing = [str(c) for c, d in zip(args.curves, curves, strict=True) if not d.get("runs")]
    if missing:
        p.error(f"no runs in {', '.join(missing)}")
    n = plot(curves, args.out, args.title)
    print(f"{n} runs -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
