# Fixture: converts the real Fashion-MNIST (Debian's dataset-fashion-mnist) with dptrain prep.
source "$(dirname "$0")/lib.sh"
mkdir -p "$TESTDATA"
if [ ! -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
    fail "Fashion-MNIST not found under $FASHION (tests/run installs dataset-fashion-mnist)"
    finish
    exit 1
fi
for split in train t10k; do
    name=$([ $split = train ] && echo train || echo test)
    if out=$("$DPTRAIN" prep idx "$FASHION/$split-images-idx3-ubyte.gz" "$FASHION/$split-labels-idx1-ubyte.gz" \
        -o "$TESTDATA/fashion-$name.h5" 2>&1); then
        pass "$out"
    else
        fail "prep $split: $out"
    fi
done
finish
