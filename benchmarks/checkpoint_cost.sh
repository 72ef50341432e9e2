#!/usr/bin/env bash
# What checkpoints cost, dptrain vs PyTorch, in one run on this machine:
#  - writing a ResNet-50 checkpoint (1-channel stem, 10 classes: Fashion-MNIST at 32x32) on 2
#    ranks: parameters, per-rank BatchNorm statistics, momentum, checksummed HDF5, fsync and
#    rename; median over the checkpoints of a short run (one per step);
#  - resuming it (rank 0 reads and verifies, broadcasts to the other rank);
#  - PyTorch's torch.save/torch.load of the same network and optimizer state, also with fsync
#    and rename;
#  - the per-step agreement (one small allreduce, the finiteness check of the summed gradient,
#    the stop-signal flag) on the ResNet-9 of fashion_throughput.sh, from the run's summary.
#   benchmarks/checkpoint_cost.sh [STEPS]
source "$(dirname "$0")/common.sh"
STEPS=${1:-5}
machine
R50=("${DATASETS[@]}" --set model.name=resnet50 --set data.image_size=32 --set data.train_subset=256
    --set data.test_subset=16 --set train.batch_size=16 --set train.epochs=1 --set train.max_steps="$STEPS"
    --set train.checkpoint_every=1 --set train.keep_checkpoints=2 --set train.progress=lines
    --set train.save_weights=false --set train.tensorboard=false)
out="$RUNS/r50"
rm -rf "$out"
mpi 2 --oversubscribe -x OMP_NUM_THREADS=1 "$DPTRAIN" train "$CFG" --out "$out" "${R50[@]}" >"$RUNS/r50.log" 2>&1
grep -E "^checkpoint .*step_" "$RUNS/r50.log" | sed -E 's/.*\(([0-9.]+) MB, ([0-9.]+) s\)/\1 \2/' >"$RUNS/r50.w"
mb=$(tail -1 "$RUNS/r50.w" | cut -d' ' -f1)
wmed=$(cut -d' ' -f2 "$RUNS/r50.w" | median)
loads=()
for i in 1 2 3; do
    # max_steps one more than the checkpoint's: it loads, trains one step and stops.
    l=$(mpi 2 --oversubscribe -x OMP_NUM_THREADS=1 "$DPTRAIN" train "$CFG" --out "$out" "${R50[@]}" \
        --set train.max_steps=$((STEPS + i)) --resume auto 2>&1 | grep -o 'loaded in [0-9.]* s' | grep -o '[0-9.]*')
    loads+=("$l")
done
lmed=$(printf '%s\n' "${loads[@]}" | median)
echo "dptrain: ResNet-50 checkpoint $mb MB; write median $wmed s over $(wc -l <"$RUNS/r50.w") checkpoints; resume (read, verify, broadcast to 2 ranks) median $lmed s of ${loads[*]}"
peer=$("$PYTHON" "$ROOT/benchmarks/peer/torch_checkpoint.py" "$RUNS/torch" --rounds 5)
echo "$peer"
tsave=$(sed -E 's/.*save ([0-9.]+) s.*/\1/' <<<"$peer")
tload=$(sed -E 's/.*load ([0-9.]+) s.*/\1/' <<<"$peer")
awk -v a="$wmed" -v b="$tsave" -v c="$lmed" -v d="$tload" \
    'BEGIN { printf "ratio (PyTorch time / dptrain time): write %.2fx, load/resume %.2fx\n", b / a, d / c }'

# The per-step agreement on the ResNet-9 width 16 of fashion_throughput.sh, 2 ranks x 1 thread.
R9=("${DATASETS[@]}" --set model.width=16 --set train.batch_size=256 --set train.max_steps=65
    --set train.save_weights=false --set data.test_subset=1000 --set train.progress=off)
agree=() step=()
for i in 1 2 3; do
    o="$RUNS/r9-$i"
    mpi 2 -x OMP_NUM_THREADS=1 "$DPTRAIN" train "$CFG" --out "$o" "${R9[@]}" >/dev/null
    agree+=("$(grep '"type": "summary"' "$o/metrics.jsonl" | json_field agree_ms)")
    step+=("$(grep '"type": "summary"' "$o/metrics.jsonl" | json_field median_step_ms)")
done
am=$(printf '%s\n' "${agree[@]}" | median)
sm=$(printf '%s\n' "${step[@]}" | median)
awk -v a="$am" -v s="$sm" 'BEGIN { printf "ResNet-9 width 16, batch 256, 2 ranks x 1 thread: per-step agreement median %.3f ms (mean per step of each run), median step %.1f ms: %.2f%%\n", a, s, 100 * a / s }'
