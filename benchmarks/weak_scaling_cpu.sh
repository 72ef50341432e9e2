#!/usr/bin/env bash
# Weak scaling on this machine: ResNet-9 (width 16) on Fashion-MNIST with the same batch per rank
# (128) on 1 rank and on 2 ranks (global 128 and 256), one compute thread per rank, dptrain and
# PyTorch DDP (gloo) side by side. Efficiency = img/s on 2 ranks / (2 x img/s on 1 rank); for
# dptrain also the exposed communication's share of the step and the allreduce's in-flight time
# from timeline.tsv (train.profile). Each configuration runs ROUNDS times, interleaved; medians.
# GRAD_DTYPE (fp32 or bf16) is dptrain's comm.grad_dtype; PyTorch DDP sends float32 either way.
#   benchmarks/weak_scaling_cpu.sh [ROUNDS] [STEPS] [GRAD_DTYPE]
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}
STEPS=${2:-60}
GRAD_DTYPE=${3:-fp32}
PER=128
machine
echo "ResNet-9 width 16, Fashion-MNIST 28x28, $PER per rank, 1 thread per rank, $STEPS timed steps after 5, $ROUNDS rounds; dptrain gradients as $GRAD_DTYPE"

declare -A R
for ((round = 1; round <= ROUNDS; round++)); do
    for np in 1 2; do
        B=$((PER * np))
        COMMON=("${DATASETS[@]}" --set model.width=16 --set train.batch_size=$B --set train.max_steps=$((STEPS + 5))
            --set train.save_weights=false --set data.test_subset=1000 --set train.progress=off)
        out="$RUNS/w$np-$round"
        mpi "$np" -x OMP_NUM_THREADS=1 "$DPTRAIN" train "$CFG" --out "$out" "${COMMON[@]}" --set train.profile=true \
            --set comm.grad_dtype="$GRAD_DTYPE" >/dev/null
        sum=$(grep '"type": "summary"' "$out/metrics.jsonl")
        R[d$np]+="$(json_field median_img_per_s <<<"$sum") "
        if [ "$np" = 2 ]; then
            # Per-step means over the timed steps (6..): exposed share and in-flight time.
            read -r ex fl st < <(awk -F'\t' 'NR > 6 {e += $7; f += $6; s += $10; n++} END {printf "%.3f %.3f %.3f\n", e / n, f / n, s / n}' "$out/timeline.tsv")
            R[exposed]+="$ex "
            R[inflight]+="$fl "
            R[step]+="$st "
        fi
        line=$(torch_peer "$np" 1 --mode throughput --steps "$STEPS" "${COMMON[@]}" | tail -1)
        R[t$np]+="$(json_field img_per_s <<<"$line") "
        echo "round $round, $np rank(s): dptrain $(echo ${R[d$np]} | awk '{print $NF}') img/s, pytorch $(echo ${R[t$np]} | awk '{print $NF}') img/s"
    done
done

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
d1=$(med "${R[d1]}") d2=$(med "${R[d2]}") t1=$(med "${R[t1]}") t2=$(med "${R[t2]}")
echo
printf "%-10s %14s %14s %12s\n" "" "1 rank" "2 ranks" "efficiency"
printf "%-10s %8.0f img/s %8.0f img/s %11.2f\n" dptrain "$d1" "$d2" "$(awk -v a="$d1" -v b="$d2" 'BEGIN {print b / (2 * a)}')"
printf "%-10s %8.0f img/s %8.0f img/s %11.2f\n" pytorch "$t1" "$t2" "$(awk -v a="$t1" -v b="$t2" 'BEGIN {print b / (2 * a)}')"
printf "ratio dptrain / pytorch at 2 ranks: %.2fx\n" "$(awk -v a="$d2" -v b="$t2" 'BEGIN {print a / b}')"
ex=$(med "${R[exposed]}") fl=$(med "${R[inflight]}") st=$(med "${R[step]}")
printf "dptrain, 2 ranks, per step (medians of per-run means): step %.1f ms, allreduce in flight %.2f ms, exposed %.2f ms (%.1f%% of the step, %.0f%% of in-flight hidden)\n" \
    "$st" "$fl" "$ex" "$(awk -v e="$ex" -v s="$st" 'BEGIN {print 100 * e / s}')" "$(awk -v e="$ex" -v f="$fl" 'BEGIN {print (f > 0 ? 100 * (1 - e / f) : 0)}')"
echo "(img/s: medians over $ROUNDS rounds of each run's median step)"
