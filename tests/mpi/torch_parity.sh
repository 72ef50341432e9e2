# A whole ResNet-9 training step against PyTorch (tests/torch_parity.py).
source "$(dirname "$0")/lib.sh"
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c "import torch, h5py" 2>/dev/null; then
    fail "$PYTHON cannot import torch and h5py (tests/run installs python3-torch and python3-h5py)"
    finish
    exit 1
fi
mkdir -p "$TESTRUNS/parity"
exec "$PYTHON" "$SRC/tests/torch_parity.py" "$TESTRUNS/parity" "$TESTDATA/fashion-train.h5" \
    "$TESTDATA/fashion-test.h5" -- "$DPTRAIN"
