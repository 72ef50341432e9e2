# What a run leaves in its directory, read back by the tools that consume it, and batch-size
# phases. A 2-rank run with train.batch_size = 64,1:128,2:256 and a constant, linearly scaled
# lr: every step of epoch k uses that epoch's batch and lr = 0.1 * batch / 256. Then:
# dawnbench.tsv has its header and one row per epoch; dawnbench.json parses and has the fields
# of DAWNBench's entry format; mllog.txt passes the MLPerf compliance checker (also for a LARS
# run); TensorBoard's own reader returns the scalars metrics.jsonl holds.
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=300
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/outputs"
rm -rf "$D"
PY=${TEST_PYTHON:-/usr/bin/python3}
common=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set data.train_subset=1280 --set data.test_subset=300 --set model.width=8 --set train.epochs=3
    --set train.log_every=1 --set train.progress=lines --set train.save_weights=false)

if ! out=$(mpi 2 "$DPTRAIN" train "$CFG" --out "$D/phases" "${common[@]}" --set train.batch_size=64,1:128,2:256 \
    --set optim.lr=0.1 --set schedule.name=constant --set schedule.scale_lr=true 2>&1); then
    fail "phase run failed"
    echo "$out" | tail -10
    finish
    exit 1
fi
pass "2-rank run with batch phases 64,1:128,2:256"
grep -q "epoch 2: global batch 128 (64 per rank), peak lr 0.05" <<<"$out" && grep -q "epoch 3: global batch 256 (128 per rank), peak lr 0.1" <<<"$out" \
    && pass "the log announces each batch phase with its lr" || fail "no phase-change lines in the log"
# Epoch 1: 1280/64 = 20 steps, epoch 2: 10, epoch 3: 5.
if msg=$(/usr/bin/python3 - "$D/phases/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"type": "train"' in l]
want = {1: (64, 20), 2: (128, 10), 3: (256, 5)}
seen = {}
for r in rows:
    e = int(-(-r["epoch"] // 1))  # the epoch a step ends in (1-based)
    b, _ = want[e]
    if r["batch"] != b or abs(r["lr"] - 0.1 * b / 256) > 1e-9:
        sys.exit(f"step {r['step']} (epoch {r['epoch']}): batch {r['batch']} lr {r['lr']}, want {b} and {0.1 * b / 256}")
    seen[e] = seen.get(e, 0) + 1
if seen != {e: n for e, (b, n) in want.items()}:
    sys.exit(f"steps per epoch {seen}, want 20, 10, 5")
print(f"{len(rows)} steps: batch and lr follow the phases at epochs 2 and 3")
PY
); then pass "$msg"; else fail "$msg"; fi

# DAWNBench: header, one row per epoch, hours increasing.
tsv="$D/phases/dawnbench.tsv"
if [ "$(head -1 "$tsv")" = "$(printf 'epoch\thours\ttop1Accuracy\ttop5Accuracy')" ] && [ "$(wc -l <"$tsv")" = 4 ] &&
    awk -F'\t' 'NR > 1 { if ($1 != NR - 1 || $2 <= prev || $3 < 0 || $3 > 100) bad = 1; prev = $2 } END { exit bad }' "$tsv"; then
    pass "dawnbench.tsv: DAWNBench header and one row per epoch"
else
    fail "dawnbench.tsv malformed:"
    cat "$tsv"
fi
if msg=$(/usr/bin/python3 - "$D/phases/dawnbench.json" "$tsv" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("version", "author", "authorEmail", "framework", "model", "hardware", "timestamp", "misc"):
    if k not in j: sys.exit(f"dawnbench.json lacks {k}")
last = open(sys.argv[2]).read().split("\n")[-2].split("\t")
if abs(j["misc"]["final_top1"] - float(last[2])) > 0.01: sys.exit("final_top1 differs from the TSV's last row")
print(f"dawnbench.json: DAWNBench fields, final top-1 {j['misc']['final_top1']} as in the TSV")
PY
); then pass "$msg"; else fail "$msg"; fi

# MLPerf compliance checker (PyPI mlperf-logging; tests/run installs it).
check_mllog() {
    local what=$1 log=$2 out
    if ! "$PY" -c "import mlperf_logging" 2>/dev/null; then
        echo "SKIP: $what: mlperf-logging not installed for $PY"
        return
    fi
    if out=$(cd "$D" && "$PY" -m mlperf_logging.compliance_checker --usage training --ruleset 4.0.0 \
        --log_output "$D/compliance.log" "$log" 2>&1) && grep -q SUCCESS <<<"$out"; then
        pass "$what: MLPerf compliance checker (training 4.0.0) accepts mllog.txt"
    else
        fail "$what: compliance checker rejects mllog.txt:"
        echo "$out" | tail -15
    fi
}
check_mllog "SGD run" "$D/phases/mllog.txt"
grep -q '"key": "eval_accuracy", "value": 0\.[0-9]*, "metadata": {"epoch_num": 3}' "$D/phases/mllog.txt" \
    && pass "mllog: eval_accuracy of epoch 3" || fail "mllog: no eval_accuracy for epoch 3"
# The checker must be able to fail: a log without run_stop is rejected.
if "$PY" -c "import mlperf_logging" 2>/dev/null; then
    grep -v '"run_stop"' "$D/phases/mllog.txt" >"$D/broken_mllog.txt"
    if (cd "$D" && "$PY" -m mlperf_logging.compliance_checker --usage training --ruleset 4.0.0 \
        --log_output "$D/compliance_broken.log" "$D/broken_mllog.txt") >/dev/null 2>&1; then
        fail "the compliance checker accepted a log without run_stop"
    else
        pass "the compliance checker rejects a log without run_stop"
    fi
fi

if out=$(mpi 1 "$DPTRAIN" train "$CFG" --out "$D/lars" "${common[@]}" --set train.epochs=1 --set train.batch_size=128 \
    --set optim.name=lars --set optim.lr=2 --set schedule.name=poly --set schedule.scale_lr=false \
    --set schedule.warmup_epochs=0.3 2>&1); then
    grep -q "optimizer  LARS, trust coefficient 0.001" <<<"$out" && pass "LARS run: banner" || fail "LARS banner missing"
    check_mllog "LARS run" "$D/lars/mllog.txt"
    grep -q '"key": "opt_name", "value": "lars"' "$D/lars/mllog.txt" && grep -q '"key": "lars_opt_learning_rate_decay_poly_power", "value": 2' "$D/lars/mllog.txt" \
        && pass "mllog: LARS keys" || fail "mllog: LARS keys missing"
else
    fail "LARS run failed"
    echo "$out" | tail -5
fi

# TensorBoard's reader against metrics.jsonl: counts of every tag and the last evaluation.
if "$PY" -c "import tensorboard" 2>/dev/null; then
    ntrain=$(grep -c '"type": "train"' "$D/phases/metrics.jsonl")
    last=$(grep '"type": "eval"' "$D/phases/metrics.jsonl" | tail -1)
    step=$(sed -E 's/.*"step": ([0-9]+).*/\1/' <<<"$last")
    top1=$(sed -E 's/.*"top1": ([0-9.]+).*/\1/' <<<"$last")
    if out=$("$PY" "$SRC/tests/py/check_tensorboard.py" "$D/phases" --expect train/loss="$ntrain" --expect train/lr="$ntrain" \
        --expect train/img_per_s="$ntrain" --expect eval/top1=3 --expect eval/top5=3 --equal "eval/top1:$step=$top1" 2>&1); then
        pass "TensorBoard reads $ntrain train points per tag and eval/top1 = $top1 at step $step"
    else
        fail "TensorBoard events: $out"
    fi
else
    echo "SKIP: tensorboard not installed for $PY"
fi
finish
