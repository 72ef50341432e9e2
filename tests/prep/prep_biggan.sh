# A BigGAN-PyTorch layout file (imgs, labels, no attributes) reads back through dataset_open
# with equal pixels and labels, held in memory and read on demand.
source "$(dirname "$0")/../mpi/lib.sh"
W="$TESTRUNS/prep_biggan"
rm -rf "$W" && mkdir -p "$W"
if "$PREP_TOOL" make-biggan "$W/I32.h5" && out=$("$PREP_TOOL" check-biggan "$W/I32.h5" 2>&1); then
    pass "BigGAN layout: $out"
else
    fail "BigGAN layout: $out"
fi
finish
