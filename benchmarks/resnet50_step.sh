#!/usr/bin/env bash
# ResNet-50 training step, synthetic data: `dptrain bench step` against torchvision's resnet50
# (benchmarks/peer/torch_resnet50_step.py) in the same run, on the same device, and the ratio of
# their median img/s. On a GPU (the default when one is visible): batch 256, 224 px, bf16, as the
# CUDA back end's headline; on the CPU: fp32 at a size the machine can time.
#   benchmarks/resnet50_step.sh [BATCH] [SIZE] [PRECISION]   (env DEVICE=cpu|cuda, STEPS, WARMUP)
source "$(dirname "$0")/common.sh"
if [ -z "${DEVICE:-}" ]; then
    if "$DPTRAIN" info | grep -q '^  GPU 0 '; then DEVICE=cuda; else DEVICE=cpu; fi
fi
if [ "$DEVICE" = cuda ]; then
    BATCH=${1:-256} SIZE=${2:-224} PREC=${3:-bf16}
else
    BATCH=${1:-16} SIZE=${2:-112} PREC=fp32
fi
STEPS=${STEPS:-20} WARMUP=${WARMUP:-5}
THREADS=$(nproc)
echo "== $(date -u +%F) $(hostname): ResNet-50 step, batch $BATCH, ${SIZE}px, $PREC on $DEVICE, $STEPS steps after $WARMUP"
[ "$DEVICE" = cuda ] && nvidia-smi
"$DPTRAIN" info
OMP_NUM_THREADS=$THREADS "$DPTRAIN" bench step "$ROOT/configs/imagenet-resnet50.ini" --size "$SIZE" \
    --steps "$STEPS" --warmup "$WARMUP" --set train.batch_size="$BATCH" --set train.device="$DEVICE" \
    --set train.precision="$PREC" --set train.progress=off ${PROFILE:+--profile} >"$RUNS/dptrain.txt" 2>&1
cat "$RUNS/dptrain.txt"
OMP_NUM_THREADS=$THREADS "$PYTHON" "$ROOT/benchmarks/peer/torch_resnet50_step.py" --batch "$BATCH" \
    --size "$SIZE" --steps "$STEPS" --warmup "$WARMUP" --device "$DEVICE" --precision "$PREC" \
    --threads "$THREADS" >"$RUNS/torch.txt" 2>&1
cat "$RUNS/torch.txt"
d=$(grep '^RESULT' "$RUNS/dptrain.txt")
t=$(grep '^RESULT' "$RUNS/torch.txt")
di=$(sed -E 's/.*img_s=([0-9.]+).*/\1/' <<<"$d")
ti=$(sed -E 's/.*img_s=([0-9.]+).*/\1/' <<<"$t")
echo "dptrain $di img/s, PyTorch $ti img/s: ratio $(awk -v a="$di" -v b="$ti" 'BEGIN { printf "%.3f", a / b }')x (median step)"
