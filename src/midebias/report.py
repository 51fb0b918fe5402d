"""Plain-text tables for the CLI and the benchmark scripts."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def mean_std(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> dict[str, float]:
    """{metric: mean, metric_std: sample std (0.0 for one value)} over the rows that have
    the metric (missing or None values are skipped; a metric no row has is left out)."""
    out: dict[str, float] = {}
    for m in metrics:
        vals = [r[m] for r in rows if r.get(m) is not None]
        if vals:
            out[m] = statistics.fmean(vals)
            out[m + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return out


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Left-aligned text table of `columns` from dict rows; missing values print as '-'."""
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
