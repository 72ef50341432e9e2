# Command-line and config errors: a message naming the problem and a non-zero exit.
source "$(dirname "$0")/lib.sh"
CFG="$SRC/configs/fashion-resnet9.ini"
OUT="$TESTRUNS/cli"
expect_fail "no command" "usage" "$DPTRAIN"
expect_fail "unknown command" "unknown command 'fly'" "$DPTRAIN" fly
expect_fail "train without --out" "missing --out" "$DPTRAIN" train "$CFG"
expect_fail "train without config" "missing CONFIG" "$DPTRAIN" train --out "$OUT"
expect_fail "missing config file" "cannot open config file /nonexistent.ini" "$DPTRAIN" train /nonexistent.ini --out "$OUT"
expect_fail "unknown option" "unknown option '--epochs'" "$DPTRAIN" train "$CFG" --out "$OUT" --epochs 3
expect_fail "unknown key" "unknown key 'lrr' in section [optim]" "$DPTRAIN" train "$CFG" --out "$OUT" --set optim.lrr=0.1
expect_fail "negative lr" "optim.lr = '-0.1': out of range, allowed (0, 1000]" "$DPTRAIN" train "$CFG" --out "$OUT" --set optim.lr=-0.1
expect_fail "bad --set" "expected section.key=value" "$DPTRAIN" train "$CFG" --out "$OUT" --set lr
bad_cfg="$TESTRUNS/bad.ini"
printf '[train]\nepochs = 2\n[model]\nwidth = -3\n' >"$bad_cfg"
expect_fail "bad value in file names file:line" "bad.ini:4: model.width = '-3'" "$DPTRAIN" train "$bad_cfg" --out "$OUT"
expect_fail "prep usage" "usage: dptrain prep idx" "$DPTRAIN" prep idx onlyone
expect_fail "prep missing file" "/nonexistent-images.gz: cannot open" "$DPTRAIN" prep idx /nonexistent-images.gz /nonexistent-labels.gz -o "$TESTRUNS/x.h5"
expect_fail "eval without weights" "missing --weights" "$DPTRAIN" eval "$CFG"
# Every shipped config parses and validates: the run gets as far as opening its data.
for c in "$SRC"/configs/*.ini; do
    expect_fail "configs/$(basename "$c") validates" "/nonexistent/train.h5" \
        "$DPTRAIN" train "$c" --out "$OUT" --set data.train=/nonexistent/train.h5
done
if "$DPTRAIN" info | grep -q "oneDNN"; then pass "info names the CPU kernels"; else fail "info"; fi
if "$DPTRAIN" info --config-keys | grep -q '`optim.lr`'; then pass "info --config-keys"; else fail "config keys"; fi
finish
