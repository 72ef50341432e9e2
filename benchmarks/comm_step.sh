#!/usr/bin/env bash
# What the gradient allreduce costs a training step: `dptrain bench step` on NP ranks with the
# allreduce (comm on) and without it (--no-comm: every rank steps alone, same contention),
# interleaved REPEATS times, medians and the ratio; then `bench allreduce` over the transport
# training used, for its busbw. dptrain against itself: the peer comparison of scaling is
# weak_scaling_cpu.sh (PyTorch DDP).
#   GPU (default when one is visible): ResNet-50, 224 px, bf16, batch 256 per rank; NP ranks on
#     the node's GPUs (sharing one GPU: MPI through host memory); bench allreduce over NCCL on
#     1 rank and over MPI with device buffers on NP ranks.
#   CPU: ResNet-9 width 16 on 28x28x1, batch 128 per rank, one thread per rank.
#   benchmarks/comm_step.sh [NP] [REPEATS]   (env DEVICE=cpu|cuda, GRAD_DTYPE=fp32|bf16, STEPS, WARMUP)
source "$(dirname "$0")/common.sh"
NP=${1:-2}
REPEATS=${2:-3}
if [ -z "${DEVICE:-}" ]; then
    if "$DPTRAIN" info | grep -q '^  GPU 0 '; then DEVICE=cuda; else DEVICE=cpu; fi
fi
GRAD_DTYPE=${GRAD_DTYPE:-fp32}
if [ "$DEVICE" = cuda ]; then
    C="$ROOT/configs/imagenet-resnet50.ini"
    ARGS=(--size 224 --channels 3 --classes 1000 --set train.batch_size=256 --set train.precision=bf16)
    THREADS=4
    nvidia-smi
else
    C="$ROOT/configs/fashion-resnet9.ini"
    ARGS=(--size 28 --channels 1 --classes 10 --set model.width=16 --set train.batch_size=128)
    THREADS=1
fi
STEPS=${STEPS:-30} WARMUP=${WARMUP:-5}
machine
echo "bench step on $NP rank(s), $DEVICE, $(basename "$C"), gradients as $GRAD_DTYPE, $STEPS steps after $WARMUP, $REPEATS rounds"
ARGS+=(--steps "$STEPS" --warmup "$WARMUP" --set train.device="$DEVICE" --set comm.grad_dtype="$GRAD_DTYPE"
    --set train.progress=off)
on=() off=()
for ((k = 1; k <= REPEATS; k++)); do
    for mode in on off; do
        flag=()
        [ $mode = off ] && flag=(--no-comm)
        out=$(mpi "$NP" -x OMP_NUM_THREADS=$THREADS "$DPTRAIN" bench step "$C" "${ARGS[@]}" "${flag[@]}" 2>&1)
        [ "$k" = 1 ] && grep -E "bench step:|^step:" <<<"$out" | sed 's/^/  /'
        r=$(grep '^RESULT' <<<"$out")
        echo "round $k comm $mode: $r"
        ms=$(sed -E 's/.*median_ms=([0-9.]+).*/\1/' <<<"$r")
        if [ $mode = on ]; then on+=("$ms"); else off+=("$ms"); fi
    done
done
m_on=$(printf '%s\n' "${on[@]}" | median)
m_off=$(printf '%s\n' "${off[@]}" | median)
printf "step with the allreduce %.2f ms, without %.2f ms: communication costs %.1f%% of the step (efficiency %.3f)\n" \
    "$m_on" "$m_off" "$(awk -v a="$m_on" -v b="$m_off" 'BEGIN {print 100 * (a - b) / a}')" \
    "$(awk -v a="$m_on" -v b="$m_off" 'BEGIN {print b / a}')"
echo "(medians over $REPEATS rounds of the slowest rank's median step)"
if [ "$DEVICE" = cuda ]; then
    mpi 1 "$DPTRAIN" bench allreduce --backend nccl --max 256M
    mpi "$NP" "$DPTRAIN" bench allreduce --backend mpi --buffers device --max 256M
else
    mpi "$NP" "$DPTRAIN" bench allreduce --max 16M --dtype "$GRAD_DTYPE"
fi
