# launch/dptrain-mpirun: the command it builds (placement, binding, oversubscription only when
# asked, exported variables, the shared-memory transport, refusals), real 2- and 4-rank runs through it with the banner
# checked against what the ranks see, and multi-node layouts on one host (DPT_TEST_NODE_OF_RANK)
# with local ranks and threads per rank derived from them; threads from SLURM_CPUS_PER_TASK.
source "$(dirname "$0")/lib.sh"
export DPT_TEST_TIMEOUT=200
W="$SRC/launch/dptrain-mpirun"
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/launch"
rm -rf "$D"
export DPTRAIN MPIRUN=$MPIEXEC
unset OMP_NUM_THREADS DPT_GPUS_PER_HOST
cores=$(nproc --all)
short=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set data.train_subset=512 --set data.test_subset=200 --set model.width=8 --set train.max_steps=2
    --set train.batch_size=64 --set train.save_weights=false --set train.progress=lines)

# expect_cmd DESCRIPTION PATTERN [NOT-PATTERN] -- WRAPPER-ARGS: a dry run prints a command that
# matches the extended regex PATTERN (and not NOT-PATTERN).
expect_cmd() {
    local what=$1 want=$2 not=$3
    shift 4
    local out
    if ! out=$("$W" --dry-run "$@" 2>&1); then
        fail "$what: dry run failed: $out"
        return
    fi
    local cmd
    cmd=$(grep '^+ ' <<<"$out")
    if ! grep -qE -- "$want" <<<"$cmd"; then
        fail "$what: command lacks /$want/: $cmd"
    elif [ -n "$not" ] && grep -qE -- "$not" <<<"$cmd"; then
        fail "$what: command has /$not/: $cmd"
    else
        pass "$what: $cmd"
    fi
}

half=$((cores / 2 > 0 ? cores / 2 : 1))
expect_cmd "2 ranks: bound, $half core(s) each, no oversubscription" \
    "-np 2 .*--map-by ppr:2:node:PE=$half --bind-to core" "oversubscribe" -- -np 2 train x
expect_cmd "4 ranks with --oversubscribe on $cores cores: unbound, 1 thread each" \
    "-np 4 .*--oversubscribe --bind-to none .*-x OMP_NUM_THREADS" "" -- -np 4 --oversubscribe train x
expect_cmd "--bind none" "--bind-to none" "map-by" -- -np 2 --bind none train x
expect_cmd "two hosts: ranks per host from the host list" "-np 2 --host a:1,b:1 .*--map-by ppr:1:node:PE=$cores " "" \
    -- -np 2 --host a:1,b:1 train x
printf 'a slots=1\n# comment\n\nb slots=1\n' >"$TESTRUNS/hostfile"
expect_cmd "hostfile: 2 hosts" "--hostfile .*ppr:1:node:PE=$cores " "" -- -np 2 --hostfile "$TESTRUNS/hostfile" train x
expect_cmd "default without GPUs: one rank per socket" "-np [1-9]" "oversubscribe" -- train x
DPT_GPUS_PER_HOST=2 expect_cmd "default with 2 GPUs per host: 2 ranks" "-np 2 .*ppr:2:node" "" -- train x
NCCL_DEBUG=WARN OMP_PROC_BIND=close expect_cmd "NCCL_* and OMP_* exported to the ranks" \
    "-x NCCL_DEBUG .*-x OMP_PROC_BIND .*-x PATH" "DPT_GPUS" -- -np 2 train x
expect_cmd "--threads 1 exports OMP_NUM_THREADS" "-x OMP_NUM_THREADS" "" -- -np 2 --threads 1 train x
expect_cmd "shared-memory single copy off by default" "btl_vader_single_copy_mechanism none" "" -- -np 2 train x
expect_cmd "--cma on" "-np 2" "single_copy" -- -np 2 --cma on train x
expect_cmd "extra -x and --mca" "-x FOO=1 --mca btl self,vader" "" -- -np 2 -x FOO=1 --mca btl self,vader train x
if [ "$(id -u)" = 0 ]; then expect_cmd "root: --allow-run-as-root" "--allow-run-as-root" "" -- -np 2 train x; fi

over=$((cores * 2))
expect_fail "$over ranks on $cores cores without --oversubscribe" "add --oversubscribe" "$W" -np $over train x
expect_fail "--bind core with more ranks than cores" "needs a core of its own" "$W" -np $over --oversubscribe \
    --bind core train x
expect_fail "-np 0" "is not a positive number" "$W" -np 0 train x
expect_fail "unknown option" "unknown option --frobnicate" "$W" --frobnicate train x
expect_fail "no dptrain arguments" "no dptrain arguments" "$W" -np 2
expect_fail "missing binary" "no dptrain binary" "$W" --binary /nonexistent -np 2 train x

# A real run: the wrapper's binding reaches the ranks (each bound to its own cores, threads from
# the binding) and the banner says so.
run() { timeout --kill-after=10 "$DPT_TEST_TIMEOUT" "$W" "$@"; }
if out=$(run -np 2 train "$CFG" --out "$D/two" "${short[@]}" 2>&1); then
    pass "2 ranks through the wrapper"
    grep -q "ranks      2 on 1 node(s), launched by mpirun" <<<"$out" && pass "banner: 2 ranks, 1 node, mpirun" ||
        fail "banner lacks the ranks line: $(grep ranks <<<"$out")"
    if [ "$cores" -ge 2 ]; then
        c0=$(grep -E '^  rank 0 ' <<<"$out" | sed -E 's/.*cores ([0-9,-]*[0-9]),.*/\1/')
        c1=$(grep -E '^  rank 1 ' <<<"$out" | sed -E 's/.*cores ([0-9,-]*[0-9]),.*/\1/')
        [ -n "$c0" ] && [ -n "$c1" ] && [ "$c0" != "$c1" ] && pass "ranks bound to different cores ($c0 / $c1)" ||
            fail "binding not seen by the ranks: rank 0 '$c0', rank 1 '$c1'"
        grep -q "threads    $half per rank on rank 0 (cores bound to this rank" <<<"$out" &&
            pass "threads from the binding ($half per rank)" || fail "threads: $(grep 'threads  ' <<<"$out")"
    fi
    grep -q '^+ .*-np 2' <<<"$out" && pass "the command is printed" || fail "no command line printed"
else
    fail "2 ranks through the wrapper: $(tail -5 <<<"$out")"
fi
if out=$(run -np 4 --oversubscribe train "$CFG" --out "$D/four" "${short[@]}" 2>&1); then
    pass "4 ranks through the wrapper with --oversubscribe"
    grep -q "ranks      4 on 1 node(s)" <<<"$out" && grep -q "threads    1 per rank on rank 0 (OMP_NUM_THREADS)" <<<"$out" &&
        pass "banner: 4 ranks, 1 thread each" || fail "banner: $(grep -E 'ranks  |threads  ' <<<"$out")"
else
    fail "4 ranks with --oversubscribe: $(tail -5 <<<"$out")"
fi

# Multi-node layouts on one host: round-robin placement over 2 made-up nodes. Local ranks,
# ranks per node and the threads each rank derives (cores / ranks on its node, so no
# OMP_NUM_THREADS here) follow the layout.
# raw NP VAR ARGS...: plain mpirun, the variable VAR exported, dptrain train ARGS.
raw() {
    local np=$1 var=$2 extra=()
    shift 2
    [ "$(id -u)" = 0 ] && extra+=(--allow-run-as-root)
    timeout --kill-after=10 "$DPT_TEST_TIMEOUT" "$MPIEXEC" "${extra[@]}" -np "$np" --oversubscribe --bind-to none \
        --mca btl_vader_single_copy_mechanism none -x "$var" "$DPTRAIN" train "$CFG" "$@"
}
raw4() { raw 4 DPT_TEST_NODE_OF_RANK "$@"; }
if out=$(DPT_TEST_NODE_OF_RANK=0,1,0,1 raw4 --out "$D/fake" "${short[@]}" 2>&1); then
    grep -q "ranks      4 on 2 node(s)" <<<"$out" && grep -q "hosts      .*: ranks 0,2; .*: ranks 1,3" <<<"$out" &&
        pass "fake 2-node round-robin layout in the banner" || fail "layout: $(grep -E 'ranks  |hosts  ' <<<"$out")"
    ok=1
    for r in 0 1 2 3; do
        grep -qE "^  rank $r +[^,]+, local rank $((r / 2)) of 2," <<<"$out" || ok=0
    done
    [ $ok = 1 ] && pass "local ranks 0,0,1,1 of 2" || fail "local ranks: $(grep -E '^  rank [0-9]' <<<"$out")"
    want=$((cores / 2 > 0 ? cores / 2 : 1))
    grep -q "threads    $want per rank on rank 0 ($cores cores / 2 ranks on this node)" <<<"$out" &&
        pass "threads per rank from the node's ranks ($want)" || fail "threads: $(grep 'threads  ' <<<"$out")"
    grep -qE "this rank  3 on .*: node 1, local rank 1 of 2" "$D/fake/logs/rank_3.txt" 2>/dev/null &&
        pass "rank 3's own log has its place" || fail "rank 3's log lacks its place line"
else
    fail "fake 2-node run: $(tail -5 <<<"$out")"
fi
# Under srun --cpus-per-task without binding, SLURM_CPUS_PER_TASK gives the threads per rank.
if out=$(SLURM_CPUS_PER_TASK=1 raw 2 SLURM_CPUS_PER_TASK --out "$D/slurm_cpus" "${short[@]}" 2>&1); then
    grep -q "threads    1 per rank on rank 0 (SLURM_CPUS_PER_TASK)" <<<"$out" &&
        pass "threads from SLURM_CPUS_PER_TASK" || fail "threads: $(grep 'threads  ' <<<"$out")"
else
    fail "SLURM_CPUS_PER_TASK run: $(tail -5 <<<"$out")"
fi
DPT_TEST_NODE_OF_RANK=0,1 expect_fail "a bad DPT_TEST_NODE_OF_RANK is refused" "DPT_TEST_NODE_OF_RANK" \
    raw4 --out "$D/bad" "${short[@]}"
finish
