#!/bin/bash
# BigGAN training step on the CPU, dptrain against its reference implementation in PyTorch,
# side by side in one run: BigGAN-PyTorch's own BigGAN.py (a checkout you give: BIGGAN_PYTORCH=DIR;
# it is not shipped here) driven by benchmarks/peer/torch_biggan_step.py. Same architecture as
# configs/fashion-gan32.ini (32 px, ch 16, dim_z 64 hierarchical, shared 64, attention at 16),
# 3-channel images (BigGAN-PyTorch's G always makes 3), 10 classes, batch 64, 2 D steps + 1 G step
# with ortho and EMA, one process with THREADS threads each. dptrain reads a synthetic split of
# random images; the peer draws random tensors. Medians over STEPS steps after 2 warm-up steps.
#   BIGGAN_PYTORCH=~/BigGAN-PyTorch benchmarks/gan_step_cpu.sh [THREADS] [STEPS]
source "$(dirname "$0")/common.sh"
THREADS=${1:-2}
STEPS=${2:-25}
: "${BIGGAN_PYTORCH:?set BIGGAN_PYTORCH to a checkout of https://github.com/ajbrock/BigGAN-PyTorch}"
SPLIT="$RUNS/random3.h5"
"$PYTHON" - "$SPLIT" <<'PY'
import sys, h5py, numpy as np
r = np.random.default_rng(0)
with h5py.File(sys.argv[1], "w") as f:
    f["images"] = r.integers(0, 256, (2048, 3, 32, 32), dtype=np.uint8)
    f["labels"] = r.integers(0, 10, 2048).astype(np.int32)
    f.attrs["num_classes"] = 10
    f.attrs["mean"] = np.full(3, 0.5)
    f.attrs["std"] = np.full(3, 0.29)
PY
echo "== $(date -u +%F) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $THREADS threads per process"
out=$(OMP_NUM_THREADS=$THREADS "$DPTRAIN" train "$ROOT/configs/fashion-gan32.ini" --out "$RUNS/dpt" \
    --set data.train="$SPLIT" --set gan.fid_weights= --set gan.sample_every=0 --set train.max_steps=$((STEPS + 2)) \
    --set train.threads="$THREADS" --set train.log_every=10 --set train.progress=lines 2>&1)
grep -E "^  G |^steps:" <<<"$out"
dpt=$(sed -n 's/^steps: .*median \([0-9.]*\) s per step.*/\1/p' <<<"$out")
peer_out=$("$PYTHON" "$ROOT/benchmarks/peer/torch_biggan_step.py" --repo "$BIGGAN_PYTORCH" --ch 16 --dim-z 64 \
    --shared-dim 64 --hier --attn 16 --batch 64 --d-steps 2 --steps $((STEPS + 2)) --threads "$THREADS" 2>&1 | grep '^PEER')
echo "$peer_out"
peer=$(sed -n 's/^PEER median \([0-9.]*\) s per step.*/\1/p' <<<"$peer_out")
printf "RESULT  dptrain %.3f s/step  BigGAN-PyTorch %.3f s/step  ratio (PyTorch / dptrain) %.2fx\n" "$dpt" "$peer" \
    "$(awk -v a="$peer" -v b="$dpt" 'BEGIN { print a / b }')"
rm -rf "$RUNS"
