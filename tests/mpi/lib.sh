# Shared by the integration tests. Environment from CTest: DPTRAIN, H5COMPARE, MAKE_BAD_H5,
# TESTDATA, TESTRUNS, SRC, MPIEXEC.
set -u
PASSED=0
FAILED=0
: "${MPIEXEC:=mpirun}"
mkdir -p "$TESTRUNS"

# mpirun with what a container and a small machine need: root allowed, more ranks than cores
# allowed, one thread per rank, shared-memory transport without ptrace-based single copy.
mpi() {
    local np=$1
    shift
    local extra=()
    if [ "$(id -u)" = 0 ]; then extra+=(--allow-run-as-root); fi
    timeout --kill-after=10 "${DPT_TEST_TIMEOUT:-300}" "$MPIEXEC" "${extra[@]}" -np "$np" --oversubscribe \
        --bind-to none --mca btl_vader_single_copy_mechanism none -x OMP_NUM_THREADS=1 "$@"
}

pass() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAILED: $*"; }

# expect_fail DESCRIPTION SUBSTRING COMMAND...: the command must exit non-zero (not by timeout)
# and print SUBSTRING. expect_once: the same, and "dptrain: error:" appears exactly once (one
# message for the whole job, not one per rank).
expect_fail() { check_failure any "$@"; }
expect_once() { check_failure once "$@"; }
check_failure() {
    local mode=$1 what=$2 needle=$3
    shift 3
    local out rc n
    out=$("$@" 2>&1)
    rc=$?
    n=$(count_lines "$out" "dptrain: error:")
    if [ $rc -eq 0 ]; then
        fail "$what: exit 0"
        echo "$out" | tail -5
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        fail "$what: timed out (hang)"
    elif ! grep -qF -- "$needle" <<<"$out"; then
        fail "$what: exit $rc but no '$needle' in the output:"
        echo "$out" | tail -8
    elif [ "$mode" = once ] && [ "$n" != 1 ]; then
        fail "$what: $n error lines (want exactly one)"
        echo "$out" | grep -F "error"
    else
        pass "$what (exit $rc): $(grep -F -m1 -- "$needle" <<<"$out")"
    fi
}

# The number of lines of OUTPUT that contain SUBSTRING.
count_lines() { grep -cF -- "$2" <<<"$1" || true; }

finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
}

# A value from the summary line of a run's metrics.jsonl.
summary_value() {
    grep '"type": "summary"' "$1/metrics.jsonl" | sed -E "s/.*\"$2\": ([-0-9.e+]+|true|false).*/\\1/"
}

FASHION=/usr/share/datasets/fashion-mnist
