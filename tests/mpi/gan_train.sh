# BigGAN training end to end on Fashion-MNIST (model.name = biggan):
#  - a 2-rank run of a small 32 px BigGAN: FID with a Fashion-MNIST ResNet-9's features (trained
#    here first) drops well below its value at initialisation; sample grids and the
#    interpolation sheet exist, decode, and have the grid's size;
#  - 2 ranks equal 1 rank for a few training steps (same global batch, the same latents drawn by
#    global sample index, cross-replica BatchNorm in G), up to summation order;
#  - exact resume: a SIGTERM at step 7 checkpoints and stops; --resume auto finishes the run
#    with G, D, G_ema and both Adam states equal bit for bit to the uninterrupted run's; with the
#    newest checkpoint truncated, --resume auto falls back to the one before and ends equal too;
#  - dptrain sample: the grid of the chosen classes with truncation, the interpolation sheet
#    (--per-class columns),
#    and its errors (class out of range, missing file, a classifier checkpoint);
#  - bad configurations fail on every rank with one message.
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=240
D="$TESTRUNS/gan"
PY=/usr/bin/python3 # Debian's python3-pil (launch/install-deps --tests)
rm -rf "$D"
mkdir -p "$D"
data=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set train.progress=lines --set train.threads=1)
gan=("${data[@]}" --set gan.ch=8 --set gan.dim_z=32 --set gan.shared_dim=16 --set gan.attention=16
    --set train.batch_size=32 --set gan.sample_every=0 --set gan.fid_weights= --set train.log_every=5)
CFG="$SRC/configs/fashion-gan32.ini"

# PNG WIDTH HEIGHT: decodes with PIL to that size, and is not one flat colour.
png_ok() {
    "$PY" - "$@" <<'EOF'
import sys
from PIL import Image
im = Image.open(sys.argv[1]); im.load()
w, h = int(sys.argv[2]), int(sys.argv[3])
lo, hi = im.convert("L").getextrema()
ok = im.size == (w, h) and hi > lo
print(f"{sys.argv[1]}: {im.size[0]}x{im.size[1]} {im.mode}, values {lo}..{hi}")
sys.exit(0 if ok else 1)
EOF
}

# The feature network: a small ResNet-9 on Fashion-MNIST (about 85% top-1).
if out=$(mpi 2 "$DPTRAIN" train "$SRC/configs/fashion-resnet9.ini" --out "$D/cls" "${data[@]}" --set model.width=8 \
    --set data.train_subset=16384 --set train.epochs=2 --set train.batch_size=256 --set train.target_accuracy=0 \
    --set train.tensorboard=false 2>&1); then
    pass "feature network: $(grep -m1 'final test top-1' <<<"$out" | sed 's/.*final/final/')"
else
    fail "feature network training: $(echo "$out" | tail -5)"
fi

# 1. Training with FID: 2 ranks, 200 steps.
if out=$(mpi 2 "$DPTRAIN" train "$CFG" --out "$D/run" "${gan[@]}" --set gan.fid_weights="$D/cls/weights.h5" \
    --set gan.fid_samples=1000 --set gan.fid_real_samples=2000 --set gan.fid_every=100 --set gan.sample_every=100 \
    --set gan.ema_start=150 --set gan.ema_decay=0.9 --set train.max_steps=200 --set train.log_every=50 2>&1); then
    fids=$(grep -o '"fid": [0-9.e+-]*' "$D/run/metrics.jsonl" | awk '{print $2}' | tr '\n' ' ')
    if awk -v f="$fids" 'BEGIN { n = split(f, a, " "); exit !(n == 3 && a[3] < 0.5 * a[1]) }'; then
        pass "FID-fashion-resnet9 at steps 0, 100, 200: $fids(the last below half the first)"
    else
        fail "FID did not drop below half its value at step 0: $fids"
    fi
    grep -q "FID-fashion-resnet9" <<<"$out" && pass "the metric carries the feature network's name" ||
        fail "no FID-fashion-resnet9 in the log"
    # 10 classes x 8 at 32 px with 2 px padding: 274 x 342; the sheet: 10 columns.
    for s in 00000000 00000100 00000200; do
        if r=$(png_ok "$D/run/samples/step_$s.png" 274 342); then pass "grid: $r"; else fail "grid $s: $r"; fi
    done
    if r=$(png_ok "$D/run/samples/interp_step_00000200.png" 342 342); then pass "interpolation sheet: $r"; else
        fail "interpolation sheet: $r"; fi
else
    fail "2-rank GAN training: $(echo "$out" | tail -8)"
fi

# 2. 2 ranks vs 1 rank, 4 steps, no metrics.
for np in 1 2; do
    mpi $np "$DPTRAIN" train "$CFG" --out "$D/np$np" "${gan[@]}" --set train.max_steps=4 --set gan.ema_start=0 \
        --set gan.ema_decay=0.5 >"$D/np$np.log" 2>&1 || fail "$np-rank run: $(tail -5 "$D/np$np.log")"
done
for grp in G/params D/params G_ema/params G/buffers; do
    if r=$("$H5COMPARE" "$D/np2/checkpoints/step_00000004.h5" "$D/np1/checkpoints/step_00000004.h5" --rtol 1e-3 \
        --group "$grp"); then
        pass "2 ranks = 1 rank after 4 steps, $grp: $(tail -1 <<<"$r" | sed 's/.*: //')"
    else
        fail "2 ranks != 1 rank, $grp: $r"
    fi
done
# The comparison can tell runs apart: step 4 against a run that stopped earlier differs.
mpi 1 "$DPTRAIN" train "$CFG" --out "$D/np1short" "${gan[@]}" --set train.max_steps=2 >/dev/null 2>&1
if "$H5COMPARE" "$D/np2/checkpoints/step_00000004.h5" "$D/np1short/checkpoints/step_00000002.h5" --rtol 1e-3 \
    --group G/params >/dev/null 2>&1; then
    fail "the comparison does not see 2 steps of difference"
else
    pass "the comparison sees 2 fewer steps as different"
fi

# 3. Exact resume after SIGTERM at step 7 (checkpoints every 5 steps as well).
res=("${gan[@]}" --set train.max_steps=12 --set train.checkpoint_every=5 --set gan.ema_start=3)
mpi 2 "$DPTRAIN" train "$CFG" --out "$D/full" "${res[@]}" >"$D/full.log" 2>&1 || fail "uninterrupted run: $(tail -5 "$D/full.log")"
out=$(DPT_FAULT=term@7 mpi 2 "$DPTRAIN" train "$CFG" --out "$D/part" "${res[@]}" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -f "$D/part/checkpoints/step_00000007.h5" ] && [ ! -f "$D/part/checkpoints/step_00000012.h5" ]; then
    pass "SIGTERM at step 7: checkpoint step_00000007.h5, exit 0"
else
    fail "SIGTERM at step 7: exit $rc, $(ls "$D/part/checkpoints" 2>&1 | tr '\n' ' ')"
fi
out=$(mpi 2 "$DPTRAIN" train "$CFG" --out "$D/part" "${res[@]}" --resume auto 2>&1) ||
    fail "resume: $(echo "$out" | tail -5)"
grep -q "resumed from .*step_00000007.h5: step 7" <<<"$out" && pass "resumed at step 7" || fail "no resume line"
for grp in G/params G/buffers D/params D/buffers G_ema/params G_ema/buffers optimizer/G/m optimizer/G/v \
    optimizer/D/m optimizer/D/v; do
    if r=$("$H5COMPARE" "$D/part/checkpoints/step_00000012.h5" "$D/full/checkpoints/step_00000012.h5" --exact \
        --group "$grp"); then
        pass "resumed = uninterrupted, $grp: $(tail -1 <<<"$r" | sed 's/.*tensors, //')"
    else
        fail "resume differs in $grp: $r"
    fi
done
expect_once "a fresh run over old checkpoints" "--resume auto" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/part" "${res[@]}"
# A truncated newest checkpoint: --resume auto falls back to step 10 with a warning and redoes
# steps 11 and 12 exactly.
truncate -s 2000 "$D/part/checkpoints/step_00000012.h5"
out=$(mpi 2 "$DPTRAIN" train "$CFG" --out "$D/part" "${res[@]}" --resume auto 2>&1) ||
    fail "resume past a truncated checkpoint: $(echo "$out" | tail -5)"
if grep -q "step_00000012.h5.*falling back to the previous checkpoint" <<<"$out" &&
    grep -q "resumed from .*step_00000010.h5: step 10" <<<"$out"; then
    pass "a truncated newest checkpoint: $(grep -m1 -o 'falling back.*' <<<"$out"), resumed at step 10"
else
    fail "no fallback past the truncated checkpoint: $(grep -E 'warning|error|resumed' <<<"$out")"
fi
for grp in G/params D/params G_ema/params optimizer/D/v; do
    if r=$("$H5COMPARE" "$D/part/checkpoints/step_00000012.h5" "$D/full/checkpoints/step_00000012.h5" --exact \
        --group "$grp"); then
        pass "after the fallback, resumed = uninterrupted, $grp"
    else
        fail "after the fallback, $grp differs: $r"
    fi
done

# 4. dptrain sample.
CK="$D/full/checkpoints/step_00000012.h5"
smp=("${gan[@]}")
if out=$("$DPTRAIN" sample "$CFG" --checkpoint "$CK" -o "$D/s1.png" --classes 0,7 --per-class 4 --truncation 0.5 \
    "${smp[@]}" 2>&1) && r=$(png_ok "$D/s1.png" 138 70); then
    pass "sample --classes 0,7 --per-class 4 --truncation 0.5: $r"
else
    fail "sample: $out $r"
fi
if out=$("$DPTRAIN" sample "$CFG" --checkpoint "$CK" -o "$D/s2.png" --interp --classes 3 "${smp[@]}" 2>&1) &&
    r=$(png_ok "$D/s2.png" 274 36); then
    pass "sample --interp: $r"
else
    fail "sample --interp: $out $r"
fi
"$DPTRAIN" sample "$CFG" --checkpoint "$CK" -o "$D/s3.png" --classes 0,7 --per-class 4 --truncation 0.5 "${smp[@]}" \
    >/dev/null 2>&1
cmp -s "$D/s1.png" "$D/s3.png" && pass "sample is deterministic" || fail "two identical sample calls differ"
"$DPTRAIN" sample "$CFG" --checkpoint "$CK" -o "$D/s4.png" --classes 0,7 --per-class 4 "${smp[@]}" >/dev/null 2>&1
cmp -s "$D/s1.png" "$D/s4.png" && fail "truncation changes nothing" || pass "truncation changes the samples"
expect_fail "sample: class out of range" "class 12 is out of range" \
    "$DPTRAIN" sample "$CFG" --checkpoint "$CK" -o "$D/x.png" --classes 1,12 "${smp[@]}"
expect_fail "sample: missing checkpoint" "$D/nothing.h5" \
    "$DPTRAIN" sample "$CFG" --checkpoint "$D/nothing.h5" -o "$D/x.png" "${smp[@]}"
expect_fail "sample: a classifier's weights" "not a dptrain GAN checkpoint" \
    "$DPTRAIN" sample "$CFG" --checkpoint "$D/cls/weights.h5" -o "$D/x.png" "${smp[@]}"
expect_fail "sample: another model's checkpoint" "the model needs" \
    "$DPTRAIN" sample "$CFG" --checkpoint "$CK" -o "$D/x.png" "${smp[@]}" --set gan.ch=16
expect_once "sample under mpirun: non-zero exit, one message, no hang" "$D/nothing.h5" \
    mpi 2 "$DPTRAIN" sample "$CFG" --checkpoint "$D/nothing.h5" -o "$D/x.png" "${smp[@]}"
[ ! -e "$D/x.png" ] && pass "no PNG left behind by the failures" || fail "a failed sample wrote $D/x.png"

# 5. Bad configurations: every rank exits non-zero, one message.
expect_once "train.max_steps unset" "train.max_steps must give" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad1" "${gan[@]}" --set train.max_steps=0
expect_once "gan.ch not a multiple of 8" "gan.ch = 12" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad2" "${gan[@]}" --set gan.ch=12
expect_once "gan.dim_z against the hierarchical latent" "gan.dim_z = 30" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad3" "${gan[@]}" --set gan.dim_z=30
expect_once "a missing feature network" "$D/none/weights.h5" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad4" "${gan[@]}" --set gan.fid_weights="$D/none/weights.h5"
expect_once "odd global batch" "not divisible by the 2 ranks" \
    mpi 2 "$DPTRAIN" train "$CFG" --out "$D/bad5" "${gan[@]}" --set train.batch_size=33
expect_fail "eval of a GAN config" "dptrain sample" "$DPTRAIN" eval "$CFG" --weights "$CK" "${smp[@]}"
finish
