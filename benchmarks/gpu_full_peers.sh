#!/usr/bin/env bash
# Colored MNIST at full size on one GPU: mi (default preset), lnl (preset stable) and
# blindeye at sigma^2 0.030, 0.040 and 0.050, seeds 0-2, all 54,000 training digits,
# EPOCHS epochs (default 10), evaluated every 2 epochs, reported at the epoch of best
# val_unbiased_accuracy; one `midebias train` process per run, all at once (the networks
# are tiny and leave the card mostly idle), under a time limit of RUN_S seconds.
#
#     bash benchmarks/gpu_full_peers.sh [OUT_DIR]   # default benchmarks/results/gpu/full-peers
#
# Writes OUT_DIR/curves.json (every run's per-epoch record, finished or not) and
# OUT_DIR/report.json (the finished runs). METHODS="mi" runs only those methods; SIGMAS
# and SEEDS replace the lists (e.g. SIGMAS="0.02 0.03 0.04 0.05" METHODS=mi for the
# default at every sigma^2 of the full-size table).
# SMALL=1 DEVICE=cpu: a tiny dry run.
set -u
# shellcheck source=benchmarks/summarise_runs.sh
source "$(dirname "$0")/summarise_runs.sh"
OUT=${1:-benchmarks/results/gpu/full-peers}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
RUNS=${RUNS_DIR:-/tmp/full-peers-runs}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
if [ "${SMALL:-0}" = 1 ]; then
    EPOCHS=1 SIGMAS="0.05" SEEDS="0" SIZE="--train-size 300" RUN_S=${RUN_S:-300}
else
    EPOCHS=${EPOCHS:-10} SIGMAS=${SIGMAS:-"0.03 0.04 0.05"} SEEDS=${SEEDS:-"0 1 2"} SIZE=""
    RUN_S=${RUN_S:-400}
fi
mkdir -p "$OUT" "$RUNS"
pids=()
for m in ${METHODS:-mi lnl blindeye}; do  # mi first: the longest runs start first
    extra=""
    [ "$m" = lnl ] && extra="--set preset=stable"
    for s in $SIGMAS; do
        for seed in $SEEDS; do
            # shellcheck disable=SC2086
            timeout "$RUN_S" $PY -m midebias train --benchmark colored-mnist --bias-var "$s" \
                --method "$m" $extra --seed "$seed" --epochs "$EPOCHS" --eval-every 2 \
                --select val_unbiased_accuracy --device "$DEVICE" --no-progress $SIZE \
                --out "$RUNS/$m-s$s-seed$seed" >"$RUNS/$m-s$s-seed$seed.log" 2>&1 &
            pids+=($!)
        done
    done
done
wait "${pids[@]}"
summarise_runs "$RUNS" "$OUT"
