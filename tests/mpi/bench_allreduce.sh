# dptrain bench allreduce over MPI: 2 and 4 ranks, fp32 and bf16, sizes from 8 B to 4 MiB (odd
# sizes too): every size's exact check passes, the table has one row per size with busbw =
# algbw * 2(n-1)/n; a corrupted element on one rank is caught (non-zero exit, #wrong > 0); bad
# arguments are refused on every rank, and so is --backend nccl without NCCL or without a GPU.
# (NCCL's own runs: device_comm.sh on the emulated device, gpu_train.sh on a GPU.)
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=120

# check_table OUTPUT RANKS ROWS: ROWS data rows, all with #wrong 0, busbw consistent with algbw.
check_table() {
    printf '%s\n' "$1" >"$TESTRUNS/bench_allreduce.txt"
    /usr/bin/python3 - "$2" "$3" "$TESTRUNS/bench_allreduce.txt" <<'PY'
import sys
n, rows_wanted = int(sys.argv[1]), int(sys.argv[2])
rows = [l.split() for l in open(sys.argv[3]) if l.strip() and not l.startswith("#") and l.split()[0].isdigit()]
if len(rows) != rows_wanted:
    sys.exit(f"{len(rows)} rows, want {rows_wanted}")
for size, count, typ, t, alg, bus, wrong in rows:
    if wrong != "0":
        sys.exit(f"size {size}: {wrong} wrong")
    width = 2 if typ == "bf16" else 4
    if int(size) != int(count) * width or float(t) <= 0:
        sys.exit(f"size {size} count {count} type {typ} time {t}")
    want = float(alg) * 2 * (n - 1) / n
    if abs(float(bus) - want) > 0.0015 + 1e-3 * want:
        sys.exit(f"size {size}: busbw {bus}, want algbw * 2(n-1)/n = {want:.3f}")
PY
}

for np in 2 4; do
    for dtype in fp32 bf16; do
        if out=$(mpi $np "$DPTRAIN" bench allreduce --min 8 --max 4M --dtype $dtype --warmup 2 --iters 5 2>&1); then
            if msg=$(check_table "$out" $np 20 2>&1); then
                pass "$np ranks $dtype: 20 sizes 8 B-4 MiB verified exactly; $(grep 'average busbw' <<<"$out")"
            else
                fail "$np ranks $dtype: $msg"
                echo "$out" | tail -25
            fi
        else
            fail "$np ranks $dtype: exit non-zero"
            echo "$out" | tail -10
        fi
    done
done
# Odd byte counts round up to whole elements; one size when min = max.
out=$(mpi 3 "$DPTRAIN" bench allreduce --min 1000001 --max 1000001 --dtype fp32 --iters 2 2>&1) &&
    msg=$(check_table "$out" 3 1 2>&1) && grep -qE '^ +1000004 +250001 ' <<<"$out" &&
    pass "3 ranks, 1000001 B -> 250001 floats" || fail "odd size: ${msg:-} $(tail -5 <<<"$out")"

expect_once "a corrupted element on rank 1 is caught" "wrong elements" mpi 2 "$DPTRAIN" bench allreduce --min 1K \
    --max 4K --iters 2 --test-corrupt-rank 1
expect_once "bf16: a corrupted element on rank 0 is caught" "wrong elements" mpi 2 "$DPTRAIN" bench allreduce \
    --min 1K --max 1K --dtype bf16 --iters 2 --test-corrupt-rank 0
info=$("$DPTRAIN" info 2>&1)
if grep -q "CUDA back end : not built" <<<"$info"; then
    expect_once "--backend nccl without NCCL" "built without the CUDA back end and NCCL" \
        mpi 2 "$DPTRAIN" bench allreduce --backend nccl
elif ! grep -q '^  GPU 0 ' <<<"$info"; then
    expect_once "--backend nccl without a GPU" "device buffers, but no GPU can be used" \
        mpi 2 "$DPTRAIN" bench allreduce --backend nccl
fi
expect_once "a bad size" "--max '12Q'" mpi 2 "$DPTRAIN" bench allreduce --max 12Q
expect_once "min above max" "is larger than --max" mpi 2 "$DPTRAIN" bench allreduce --min 1M --max 1K
expect_once "a bad dtype" "use fp32 or bf16" mpi 2 "$DPTRAIN" bench allreduce --dtype fp16
finish
