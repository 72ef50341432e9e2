#!/usr/bin/env bash
# The in-place float32 sum allreduce between ranks of this machine: `dptrain bench allreduce`
# (MPI, the collective training uses) against PyTorch's torch.distributed.all_reduce (gloo), the
# same sizes (8 B to MAX, doubling), warm-up 5, 20 timed calls, the slowest rank's mean, in one
# run. Both sides run ROUNDS times, interleaved; the table shows medians per size and the ratio
# (PyTorch's time / dptrain's: above 1, dptrain is faster).
#   benchmarks/allreduce_cpu.sh [RANKS] [MAX] [ROUNDS]
source "$(dirname "$0")/common.sh"
NP=${1:-2}
MAX=${2:-64M}
ROUNDS=${3:-3}
maxb=$(numfmt --from=iec "$MAX")
machine
echo "allreduce, $NP ranks, float32 sum in place, 8 B to $MAX, $ROUNDS rounds"
for ((round = 1; round <= ROUNDS; round++)); do
    mpi "$NP" -x OMP_NUM_THREADS=1 "$DPTRAIN" bench allreduce --max "$MAX" |
        awk '!/^#/ && NF == 7 {print $1, $4}' >"$RUNS/d$round"
    port=$((29500 + RANDOM % 400))
    pids=()
    for ((r = 0; r < NP; r++)); do
        RANK=$r WORLD_SIZE=$NP MASTER_PORT=$port OMP_NUM_THREADS=1 \
            "$PYTHON" "$ROOT/benchmarks/peer/torch_allreduce.py" --max "$maxb" >"$RUNS/t$round.$r" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    cp "$RUNS/t$round.0" "$RUNS/t$round"
    echo "round $round done"
done
echo
printf "%12s %14s %14s %10s %10s %8s\n" "size (B)" "dptrain (us)" "pytorch (us)" "dptrain" "pytorch" "ratio"
printf "%12s %14s %14s %10s %10s %8s\n" "" "" "" "busbw GB/s" "busbw GB/s" ""
awk '{print $1}' "$RUNS/d1" | while read -r size; do
    d=$(cat "$RUNS"/d[0-9]* | awk -v s="$size" '$1 == s {print $2}' | median)
    t=$(cat "$RUNS"/t[0-9] | awk -v s="$size" '$1 == s {print $2}' | median)
    awk -v s="$size" -v d="$d" -v t="$t" -v n="$NP" 'BEGIN {f = 2 * (n - 1) / n;
        printf "%12d %14.2f %14.2f %10.3f %10.3f %7.2fx\n", s, d, t, s / d / 1e3 * f, s / t / 1e3 * f, t / d}'
done
echo "(times: medians over $ROUNDS rounds of each run's slowest-rank mean; ratio = pytorch time / dptrain time)"
