#!/usr/bin/env bash
# Everything this project measures on a GPU, in one command (a few minutes on one H200 with
# the stage limits below; benchmarks/results/gpu/NOTES.md has the last run):
#
#     bash benchmarks/gpu.sh [OUT_DIR]        # default benchmarks/results/gpu
#
# Needs a Python with a CUDA build of torch, numpy, tqdm, scikit-learn and matplotlib, this
# package importable (pip install -e . or PYTHONPATH=src), and MNIST where midebias finds
# it (MIDEBIAS_DATA_DIR, or a download). Stages, each bounded by `timeout` so that a slow
# card still leaves results (every sweep is resumable: run the script again to go on):
#   1. speed.py alone on the card: seconds per epoch of every method and channels-last
#      variants, ratios to vanilla, time to target (speed.json); then compile_check.py
#      (torch.compile of the encoder vs eager, compile.json).
#   2. at once, one process per setting (tiny networks leave the GPU mostly idle, so
#      processes share it well; their seconds_per_epoch are NOT speed numbers):
#      - paper-vs-fast: mi paper / fast / best and vanilla, sigma^2 0.02, 3 seeds, 10k
#        digits, 5 epochs (issue 5's accuracy-at-equal-epochs check);
#      - colored-mnist: 6 methods x 7 sigma^2 x 3 seeds, the CPU protocol (10k, 5 epochs);
#      - biased-mnist: 6 methods x 4 rho x 3 seeds, paper digit net, 10k, 5 epochs;
#      - colored-mnist-54k: vanilla, mi best, mi fast on all 54k digits, 20 epochs.
#   3. summaries, tables and plots.
# Environment: DEVICE (cuda), SPEED_S and SWEEP_S (stage time limits in seconds), SMALL=1
# (a tiny dry run of every stage, e.g. on a CPU, to check the script itself).
set -u
OUT=${1:-benchmarks/results/gpu}
DEVICE=${DEVICE:-cuda}
SPEED_S=${SPEED_S:-150}
SWEEP_S=${SWEEP_S:-300}
PY=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONUNBUFFERED=1
mkdir -p "$OUT"

if [ "${SMALL:-0}" = 1 ]; then
    SIZE=600 EPOCHS=1 BIG=1200 BIG_EPOCHS=1 SEEDS="0" SPEED_SIZE=600 SPEED_EPOCHS=1
    SIGMAS="0.02 0.05" RHOS="0.999" SPEED_CONFIGS="vanilla mi-fast vanilla-channels-last"
else
    SIZE=10000 EPOCHS=5 BIG=54000 BIG_EPOCHS=20 SEEDS="0 1 2" SPEED_SIZE=10000 SPEED_EPOCHS=2
    SIGMAS="0.02 0.025 0.03 0.035 0.04 0.045 0.05" RHOS="0.999 0.997 0.995 0.99"
    SPEED_CONFIGS="vanilla mi-paper mi-best mi-fast blindeye lnl vanilla-channels-last
        vanilla-simple-conv vanilla-simple-conv-channels-last mi-fast-simple-conv"
fi
METHODS="vanilla mi:best mi:fast blindeye lnl lnl:stable"

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    nproc
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

echo "== 1. speed (alone on the device)"
# shellcheck disable=SC2086
timeout "$SPEED_S" $PY benchmarks/speed.py --device "$DEVICE" --configs $SPEED_CONFIGS \
    --train-size "$SPEED_SIZE" --epochs "$SPEED_EPOCHS" --out "$OUT/speed.json" \
    >"$OUT/speed.log" 2>&1
echo "speed exit $?"
# Does torch.compile pay on this card? (not yet run on a GPU here; CPU: docs/results.md)
timeout 120 $PY benchmarks/compile_check.py --device "$DEVICE" --out "$OUT/compile.json" \
    >"$OUT/compile.log" 2>&1
echo "compile check exit $?"

echo "== 2. sweeps (in parallel)"
sweep() {  # out, log name, sweep arguments...
    local out=$1 log=$2
    shift 2
    timeout "$SWEEP_S" $PY benchmarks/sweep.py --device "$DEVICE" --out "$OUT/$out" "$@" \
        >"$OUT/$out-$log.log" 2>&1
}
pids=()
for seed in $SEEDS; do
    sweep paper-vs-fast "seed$seed" --benchmark colored-mnist --strengths 0.02 --seeds "$seed" \
        --methods vanilla mi:paper mi:fast mi:best --epochs "$EPOCHS" --train-size "$SIZE" &
    pids+=($!)
done
for s in $SIGMAS; do
    # shellcheck disable=SC2086
    sweep colored-mnist "s$s" --benchmark colored-mnist --strengths "$s" --seeds $SEEDS \
        --methods $METHODS --epochs "$EPOCHS" --train-size "$SIZE" --eval-every "$EPOCHS" &
    pids+=($!)
done
for r in $RHOS; do
    # shellcheck disable=SC2086
    sweep biased-mnist "r$r" --benchmark biased-mnist --model paper-digits --strengths "$r" \
        --seeds $SEEDS --methods $METHODS --epochs "$EPOCHS" --train-size "$SIZE" \
        --eval-every "$EPOCHS" &
    pids+=($!)
done
for m in vanilla mi:best mi:fast; do
    sweep colored-mnist-54k "${m/:/-}" --benchmark colored-mnist --strengths 0.02 --seeds 0 \
        --methods "$m" --epochs "$BIG_EPOCHS" --train-size "$BIG" --eval-every 5 &
    pids+=($!)
done
wait "${pids[@]}"

echo "== 3. summaries"
for d in paper-vs-fast colored-mnist biased-mnist colored-mnist-54k; do
    [ -d "$OUT/$d" ] || continue
    bench=colored-mnist
    [ "$d" = biased-mnist ] && bench=biased-mnist
    $PY benchmarks/sweep.py --summary-only --benchmark "$bench" --out "$OUT/$d" \
        >"$OUT/$d-table.txt" 2>&1
    cat "$OUT/$d-table.txt"
done
$PY -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path
from plot import plot_summary
out = Path('$OUT')
for d, key in [('colored-mnist', 'bias_var'), ('biased-mnist', 'rho')]:
    if (out / d / 'summary.json').exists():
        plot_summary(out / d / 'summary.json', key, out / d / 'accuracy.png', d + ' (GPU)')
" || true
[ -f "$OUT/speed.json" ] && $PY -c "
import json; from midebias.report import format_table
rows = json.load(open('$OUT/speed.json'))['rows']
print(format_table(rows, ['config', 'seconds_per_epoch', 'ratio_to_vanilla', 'seconds_to_target',
                          'val_accuracy', 'test_accuracy']))
"
echo "done: $OUT"
