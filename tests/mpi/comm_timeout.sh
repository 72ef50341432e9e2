# Stall and dead-rank detection in the comm layer (stall_check, tests/tools/stall_check.c). A rank
# that stops (SIGSTOP) or computes past comm.timeout_s before a collective makes the job exit
# non-zero within a bound, with one error line naming it, and leaves no process behind; a rank
# that is merely slow, or any wait with the timeout off, completes. Also every collective's result
# (with 4 KiB pieces too) and the latency of the polled allreduce against a blocking one.
source "$(dirname "$0")/lib.sh"
# A stall case normally ends in ~4 s; a regression that hangs is cut off early enough that every
# case still runs within the test's 180 s.
export DPT_TEST_TIMEOUT=20
# Measured on 2 cores: a stall with a 2 s timeout ends the job in 3.4-3.6 s (timeout, 1 s of
# grace for replies, MPI_Abort). The bound leaves room for a loaded CI machine.
BOUND=15
TAG="comm_timeout-$$"
CASE=0

# run NP ARGS...: stall_check on NP ranks; sets OUT, RC, SECS and LEFT (processes of this run
# still alive afterwards, with their state; T = stopped). They are killed in any case, by pid.
run() {
    local np=$1 t0 pids=""
    shift
    CASE=$((CASE + 1))
    local tag="$TAG-$CASE"
    t0=$(date +%s.%N)
    OUT=$(mpi "$np" "$STALL_CHECK" "$@" --tag "$tag" 2>&1)
    RC=$?
    SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    # mpirun has returned; its ranks may take a moment to be reaped.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(pgrep -f -- "--tag $tag\$" || true)
        [ -z "$pids" ] && break
        sleep 0.2
    done
    LEFT=""
    for p in $pids; do
        LEFT="$LEFT $p:$(ps -o stat= -p "$p" 2>/dev/null | tr -d ' ')"
        kill -KILL "$p" 2>/dev/null || true
    done
}

# expect_stall WHAT NEEDLE...: the last run exited non-zero (not by the test's timeout) within
# BOUND seconds, printed every NEEDLE, exactly one error line, and left no process behind.
expect_stall() {
    local what=$1 n needle
    shift
    n=$(count_lines "$OUT" "dptrain: error:")
    if [ $RC -eq 0 ]; then
        fail "$what: exit 0 after $SECS s"
        echo "$OUT" | tail -5
        return
    fi
    if [ $RC -eq 124 ] || [ $RC -eq 137 ]; then
        fail "$what: hung (killed after $SECS s)"
        return
    fi
    for needle in "$@"; do
        if ! grep -qF -- "$needle" <<<"$OUT"; then
            fail "$what: exit $RC but no '$needle' in the output:"
            echo "$OUT" | tail -8
            return
        fi
    done
    if [ "$n" != 1 ]; then
        fail "$what: $n error lines (want exactly one)"
        grep -F "error" <<<"$OUT"
    elif [ -n "$LEFT" ]; then
        fail "$what: processes left behind (pid:state):$LEFT"
    elif awk -v s="$SECS" -v b="$BOUND" 'BEGIN { exit !(s > b) }'; then
        fail "$what: took $SECS s (bound $BOUND s)"
    else
        pass "$what: exit $RC after $SECS s: $(grep -F -m1 "dptrain: error:" <<<"$OUT")"
    fi
}

# expect_ok WHAT MIN_SECS: the last run completed every step, exit 0, after at least MIN_SECS.
expect_ok() {
    local what=$1 min=$2
    if [ $RC -ne 0 ]; then
        fail "$what: exit $RC after $SECS s"
        echo "$OUT" | tail -8
    elif ! grep -q "steps completed.* 0 failures" <<<"$OUT"; then
        fail "$what: no completion line"
        echo "$OUT" | tail -5
    elif grep -qF "dptrain: error:" <<<"$OUT"; then
        fail "$what: exit 0 but an error line (false alarm)"
    elif [ -n "$LEFT" ]; then
        fail "$what: processes left behind (pid:state):$LEFT"
    elif awk -v s="$SECS" -v m="$min" 'BEGIN { exit !(s < m) }'; then
        fail "$what: done in $SECS s, before the slow rank could have arrived ($min s)"
    else
        pass "$what: exit 0 after $SECS s"
    fi
}

# (a) A stopped rank in a plain allreduce.
run 3 allreduce --timeout 2 --stop --rank 1
expect_stall "allreduce, rank 1 stopped, timeout 2 s" "rank 1 (host" "has not arrived" "in allreduce at step 3"

# Rank 0 stopped: the lowest live rank that timed out (1) reports.
run 3 allreduce --timeout 2 --stop --rank 0
expect_stall "allreduce, rank 0 stopped" "[rank 1 " "rank 0 (host" "has not arrived"

# (b) Inside the bucketed gradient allreduce, and inside a group allreduce.
run 3 grad --timeout 2 --stop --rank 1
expect_stall "gradient buckets, rank 1 stopped midway through backward" "in gradient bucket 0 at step 3" \
    "rank 1 (host" "has not arrived"
run 4 group --timeout 2 --stop --rank 1
expect_stall "group allreduce, rank 1 stopped" "in group allreduce (ranks 0-1) at step 3" "rank 1 (host" \
    "has not arrived"
# Rank 3 stops: ranks 0 and 1 go on to the world allreduce and find rank 2 behind in its group's.
run 4 group --timeout 2 --stop --rank 3
expect_stall "group allreduce, rank 3 stopped, rank 2 behind" "in allreduce at step 3" \
    "is behind: it waits in group allreduce (ranks 2-3)" "rank 3 (host" "has not arrived"

# (c) Slow but within the timeout: no false alarm.
run 3 allreduce --timeout 3 --sleep 1 --rank 1
expect_ok "allreduce, rank 1 computes 1 s, timeout 3 s" 1
run 3 grad --timeout 3 --sleep 1 --rank 2
expect_ok "gradient buckets, rank 2 computes 1 s, timeout 3 s" 1

# (d) Alive but computing past the timeout and the grace period for replies (1 s): it answers no
# query, so it is named as not arrived.
run 3 allreduce --timeout 2 --sleep 5 --rank 1
expect_stall "allreduce, rank 1 computes 5 s, timeout 2 s" "rank 1 (host" "has not arrived"

# Computing past the timeout but arriving within the grace period (2 s with a 4 s timeout): it
# answers, and is named as late.
run 3 allreduce --timeout 4 --sleep 5 --rank 1
expect_stall "allreduce, rank 1 computes 5 s, timeout 4 s" "rank 1 (host" "arrived only" "past the deadline"

# (e) No timeout: the other ranks wait for as long as it takes.
run 3 grad --timeout 0 --sleep 2 --rank 1
expect_ok "gradient buckets, rank 1 computes 2 s, no timeout" 2
run 3 allreduce --sleep 2 --rank 2
expect_ok "allreduce, rank 2 computes 2 s, timeout never set" 2

# (f) Results of every collective, with the normal pieces and with 4 KiB pieces.
for tool in "$STALL_CHECK" "$STALL_CHECK_PIECES"; do
    if out=$(mpi 3 "$tool" check --timeout 10 2>&1); then
        pass "$(basename "$tool"): $(grep -F "stall_check:" <<<"$out" | sed "s/^stall_check: //")"
    else
        fail "$(basename "$tool") check:"
        echo "$out" | tail -8
    fi
done

# Latency of the polled allreduce against a blocking MPI_Allreduce (2 ranks, 2 doubles).
if out=$(mpi 2 "$STALL_CHECK" latency --steps 2000 --timeout 10 2>&1); then
    pass "$(grep -F "stall_check:" <<<"$out")"
else
    fail "latency:"
    echo "$out" | tail -8
fi

finish
