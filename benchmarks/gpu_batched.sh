#!/usr/bin/env bash
# Batched runs, CUDA graphs and GPU speed in one command (at most 9 minutes on one H200):
#
#     bash benchmarks/gpu_batched.sh [OUT_DIR]     # default benchmarks/results/batched
#
# 1. speed.py: seconds per epoch of vanilla, mi (default preset) and mi with
#    grad_fraction 0.5 on the card, as ratios to vanilla (speed-gpu.json);
# 2. batched.py: run-epochs per second of vanilla and mi for N = 1, 8, 32, 84 batched
#    (torch.func.vmap) against one single run, memory per run, and the projected time of
#    the full Colored MNIST table (gpu.json);
# 3. cuda_graphs.py: milliseconds per step, eager against replayed from a CUDA graph, for
#    one run and N = 8, 32, 84 stacked, with an eager-vs-replay equality check
#    (cuda-graphs.json).
# Each stage is bounded by `timeout` and writes its JSON as results come in. Needs a CUDA
# build of torch, this package importable, and MNIST where midebias finds it
# (MIDEBIAS_DATA_DIR). SMALL=1 DEVICE=cpu: a tiny dry run of the stages (checks the script;
# on a CPU stage 3 times the eager steps only).
set -u
OUT=${1:-benchmarks/results/batched}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
if [ "${SMALL:-0}" = 1 ]; then
    SIZE=400 NS="1 2" SPEED_S=120 BATCH_S=240 GRAPH_S=120 STEPS=1 SUFFIX=-small
else
    SIZE=10000 NS="1 8 32 84" SPEED_S=80 BATCH_S=300 GRAPH_S=150 STEPS=50 SUFFIX=
fi
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    nproc
} >"$OUT/machine$SUFFIX.txt" 2>&1
cat "$OUT/machine$SUFFIX.txt"

echo "== 1. speed"
timeout "$SPEED_S" $PY benchmarks/speed.py --device "$DEVICE" \
    --configs vanilla mi-balanced mi-balanced-half --train-size "$SIZE" --epochs 1 \
    --out "$OUT/speed-gpu$SUFFIX.json" 2>&1 | tail -8
echo "== 2. batched"
# shellcheck disable=SC2086
timeout "$BATCH_S" $PY benchmarks/batched.py --device "$DEVICE" --n $NS \
    --train-size "$SIZE" --epochs 1 --out "$OUT/gpu$SUFFIX.json" 2>&1 | tail -14
echo "== 3. CUDA graphs"
# shellcheck disable=SC2086
timeout "$GRAPH_S" $PY benchmarks/cuda_graphs.py --device "$DEVICE" --n $NS --steps "$STEPS" \
    --check --out "$OUT/cuda-graphs$SUFFIX.json" 2>&1 | tail -12
