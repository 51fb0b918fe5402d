# Sourced by the GPU scripts that start one `midebias train` process per run:
# summarise_runs RUNS OUT writes OUT/curves.json (every run's per-epoch records, finished or
# not) and OUT/report.json (the finished runs), and prints the first errors in the runs' logs.
summarise_runs() {
    $PY benchmarks/collect_curves.py "$1" --out "$2/curves.json"
    $PY -m midebias report "$1" --json "$2/report.json" || true
    tail -n 3 "$1"/*.log | grep -iE "error|Traceback" | head -5
}
