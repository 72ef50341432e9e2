#!/usr/bin/env bash
# Training throughput of dptrain vs PyTorch on the same ResNet-9 (width 16: 16-32-64-128),
# Fashion-MNIST, global batch 256, on this machine, in one run:
#   2 ranks x 1 thread   dptrain (MPI)           vs PyTorch DDP (gloo), 2 processes x 1 thread
#   1 rank  x 2 threads  dptrain                  vs PyTorch, 1 process x 2 threads
# Each configuration runs ROUNDS times, interleaved; the table shows medians. PyTorch runs both
# with NCHW and with channels_last; the ratio is taken against its faster layout.
#   benchmarks/fashion_throughput.sh [ROUNDS] [STEPS]
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}
STEPS=${2:-60}
B=256
COMMON=("${DATASETS[@]}" --set model.width=16 --set train.batch_size=$B --set train.max_steps=$((STEPS + 5))
    --set train.save_weights=false --set data.test_subset=1000 --set train.progress=off)
machine
echo "ResNet-9 width 16, Fashion-MNIST 28x28, global batch $B, $STEPS timed steps after 5, $ROUNDS rounds"

declare -A R
for ((round = 1; round <= ROUNDS; round++)); do
    for setup in "2x1" "1x2"; do
        np=${setup%x*}
        th=${setup#*x}
        out="$RUNS/d$setup-$round"
        mpi "$np" -x OMP_NUM_THREADS="$th" "$DPTRAIN" train "$CFG" --out "$out" "${COMMON[@]}" >/dev/null
        v=$(grep '"type": "summary"' "$out/metrics.jsonl" | json_field median_img_per_s)
        R[dptrain-$setup]+="$v "
        for layout in nchw cl; do
            flag=()
            [ $layout = cl ] && flag=(--channels-last)
            line=$(torch_peer "$np" "$th" --mode throughput --steps "$STEPS" "${flag[@]}" "${COMMON[@]}" | tail -1)
            v=$(json_field img_per_s <<<"$line")
            R[torch-$layout-$setup]+="$v "
        done
        echo "round $round $setup: dptrain $(echo ${R[dptrain-$setup]} | awk '{print $NF}') img/s," \
            "pytorch nchw $(echo ${R[torch-nchw-$setup]} | awk '{print $NF}'), channels_last $(echo ${R[torch-cl-$setup]} | awk '{print $NF}')"
    done
done

echo
printf "%-22s %12s %16s %16s %10s\n" "configuration" "dptrain" "pytorch NCHW" "pytorch CL" "ratio"
for setup in "2x1" "1x2"; do
    d=$(tr ' ' '\n' <<<"${R[dptrain-$setup]}" | grep . | median)
    a=$(tr ' ' '\n' <<<"${R[torch-nchw-$setup]}" | grep . | median)
    c=$(tr ' ' '\n' <<<"${R[torch-cl-$setup]}" | grep . | median)
    best=$(awk -v a="$a" -v c="$c" 'BEGIN {print (a > c) ? a : c}')
    label=$([ $setup = 2x1 ] && echo "2 ranks x 1 thread" || echo "1 rank x 2 threads")
    printf "%-22s %8.0f img/s %10.0f img/s %10.0f img/s %9.2fx\n" "$label" "$d" "$a" "$c" "$(awk -v d="$d" -v b="$best" 'BEGIN {print d / b}')"
done
echo "(img/s: medians over $ROUNDS rounds of the median step; ratio = dptrain / faster PyTorch layout)"
