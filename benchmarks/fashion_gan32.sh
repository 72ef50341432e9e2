#!/bin/bash
# The 32 px BigGAN of configs/fashion-gan32.ini trained on Fashion-MNIST on 2 ranks: first its
# feature network (configs/fashion-resnet9.ini for 5 epochs, about 93% top-1), then STEPS GAN
# steps with FID-fashion-resnet9 and IS every 250 steps (5000 samples of G_ema against the 10,000
# test images). Prints the FID curve; the run directory keeps the sample grids.
#   benchmarks/fashion_gan32.sh [STEPS] [OUT]
source "$(dirname "$0")/common.sh"
STEPS=${1:-1500}
OUT=${2:-$RUNS}
mkdir -p "$OUT"
launch=("$ROOT/launch/dptrain-mpirun" -np 2)
"${launch[@]}" train "$CFG" --out "$OUT/cls" "${DATASETS[@]}" --set train.epochs=5 --set train.target_accuracy=0 \
    --set train.progress=lines >"$OUT/cls.log" 2>&1
grep "final test top-1" "$OUT/cls.log"
"${launch[@]}" train "$ROOT/configs/fashion-gan32.ini" --out "$OUT/gan" "${DATASETS[@]}" \
    --set gan.fid_weights="$OUT/cls/weights.h5" --set train.max_steps="$STEPS" >"$OUT/gan.log" 2>&1
grep -E "^  G |^steps:|^done:" "$OUT/gan.log"
echo "step	fid	is	is_std	elapsed_s"
"$PYTHON" -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["type"] == "metrics":
        print("%d\t%.3f\t%.3f\t%.3f\t%.1f" % (m["step"], m["fid"], m["is"], m["is_std"], m["elapsed_s"]))
' "$OUT/gan/metrics.jsonl"
echo "samples: $OUT/gan/samples"
