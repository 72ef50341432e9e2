#!/usr/bin/env bash
# The large-batch recipe on Fashion-MNIST: the same ResNet-9 trained for the same number of
# epochs at global batch 256 and at 4096, the latter with the linear scaling rule and gradual
# warmup (Goyal et al.), and with LARS (+ warmup, polynomial decay). Prints each run's top-1 per
# epoch and the final differences; copies the DAWNBench TSVs to $OUT (default: the runs dir).
#   benchmarks/large_batch_fashion.sh [EPOCHS] [WIDTH] [LARS_LR]
# All runs: 2 ranks x 1 thread, SGD lr 0.1 per 256 images (1.6 at 4096), 3 warmup epochs
# then cosine decay, Nesterov momentum 0.9, weight decay 5e-4 (not on BatchNorm and biases),
# label smoothing 0.1, per-rank BatchNorm. LARS: trust coefficient 0.001, lr LARS_LR (not scaled),
# plain momentum 0.9, poly power 2.
source "$(dirname "$0")/common.sh"
EPOCHS=${1:-20}
WIDTH=${2:-16}
LARS_LR=${3:-10}
OUT=${OUT:-$RUNS}
mkdir -p "$OUT"
machine
echo "Fashion-MNIST ResNet-9 width $WIDTH, $EPOCHS epochs, 2 ranks x 1 thread"
common=("${DATASETS[@]}" --set model.width="$WIDTH" --set train.epochs="$EPOCHS" --set train.target_accuracy=0
    --set train.progress=lines --set train.log_every=1000 --set train.save_weights=false --set optim.lr=0.1
    --set schedule.name=cosine --set schedule.warmup_epochs=3 --set schedule.warmup_start_factor=0)
run() {
    local name=$1
    shift
    echo
    echo "== $name: $*"
    mpi 2 -x OMP_NUM_THREADS=1 "$DPTRAIN" train "$CFG" --out "$RUNS/$name" "${common[@]}" "$@" |
        grep --line-buffered -E "^  (batch|optimizer|schedule) |^epoch [0-9]+:|^done"
    cp "$RUNS/$name/dawnbench.tsv" "$OUT/$name.tsv"
}
run b256-sgd --set train.batch_size=256
run b4096-sgd --set train.batch_size=4096
run b4096-lars --set train.batch_size=4096 --set optim.name=lars --set optim.lr="$LARS_LR" \
    --set schedule.scale_lr=false --set schedule.name=poly --set optim.nesterov=false
echo
printf "%-12s %-10s %-10s %-12s\n" run "final top-1" "best top-1" "vs b256-sgd"
ref=$(tail -1 "$OUT/b256-sgd.tsv" | cut -f3)
for r in b256-sgd b4096-sgd b4096-lars; do
    fin=$(tail -1 "$OUT/$r.tsv" | cut -f3)
    best=$(tail -n +2 "$OUT/$r.tsv" | cut -f3 | sort -g | tail -1)
    printf "%-12s %-10s %-10s %+.2f\n" "$r" "$fin" "$best" "$(awk -v a="$fin" -v b="$ref" 'BEGIN { print a - b }')"
done
