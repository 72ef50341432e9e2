# prep cifar10 on generated batch files (20 records each instead of 10000): pixels and labels
# read back exactly, class names from batches.meta.txt or the standard ones, --test, --limit.
source "$(dirname "$0")/../mpi/lib.sh"
W="$TESTRUNS/prep_cifar10"
rm -rf "$W" && mkdir -p "$W"
"$PREP_TOOL" make-cifar "$W/plain" 20 && "$PREP_TOOL" make-cifar "$W/meta" 20 --meta || { fail "make-cifar"; finish; exit 1; }
conv() { # conv NAME DIR ARGS...
    local name=$1 dir=$2
    shift 2
    if out=$("$DPTRAIN" prep cifar10 "$dir" -o "$W/$name.h5" "$@" 2>&1); then pass "$name: $out"; else fail "$name: $out"; fi
}
check() {
    local what=$1
    shift
    if out=$("$@" 2>&1); then pass "$what"; else fail "$what: $out"; fi
}
conv train "$W/plain"
check "train: 100 records exact, standard names" "$PREP_TOOL" check-cifar "$W/train.h5" "$W/plain"
conv test "$W/plain" --test
check "test: 20 records exact" "$PREP_TOOL" check-cifar "$W/test.h5" "$W/plain" --test
conv meta "$W/meta"
check "names from batches.meta.txt" "$PREP_TOOL" check-cifar "$W/meta.h5" "$W/meta" --meta
conv limit "$W/plain" --limit 33
check "--limit 33 spans two files" "$PREP_TOOL" check-cifar "$W/limit.h5" "$W/plain" --limit 33
finish
