# The data path on JPEG splits: 2-rank training with random-resized crops and progressive
# resizing, data inspect, bench loader, and the failures: a corrupt JPEG inside a split stops
# every rank with a message naming the file and index; bad data.image_size values.
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=120
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/pipeline"
rm -rf "$D"
mkdir -p "$D"
"$MAKE_JPEG_SPLIT" "$D/train.h5" 512 4 >/dev/null
"$MAKE_JPEG_SPLIT" "$D/test.h5" 128 4 >/dev/null
"$MAKE_JPEG_SPLIT" "$D/corrupt.h5" 512 4 77 >/dev/null
common=(--set data.train="$D/train.h5" --set data.test="$D/test.h5" --set model.width=8 --set train.batch_size=64
    --set train.progress=lines --set data.random_resized_crop=true --set data.rrc_scale=0.3,1
    --set schedule.name=constant --set optim.lr=0.05 --set train.target_accuracy=0 --set data.workers=2)

# Progressive resizing across epochs; read on demand (max_memory_mb 0) on one rank, in memory on the other run.
out=$(mpi 2 "$DPTRAIN" train "$CFG" --out "$D/run" "${common[@]}" --set train.epochs=3 \
    --set data.image_size="16,1:24,2:32" --set data.max_memory_mb=0 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "epoch 2: input size 24x24" <<<"$out" && grep -q "epoch 3: input size 32x32" <<<"$out" &&
    grep -q "read on demand (pread)" <<<"$out"; then
    pass "progressive resizing 16 -> 24 -> 32 on a JPEG split read on demand"
else
    fail "progressive resizing run (exit $rc)"
    echo "$out" | tail -15
fi
top1=$(summary_value "$D/run" final_top1)
if awk -v a="$top1" 'BEGIN { exit !(a > 0.4) }'; then
    pass "the 4-class JPEG task is learnt: top-1 $top1"
else
    fail "top-1 $top1 after 3 epochs on the JPEG split (want > 0.4; chance is 0.25)"
fi

expect_fail "corrupt JPEG inside a split" "corrupt.h5: jpeg[77]" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad" "${common[@]}" --set data.train="$D/corrupt.h5" \
    --set train.epochs=1 --set data.image_size=16
expect_once "JPEG split without data.image_size" "data.image_size must be set for JPEG splits" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad" "${common[@]}"
expect_once "malformed data.image_size" "data.image_size = '16,x:24'" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad" "${common[@]}" --set data.image_size=16,x:24
expect_once "phases out of order" "phase epochs must increase" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad" "${common[@]}" --set data.image_size=16,3:24,2:32
expect_once "rrc_scale with one value" "data.rrc_scale needs two values" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad" "${common[@]}" --set data.image_size=16 --set data.rrc_scale=0.5

out=$("$DPTRAIN" data inspect "$D/train.h5" 2>&1)
if grep -q "JPEG bytes 'jpeg' + 'jpeg_offsets': 512 images, 3 channels" <<<"$out" && grep -q "classes    4 (128 to 128" <<<"$out"; then
    pass "data inspect describes the JPEG split"
else
    fail "data inspect output:"
    echo "$out"
fi
expect_fail "data inspect of a missing file" "/nonexistent.h5: no such file" "$DPTRAIN" data inspect /nonexistent.h5

out=$(mpi 1 "$DPTRAIN" bench loader "$CFG" --set data.train="$D/train.h5" --set data.image_size=24 \
    --set data.random_resized_crop=true --set train.batch_size=32 --set data.workers=2 --batches 5 --repeats 2 2>&1)
if grep -qE "^RESULT images=320 seconds=[0-9.]+ workers=2 img_s=[0-9.]+ img_s_per_worker=" <<<"$out"; then
    pass "bench loader: $(grep '^RESULT' <<<"$out")"
else
    fail "bench loader output:"
    echo "$out" | tail -5
fi
# The ImageNet classifier configs parse, validate and drive the loader (on the small JPEG split).
for cfg in "$SRC"/configs/imagenet-resnet*.ini; do
    out=$(mpi 1 "$DPTRAIN" bench loader "$cfg" --set data.train="$D/train.h5" --set train.batch_size=32 \
        --batches 2 --repeats 1 2>&1)
    if grep -q "^RESULT" <<<"$out"; then pass "$(basename "$cfg") drives the loader"; else
        fail "$(basename "$cfg"):"
        echo "$out" | tail -5
    fi
done
# BigGAN-128's config trains on a JPEG split (decoded and resized to 128 px): one step at ch 8.
rm -rf "$TESTRUNS/biggan128"
out=$(mpi 2 "$DPTRAIN" train "$SRC/configs/imagenet-biggan128.ini" --out "$TESTRUNS/biggan128" --set data.train="$D/train.h5" \
    --set gan.ch=8 --set train.batch_size=4 --set train.max_steps=1 --set gan.fid_weights= --set gan.sample_every=0 \
    --set train.threads=1 2>&1)
if grep -q "^done: 1 steps" <<<"$out" && grep -q "resolution 128, ch 8" <<<"$out"; then
    pass "imagenet-biggan128.ini (ch 8) trains a step on the JPEG split: $(grep -m1 '^  G ' <<<"$out" | sed 's/^ *//')"
else
    fail "imagenet-biggan128.ini on the JPEG split:"
    echo "$out" | tail -5
fi
finish
