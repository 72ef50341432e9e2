#!/usr/bin/env bash
# Loader throughput at ImageNet scale: images/s that dptrain's loader delivers (JPEG decode, random
# resized crop, flip, normalise into batches) vs torch.utils.data.DataLoader with torchvision's
# transforms (benchmarks/peer/torchvision_loader.py), both decoding the very same JPEG bytes, on the
# same number of workers, in one run:
#   1. a synthetic ImageNet-like tree (NIMAGES JPEGs of 500x375 / 375x500, about 100 KB each),
#      generated once into BENCH_DATA (benchmarks/loader/make_synthetic_imagenet.py);
#   2. converted by `dptrain prep imagenet --size 160 --jpeg --quality 90` (JPEG bytes re-encoded
#      with the shorter side at 160 px), once;
#   3. the stored bytes written back out as a folder tree for the peer (loader/export_jpegs.py);
#   4. for each worker count and output size, `dptrain bench loader` and the peer with the same
#      batch, batches and repeats; each reports the median repeat, warm-up excluded.
# What differs, by design: dptrain holds the split's JPEG bytes in memory and decodes at a reduced
# DCT scale when the crop allows (data.decode_scaled); the peer reads files (from the page cache
# after the first pass) and PIL decodes at full size, as torchvision does.
#   benchmarks/loader_throughput.sh
# Environment (defaults): SIZES ("128 224"), WORKERS (all cores; a list such as "1 2"), BATCH (128),
# BATCHES (40 timed per repeat), REPEATS (3), NIMAGES (20000), CLASSES (100), SEED (0),
# BENCH_DATA (build/bench-data), FRESH=1 (convert and export again, e.g. after an importer change),
# RESULTS (benchmarks/results; the output is tee'd into RESULTS/<date>-cpu<cores>-loader-throughput.txt;
# RESULTS=- keeps no file), and common.sh's DPTRAIN, PYTHON, CFG (configs/imagenet-resnet50.ini).
CFG=${CFG:-$(cd "$(dirname "$0")/.." && pwd)/configs/imagenet-resnet50.ini}
source "$(dirname "$0")/common.sh"
SIZES=${SIZES:-128 224}
WORKERS=${WORKERS:-$(nproc)}
B=${BATCH:-128}
N=${BATCHES:-40}
R=${REPEATS:-3}
NIMAGES=${NIMAGES:-20000}
CLASSES=${CLASSES:-100}
SEED=${SEED:-0}
BENCH_DATA=${BENCH_DATA:-$ROOT/build/bench-data}
RESULTS=${RESULTS:-$ROOT/benchmarks/results}
LOADER=$ROOT/benchmarks/loader

[ -f "$CFG" ] || { echo "loader_throughput: no config $CFG" >&2; exit 1; }
"$PYTHON" -c "import torchvision, PIL" 2>/dev/null ||
    { echo "$PYTHON lacks torchvision/PIL: launch/install-deps --tests" >&2; exit 1; }

name=synthetic-imagenet
[ "$NIMAGES/$CLASSES/$SEED" = 20000/100/0 ] || name+="-n$NIMAGES-c$CLASSES-s$SEED"
SYN=$BENCH_DATA/$name
H5=$BENCH_DATA/$name-160q90.h5
EXP=$BENCH_DATA/$name-160q90-jpeg

# RESULT images=... seconds=... workers=... img_s=... img_s_per_worker=...: one field. images and
# seconds are totals over the timed batches of all repeats, img_s the median repeat's rate.
result_field() { sed -E "s/.*[[:space:]]$1=([-0-9.e+]+).*/\\1/"; }
# check_result WHO LINE WORKERS: the line is a RESULT line for the images and workers asked for.
check_result() {
    if ! grep -qE "^RESULT .* img_s=[0-9.]+" <<<"$2" || [ "$(result_field images <<<"$2")" != $((N * B * R)) ] ||
        [ "$(result_field workers <<<"$2")" != "$3" ]; then
        echo "loader_throughput: $1 did not report $((N * B * R)) images on $3 workers; its last line: $2" >&2
        return 1
    fi
}

machine_facts() {
    machine
    echo "lscpu: $(lscpu | sed -nE 's/^Model name: *//p' | head -1), $(nproc) cores," \
        "$(lscpu | sed -nE 's/^Thread\(s\) per core: *//p') thread(s) per core"
    echo "libturbojpeg: $(pkg-config --modversion libturbojpeg 2>/dev/null ||
        dpkg-query -W -f='${Version}' libturbojpeg0 2>/dev/null || echo unknown)"
    echo "python: $("$PYTHON" -c 'import sys, torch, torchvision, PIL, numpy
from PIL import features
print(sys.version.split()[0], "torch", torch.__version__, "torchvision", torchvision.__version__, "PIL", PIL.__version__,
      "(libjpeg-turbo", str(features.version("libjpeg_turbo")) + ")", "numpy", numpy.__version__)')"
}

prepare_data() {
    mkdir -p "$BENCH_DATA"
    if [ ! -d "$SYN" ]; then
        echo "generating $SYN ($NIMAGES images, $CLASSES classes, seed $SEED)"
        "$PYTHON" "$LOADER/make_synthetic_imagenet.py" --out "$SYN" --n "$NIMAGES" --classes "$CLASSES" --seed "$SEED" \
            --jobs "$(nproc)"
    fi
    local nsrc
    nsrc=$(find "$SYN" -name '*.JPEG' | wc -l)
    [ "$nsrc" = "$NIMAGES" ] || { echo "loader_throughput: $SYN holds $nsrc JPEGs, expected $NIMAGES (remove it)" >&2; return 1; }
    echo "source: $SYN, $nsrc JPEGs, $(du -sm "$SYN" | cut -f1) MB"

    if [ "${FRESH:-0}" = 1 ] || [ ! -f "$H5" ] || [ "$SYN" -nt "$H5" ]; then
        local tmp=${H5%.h5}.partial.h5 t0 t1
        rm -f "$tmp"
        t0=$EPOCHREALTIME
        "$DPTRAIN" prep imagenet "$SYN" -o "$tmp" --size 160 --jpeg --quality 90
        t1=$EPOCHREALTIME
        mv "$tmp" "$H5"
        awk -v n="$nsrc" -v a="$t0" -v b="$t1" \
            'BEGIN {printf "dptrain prep imagenet: %d images in %.1f s, %.0f img/s\n", n, b - a, n / (b - a)}'
    fi
    if [ "${FRESH:-0}" = 1 ] || [ ! -d "$EXP" ] || [ "$H5" -nt "$EXP" ]; then
        "$PYTHON" "$LOADER/export_jpegs.py" "$H5" "$EXP" --force
    fi
    local nexp
    nexp=$(find "$EXP" -name '*.JPEG' | wc -l)
    [ "$nexp" = "$nsrc" ] || { echo "loader_throughput: $H5 holds $nexp images, the source $nsrc" >&2; return 1; }
    echo "stored: $H5 ($(du -m "$H5" | cut -f1) MB); exported for the peer: $EXP, $(du -sm "$EXP" | cut -f1) MB"
}

main() {
    echo "\$ SIZES=\"$SIZES\" WORKERS=\"$WORKERS\" BATCH=$B BATCHES=$N REPEATS=$R NIMAGES=$NIMAGES benchmarks/loader_throughput.sh"
    machine_facts
    prepare_data
    echo "batch $B, $N timed batches per repeat after warm-up, $R repeats, each a new epoch; $(basename "$CFG");" \
        "RandomResizedCrop + flip + normalise on both sides"

    declare -A D P
    local w s line
    for w in $WORKERS; do
        for s in $SIZES; do
            echo "--- size $s, $w workers: dptrain"
            "$DPTRAIN" bench loader "$CFG" --set data.train="$H5" --set data.image_size="$s" --set data.workers="$w" \
                --set train.batch_size="$B" --batches "$N" --repeats "$R" | tee "$RUNS/dptrain-$s-$w.out"
            line=$(tail -1 "$RUNS/dptrain-$s-$w.out")
            check_result dptrain "$line" "$w"
            D[$s-$w]=$(result_field img_s <<<"$line")
            echo "--- size $s, $w workers: torchvision"
            "$PYTHON" "$ROOT/benchmarks/peer/torchvision_loader.py" "$EXP" --size "$s" --batch "$B" --workers "$w" \
                --batches "$N" --repeats "$R" --seed "$SEED" | tee "$RUNS/peer-$s-$w.out"
            line=$(tail -1 "$RUNS/peer-$s-$w.out")
            check_result torchvision "$line" "$w"
            P[$s-$w]=$(result_field img_s <<<"$line")
        done
    done

    echo
    printf "%5s %8s %15s %12s %17s %12s %8s\n" size workers "dptrain img/s" "per worker" "torchvision img/s" "per worker" ratio
    for w in $WORKERS; do
        for s in $SIZES; do
            awk -v s="$s" -v w="$w" -v d="${D[$s-$w]}" -v p="${P[$s-$w]}" \
                'BEGIN {printf "%5d %8d %15.0f %12.0f %17.0f %12.0f %7.2fx\n", s, w, d, d / w, p, p / w, d / p}'
        done
    done
    echo "(img/s: median repeat of $N batches of $B after warm-up; ratio = dptrain / torchvision;" \
        "both decode the same $(basename "$H5") JPEG bytes)"
}

out=/dev/null
if [ "$RESULTS" != - ]; then
    mkdir -p "$RESULTS"
    out=$RESULTS/$(date -u +%F)-cpu$(nproc)-loader-throughput.txt
    k=2
    while [ -e "$out" ]; do out=$RESULTS/$(date -u +%F)-cpu$(nproc)-loader-throughput-$k.txt; k=$((k + 1)); done
fi
# main in a subshell with errexit of its own (in a condition, `main || ...`, bash would ignore it).
set +e
(
    set -e
    main
) 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if [ "$out" != /dev/null ]; then
    if [ "$rc" = 0 ]; then echo "written: ${out#"$ROOT"/}"; else rm -f "$out"; fi
fi
exit "$rc"
