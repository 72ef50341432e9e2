# The trainer's GPU path end to end, on the emulated CUDA back end (dptrain_emu: the same dptrain
# with the CUDA sources built for the host; see src/backend/cuda/cuda_internal.h). A small
# Fashion-MNIST ResNet-9 (width 8, 256 images, batch 32: 8 steps):
#   - fp32 on the "GPU" and on the CPU from the same seed end with the same weights (<= 1e-3;
#     the order of sums differs), and the banner names the CUDA table;
#   - bf16 and fp16 (dynamic loss scaling, an injected overflow halving the scale) train: the
#     loss falls;
#   - SIGTERM at step 5 checkpoints from device memory, --resume auto goes on, and the weights
#     equal an uninterrupted run's bit for bit (the emulator is deterministic);
#   - eval and bench step run on the device;
#   - with a GPU visible, train.device = auto on 2 ranks takes it (device_comm.sh checks the
#     device-buffer collectives themselves).
# It says nothing about cuDNN, cuBLAS or speed (loops stand in for them here).
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=600
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/emu"
rm -rf "$D"
common=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set data.train_subset=256 --set data.test_subset=128 --set model.width=8 --set train.batch_size=32
    --set train.epochs=1 --set train.log_every=2 --set train.progress=lines --set data.workers=1)
emu() { timeout --kill-after=10 "$DPT_TEST_TIMEOUT" "$DPTRAIN_EMU" "$@"; }

out=$(emu train "$CFG" --out "$D/fp32" "${common[@]}" --set train.device=cuda --set train.precision=fp32 2>&1)
rc=$?
if [ $rc = 0 ] && grep -q "backend    cuda-fp32" <<<"$out"; then pass "fp32 on the emulated GPU: $(grep -m1 'backend ' <<<"$out" | sed 's/^ *//' | cut -c1-80)"; else
    fail "fp32 emulated run: rc $rc"
    echo "$out" | tail -8
fi
"$DPTRAIN" train "$CFG" --out "$D/cpu" "${common[@]}" --set train.device=cpu >/dev/null 2>&1
if r=$("$H5COMPARE" "$D/fp32/weights.h5" "$D/cpu/weights.h5" --rtol 1e-3 2>&1); then pass "GPU fp32 = CPU after 8 steps: $r"; else fail "GPU fp32 vs CPU: $r"; fi

falls() { # RUN: the first logged training loss is above the last
    local l
    l=$(grep '"type": "train"' "$1/metrics.jsonl" | grep -o '"loss": [0-9.e+-]*' | awk '{print $2}' | tr '\n' ' ')
    awk -v l="$l" 'BEGIN { n = split(l, a, " "); exit !(n >= 2 && a[n] < a[1]) }' && echo "$l"
}
out=$(emu train "$CFG" --out "$D/bf16" "${common[@]}" --set train.device=cuda --set train.precision=bf16 2>&1)
if l=$(falls "$D/bf16"); then pass "bf16 trains (loss per log line: $l)"; else fail "bf16: the loss does not fall"; echo "$out" | tail -5; fi
out=$(DPT_FAULT="inf_grad@3" emu train "$CFG" --out "$D/fp16" "${common[@]}" --set train.device=cuda \
    --set train.precision=fp16 2>&1)
if grep -q "loss scale 65536 -> 32768" <<<"$out" && l=$(falls "$D/fp16"); then
    pass "fp16 with dynamic loss scaling: the overflow at step 3 halves the scale, and it trains (loss $l)"
else
    fail "fp16 loss scaling"
    echo "$out" | grep -E "loss scale|error" | head -5
fi

dev=(--set train.device=cuda --set train.precision=bf16 --set train.checkpoint_every=2)
emu train "$CFG" --out "$D/whole" "${common[@]}" "${dev[@]}" >/dev/null 2>&1
DPT_FAULT="term@5" emu train "$CFG" --out "$D/resumed" "${common[@]}" "${dev[@]}" >/dev/null 2>&1
out=$(emu train "$CFG" --out "$D/resumed" "${common[@]}" "${dev[@]}" --resume auto 2>&1)
if grep -q "resum" <<<"$out" && r=$("$H5COMPARE" "$D/resumed/weights.h5" "$D/whole/weights.h5" --rtol 0 2>&1); then
    pass "SIGTERM at step 5 and --resume auto on the device: bit-identical weights ($r)"
else
    fail "device resume: $r"
    echo "$out" | grep -iE "resum|error|checkpoint" | head -5
fi
if ev=$(emu eval "$D/fp32/config.ini" --weights "$D/fp32/weights.h5" 2>&1) && grep -q "top-1" <<<"$ev"; then
    pass "eval on the device: $(grep -m1 -o 'top-1 [0-9.]*%' <<<"$ev")"
else
    fail "eval on the device: $(tail -2 <<<"$ev")"
fi
if st=$(emu bench step "$CFG" --size 28 --channels 1 --classes 10 --steps 2 --warmup 1 --set model.width=8 \
    --set train.batch_size=8 --set train.device=cuda 2>&1) && grep -q "RESULT bench_step .*backend=cuda-bf16" <<<"$st"; then
    pass "bench step on the device: $(grep -m1 '^step:' <<<"$st" | cut -c1-60)"
else
    fail "bench step on the device: $(tail -2 <<<"$st")"
fi
out=$(mpi 2 "$DPTRAIN_EMU" train "$CFG" --out "$D/auto2" "${common[@]}" --set train.max_steps=2 --set train.device=auto 2>&1)
if [ $? = 0 ] && grep -q "backend    cuda-bf16" <<<"$out" && grep -q "device buffers:" <<<"$out"; then
    pass "auto on 2 ranks with a GPU visible: the GPU, gradients over $(grep -m1 -o 'device buffers: [A-Za-z]* [a-z]*' <<<"$out")"
else
    fail "auto on 2 ranks"
    echo "$out" | grep -E "rank |backend|comm|error" | head -5
fi
finish
