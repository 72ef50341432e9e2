# Device and precision selection, and dynamic loss scaling.
#   - `dptrain info` has its CUDA section (built or not, and the GPUs or why there are none);
#   - a bad DPT_DEVICE (the default of train.device), a precision other than fp32 on the CPU, train.device = cuda without a usable GPU (on 1 and
#     2 ranks: one message, non-zero exit, no hang) and a GAN on the GPU are refused by name;
#   - dynamic loss scaling on the CPU (train.loss_scale = dynamic): an overflow of the scaled
#     gradient (made by the inf_grad fault on one rank of 2 at steps 3-5; a real scale cannot be
#     made large enough to overflow this small model's float32 gradients) skips the step on every
#     rank and halves the scale, without counting as a bad step even past train.max_skipped_steps;
#     the run then trains (the loss falls) and its checkpoint keeps the scale; a window of 2
#     doubles the scale every 2 good steps. The same
#     arithmetic is what fp16 on a GPU runs; the scale is a power of two, so scaling changes no
#     bit of the float32 update on the CPU unless a gradient overflows (checked: equal weights).
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=200
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/devprec"
rm -rf "$D"
info=$("$DPTRAIN" info)
if grep -q "CUDA back end : \(built\|not built\)" <<<"$info" && grep -q "GPUs  *: \|GPU 0 \|not built" <<<"$info"; then
    pass "info has the CUDA section: $(grep 'CUDA back end' <<<"$info" | sed 's/^ *//')"
else
    fail "info's CUDA section"
    echo "$info"
fi
expect_fail "bf16 on the CPU" "train.precision = bf16 needs the CUDA back end" \
    "$DPTRAIN" train "$CFG" --out "$D/x" --set train.device=cpu --set train.precision=bf16
expect_fail "bad DPT_DEVICE" "DPT_DEVICE='gpu': train.device is one of auto|cpu|cuda" \
    env DPT_DEVICE=gpu "$DPTRAIN" train "$CFG" --out "$D/x"
expect_fail "unknown precision" "train.precision = 'fp8'" \
    "$DPTRAIN" train "$CFG" --out "$D/x" --set train.precision=fp8
expect_fail "GAN on the GPU" "trains on the CPU back end in fp32" \
    "$DPTRAIN" train "$SRC/configs/fashion-gan32.ini" --out "$D/x" --set train.device=cuda
for c in "" --no-comm; do
    st=$(mpi 2 "$DPTRAIN" bench step "$CFG" --size 28 --channels 1 --classes 10 --steps 3 --warmup 1 \
        --set train.device=cpu --set model.width=8 --set train.batch_size=16 $c 2>&1)
    want=on
    [ -n "$c" ] && want=off
    if [ "$(grep -c '^RESULT bench_step .*ranks=2 comm='$want <<<"$st")" = 1 ]; then
        pass "bench step on 2 ranks ${c:-with the allreduce}: $(grep '^RESULT' <<<"$st" | cut -c1-110)"
    else
        fail "bench step on 2 ranks $c"
        echo "$st" | tail -4
    fi
done
if [ "$("$DPTRAIN" info | grep -c '^  GPU [0-9]')" = 0 ]; then
    expect_fail "device cuda without a GPU" "train.device = cuda, but no GPU can be used" \
        "$DPTRAIN" train "$CFG" --out "$D/x" --set train.device=cuda
    expect_once "device cuda without a GPU, 2 ranks" "train.device = cuda" \
        mpi 2 "$DPTRAIN" train "$CFG" --out "$D/x" --set train.device=cuda
else
    echo "skip: a GPU is visible; the no-GPU refusals are not checked here"
fi

common=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set data.train_subset=1024 --set data.test_subset=500 --set model.width=8 --set train.batch_size=64
    --set train.epochs=1 --set train.max_steps=16 --set train.log_every=4 --set train.progress=lines
    --set train.device=cpu)
out=$(DPT_FAULT="inf_grad@3-5:1" mpi 2 "$DPTRAIN" train "$CFG" --out "$D/huge" "${common[@]}" \
    --set train.loss_scale=dynamic --set train.checkpoint_every=16 --set train.max_skipped_steps=2 2>&1)
rc=$?
n=$(grep -c "scaled gradient overflowed; step skipped, loss scale" <<<"$out")
if [ $rc = 0 ] && [ "$n" = 3 ] && grep -q "loss scale 16384 -> 8192" <<<"$out" && ! grep -q "non-finite" <<<"$out"; then
    pass "3 overflows on rank 1: 3 steps skipped on both ranks, 65536 -> 8192, not bad steps"
else
    fail "overflows: rc $rc, $n overflow line(s)"
    echo "$out" | tail -8
fi
losses=$(grep -o '"loss": [0-9.e+-]*' "$D/huge/metrics.jsonl" | awk '{print $2}' | tr '\n' ' ')
if awk -v l="$losses" 'BEGIN { n = split(l, a, " "); exit !(n >= 2 && a[n] < a[1]) }'; then
    pass "it trains after the overflows (loss per log line: $losses)"
else
    fail "loss does not fall after the overflows: $losses"
fi
ck=$(ls "$D/huge/checkpoints"/step_*.h5 2>/dev/null | tail -1)
if [ -n "$ck" ] && /usr/bin/python3 - "$ck" <<'PY'
import sys, h5py
s = h5py.File(sys.argv[1], "r").attrs["loss_scale"]
print("checkpoint loss_scale", float(s))
sys.exit(0 if float(s) == 8192 else 1)
PY
then pass "the checkpoint stores the reduced scale"; else fail "checkpoint loss_scale"; fi

out=$("$DPTRAIN" train "$CFG" --out "$D/grow" "${common[@]}" --set train.loss_scale=dynamic \
    --set train.loss_scale_init=1 --set train.loss_scale_window=2 --set train.max_steps=8 2>&1)
n=$(grep -c "2 good steps in a row, loss scale" <<<"$out")
if [ "$n" = 4 ] && grep -q "loss scale 8 -> 16" <<<"$out"; then
    pass "window 2: the scale doubles every 2 good steps (1 -> 16 in 8 steps)"
else
    fail "growth: $n doubling line(s)"
    echo "$out" | grep "loss scale" | head
fi
"$DPTRAIN" train "$CFG" --out "$D/plain" "${common[@]}" --set train.max_steps=8 >/dev/null 2>&1
if out=$("$H5COMPARE" "$D/grow/weights.h5" "$D/plain/weights.h5" --rtol 0 2>&1); then
    pass "power-of-two scaling leaves the float32 weights bit-identical ($out)"
else
    fail "scaled vs unscaled weights: $out"
fi
finish
