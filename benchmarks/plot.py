"""Accuracy against bias strength, one line per method, from a sweep's summary.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot_summary(summary_path: Path, strength_key: str, out_png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = json.loads(summary_path.read_text())["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for metric, ax in zip(["test_accuracy", "bias_probe_accuracy"], axes, strict=True):
        for method in sorted({s["method"] for s in summary}):
            rows = sorted(
                (s for s in summary if s["method"] == method and metric in s),
                key=lambda s: s[strength_key],
            )
            if not rows:
                continue
            xs = [r[strength_key] for r in rows]
            ax.errorbar(
                xs,
                [r[metric] for r in rows],
                yerr=[r[metric + "_std"] for r in rows],
                marker="o",
                capsize=3,
                label=method,
            )
        ax.set_xlabel(strength_key)
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].set_title("unbiased test accuracy")
    axes[1].set_title("bias probe accuracy on z (chance 0.10)")
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    print(f"plot: {out_png}")


if __name__ == "__main__":
    plot_summary(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4])
