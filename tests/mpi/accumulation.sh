# Gradient accumulation (train.accum_steps) and the step timeline (train.profile). A model
# without BatchNorm, 20 steps of global batch 32: 1 rank in one step, 1 rank in 4 micro-steps
# of 8 and 2 ranks in 2 micro-steps of 8 end with the same weights (relative error <= 1e-5);
# the 4-micro-step run on 2 ranks issues exactly as many collectives as the plain one (no
# allreduce on the accumulation micro-steps). An accumulation count that does not divide the
# per-rank batch is refused. The timeline has a row per step, and the allreduce time it shows
# (in flight) exceeds the exposed communication: part of it was hidden behind backward.
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=200
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/accum"
rm -rf "$D"
common=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set data.train_subset=640 --set data.test_subset=500 --set model.norm=none --set model.width=8
    --set train.batch_size=32 --set train.epochs=1 --set train.max_steps=20 --set optim.lr=0.02
    --set schedule.name=constant --set schedule.scale_lr=false --set comm.bucket_mb=0.02 --set train.progress=lines)

run() { # NAME RANKS ACCUM [extra --set ...]
    local name=$1 np=$2 k=$3
    shift 3
    if out=$(mpi "$np" "$DPTRAIN" train "$CFG" --out "$D/$name" "${common[@]}" --set train.accum_steps="$k" "$@" 2>&1); then
        pass "$name: $np rank(s), $k micro-step(s): $(grep -m1 '  batch ' <<<"$out" | sed 's/^ *//')"
    else
        fail "$name failed"
        echo "$out" | tail -8
    fi
}
run plain1 1 1
run micro4 1 4
run micro2x2 2 2
run plain2 2 1 --set train.profile=true
run micro4x2 2 4
for name in micro4 micro2x2; do
    if out=$("$H5COMPARE" "$D/$name/weights.h5" "$D/plain1/weights.h5" --rtol 1e-5); then
        pass "$name vs one step of 32: $out"
    else
        fail "$name vs one step of 32: $out"
    fi
done
a=$(summary_value "$D/plain2" collectives)
b=$(summary_value "$D/micro4x2" collectives)
[ -n "$a" ] && [ "$a" = "$b" ] && pass "2 ranks: $b collectives with 4 micro-steps, as many as with 1" ||
    fail "collectives: $a with 1 micro-step, $b with 4 (an allreduce per micro-step?)"
grep -q '"key": "gradient_accumulation_steps", "value": 4' "$D/micro4x2/mllog.txt" &&
    pass "mllog: gradient_accumulation_steps 4" || fail "mllog lacks gradient_accumulation_steps 4"
expect_once "accum_steps not dividing the per-rank batch" "train.accum_steps = 3 does not divide the per-rank batch 16" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad" "${common[@]}" --set train.accum_steps=3

T="$D/plain2/timeline.tsv"
if msg=$(/usr/bin/python3 - "$T" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
if len(rows) != 20 or [int(r["step"]) for r in rows] != list(range(1, 21)):
    sys.exit(f"{len(rows)} rows, want steps 1..20")
for r in rows:
    parts = sum(float(r[k]) for k in ("data_ms", "forward_ms", "backward_ms", "exposed_comm_ms", "agreement_ms", "update_ms"))
    if parts > float(r["step_ms"]) * 1.01 + 0.05:
        sys.exit(f"step {r['step']}: parts {parts:.3f} ms exceed the step {r['step_ms']} ms")
later = rows[5:]
fl = sum(float(r["allreduce_in_flight_ms"]) for r in later)
ex = sum(float(r["exposed_comm_ms"]) for r in later)
if not (fl > 0 and ex < fl):
    sys.exit(f"steps 6-20: allreduce in flight {fl:.2f} ms, exposed {ex:.2f} ms: nothing hidden")
print(f"steps 6-20: allreduce in flight {fl / 15:.2f} ms per step, exposed {ex / 15:.2f} ms ({100 * (1 - ex / fl):.0f}% hidden)")
PY
); then pass "timeline: $msg"; else fail "timeline: $msg"; fi
grep -q "hidden behind backward" "$D/plain2/log.txt" && pass "the log states the hidden share" || fail "no overlap line in log.txt"
finish
