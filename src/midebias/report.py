"""Plain-text tables for the CLI and the benchmark scripts, and `midebias report`: mean +-
std over seeds from run folders alone (no torch needed)."""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
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


# ------------------------------------------------------------ tables from run folders

#: The metrics `midebias report` shows by default (those that some run has).
DEFAULT_METRICS = (
    "test_accuracy",
    "aligned_accuracy",
    "val_unbiased_accuracy",
    "bias_probe_accuracy",
    "mi_posthoc",
    "test_demographic_parity_difference",
    "test_equalized_odds_difference",
    "test_sensitive_probe_accuracy",
    "test_mi_posthoc",
)
#: config.json keys that do not make runs different experiments: runs that differ only in
#: these are seeds of one group (`data` repeats the seed; the rest change no number).
NOT_GROUPED = frozenset({"seed", "data", "data_dir", "device", "progress"})


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders: each path that is one (it has config.json), else the run folders
    below it (hidden folders skipped). ValueError naming a path that has none."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise ValueError(f"{p}: no such folder")
        if (p / "config.json").is_file():
            found.append(p)
            continue
        below = [
            c.parent
            for c in sorted(p.rglob("config.json"))
            if not any(part.startswith(".") for part in c.parent.relative_to(p).parts)
        ]
        if not below:
            raise ValueError(f"{p}: no run folders in it (no config.json below it)")
        found += below
    return list(dict.fromkeys(found))


def _finished(folder: Path) -> bool:
    """The rule of midebias.training.run.run_status, without importing torch."""
    try:
        return json.loads((folder / "run.json").read_text())["status"] == "finished"
    except (OSError, ValueError, KeyError, TypeError):
        return (folder / "metrics.json").is_file()


def load_runs(folders: Sequence[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """(finished runs as {run, path, config, metrics}, the unfinished folders' paths)."""
    runs, unfinished = [], []
    for f in folders:
        if not (_finished(f) and (f / "metrics.json").is_file()):
            unfinished.append(str(f))
            continue
        runs.append(
            {
                "run": f.name,
                "path": str(f),
                "config": json.loads((f / "config.json").read_text()),
                "metrics": json.loads((f / "metrics.json").read_text()),
            }
        )
    return runs, unfinished


def _config_defaults() -> dict[str, Any]:
    """TrainConfig's field defaults: what a run folder written before a field existed ran
    with (so it groups with newer runs that write the field at its default)."""
    from dataclasses import MISSING, fields

    from midebias.training.config import TrainConfig

    return {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def _experiment(config: dict[str, Any]) -> dict[str, Any]:
    """What makes a run's group: its config without NOT_GROUPED, its label as `method`,
    its method's settings as set.NAME. Keys an older config.json lacks count as their
    TrainConfig default."""
    config = {**_config_defaults(), **config}
    out = {"method": config.get("label") or config.get("method")}
    for k, v in sorted(config.items()):
        if k in NOT_GROUPED or k in ("label", "method", "settings"):
            continue
        out[k] = v
    settings = config.get("settings")
    if isinstance(settings, dict):
        out.update({f"set.{k}": v for k, v in sorted(settings.items())})
    return out


def summarise_runs(
    runs: Sequence[dict[str, Any]], metrics: Sequence[str] | None = None
) -> dict[str, Any]:
    """Group runs that differ only in their seed; mean and sample std of each metric per
    group. Returns {metrics, columns (the settings that differ between groups), common
    (those that do not), groups: [{method, columns..., n, seeds, runs, m, m_std, ...}]}.
    ValueError if a metric asked for is in no run."""
    present = {k for r in runs for k, v in r["metrics"].items() if isinstance(v, (int, float))}
    if metrics:
        missing = [m for m in metrics if m not in present]
        if missing:
            raise ValueError(
                f"--metrics {missing[0]}: no run has it (they have: {', '.join(sorted(present))})"
            )
    else:
        metrics = [m for m in DEFAULT_METRICS if m in present]
    groups: dict[str, dict[str, Any]] = {}
    for r in runs:
        exp = _experiment(r["config"])
        key = json.dumps(exp, sort_keys=True, default=str)
        groups.setdefault(key, {"experiment": exp, "runs": []})["runs"].append(r)
    keys = list(dict.fromkeys(k for g in groups.values() for k in g["experiment"]))

    def differs(k: str) -> bool:
        # A setting is a column where it differs between groups of one method (label);
        # any other key where it differs between any groups.
        seen: dict[Any, set[str]] = {}
        for g in groups.values():
            exp = g["experiment"]
            by = exp["method"] if k.startswith("set.") else None
            seen.setdefault(by, set()).add(json.dumps(exp.get(k), default=str))
        return any(len(v) > 1 for v in seen.values())

    varying = [k for k in keys if k != "method" and differs(k)]
    first = next(iter(groups.values()))["experiment"]
    common = {  # (settings belong to their method: not common)
        k: first.get(k)
        for k in keys
        if k not in varying and k != "method" and not k.startswith("set.")
    }
    rows = []
    for g in groups.values():
        rs = sorted(g["runs"], key=lambda r: (r["config"].get("seed", 0), r["run"]))
        row = {"method": g["experiment"]["method"]}
        row.update({k: g["experiment"].get(k) for k in varying})
        row["n"] = len(rs)
        row["seeds"] = [r["config"].get("seed") for r in rs]
        row["runs"] = [r["path"] for r in rs]
        row.update(mean_std([r["metrics"] for r in rs], metrics))
        rows.append(row)
    rows.sort(key=lambda r: json.dumps([r["method"], *(r[k] for k in varying)], default=str))
    return {"metrics": list(metrics), "columns": varying, "common": common, "groups": rows}


def _cells(table: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    columns = ["method", *table["columns"], "n", *table["metrics"]]
    rows = []
    for g in table["groups"]:
        row = {k: g.get(k) for k in ["method", *table["columns"], "n"]}
        for m in table["metrics"]:
            if m in g:
                row[m] = f"{g[m]:.3f} +- {g[m + '_std']:.3f}"
        rows.append(row)
    return columns, rows


def format_summary(table: dict[str, Any]) -> str:
    """The text table of `summarise_runs`: one row per group, mean +- std per metric."""
    columns, rows = _cells(table)
    return format_table(rows, columns)


def write_json(table: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(table, indent=2, default=str) + "\n")


def write_csv(table: dict[str, Any], path: str | Path) -> None:
    """One row per group: its settings, n, and each metric's mean and std as numbers."""
    columns = ["method", *table["columns"], "n"]
    for m in table["metrics"]:
        columns += [m, m + "_std"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(table["groups"])


def plot(table: dict[str, Any], path: str | Path) -> None:
    """One panel per metric (at most four): mean +- std against the bias strength, one
    line per group of settings other than the strength (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = table["metrics"][:4]
    others = [c for c in table["columns"] if c != "strength"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.8), squeeze=False)
    series: dict[str, list[dict[str, Any]]] = {}
    for g in table["groups"]:
        name = " ".join([str(g["method"]), *(f"{c}={g[c]}" for c in others)])
        series.setdefault(name, []).append(g)
    strength = table["common"].get("strength")
    for metric, ax in zip(metrics, axes[0], strict=True):
        for name, groups in series.items():
            pts = sorted(
                (g.get("strength", strength), g[metric], g[metric + "_std"])
                for g in groups
                if metric in g and g.get("strength", strength) is not None
            )
            if pts:
                xs, ys, es = zip(*pts, strict=True)
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=name)
        ax.set_xlabel("bias strength")
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
