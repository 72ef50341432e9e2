# Bad input on 2 (or 3) ranks: one message, naming the file, key or index; non-zero exit on
# every rank; no hang (each run is bounded by a timeout).
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=60
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/bad"
mkdir -p "$D"
for kind in noimages badlabel floatimages shortlabels; do "$MAKE_BAD_H5" $kind "$D/$kind.h5"; done
common=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set train.epochs=1 --set train.max_steps=2 --set train.batch_size=64 --set train.progress=off)

run2() { mpi 2 "$DPTRAIN" train "$CFG" --out "$D/run" "${common[@]}" "$@"; }

expect_once "missing file" "/nonexistent/train.h5: no such file" run2 --set data.train=/nonexistent/train.h5
expect_once "HDF5 without images" "noimages.h5: no dataset 'images'" run2 --set data.train="$D/noimages.h5"
expect_once "label >= num_classes" "badlabel.h5: labels[37] = 10 is out of range: num_classes = 10" \
    run2 --set data.train="$D/badlabel.h5"
expect_once "label >= num_classes in the test split" "badlabel.h5: labels[37] = 10" \
    run2 --set data.test="$D/badlabel.h5"
expect_once "float images" "floatimages.h5: 'images' must be uint8" run2 --set data.train="$D/floatimages.h5"
expect_once "labels shorter than images" "shortlabels.h5: 'labels' has 63 entries but the images have 64" \
    run2 --set data.train="$D/shortlabels.h5"
expect_once "not HDF5" "not an HDF5 file" run2 --set data.train="$CFG"
expect_once "batch not divisible by world size" "train.batch_size = 64 is not divisible by the 3 ranks" \
    mpi 3 "$DPTRAIN" train "$CFG" --out "$D/run" "${common[@]}"
expect_once "unknown config key" "unknown key 'lrr' in section [optim]" run2 --set optim.lrr=0.1
expect_once "negative learning rate" "optim.lr = '-0.1': out of range" run2 --set optim.lr=-0.1
expect_once "batch larger than the data" "fewer than train.batch_size = 64" run2 --set data.train_subset=10
expect_once "unwritable run directory" "cannot create directory /proc/dptrain" \
    mpi 2 "$DPTRAIN" train "$CFG" --out /proc/dptrain/run "${common[@]}"

# Weights of another model are refused, naming the tensor.
if mpi 2 "$DPTRAIN" train "$CFG" --out "$D/w8" "${common[@]}" --set model.width=8 >/dev/null 2>&1; then
    expect_once "weights of another shape" "tensor 'params/prep.conv.weight' has shape (8, 1, 3, 3), the model needs (16, 1, 3, 3)" \
        mpi 2 "$DPTRAIN" eval "$CFG" --weights "$D/w8/weights.h5" --set model.width=16 --set data.train="$TESTDATA/fashion-train.h5" \
        --set data.test="$TESTDATA/fashion-test.h5"
    expect_once "weights of another model" "tensor 'params/conv1.weight' missing" \
        mpi 2 "$DPTRAIN" eval "$CFG" --weights "$D/w8/weights.h5" --set model.name=resnet18 \
        --set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
else
    fail "could not train the width-8 model for the weights checks"
fi
finish
