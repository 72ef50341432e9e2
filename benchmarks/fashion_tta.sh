#!/usr/bin/env bash
# Time to a target test top-1 on Fashion-MNIST, dptrain vs PyTorch, same network and recipe
# (configs/fashion-resnet9.ini), both on 2 ranks x 1 thread, in one run. Wall-clock from the
# first step, evaluation included (DAWNBench's measure).
#   benchmarks/fashion_tta.sh [TARGET] [EPOCHS]
source "$(dirname "$0")/common.sh"
TARGET=${1:-0.94}
EPOCHS=${2:-$(sed -nE 's/^epochs *= *([0-9]+).*/\1/p' "$CFG")}
machine
echo "target top-1 $TARGET, at most $EPOCHS epochs, $(basename "$CFG"), 2 ranks x 1 thread each"
out="$RUNS/dptrain-tta"
mpi 2 -x OMP_NUM_THREADS=1 "$DPTRAIN" train "$CFG" --out "$out" "${DATASETS[@]}" --set train.target_accuracy="$TARGET" \
    --set train.epochs="$EPOCHS" --set train.progress=lines --set train.log_every=1000 | grep -E "^epoch [0-9]+:|target|done"
d_line=$(grep '"type": "summary"' "$out/metrics.jsonl")
# tee to a file, not /dev/stderr: reopening /dev/stderr truncates a log that stderr is redirected to.
torch_peer 2 1 --mode tta --target "$TARGET" --channels-last "${DATASETS[@]}" --set train.epochs="$EPOCHS" | tee "$RUNS/peer-tta.out"
line=$(tail -1 "$RUNS/peer-tta.out")
d_t=$(json_field time_to_target_s <<<"$d_line")
t_t=$(json_field time_to_target_s <<<"$line")
echo
printf "%-10s %-18s %-14s\n" "" "time to $TARGET" "final top-1"
secs() { awk -v t="$1" 'BEGIN { printf "%.1f s", t }'; }
printf "%-10s %-18s %-14s\n" dptrain "$( [ "$(json_field reached <<<"$d_line")" = true ] && secs "$d_t" || echo "not reached")" "$(json_field final_top1 <<<"$d_line")"
printf "%-10s %-18s %-14s\n" pytorch "$( [ "$t_t" != null ] && secs "$t_t" || echo "not reached")" "$(json_field final_top1 <<<"$line")"
if [ "$t_t" != null ] && [ "$(json_field reached <<<"$d_line")" = true ]; then
    echo "ratio (pytorch time / dptrain time): $(awk -v a="$t_t" -v b="$d_t" 'BEGIN {printf "%.2f", a / b}')"
fi
