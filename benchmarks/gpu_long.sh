#!/usr/bin/env bash
# The paper's length of training, as far as a time limit allows, on one GPU: vanilla and
# mi (default preset) on Colored MNIST, sigma^2 0.020, all 54,000 training digits, Adam at
# lr 1e-4 (the authors' rate; the library's default is 1e-3), up to EPOCHS epochs (500, as
# the authors), evaluated every few epochs; one `midebias train` process per run, all at
# once, under a limit of RUN_S seconds. A run the limit stops keeps every evaluation it
# made (its metrics.jsonl), which OUT_DIR/curves.json collects; a run that finishes is in
# OUT_DIR/report.json too.
#
#     bash benchmarks/gpu_long.sh [OUT_DIR]     # default benchmarks/results/gpu/long
#
# SEEDS (default 0) and RUN_S (default 1800) can be set; SMALL=1 DEVICE=cpu: a tiny dry run.
set -u
# shellcheck source=benchmarks/summarise_runs.sh
source "$(dirname "$0")/summarise_runs.sh"
OUT=${1:-benchmarks/results/gpu/long}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
RUNS=${RUNS_DIR:-/tmp/long-runs}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
if [ "${SMALL:-0}" = 1 ]; then
    EPOCHS=3 SIZE="--train-size 300" RUN_S=${RUN_S:-300}
else
    EPOCHS=${EPOCHS:-500} SIZE="" RUN_S=${RUN_S:-1800}
fi
mkdir -p "$OUT" "$RUNS"
pids=()
for m in mi vanilla; do
    every=10  # evaluations cost about one vanilla epoch: every 10th for vanilla,
    [ "$m" = mi ] && every=2  # every 2nd for mi, whose epochs are about 15x longer
    [ "${SMALL:-0}" = 1 ] && every=1
    for seed in ${SEEDS:-0}; do
        # shellcheck disable=SC2086
        timeout "$RUN_S" $PY -m midebias train --benchmark colored-mnist --bias-var 0.02 \
            --method "$m" --lr 1e-4 --seed "$seed" --epochs "$EPOCHS" --eval-every "$every" \
            --select val_unbiased_accuracy --device "$DEVICE" --no-progress $SIZE \
            --label "$m lr 1e-4" --out "$RUNS/$m-lr1e-4-seed$seed" \
            >"$RUNS/$m-lr1e-4-seed$seed.log" 2>&1 &
        pids+=($!)
    done
done
wait "${pids[@]}"
summarise_runs "$RUNS" "$OUT"
