"""Write docs/results.md from the summaries committed under benchmarks/results/.

Every number on that page is read here from a summary file (summary.json, *.jsonl,
curves.json, speed and compile JSON); none is typed in. After a benchmark script has
rewritten a summary, regenerate the page:

    python benchmarks/make_docs.py            # rewrite docs/results.md
    python benchmarks/make_docs.py --check    # exit 1 if docs/results.md is out of date

Standard library only, so it runs (and tests/test_docs.py checks it) without torch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "results.md"
REL = "../benchmarks/results"  # the results folder as a link from docs/

#: Column order of method rows (method or method:preset); others follow, sorted.
METHOD_ORDER = [
    "vanilla",
    "mi:balanced",
    "mi:best",
    "mi:fast",
    "mi:paper",
    "mi",
    "blindeye",
    "lnl",
    "lnl:stable",
]


# ---------------------------------------------------------------- reading and formatting


def load(rel: str, results: Path) -> dict:
    return json.loads((results / rel).read_text())


def load_lines(rel: str, results: Path) -> list[dict]:
    text = (results / rel).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int] | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return statistics.fmean(vals), std, len(vals)


def pm(stat: tuple[float, float, int] | None, digits: int = 3, scale: float = 1.0) -> str:
    """'m +- s' (just 'm' for one value); '-' when there is nothing."""
    if stat is None:
        return "-"
    m, s, n = stat
    if n == 1:
        return f"{m * scale:.{digits}f}"
    return f"{m * scale:.{digits}f} +- {s * scale:.{digits}f}"


def num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def method_key(label: str) -> tuple[int, str]:
    base = label.split("[")[0]
    rank = METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER)
    return rank, label


def show(label: str) -> str:
    """'mi:best' -> 'mi `best`'; 'lnl[grl0.1]' -> 'lnl [grl0.1]'."""
    name, _, tag = label.partition("[")
    method, _, preset = name.partition(":")
    out = f"{method} `{preset}`" if preset else method
    return out + (f" [{tag}" if tag else "")


def source(*rels: str) -> str:
    return "Source: " + ", ".join(f"[`{r}`]({REL}/{r})" for r in rels) + "."


# ---------------------------------------------------------------- sweep summaries


def sweep_groups(summary: dict) -> tuple[str, dict[tuple[str, float], list[dict]]]:
    """Finished runs of a sweep summary.json grouped by (method label, strength)."""
    runs = summary["runs"]
    key = "rho" if runs and "rho" in runs[0] else "bias_var"
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in runs:
        groups.setdefault((r.get("label", r["method"]), r[key]), []).append(r)
    return key, groups


def stat(runs: list[dict], metric: str):
    return mean_std(r.get(metric) for r in runs)


def grid(summary: dict, cell: Callable[[list[dict]], str]) -> str:
    """Strength x method table of a sweep, one cell per (method, strength)."""
    key, groups = sweep_groups(summary)
    methods = sorted({m for m, _ in groups}, key=method_key)
    strengths = sorted({s for _, s in groups}, reverse=(key == "rho"))
    name = "sigma^2" if key == "bias_var" else "rho"
    rows = []
    for s in strengths:
        rows.append([f"{s:g}"] + [cell(groups[m, s]) if (m, s) in groups else "" for m in methods])
    return table([name] + [show(m) for m in methods], rows)


def acc_probe(scale: float = 1.0, digits: int = 3) -> Callable[[list[dict]], str]:
    def cell(runs: list[dict]) -> str:
        acc = stat(runs, "test_accuracy")
        probe = stat(runs, "bias_probe_accuracy")
        text = pm(acc, digits, scale)
        if probe is not None:
            text += f" ({probe[0]:.2f})"
        return text + (f" n={acc[2]}" if acc and acc[2] > 1 else "")

    return cell


def method_rows(summary: dict, metrics: list[tuple[str, str]], digits: int = 3) -> str:
    """One row per (method, strength) of a sweep: mean +- std of each metric, and n."""
    key, groups = sweep_groups(summary)
    name = "sigma^2" if key == "bias_var" else "rho"
    rows = []
    for m, s in sorted(groups, key=lambda g: (method_key(g[0]), g[1])):
        runs = groups[m, s]
        rows.append(
            [show(m), f"{s:g}", str(len(runs))]
            + [pm(stat(runs, metric), digits) for metric, _ in metrics]
        )
    return table(["method", name, "n"] + [title for _, title in metrics], rows)


COLUMNS = [
    ("test_accuracy", "test (unbiased)"),
    ("val_unbiased_accuracy", "val_unbiased"),
    ("aligned_accuracy", "aligned"),
    ("bias_probe_accuracy", "bias probe"),
    ("mi_posthoc", "mi_posthoc (nats)"),
]


def curve_rows(curves: dict, metric: str = "test_accuracy", epochs: list[int] | None = None) -> str:
    """One row per run folder: the metric at every evaluated epoch (or at `epochs`)."""
    runs = curves["runs"]
    if epochs is None:
        epochs = sorted({e["epoch"] for r in runs.values() for e in r["epochs"] if metric in e})
    rows = []
    for name, r in sorted(runs.items(), key=lambda kv: (method_key(kv[1]["label"]), kv[0])):
        at = {e["epoch"]: e[metric] for e in r["epochs"] if metric in e}
        rows.append(
            [f"`{name}`", show(r["label"]), "yes" if r["finished"] else "no"]
            + [num(at.get(ep)) for ep in epochs]
        )
    return table(["run", "method", "finished"] + [f"epoch {ep}" for ep in epochs], rows)


def selected_rows(curves: dict, select: str = "val_unbiased_accuracy") -> str:
    """Runs that differ only in seed (run names equal up to "-seed"), as one row: the
    mean +- std over seeds of the unbiased test accuracy at each run's evaluated epoch with
    the best `select` (what `--select` reports), read from the per-epoch curves, so that
    runs stopped after their last training epoch (during the final audit) count too."""
    groups: dict[tuple, list[dict]] = {}
    for name, r in curves["runs"].items():
        key = (method_key(r["label"]), name.rsplit("-seed", 1)[0], r["label"])
        groups.setdefault(key, []).append(r)
    rows = []
    for (_, group, label), runs in sorted(groups.items()):
        picked, epochs = [], []
        for r in runs:
            evals = [e for e in r["epochs"] if select in e]
            best = max(evals, key=lambda e: e[select])  # the first of equal values
            picked.append(best["test_accuracy"])
            epochs.append(str(best["epoch"]))
        trained = sum(r["epochs"][-1]["epoch"] == r["epochs_planned"] for r in runs)
        rows.append(
            [
                f"`{group}`",
                show(label),
                pm(mean_std(picked)),
                ", ".join(epochs),
                f"{trained}/{len(runs)}",
            ]
        )
    head = ["runs", "method", "unbiased test (mean +- std)", "selected epochs", "trained"]
    return table(head, rows)


# ---------------------------------------------------------------- other summaries


def report_rows(report: dict) -> str:
    """The groups of a `midebias report --json` file: mean +- std of each COLUMNS metric."""
    rows = []
    for g in report["groups"]:
        cells = [pm((g[m], g[m + "_std"], g["n"])) if m in g else "-" for m, _ in COLUMNS]
        strength = ", ".join(f"{g[c]:g}" for c in report["columns"])
        rows.append([show(g["method"]), strength, str(g["n"]), *cells])
    head = ["method", ", ".join(report["columns"]), "n"] + [title for _, title in COLUMNS]
    return table(head, rows)


def speed_rows(speed: dict, extra: list[tuple[str, str]]) -> str:
    rows = []
    for r in speed["rows"]:
        rows.append(
            [
                r["config"],
                r.get("model", "-"),
                num(r["seconds_per_epoch"]),
                num(r["ratio_to_vanilla"], 2),
            ]
            + [num(r.get(k), 1) for k, _ in extra]
        )
    head = ["config", "model", "seconds / epoch", "ratio to vanilla"]
    return table(head + [t for _, t in extra], rows)


def batched_rows(d: dict, gpu: bool = False) -> str:
    """benchmarks/batched.py's rows: time per run-epoch, against one single run, the
    projected table, memory per run."""
    rows = [
        [
            r["method"],
            r["mode"],
            str(r["n"]),
            num(r["seconds_per_run_epoch"], 3),
            num(r["speedup_vs_single"], 2),
            num(r["table_hours"], 1),
            num(r["peak_rss_mib_per_run"], 0),
        ]
        + ([num(r["peak_gpu_mib_per_run"], 0)] if gpu else [])
        for r in d["rows"]
    ]
    head = ["method", "mode", "N", "s / run-epoch", "vs single", "table (h)", "RSS MiB / run"]
    return table(head + (["GPU MiB / run"] if gpu else []), rows)


def gauge_rows(lines: list[dict], keys: dict[str, str]) -> str:
    """gauge.jsonl / search.jsonl: one row per line (keys maps column title -> field)."""
    rows = [[f"`{x['name']}`"] + [num(x.get(k)) for k in keys.values()] for x in lines]
    return table(["run"] + list(keys), rows)


def fairness_adult(d: dict) -> str:
    rows = []
    for r in d["rows"]:
        rows.append(
            [
                r["method"],
                f"{r['weight']:g}",
                num(r["test_accuracy"]),
                num(r["test_demographic_parity_difference"]),
                num(r["test_equalized_odds_difference"]),
                num(r.get("test_sensitive_probe_accuracy")),
                num(r["test_sensitive_majority_rate"]),
            ]
        )
    head = ["method", "weight", "accuracy", "DP diff", "EO diff", "probe", "majority rate"]
    return table(head, rows)


def fairness_german(d: dict) -> str:
    rows = []
    for s in d["summary"]:

        def f(k: str, s=s) -> str:
            if s.get(k) is None:
                return "-"
            return pm((s[k], s.get(k + "_std", 0.0), s["seeds"]))

        rows.append(
            [
                s["method"],
                f"{s['weight']:g}",
                str(s["seeds"]),
                f("test_accuracy"),
                f("test_demographic_parity_difference"),
                f("test_equalized_odds_difference"),
                f("test_sensitive_probe_accuracy"),
                f("test_sensitive_majority_rate"),
            ]
        )
    head = ["method", "weight", "n", "accuracy", "DP diff", "EO diff", "probe", "majority rate"]
    return table(head, rows)


def estimator_rows(d: dict) -> str:
    res = d["results"]
    labels = list(dict.fromkeys(r["label"] for r in res))
    ests = list(dict.fromkeys(r["estimator"] for r in res))
    rows = []
    for lab in labels:
        these = [r for r in res if r["label"] == lab]
        true = these[0]["true_mi"]
        cells = [pm(mean_std(r["estimate"] for r in these if r["estimator"] == e), 2) for e in ests]
        rows.append([" ".join(lab.split()), num(true, 2)] + cells)
    return table(["data", "true MI"] + ests, rows)


# ---------------------------------------------------------------- the page


def render(results: Path = RESULTS) -> str:
    def j(rel: str) -> dict:
        return load(rel, results)

    out: list[str] = []
    add = out.append
    add(
        """<!-- Generated by benchmarks/make_docs.py from benchmarks/results/. Do not edit by hand:
change a summary (by rerunning its benchmark) and run `python benchmarks/make_docs.py`. -->

# Results

Every number below is read from a summary committed under
[`benchmarks/results/`](../benchmarks/results/); each section names its file, and the
`NOTES.md` next to it says what was run, on what machine and when. The protocols are in
[protocols.md](protocols.md); the published numbers to compare with are there too.

Conventions: mean +- sample std over n seeds (one value when n = 1). "test" is the accuracy
on the unbiased test set (colour or background independent of the label), the headline;
"bias probe" (in brackets in the grids) is the accuracy of a fresh MLP reading the bias
(colour index) from the frozen representation z, chance 0.10; `mi_posthoc` is a fresh
held-out MI estimate between z and the bias code, in nats. Runs a time limit cut off are
not in the means (hence n = 2 in some cells).

Most sweeps ran before `balanced`, `staged` and then `staged-gaussian` became mi's default
preset, so they show the presets of that time (`best`, `fast`, `paper`); the later defaults
are measured in the debiasing gauge below and in [debiasing.md](debiasing.md).
"""
    )

    # Colored MNIST, GPU
    cm = j("gpu/colored-mnist/summary.json")
    add("## Colored MNIST on a GPU (10,000 digits, 5 epochs)\n")
    add(
        "Unbiased test accuracy (bias probe) at each colour variance sigma^2 (smaller is "
        "more biased). One NVIDIA H200; `gpu/NOTES.md` has the machine. lnl with Kim et "
        "al.'s weights diverges at every sigma^2 (the encoder inflates z to maximise the "
        "bias head's loss; its probe is low because z is garbage), `stable` (reversal "
        "0.01) trains.\n"
    )
    add(grid(cm, acc_probe()) + "\n")
    add(f"![Colored MNIST, GPU]({REL}/gpu/colored-mnist/accuracy.png)\n")
    add(source("gpu/colored-mnist/summary.json") + " Rerun: `bash benchmarks/gpu.sh`.\n")

    full = j("gpu/colored-mnist-54k-5ep/summary.json")
    add("### All 54,000 training digits, sigma^2 0.020, 5 epochs\n")
    add(method_rows(full, COLUMNS) + "\n")
    add(
        source("gpu/colored-mnist-54k-5ep/summary.json")
        + " Rerun: the `sweep.py` command in `gpu/NOTES.md`.\n"
    )
    add(
        "Longer single runs (seed 0; the time limit stopped the mi runs before their last "
        "epoch), unbiased test accuracy at each evaluation:\n"
    )
    add(curve_rows(j("gpu/colored-mnist-54k/curves.json")) + "\n")
    add(
        source("gpu/colored-mnist-54k/curves.json")
        + " The paper's own numbers come from 500 epochs at lr 1e-4, far beyond these"
        " runs.\n"
    )
    add("### All 54,000 digits against the peers, sigma^2 0.030-0.050, 10 epochs, 3 seeds\n")
    add(
        "mi (default preset), lnl (`stable`) and blindeye, evaluated every 2 epochs; each "
        "run's unbiased test accuracy at its epoch of best val_unbiased accuracy "
        "(`trained`: runs that reached their last epoch):\n"
    )
    add(selected_rows(j("gpu/full-peers/curves.json")) + "\n")
    add(
        source("gpu/full-peers/curves.json", "gpu/full-peers/report.json")
        + " Rerun: `bash benchmarks/gpu_full_peers.sh` (`gpu/NOTES.md`).\n"
    )
    add(
        "A second run of the nine mi runs alone, which all finished with their audit (GPU "
        "runs are not bit-reproducible: the same seeds differ from the run above):\n"
    )
    add(selected_rows(j("gpu/full-mi/curves.json")) + "\n")
    add(report_rows(j("gpu/full-mi/report.json")) + "\n")
    add(
        source("gpu/full-mi/curves.json", "gpu/full-mi/report.json")
        + " Rerun: `METHODS=mi bash benchmarks/gpu_full_peers.sh` (`gpu/NOTES.md`).\n"
    )
    add("### The authors' learning rate, as far as a time limit allowed (sigma^2 0.020)\n")
    add(
        "vanilla and mi (default preset) at lr 1e-4 on all 54,000 digits, seed 0, started "
        "for 500 epochs and stopped by the limit; unbiased test accuracy at some of the "
        "evaluated epochs (all are in the file):\n"
    )
    long_epochs = [2, 10, 20, 30, 50, 100, 200, 300, 400]
    add(curve_rows(j("gpu/long/curves.json"), epochs=long_epochs) + "\n")
    add(source("gpu/long/curves.json") + " Rerun: `bash benchmarks/gpu_long.sh`.\n")

    pvf = j("gpu/paper-vs-fast/summary.json")
    add("### mi schedules at equal epochs (sigma^2 0.020, 10,000 digits, 5 epochs)\n")
    add(method_rows(pvf, COLUMNS) + "\n")
    add(source("gpu/paper-vs-fast/summary.json") + " Rerun: `bash benchmarks/gpu.sh`.\n")

    # Biased MNIST, GPU
    bm = j("gpu/biased-mnist/summary.json")
    add("## Biased MNIST on a GPU (paper digit network, 10,000 digits, 5 epochs)\n")
    add(
        "Unbiased test accuracy in % (bias probe) at each background correlation rho. On "
        "this budget every method stays near chance (the network learns the background, "
        "not the digit), so the grid cannot rank the methods; the published rows "
        "([protocols.md](protocols.md#biased-mnist)) use 6x the data, 16x the epochs and "
        "another network.\n"
    )
    add(grid(bm, acc_probe(scale=100.0, digits=1)) + "\n")
    add(f"![Biased MNIST, GPU]({REL}/gpu/biased-mnist/accuracy.png)\n")
    add(source("gpu/biased-mnist/summary.json") + " Rerun: `bash benchmarks/gpu.sh`.\n")

    bm54 = j("biased-mnist-54k/summary.json")
    add("### All 54,000 digits, rho 0.990, 5 epochs, seed 0 (CPU)\n")
    add(
        "With all the digits the network does learn digits. `conflicting` is the accuracy "
        "on the test digits whose background is not their class's.\n"
    )
    add(method_rows(bm54, COLUMNS[:1] + [("conflicting_accuracy", "conflicting")] + COLUMNS[3:]))
    add("")
    add(
        source("biased-mnist-54k/summary.json", "biased-mnist-54k/curves.json")
        + " Rerun: the command in `biased-mnist-54k/NOTES.md`.\n"
    )

    # CPU sweeps
    add("## The same protocols on the CPU (seed 0)\n")
    add("Colored MNIST, 10,000 digits, 5 epochs, unbiased test accuracy (bias probe):\n")
    add(grid(j("colored-mnist/summary.json"), acc_probe()) + "\n")
    add(source("colored-mnist/summary.json") + "\n")
    add("Biased MNIST, 10,000 digits, 5 epochs, unbiased test accuracy in % (bias probe):\n")
    add(grid(j("biased-mnist/summary.json"), acc_probe(scale=100.0, digits=1)) + "\n")
    add(
        source("biased-mnist/summary.json")
        + " Rerun: `python benchmarks/colored_mnist.py`, `python benchmarks/biased_mnist.py`"
        " (`--help` for the grid).\n"
    )
    add("Vanilla with 20,000 digits (no audit; the sweep was stopped after two sigma^2):\n")
    add(method_rows(j("vanilla-colored-mnist/summary.json"), COLUMNS[:3]) + "\n")
    add(source("vanilla-colored-mnist/summary.json") + "\n")

    # Debiasing gauge and searches
    add("## The debiasing gauge (Colored MNIST, sigma^2 0.020, 10,000 digits, 5 epochs)\n")
    add(
        "What led to `balanced`, mi's default before `staged`: [debiasing.md](debiasing.md) "
        "tells the story, and has `staged`'s numbers; these are `balanced`'s. Chosen "
        "configurations over seeds and at sigma^2 0.050 (`gauge.specs` lists them):\n"
    )
    gkeys = {
        "test": "test",
        "val_unbiased": "val_unbiased",
        "aligned": "aligned",
        "probe": "probe",
        "mi_posthoc": "mi_posthoc",
    }
    add(gauge_rows(load_lines("debiasing/gauge.jsonl", results), gkeys) + "\n")
    add(
        source("debiasing/gauge.jsonl")
        + " Rerun: the `gauge.py` commands in `debiasing/NOTES.md`.\n"
    )
    add("Every configuration tried on the way (seed 0; each line names the code it ran):\n")
    skeys = {
        "test": "test",
        "val_unbiased": "val_unb",
        "aligned": "aligned",
        "probe": "probe",
        "mi_posthoc": "mi_post",
    }
    add(gauge_rows(load_lines("debiasing/search.jsonl", results), skeys) + "\n")
    add(source("debiasing/search.jsonl") + "\n")
    full = j("debiasing/full/curves.json")
    add(
        "The default at full size (all 54,000 training digits, sigma^2 0.020, 20 epochs, "
        "CPU): unbiased test accuracy at every evaluated epoch (`finished`: the run reached "
        "its last epoch):\n"
    )
    add(curve_rows(full) + "\n")
    add(
        source("debiasing/full/curves.json")
        + " Rerun: the `midebias train` commands in `debiasing/NOTES.md`.\n"
    )
    peers = j("debiasing/full-peers/curves.json")
    add(
        "The peers at the same size and length (`--select val_unbiased_accuracy`; "
        "lnl with preset `stable`):\n"
    )
    add(curve_rows(peers) + "\n")
    add(
        source("debiasing/full-peers/curves.json")
        + " Rerun: the `midebias train` commands in `debiasing/NOTES.md`.\n"
    )

    add("### Earlier searches (CPU, seed 0)\n")
    add("mi `fast` with a larger lambda (default 10):\n")
    add(method_rows(j("fast-search/summary.json"), COLUMNS) + "\n")
    add(source("fast-search/summary.json") + "\n")
    add("lnl's gradient-reversal scale (Kim et al.'s is 1; `stable` uses 0.01):\n")
    add(method_rows(j("lnl-search/summary.json"), COLUMNS) + "\n")
    add(source("lnl-search/summary.json") + "\n")
    add(
        "The first mi search: test accuracy after each epoch (the `paper` run is one "
        "epoch of the authors' schedule). `mi-search/NOTES.md` records the critic "
        "diagnostics that shaped the presets.\n"
    )
    add(curve_rows(j("mi-search/curves.json")) + "\n")
    add(source("mi-search/curves.json") + "\n")

    # Tabular
    adult = j("fairness/adult.json")
    add("## Tabular fairness (CPU)\n")
    add(
        f"Adult, sensitive attribute {adult['sensitive']}, seed 0, {adult['epochs']} "
        "epochs, test split; `weight` is mi's lambda, blindeye's alpha, lnl's weight, "
        "ExponentiatedGradient's eps or the adversarial classifier's alpha. `probe` is a "
        "fresh classifier reading the sensitive attribute from z; compare it with the "
        "majority rate.\n"
    )
    add(fairness_adult(adult) + "\n")
    t = adult["targets"]
    meets = ", ".join(f"{m['method']} {m['weight']:g}" for m in adult["meets_on_test"])
    sel = adult["val_selected"]["mi"]
    add(
        f"Targets (accuracy >= {t['accuracy']:g}, DP <= {t['dp']:g}, probe within "
        f"{t['probe_gap']:g} of the majority rate) met on test by: {meets}. Chosen on "
        f"validation alone (the most accurate setting with validation DP <= {t['dp']:g}), "
        f"mi's lambda would be {sel['weight']:g} (test DP "
        f"{sel['test_demographic_parity_difference']:.3f}).\n"
    )
    dom = "; ".join(
        f"{point}: " + (", ".join(f"{m['method']} {m['weight']:g}" for m in ms) or "none")
        for point, ms in adult["dominating"].items()
    )
    add(
        "Settings that dominate (at least the accuracy, at most the DP of) each published "
        "(accuracy, DP) point of the FAIR reimplementation "
        f"([protocols.md](protocols.md#adult-and-german-fairness)): {dom}.\n"
    )
    add(f"![Adult]({REL}/fairness/adult.png)\n")
    add(
        source("fairness/adult.json")
        + " Rerun: `python benchmarks/fairness_tradeoff.py --dataset adult`.\n"
    )
    german = j("fairness/german.json")
    add(
        f"German, sensitive attribute {german['sensitive']}, one fixed split, "
        f"{len(german['seeds'])} seeds, {german['epochs']} epochs:\n"
    )
    add(fairness_german(german) + "\n")
    add(
        source("fairness/german.json")
        + " Rerun: `python benchmarks/fairness_tradeoff.py --dataset german`.\n"
    )
    add(
        "The two sweeps above were measured with version 0.1's estimator, which had its own "
        "copy of each method (mi: one joint step, 5 critic updates, lambda a loss weight). "
        "The estimator now runs the library's methods through the one training loop; its "
        "default was chosen again, below.\n"
    )
    cands = load_lines("sklearn-default/candidates.jsonl", results)
    add("### MIFairClassifier's default (Adult, sex, seed 0)\n")
    add(
        "Each candidate fitted on the training rows and scored on the validation rows; "
        "the rule, fixed before the runs: among the candidates whose validation accuracy "
        "is within 0.01 of vanilla's, the lowest validation demographic parity (DP) "
        "difference. Test numbers are shown beside and were not used to choose.\n"
    )
    add(
        table(
            ["candidate", "val acc", "val DP", "test acc", "test DP", "test EO", "probe"],
            [
                [
                    r["name"],
                    num(r["val_accuracy"]),
                    num(r["val_demographic_parity_difference"]),
                    num(r["test_accuracy"]),
                    num(r["test_demographic_parity_difference"]),
                    num(r["test_equalized_odds_difference"]),
                    num(r.get("test_sensitive_probe_accuracy")),
                ]
                for r in cands
            ],
        )
        + "\n"
    )
    base = next(r for r in cands if r["name"] == "vanilla")
    ok = [r for r in cands if r["val_accuracy"] >= base["val_accuracy"] - 0.01]
    best = min(ok, key=lambda r: r["val_demographic_parity_difference"])
    add(
        f"Chosen: {best['name']} (the `parity` preset). Probe: a fresh classifier reading s "
        f"from z (majority rate {num(base['test_sensitive_majority_rate'])}).\n"
    )
    add(
        source("sklearn-default/candidates.jsonl")
        + " Rerun: `python benchmarks/sklearn_default.py`.\n"
    )

    # Estimators
    est = j("estimators_quick.json")
    add("## MI estimators against the truth\n")
    add(
        f"Held-out estimate in nats on data with known MI (n = {est['meta']['n']}, "
        f"{est['meta']['seeds']} seeds; Gaussians of dimension d, and mixtures of k "
        "classes in d dimensions). `club` is an upper bound, the others lower bounds.\n"
    )
    add(estimator_rows(est) + "\n")
    add(
        source("estimators_quick.json") + " Rerun: `python benchmarks/estimators.py --quick --out"
        " benchmarks/results/estimators_quick.json`.\n"
    )

    # Speed
    add("## Speed\n")
    add(
        "`benchmarks/speed.py` trains every configuration in one process on the same data, "
        "leaves a warm-up epoch out of the timing, and reports seconds per epoch, the ratio "
        "to vanilla, and training seconds until the validation accuracy first reaches the "
        "target (and, on the CPU, the best value mi `paper` reached).\n"
    )
    cpu = j("speed-cpu.json")
    add(f"CPU (`{cpu['meta']['command']}`, {cpu['meta']['threads']} threads):\n")
    extra = [
        ("seconds_to_target", f"seconds to val {cpu['meta']['target']:g}"),
        ("seconds_to_paper_best", "seconds to `paper`'s best val"),
    ]
    add(speed_rows(cpu, extra) + "\n")
    add(source("speed-cpu.json") + " A dash: not reached.\n")
    deb = j("debiasing/speed-cpu.json")
    add(f"CPU, the `balanced` preset (`{deb['meta']['command']}`):\n")
    add(speed_rows(deb, []) + "\n")
    add(source("debiasing/speed-cpu.json") + "\n")
    shared = j("debiasing/speed-shared.json")
    add(
        "CPU, `balanced` (the shared step, the default before `staged`) against "
        f"`balanced-separate` (the default before it), {shared['meta']['repeats']} "
        "round-robin repeats, median "
        f"(`{shared['meta']['command']}`, {shared['meta']['threads']} thread(s)):\n"
    )
    add(speed_rows(shared, []) + "\n")
    add(source("debiasing/speed-shared.json") + "\n")
    batched = j("batched/cpu.json")
    meta = batched["meta"]
    add(
        f"Batched runs (`midebias sweep --batch`), {meta['device']}, {meta['threads']} "
        f"thread(s), {meta['train_size']} digits, {meta['epochs_timed']} timed epoch(s) "
        f"after {meta['warmup_epochs']} warm-up (`{meta['command']}`). Seconds per "
        "run-epoch: a batch's epoch time divided by its N runs; the table time projects "
        f"{meta['table']} at that rate. The machine was shared with other training "
        "processes and RSS includes what earlier rows left allocated "
        "(`batched/NOTES.md`):\n"
    )
    add(batched_rows(batched) + "\n")
    add(source("batched/cpu.json") + "\n")
    bgpu = j("batched/gpu.json")
    meta = bgpu["meta"]
    add(
        f"The same on a GPU ({meta['gpu']}, torch {meta['torch']}, {meta['train_size']} "
        f"digits, `{meta['command']}`), alone on the card. Batches run vmapped; the table "
        "time uses the rate of the row's method for all 126 runs (lnl and blindeye do not "
        "batch):\n"
    )
    add(batched_rows(bgpu, gpu=True) + "\n")
    add(source("batched/gpu.json") + " Rerun: `bash benchmarks/gpu_batched.sh`.\n")
    sg = j("batched/speed-gpu.json")
    add(
        f"Seconds per epoch on the same card, single runs (`{sg['meta']['command']}`): "
        "`grad_fraction` 0.5 saves nothing there, where launches and not arithmetic set "
        "the cost:\n"
    )
    add(speed_rows(sg, []) + "\n")
    add(source("batched/speed-gpu.json") + "\n")
    cg = j("batched/cuda-graphs.json")
    add(
        "The training step captured in one CUDA graph and replayed "
        "(`benchmarks/cuda_graphs.py`: a capturable copy of the library's vanilla and mi "
        "step, not yet the training loop itself), milliseconds per step of N stacked runs; "
        "`check`: the largest difference of any parameter or optimiser state after 5 "
        "eager and 5 replayed steps from one start on the same draws:\n"
    )
    rows = [
        [
            r["method"],
            str(r["n"]),
            num(r.get("eager_ms"), 2),
            num(r.get("graph_ms"), 2),
            num(r.get("speedup"), 2),
            num(r.get("ms_per_run_step"), 3),
            num(r.get("check_max_abs_diff"), 4),
            num(r.get("peak_gpu_mib_per_run"), 0),
        ]
        for r in cg["rows"]
    ]
    head = [
        "method",
        "N",
        "eager ms",
        "graph ms",
        "speed-up",
        "ms / run-step",
        "check",
        "GPU MiB / run",
    ]
    add(table(head, rows) + "\n")
    add(source("batched/cuda-graphs.json") + "\n")
    early = j("speed-cpu-early.json")
    add("CPU, an earlier 2-epoch run (the only CPU timing of blindeye and lnl):\n")
    rows = [
        [r["config"], num(r["seconds_per_epoch"], 2), num(r["ratio_to_vanilla"], 2)]
        for r in early["rows"]
    ]
    add(table(["config", "seconds / epoch", "ratio to vanilla"], rows) + "\n")
    add(source("speed-cpu-early.json") + "\n")
    gpu = j("gpu/speed.json")
    add(
        f"GPU ({gpu['meta']['gpu']}, torch {gpu['meta']['torch']}, "
        f"{gpu['meta']['train_size']} digits; `-bf16` rows: autocast of the encoder, "
        "measured and then removed; ratios of SimpleConvNet rows are to vanilla "
        "SimpleConvNet):\n"
    )
    add(
        speed_rows(gpu, [("seconds_to_target", f"seconds to val {gpu['meta']['target']:g}")]) + "\n"
    )
    add(source("gpu/speed.json") + " Rerun: `bash benchmarks/gpu.sh`.\n")
    comp = j("compile-cpu.json")
    add(
        f"`torch.compile` of the encoder on the CPU ({comp['model']}, {comp['threads']} "
        f"thread): {comp['ratio_compiled_to_eager']:.2f}x eager's time per step "
        f"(compiling took {comp['compile_seconds']:.1f} s), so it is not an option. "
        + source("compile-cpu.json")
        + " Rerun: `python benchmarks/compile_check.py --device cpu`.\n"
    )
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    p.add_argument("--out", type=Path, default=DOC)
    args = p.parse_args(argv)
    text = render()
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run python benchmarks/make_docs.py")
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
