"""Choose MIFairClassifier's default on Adult's validation split (sex as s).

Fits each candidate setting on Adult's training rows (seed 0), scores it on the validation
rows, and picks by one rule, written before the runs: among the candidates whose
validation accuracy is within 0.01 of vanilla's, the lowest validation demographic parity
difference. Test numbers are reported beside, never used to choose. Writes one JSON line
per candidate (resumable) and prints the table.

    python benchmarks/sklearn_default.py [--part 1/2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from midebias.datasets.tabular import load_tabular
from midebias.evaluation.fairness import fairness_report
from midebias.sklearn import MIFairClassifier

OUT = Path(__file__).parent / "results" / "sklearn-default" / "candidates.jsonl"

#: name -> MIFairClassifier parameters.
CANDIDATES = {
    "vanilla": {"method": "vanilla"},
    **{
        f"mi fast uncond. lambda {lam:g}": {
            "preset": "fast",
            "settings": {"conditional": False},
            "lambda_": float(lam),
        }
        for lam in (1, 3, 10, 30)
    },
    "mi balanced lambda 10": {"preset": "balanced", "lambda_": 10.0},
}
RULE = "lowest val DP difference among val accuracy >= vanilla's - 0.01"


def choose(rows: list[dict]) -> dict | None:
    base = next((r for r in rows if r["name"] == "vanilla"), None)
    if base is None:
        return None
    ok = [r for r in rows if r["val_accuracy"] >= base["val_accuracy"] - 0.01]
    return min(ok, key=lambda r: r["val_demographic_parity_difference"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--part", default="1/1", help="K/N: run every N-th candidate from the K-th")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--table", action="store_true", help="only print the table")
    args = p.parse_args(argv)
    k, n = map(int, args.part.split("/"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["name"] for line in args.out.read_text().splitlines()}
    if not args.table:
        data = load_tabular("adult", "sex", seed=0)
        for i, (name, params) in enumerate(CANDIDATES.items()):
            if i % n != k - 1 or name in done:
                continue
            t0 = time.perf_counter()
            clf = MIFairClassifier(random_state=0, **params)
            clf.fit(data.X_train, data.y_train, sensitive_features=data.s_train)
            seconds = time.perf_counter() - t0
            val = fairness_report(clf, data, "val", seed=0, probe=False, mi=False)
            test = fairness_report(clf, data, "test", seed=0, mi=False)
            row = {
                "name": name,
                "params": params,
                "seconds": seconds,
                "epochs": clf.epochs_,
                **{f"val_{a}": b for a, b in val.items()},
                **{f"test_{a}": b for a, b in test.items()},
            }
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(name, {a: round(b, 3) for a, b in row.items() if isinstance(b, float)})
    rows = (
        [json.loads(line) for line in args.out.read_text().splitlines()]
        if args.out.exists()
        else []
    )
    print(
        f"{'candidate':28s} {'val acc':>8s} {'val DP':>7s} {'test acc':>8s} {'test DP':>7s} "
        f"{'probe':>6s} {'sec':>6s}"
    )
    for r in rows:
        print(
            f"{r['name']:28s} {r['val_accuracy']:8.3f}"
            f" {r['val_demographic_parity_difference']:7.3f}"
            f" {r['test_accuracy']:8.3f} {r['test_demographic_parity_difference']:7.3f}"
            f" {r.get('test_sensitive_probe_accuracy', float('nan')):6.3f} {r['seconds']:6.0f}"
        )
    best = choose(rows)
    if best is not None:
        print(f"rule: {RULE} -> {best['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
