# BigGAN across ranks: one D step and one G step (hinge losses, G through D's input gradient,
# gradients summed over ranks, Adam) on 2 and 4 ranks with cross-replica BatchNorm in G equal
# the same steps in one process on the whole batch (tests/tools/gan_step_check.c); per-rank
# BatchNorm is detected as different.
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=120
run() {
    local np=$1
    shift
    mpi "$np" "$GAN_STEP_CHECK" "$@" 2>&1
}
for cfg in "2 8" "4 8" "4 16"; do
    set -- $cfg
    if out=$(run "$1" "$2"); then
        pass "$(grep 'gan_step_check: [0-9]* ranks' <<<"$out")"
    else
        fail "np $1 batch $2: $(grep 'gan_step_check:' <<<"$out" || echo "$out" | tail -5)"
    fi
done
if out=$(run 2 8 --local); then
    fail "per-rank BatchNorm in G not detected: $(grep 'ranks' <<<"$out")"
elif grep -q "DIFFERENT" <<<"$out"; then
    pass "per-rank BatchNorm detected: $(grep 'gan_step_check: [0-9]* ranks' <<<"$out")"
else
    fail "the --local run failed otherwise: $(echo "$out" | tail -5)"
fi
finish
