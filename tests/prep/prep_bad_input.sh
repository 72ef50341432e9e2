# Bad input to the importers: each case must exit non-zero with a message naming the file (and
# the labels line), and leave neither the output file nor its temporary behind.
source "$(dirname "$0")/../mpi/lib.sh"
W="$TESTRUNS/prep_bad"
rm -rf "$W" && mkdir -p "$W"
OUT="$W/out.h5"
"$PREP_TOOL" make-tree "$W/good" && "$PREP_TOOL" make-flat "$W/flat" "$W/val.csv" names &&
    "$PREP_TOOL" make-flat "$W/flat_i" "$W/ints.txt" ints && "$PREP_TOOL" make-cifar "$W/cifar" 20 ||
    { fail "generating inputs"; finish; exit 1; }
"$DPTRAIN" prep imagenet "$W/good" -o "$W/train.h5" --size 48 >/dev/null 2>&1 || fail "converting the good tree"

# fails WHAT NEEDLE ARGS...: `dptrain ARGS` fails, prints NEEDLE, and leaves no output.
fails() {
    local what=$1 needle=$2
    shift 2
    rm -f "$OUT"
    expect_fail "$what" "$needle" "$DPTRAIN" "$@"
    local left
    left=$(ls "$OUT"* 2>/dev/null)
    if [ -n "$left" ]; then fail "$what: left $left behind"; rm -f "$OUT"*; fi
}
imagenet() { fails "$1" "$2" prep imagenet "${@:3}" -o "$OUT" --size 48; }
tree() { rm -rf "$W/$1" && cp -r "$W/good" "$W/$1"; }

# Truncated JPEG: an error naming it; --skip-bad skips and counts it.
tree trunc
f="$W/trunc/n02/n02_3.JPEG"
head -c $(($(stat -c %s "$f") / 2)) "$f" >"$f.tmp" && mv "$f.tmp" "$f"
imagenet "truncated JPEG" "$f: corrupt or truncated JPEG" "$W/trunc"
imagenet "truncated JPEG, hint" "(--skip-bad skips unreadable images)" "$W/trunc"
if out=$("$DPTRAIN" prep imagenet "$W/trunc" -o "$OUT" --size 48 --skip-bad 2>&1) &&
    grep -qF "9 images (3, 48, 48)" <<<"$out" && grep -qF "skipped 1 unreadable: $f" <<<"$out" &&
    grep -qF "warning: skipped $f" <<<"$out"; then
    pass "--skip-bad: 9 images, the truncated one named"
else
    fail "--skip-bad: $out"
fi
rm -f "$OUT"
if out=$("$DPTRAIN" prep imagenet "$W/trunc" -o "$OUT" --size 48 --jpeg --skip-bad 2>&1) &&
    grep -qF "9 images as JPEG" <<<"$out"; then pass "--skip-bad in JPEG mode"; else fail "--skip-bad --jpeg: $out"; fi

# Not an image, and an image of another format under a JPEG name.
tree nonimg
echo "just text" >"$W/nonimg/n01/notes.JPEG"
imagenet "text file" "$W/nonimg/n01/notes.JPEG: not a JPEG image" "$W/nonimg"
tree png
printf '\x89PNG\r\n\x1a\n0000000000000000' >"$W/png/n03/n03_0.JPEG"
imagenet "PNG under a JPEG name" "n03_0.JPEG: not a JPEG image (no start-of-image marker) (it is a PNG file)" "$W/png"
tree empty_file
: >"$W/empty_file/n01/n01_0.jpg"
imagenet "empty file" "$W/empty_file/n01/n01_0.jpg: empty file" "$W/empty_file"

# Folders.
tree emptyclass
mkdir "$W/emptyclass/n04"
imagenet "empty class folder" "$W/emptyclass/n04: class folder has no images" "$W/emptyclass"
mkdir -p "$W/none"
imagenet "no classes" "$W/none: no classes" "$W/none"
imagenet "flat folder without --labels" "$W/flat: no class folders, only 10 JPEG files" "$W/flat"
imagenet "missing folder" "$W/missing: cannot open folder" "$W/missing"

# Channels: by default grey and CMYK are converted; --strict-channels refuses them.
imagenet "--strict-channels, grey" "$W/good/n02/n02_7.JPEG: has 1 colour component (grey-scale), and --strict-channels accepts only 3" \
    "$W/good" --strict-channels
"$PREP_TOOL" make-tree "$W/cmyk" --only n03
imagenet "--strict-channels, CMYK" "$W/cmyk/n03/n03_6.JPEG: has 4 colour components (CMYK)" "$W/cmyk" --strict-channels --skip-bad

# --classes: not HDF5, damaged HDF5, no class list, a folder not in the list.
echo "not hdf5" >"$W/text.h5"
imagenet "--classes not HDF5" "$W/text.h5: not an HDF5 file" "$W/good" --classes "$W/text.h5"
head -c 2000 "$W/train.h5" >"$W/cut.h5"
imagenet "--classes damaged HDF5" "$W/cut.h5:" "$W/good" --classes "$W/cut.h5"
"$MAKE_BAD_H5" noimages "$W/nonames.h5"
imagenet "--classes without class_names" "$W/nonames.h5: has no class_names attribute" "$W/good" --classes "$W/nonames.h5"
imagenet "--classes missing file" "$W/nothere.h5: cannot open" "$W/good" --classes "$W/nothere.h5"
tree extra
mkdir "$W/extra/n09" && cp "$W/good/n01/n01_9.jpg" "$W/extra/n09/"
imagenet "val class not in --classes" "$W/extra/n09: class 'n09' is not one of the 3 classes of $W/train.h5" \
    "$W/extra" --classes "$W/train.h5"

# Labels files that do not match the folder.
L="$W/labels.txt"
grep -v n02_3 "$W/val.csv" >"$L"
imagenet "image without a label" "$L: no label for $W/flat/yn02_3.JPEG (1 of the 10 images" "$W/flat" --labels "$L"
{ cat "$W/val.csv"; echo "ghost.JPEG,n01"; } >"$L"
imagenet "label for a missing file" "$L:13: no image 'ghost.JPEG' in $W/flat" "$W/flat" --labels "$L"
{ echo "zn01_9,n01"; cat "$W/val.csv"; } >"$L"
imagenet "header not on line 1" "$L:2: no image 'ImageId' in" "$W/flat" --labels "$L"
sed 's/^\(yn02_1[^,]*\),n02/\1,n07/' "$W/val.csv" >"$L"
grep -q n07 "$L" || fail "test setup: no n07 line in $L"
imagenet "unknown class" "unknown class 'n07' (not one of the 3 classes of $W/train.h5)" "$W/flat" --labels "$L" --classes "$W/train.h5"
sed 's/^\(zn01_10.JPEG\)\t0$/\1\t7/' "$W/ints.txt" >"$L"
line=$(grep -n "^zn01_10.JPEG" "$L" | cut -d: -f1)
imagenet "class index out of range" "$L:$line: class index 7 is out of range [0, 2]" "$W/flat_i" --labels "$L" --classes "$W/train.h5"
sed 's/^\(zn01_10.JPEG\)\t0$/\1\t1x/' "$W/ints.txt" >"$L"
imagenet "bad class index" "$L:$line: bad class index '1x'" "$W/flat_i" --labels "$L" --classes "$W/train.h5"
{ cat "$W/ints.txt"; echo "zn01_9 0"; } >"$L"
imagenet "labelled twice" "$L:11: zn01_9.jpg is labelled twice (also on line" "$W/flat_i" --labels "$L" --classes "$W/train.h5"
{ cat "$W/ints.txt"; echo "zn01_9.jpg"; } >"$L"
imagenet "no class on the line" "$L:11: no class after 'zn01_9.jpg'" "$W/flat_i" --labels "$L" --classes "$W/train.h5"
imagenet "missing labels file" "$W/nolabels.txt: cannot open labels file" "$W/flat" --labels "$W/nolabels.txt"

# Output and command line.
expect_fail "output folder missing" "$W/nodir/x.h5: cannot create" "$DPTRAIN" prep imagenet "$W/good" -o "$W/nodir/x.h5" --size 48
expect_fail "no --size" "missing --size N" "$DPTRAIN" prep imagenet "$W/good" -o "$OUT"
expect_fail "bad --size" "--size 'big': expected an integer in [1, 8192]" "$DPTRAIN" prep imagenet "$W/good" -o "$OUT" --size big
expect_fail "--quality without --jpeg" "--quality applies only with --jpeg" "$DPTRAIN" prep imagenet "$W/good" -o "$OUT" --size 48 --quality 80
expect_fail "unknown format" "unknown format 'png'" "$DPTRAIN" prep png x -o "$OUT"

# CIFAR-10: a batch of the wrong size, a missing batch, a label out of range.
cp -r "$W/cifar" "$W/cifar_short"
head -c $((20 * 3073 - 1)) "$W/cifar/data_batch_2.bin" >"$W/cifar_short/data_batch_2.bin"
fails "CIFAR batch of the wrong size" \
    "$W/cifar_short/data_batch_2.bin: 61459 bytes is not a whole number of 3073-byte records (expected 30730000 bytes" \
    prep cifar10 "$W/cifar_short" -o "$OUT"
cp -r "$W/cifar" "$W/cifar_missing" && rm "$W/cifar_missing/data_batch_5.bin"
fails "CIFAR batch missing" "$W/cifar_missing/data_batch_5.bin: No such file or directory" prep cifar10 "$W/cifar_missing" -o "$OUT"
cp -r "$W/cifar" "$W/cifar_label" && printf '\x0c' | dd of="$W/cifar_label/test_batch.bin" bs=1 seek=3073 conv=notrunc status=none
fails "CIFAR label out of range" "$W/cifar_label/test_batch.bin: record 1 has label 12" prep cifar10 "$W/cifar_label" -o "$OUT" --test
finish
