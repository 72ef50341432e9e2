# prep imagenet on a generated tree of JPEGs (prep_tool.c lists the images and the tolerances):
# raw and JPEG storage against the synthetic content, labels and classes, the flat layout with
# a labels file, --classes for a validation split, --limit and thread-count independence.
source "$(dirname "$0")/../mpi/lib.sh"
W="$TESTRUNS/prep_imagenet"
rm -rf "$W" && mkdir -p "$W"
"$PREP_TOOL" make-tree "$W/train" || { fail "make-tree"; finish; exit 1; }

# run NAME ARGS...: dptrain prep imagenet, must succeed; its stdout goes to $W/NAME.out
run() {
    local name=$1
    shift
    if "$DPTRAIN" prep imagenet "$@" >"$W/$name.out" 2>"$W/$name.err"; then
        pass "$name: $(cat "$W/$name.out")"
    else
        fail "$name: exit $?: $(cat "$W/$name.err")"
    fi
}
check() { # check WHAT COMMAND...: a prep_tool check must pass
    local what=$1
    shift
    if out=$("$@" 2>&1); then pass "$what"; else fail "$what: $out"; fi
}
summary_has() { # summary_has NAME TEXT
    if grep -qF -- "$2" "$W/$1.out"; then pass "$1 summary says '$2'"; else fail "$1 summary lacks '$2': $(cat "$W/$1.out")"; fi
}

run raw "$W/train" -o "$W/raw.h5" --size 48 --threads 2
check "raw: pixels, labels, classes, mean/std, chunking" "$PREP_TOOL" check-raw "$W/raw.h5" 48
summary_has raw "10 images (3, 48, 48), 3 classes"
summary_has raw "converted 1 grey and 1 CMYK images to RGB, skipped 0 unreadable"
grep -q "ignored 1 entry that is not a JPEG file (first: $W/train/README.txt)" "$W/raw.err" && pass "README.txt noted as ignored" || fail "no note about README.txt: $(cat "$W/raw.err")"

# The result does not depend on the number of threads.
run raw1 "$W/train" -o "$W/raw1.h5" --size 48 --threads 1
check "1 thread == 2 threads" "$PREP_TOOL" compare "$W/raw.h5" "$W/raw1.h5"

# More images than the writer's window (8 per thread + 8): workers wait for the writer, results
# come back out of order, and the file is still identical for 1 and 2 threads, in both modes.
"$PREP_TOOL" make-bench "$W/many" 2 30 64 48
run many2 "$W/many" -o "$W/many2.h5" --size 32 --threads 2
run many1 "$W/many" -o "$W/many1.h5" --size 32 --threads 1
check "60 images: 1 thread == 2 threads" "$PREP_TOOL" compare "$W/many1.h5" "$W/many2.h5"
run manyj2 "$W/many" -o "$W/manyj2.h5" --size 32 --jpeg --threads 2
run manyj1 "$W/many" -o "$W/manyj1.h5" --size 32 --jpeg --threads 1
check "60 images, JPEG: 1 thread == 2 threads" "$PREP_TOOL" compare "$W/manyj1.h5" "$W/manyj2.h5"
f="$W/many/c001/img_00017.JPEG"
head -c $(($(stat -c %s "$f") / 2)) "$f" >"$f.cut" && mv "$f.cut" "$f"
rm -f "$W/x.h5"
expect_fail "a bad image deep in a long run stops it" "$f: corrupt or truncated JPEG" \
    "$DPTRAIN" prep imagenet "$W/many" -o "$W/x.h5" --size 32 --threads 2
[ -e "$W/x.h5" ] && fail "x.h5 left behind"

run jpeg "$W/train" -o "$W/jpeg.h5" --size 48 --jpeg --quality 95 --threads 2
check "jpeg: decoded bytes, sizes, labels, classes, mean/std" "$PREP_TOOL" check-jpeg "$W/jpeg.h5" 48
summary_has jpeg "10 images as JPEG (shorter side 48, quality 95"
# Over 1 MiB of JPEG bytes: the chunked (extendible) storage instead of the contiguous one.
run jpeg_big "$W/train" -o "$W/jpeg_big.h5" --size 1024 --jpeg --quality 100
check "jpeg over several 1 MiB chunks" "$PREP_TOOL" check-jpeg "$W/jpeg_big.h5" 1024 --chunked
# The quality reaches the encoder: quality 30 makes a smaller file with other bytes.
run jpeg30 "$W/train" -o "$W/jpeg30.h5" --size 48 --jpeg --quality 30
if [ "$(stat -c %s "$W/jpeg30.h5")" -lt "$(stat -c %s "$W/jpeg.h5")" ]; then pass "quality 30 is smaller"; else fail "quality 30 not smaller"; fi

# Flat layout: Kaggle-style CSV with names (header skipped, names without extension, boxes after
# the class) gives the same split as the folders; integer labels need --classes.
"$PREP_TOOL" make-flat "$W/flat" "$W/val.csv" names
run flat "$W/flat" -o "$W/flat.h5" --size 48 --labels "$W/val.csv"
check "flat + names == folders" "$PREP_TOOL" compare "$W/raw.h5" "$W/flat.h5"
"$PREP_TOOL" make-flat "$W/flat2" "$W/val_ints.txt" ints
run flat_ints "$W/flat2" -o "$W/flat_ints.h5" --size 48 --labels "$W/val_ints.txt" --classes "$W/raw.h5"
check "flat + integer labels + --classes == folders" "$PREP_TOOL" compare "$W/raw.h5" "$W/flat_ints.h5"
rm -f "$W/x.h5"
expect_fail "integer labels without --classes" "val_ints.txt:1: class '0' is a number" \
    "$DPTRAIN" prep imagenet "$W/flat2" -o "$W/x.h5" --size 48 --labels "$W/val_ints.txt"

# --classes: a validation tree with only some classes keeps the training indices.
"$PREP_TOOL" make-tree "$W/val" --only n02,n03
run val "$W/val" -o "$W/val.h5" --size 48 --classes "$W/raw.h5"
check "val with --classes: labels are the train indices" "$PREP_TOOL" check-raw "$W/val.h5" 48 --only n02,n03
run val_own "$W/val" -o "$W/val_own.h5" --size 48
summary_has val_own "6 images (3, 48, 48), 2 classes"

# --limit: the first N images in (class, name) order.
run limit "$W/train" -o "$W/limit.h5" --size 48 --limit 3
summary_has limit "3 images (3, 48, 48), 3 classes"
check "limit: the first 3 images of the full split" "$PREP_TOOL" compare "$W/limit.h5" "$W/raw.h5" --first 3
finish
