# Fashion-MNIST on the GPU (label cuda; exits 77 with a message without one): the default
# recipe's ResNet-9 for 2 epochs in bf16 and in fp32 on the CUDA back end, each reaching the CPU's
# band (end_to_end: >= 85% after 1 epoch on the CPU; here >= 88% after 2), the banner naming the
# GPU; the weights evaluate on the CPU to the run's accuracy within 0.3 points (bf16 activations
# on the GPU, fp32 on the CPU); fp16 with dynamic loss scaling trains too.
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
finish
