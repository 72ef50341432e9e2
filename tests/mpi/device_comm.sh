# Collectives on device buffers (comm_device.h), run by dptrain_emu: the CUDA back end and
# comm_device.cu built for the host, device memory in host memory, NCCL emulated over MPI
# (src/comm/nccl_emu.cpp). Two ranks of a small Fashion-MNIST ResNet-9 (4 steps):
#   - each transport ends with the weights of the same run on 2 CPU ranks (host buffers):
#     NCCL (DPT_EMU_DEVICES=2: a GPU per rank), MPI through pinned host memory (both ranks on
#     one GPU), CUDA-aware MPI (DPT_MPI_CUDA_AWARE=1), and the banner names the one chosen;
#   - comm.grad_dtype = bf16 on the wire: NCCL equals the CPU ranks' bf16 MPI path, and differs
#     from float32 (the option changes what travels);
#   - cross-replica BatchNorm over NCCL (the statistics reduced on the device) equals it on
#     CPU ranks;
#   - gradient accumulation over NCCL equals it on CPU ranks; train.profile writes its timeline;
#   - bench allreduce over NCCL and over MPI with device buffers verifies every size, and a
#     corrupted element is caught;
#   - comm.backend = nccl is refused once when two ranks share a GPU, and on CPU ranks; a GPU
#     on some ranks only is refused once.
# What it cannot say: anything about NCCL, cuDNN or a GPU's speed (device_comm runs on the GPU
# machine through gpu_train.sh and the benchmarks).
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=300
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/device_comm"
rm -rf "$D"
common=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set data.train_subset=256 --set data.test_subset=64 --set model.width=8 --set train.batch_size=32
    --set train.epochs=1 --set train.max_steps=4 --set train.log_every=2 --set train.progress=lines
    --set data.workers=1 --set train.verify_replicas=true)
gpu=(--set train.device=cuda --set train.precision=fp32)

# run NAME BINARY ENV... -- ARGS...: 2 ranks; the output in $D/NAME.txt.
run() {
    local name=$1 bin=$2
    shift 2
    local envs=()
    while [ "$1" != -- ]; do envs+=(-x "$1"); shift; done
    shift
    mpi 2 "${envs[@]}" "$bin" train "$CFG" --out "$D/$name" "${common[@]}" "$@" >"$D/$name.txt" 2>&1
}
# same NAME REF WHAT NEEDLE: the run's banner has NEEDLE and its weights are REF's (rtol 1e-4).
same() {
    local name=$1 ref=$2 what=$3 needle=$4 r
    if ! grep -qF -- "$needle" "$D/$name.txt"; then
        fail "$what: no '$needle' in the banner"
        grep -E "comm |error" "$D/$name.txt" | head -5
    elif r=$("$H5COMPARE" "$D/$name/weights.h5" "$D/$ref/weights.h5" --rtol 1e-4 2>&1); then
        pass "$what: $(grep -m1 -F -- "$needle" "$D/$name.txt" | sed 's/^ *//' | cut -c1-90); $r"
    else
        fail "$what: $r"
    fi
}
mkdir -p "$D"

run cpu "$DPTRAIN" DPT_DEVICE=cpu -- --set train.device=cpu
run nccl "$DPTRAIN_EMU" DPT_EMU_DEVICES=2 -- "${gpu[@]}"
same nccl cpu "NCCL (a GPU per rank) = 2 CPU ranks" "device buffers: NCCL"
run staged "$DPTRAIN_EMU" DPT_EMU_DEVICES=1 -- "${gpu[@]}"
same staged cpu "MPI through host memory (2 ranks on one GPU) = 2 CPU ranks" "through pinned host memory"
run aware "$DPTRAIN_EMU" DPT_EMU_DEVICES=1 DPT_MPI_CUDA_AWARE=1 -- "${gpu[@]}"
same aware cpu "CUDA-aware MPI = 2 CPU ranks" "MPI on device pointers"

run nccl_profile "$DPTRAIN_EMU" DPT_EMU_DEVICES=2 -- "${gpu[@]}" --set train.profile=true
rows=$(grep -cv '^step' "$D/nccl_profile/timeline.tsv" 2>/dev/null)
if [ "$rows" = 4 ] && grep -q "device buffers: NCCL" "$D/nccl_profile.txt"; then
    pass "timeline over NCCL: 4 step rows (exposed communication from the device's events)"
else
    fail "timeline over NCCL: '$rows' rows"
    tail -3 "$D/nccl_profile.txt"
fi

bf=(--set comm.grad_dtype=bf16)
run cpu_bf16 "$DPTRAIN" -- --set train.device=cpu "${bf[@]}"
run nccl_bf16 "$DPTRAIN_EMU" DPT_EMU_DEVICES=2 -- "${gpu[@]}" "${bf[@]}"
same nccl_bf16 cpu_bf16 "bf16 gradients over NCCL = bf16 over MPI on CPU ranks" "gradients travel as bf16"
if r=$("$H5COMPARE" "$D/nccl_bf16/weights.h5" "$D/nccl/weights.h5" --rtol 1e-4 2>&1); then
    fail "bf16 on the wire changes nothing: $r"
else
    pass "bf16 on the wire differs from float32: $(sed 's/.*: //' <<<"$r" | cut -c1-80)"
fi

sb=(--set model.bn_group=0)
run cpu_syncbn "$DPTRAIN" -- --set train.device=cpu "${sb[@]}"
run nccl_syncbn "$DPTRAIN_EMU" DPT_EMU_DEVICES=2 -- "${gpu[@]}" "${sb[@]}"
same nccl_syncbn cpu_syncbn "cross-replica BatchNorm over NCCL = on CPU ranks" "BatchNorm statistics over NCCL"

acc=(--set train.accum_steps=2)
run cpu_accum "$DPTRAIN" -- --set train.device=cpu "${acc[@]}"
run nccl_accum "$DPTRAIN_EMU" DPT_EMU_DEVICES=2 -- "${gpu[@]}" "${acc[@]}"
same nccl_accum cpu_accum "2 micro-steps per step over NCCL = on CPU ranks" "device buffers: NCCL"

b=$(mpi 2 -x DPT_EMU_DEVICES=2 "$DPTRAIN_EMU" bench allreduce --backend nccl --max 256K --iters 2 2>&1)
if [ $? = 0 ] && grep -q "device buffers, NCCL" <<<"$b" && grep -q "wrong elements: 0" <<<"$b"; then
    pass "bench allreduce --backend nccl: $(grep -c '^  ' <<<"$b") sizes verified"
else
    fail "bench allreduce --backend nccl"
    echo "$b" | tail -5
fi
b=$(mpi 2 "$DPTRAIN_EMU" bench allreduce --backend mpi --buffers device --dtype bf16 --max 256K --iters 2 2>&1)
if [ $? = 0 ] && grep -q "device buffers, MPI through pinned host memory" <<<"$b" && grep -q "wrong elements: 0" <<<"$b"; then
    pass "bench allreduce, device buffers over MPI, bf16: $(grep -c '^  ' <<<"$b") sizes verified"
else
    fail "bench allreduce --buffers device"
    echo "$b" | tail -5
fi
expect_fail "bench allreduce --backend nccl catches a corrupted element" "wrong elements" \
    mpi 2 -x DPT_EMU_DEVICES=2 "$DPTRAIN_EMU" bench allreduce --backend nccl --max 1K --iters 1 --test-corrupt-rank 1

expect_once "comm.backend = nccl with 2 ranks on one GPU" "share GPU 0" \
    mpi 2 "$DPTRAIN_EMU" train "$CFG" --out "$D/refused" "${common[@]}" "${gpu[@]}" --set comm.backend=nccl
expect_once "a GPU on rank 1 only (train.device = auto)" "some ranks compute on a GPU and others on the CPU" \
    mpi 1 -x DPT_EMU_DEVICES=0 "$DPTRAIN_EMU" train "$CFG" --out "$D/mixed" "${common[@]}" --set train.device=auto \
    : -np 1 -x DPT_EMU_DEVICES=1 "$DPTRAIN_EMU" train "$CFG" --out "$D/mixed" "${common[@]}" --set train.device=auto
expect_once "comm.backend = nccl on CPU ranks" "every rank computes on the CPU" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/refused2" "${common[@]}" --set train.device=cpu --set comm.backend=nccl
finish
