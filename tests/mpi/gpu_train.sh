# Fashion-MNIST on the GPU (label cuda; exits 77 with a message without one): the default
# recipe's ResNet-9 for 2 epochs in bf16 and in fp32 on the CUDA back end, each reaching the CPU's
# band (end_to_end: >= 85% after 1 epoch on the CPU; here >= 88% after 2), the banner naming the
# GPU; the weights evaluate on the CPU to the run's accuracy within 0.3 points (bf16 activations
# on the GPU, fp32 on the CPU); fp16 with dynamic loss scaling trains too. Collectives on device
# buffers: bench allreduce over NCCL (1 rank) and over MPI between 2 ranks sharing the GPU
# verifies every size, and 2 ranks sharing the GPU train 1 epoch (MPI through host memory, the
# replicas checked identical after every step) into the CPU's band.
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=600
if ! "$DPTRAIN" info | grep -q '^  GPU 0 '; then
    echo "SKIP: no GPU visible ($("$DPTRAIN" info | grep -E 'GPUs|CUDA back end' | sed 's/^ *//' | tr '\n' ' '))"
    exit 77
fi
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/gpu"
rm -rf "$D"
data=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set train.epochs=2 --set train.progress=lines --set train.device=cuda)
for prec in bf16 fp32 fp16; do
    if ! out=$("$DPTRAIN" train "$CFG" --out "$D/$prec" "${data[@]}" --set train.precision=$prec 2>&1); then
        fail "$prec: training failed"
        echo "$out" | tail -15
        continue
    fi
    echo "$out" | grep -E "backend|step: |done:" | head -4
    top1=$(summary_value "$D/$prec" final_top1)
    if awk -v a="$top1" 'BEGIN { exit !(a >= 0.88) }'; then pass "$prec: 2 epochs on the GPU: top-1 $top1 >= 0.88"; else fail "$prec: top-1 $top1 < 0.88"; fi
    if grep -q "backend    cuda-$prec" <<<"$out"; then pass "$prec: the banner names the CUDA back end"; else fail "$prec: banner"; fi
done
ev=$("$DPTRAIN" eval "$D/bf16/config.ini" --weights "$D/bf16/weights.h5" --set train.device=cpu \
    --set train.precision=fp32 2>&1)
got=$(grep -oE 'top-1 [0-9.]+%' <<<"$ev" | head -1 | grep -oE '[0-9.]+')
want=$(awk -v a="$(summary_value "$D/bf16" final_top1)" 'BEGIN { printf "%.2f", 100 * a }')
if [ -n "$got" ] && awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 0.3 && d > -0.3) }'; then
    pass "the GPU's bf16 weights evaluate on the CPU to $got% (run: $want%)"
else
    fail "CPU evaluation of the GPU's weights: '$got' against $want"
fi
b=$(mpi 1 "$DPTRAIN" bench allreduce --backend nccl --max 256M 2>&1)
rc=$?
echo "$b" | grep -E "^#|^  " | tail -6
if [ $rc = 0 ] && grep -q "wrong elements: 0" <<<"$b"; then pass "bench allreduce --backend nccl, 1 rank: verified"; else fail "bench allreduce nccl"; fi
b=$(mpi 2 "$DPTRAIN" bench allreduce --backend mpi --buffers device --max 64M 2>&1)
echo "$b" | grep -E "^#|^  " | tail -6
if grep -q "wrong elements: 0" <<<"$b"; then pass "bench allreduce, device buffers over MPI, 2 ranks on one GPU: verified"; else fail "bench allreduce device MPI"; fi
out=$(mpi 2 "$DPTRAIN" train "$CFG" --out "$D/two" "${data[@]}" --set train.epochs=1 --set train.verify_replicas=true 2>&1)
top1=$(summary_value "$D/two" final_top1)
if grep -q "device buffers: MPI" <<<"$out" && awk -v a="$top1" 'BEGIN { exit !(a >= 0.85) }'; then
    pass "2 ranks on one GPU, gradients over MPI: 1 epoch, top-1 $top1 >= 0.85, replicas identical"
else
    fail "2 ranks on one GPU: top-1 '$top1'"
    echo "$out" | grep -E "comm|error" | head -5
fi
finish
