# End to end: 2 ranks, one epoch of the real Fashion-MNIST with the default recipe's network,
# reaching >= 85% test top-1; the run directory holds what README promises; the saved weights
# evaluate to the same accuracy.
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=800
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/e2e"
rm -rf "$D"
data=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5")
if ! out=$(mpi 2 "$DPTRAIN" train "$CFG" --out "$D" "${data[@]}" --set train.epochs=1 \
    --set train.target_accuracy=0.85 --set train.progress=lines 2>&1); then
    fail "training run failed"
    echo "$out" | tail -20
    finish
    exit 1
fi
echo "$out" | tail -6
top1=$(summary_value "$D" final_top1)
if awk -v a="$top1" 'BEGIN { exit !(a >= 0.85) }'; then pass "1 epoch on 2 ranks: test top-1 $top1 >= 0.85"; else fail "test top-1 $top1 < 0.85"; fi
if grep -q "time to accuracy" <<<"$out" && [ "$(summary_value "$D" reached)" = true ]; then
    pass "target reached and time to accuracy reported"
else
    fail "no time to accuracy"
fi
for f in config.ini log.txt metrics.jsonl dawnbench.tsv weights.h5 logs/rank_0.txt logs/rank_1.txt; do
    if [ -s "$D/$f" ]; then pass "run directory has $f"; else fail "run directory lacks $f"; fi
done
if head -1 "$D/dawnbench.tsv" | grep -qP '^epoch\thours\ttop1Accuracy\ttop5Accuracy$' &&
   sed -n 2p "$D/dawnbench.tsv" | grep -qP '^1\t[0-9.]+\t[0-9]{2}\.[0-9]{2}\t[0-9]{2,3}\.[0-9]{2}$'; then
    pass "dawnbench.tsv: $(sed -n 2p "$D/dawnbench.tsv" | tr '\t' ' ')"
else
    fail "dawnbench.tsv format"
    cat "$D/dawnbench.tsv"
fi
# The resolved config is a valid config, and the weights evaluate to the run's final accuracy.
if ev=$(mpi 2 "$DPTRAIN" eval "$D/config.ini" --weights "$D/weights.h5" 2>&1); then
    want=$(awk -v a="$top1" 'BEGIN { printf "top-1 %.2f%%", 100 * a }')
    if grep -qF "$want" <<<"$ev"; then pass "eval of the saved weights: $want"; else fail "eval gives '$(grep top-1 <<<"$ev")', run ended with $want"; fi
else
    fail "eval failed: $(tail -3 <<<"$ev")"
fi
finish
