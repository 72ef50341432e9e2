# Slurm: the sbatch templates of launch/slurm/ on a real one-node Slurm cluster on localhost
# (tests/slurm/cluster.sh: munged, slurmctld and slurmd as root, private configuration):
#  - srun offers the pmix plugin, and ranks started by `srun --mpi=pmix` form one MPI world of 2
#    (one banner saying "ranks 2", not two singletons);
#  - cpu.sbatch, 2 tasks: a short Fashion-MNIST run ends with ExitCode 0:0, its output file,
#    dawnbench.tsv and a test top-1 above a floor;
#  - preemption: SIGUSR1 to the batch shell (what --signal=B:USR1@120 sends before the time
#    limit) while it trains: the ranks checkpoint and stop, the job requeues itself, the same job
#    id starts again and resumes from that step (metrics.jsonl's resume line), and finishes with
#    exit 0 and every step done;
#  - gpu-node.sbatch and multi-node.sbatch (on pretend GPUs: gres/gpu without devices) are
#    accepted by Slurm and train.
# Skips (exit 77) without root or without the Slurm packages (launch/install-deps --tests).
source "$(dirname "$0")/lib.sh"
CLUSTER="$SRC/tests/slurm/cluster.sh"
CFG="$SRC/configs/fashion-resnet9.ini"
D="$TESTRUNS/slurm"

missing=()
for c in munged slurmctld slurmd slurmstepd sbatch srun scontrol squeue scancel sinfo; do
    command -v "$c" >/dev/null || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "SKIP: not installed: ${missing[*]} (launch/install-deps --tests installs slurmctld slurmd slurm-client munge)"
    exit 77
fi
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the test cluster's daemons need root"
    exit 77
fi
# Inside a job of another Slurm its variables would leak into sbatch and srun.
for v in $(compgen -v SLURM_); do unset "$v"; done

"$CLUSTER" stop "$D/cluster" >/dev/null 2>&1 # what a killed earlier run may have left
rm -rf "$D"
mkdir -p "$D/runs"
cleanup() { "$CLUSTER" stop "$D/cluster" >/dev/null 2>&1; }
trap cleanup EXIT
trap 'exit 1' INT TERM

t0=$SECONDS
if ! out=$(DPT_SLURM_GPUS=2 "$CLUSTER" start "$D/cluster" 2>&1); then
    fail "the cluster did not start:"
    echo "$out"
    finish
    exit 1
fi
SLURM_CONF=$(sed -n 's/.*export SLURM_CONF=//p' <<<"$out")
export SLURM_CONF
pass "cluster up in $((SECONDS - t0)) s: $(grep -m1 idle <<<"$out" | sed 's/; export.*//')"

if srun --mpi=list 2>&1 | grep -qw pmix; then
    pass "srun --mpi=list offers pmix ($(srun --mpi=list 2>&1 | grep -oE 'pmix_v[0-9]+' | head -1)); the templates use it"
else
    fail "srun has no pmix plugin: $(srun --mpi=list 2>&1 | tr '\n' ' ')"
fi

data=(--set data.train="$TESTDATA/fashion-train.h5" --set data.test="$TESTDATA/fashion-test.h5"
    --set model.width=8 --set train.progress=lines)
export DPTRAIN DPT_RUNS="$D/runs" DPT_ROOT="$SRC" # jobs are submitted from $D, not the repository

# submit NAME TEMPLATE [sbatch options] -- dptrain arguments: prints the job id.
submit() {
    local name=$1 template=$2
    shift 2
    local opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    (cd "$D" && DPT_RUN_NAME=$name sbatch --parsable --job-name="$name" --output="$D/%x-%j.out" "${opts[@]}" \
        "$SRC/launch/slurm/$template" "$CFG" "${data[@]}" "$@")
}
field() { scontrol show job -o "$1" 2>/dev/null | grep -oE "(^| )$2=[^ ]*" | head -1 | cut -d= -f2; }
diagnose() { # JOBID: what a failure report needs
    echo "--- scontrol show job $1"
    scontrol show job "$1" 2>&1 | sed 's/^/  /'
    echo "--- squeue"
    squeue 2>&1 | sed 's/^/  /'
    local f
    for f in "$D"/*-"$1".out; do
        [ -f "$f" ] && echo "--- last lines of $f" && tail -n 20 "$f"
    done
    for f in "$D"/cluster/log/slurmctld.log "$D"/cluster/log/slurmd.log; do
        [ -f "$f" ] && echo "--- last lines of $f" && tail -n 12 "$f"
    done
    scancel "$1" 2>/dev/null
}
# wait_done JOBID SECONDS: until the job has ended for good (requeued and pending is not ended).
wait_done() {
    local deadline=$((SECONDS + $2)) st
    while [ $SECONDS -lt $deadline ]; do
        st=$(field "$1" JobState)
        case "$st" in
        PENDING | RUNNING | REQUEUED | COMPLETING | CONFIGURING | SUSPENDED | RESIZING | SIGNALING | STAGE_OUT | "") ;;
        *) return 0 ;;
        esac
        sleep 1
    done
    echo "job $1 not done after $2 s (state ${st:-unknown})"
    diagnose "$1"
    return 1
}
# The banner of one MPI world of 2 ranks, once per start; two singletons would print two
# banners saying "ranks 1".
one_world() { # OUTPUT-FILE STARTS
    local banners worlds
    banners=$(grep -c "^dptrain .*: train$" "$1")
    worlds=$(grep -cE "^  ranks +2 on 1 node\(s\)" "$1")
    [ "$banners" = "$2" ] && [ "$worlds" = "$2" ]
}

# --- a short run to an accuracy floor --------------------------------------------------------
# 2 epochs of 16384 images, ResNet-9 width 8: 82.5% on 2000 test images in 12 s on 2 busy
# cores (measured); the floor leaves room, far above chance (10%).
FLOOR=0.75
t0=$SECONDS
if jid=$(submit accuracy cpu.sbatch --ntasks=2 --cpus-per-task=1 --time=10 -- --set data.train_subset=16384 \
    --set train.epochs=2 --set data.test_subset=2000); then
    if wait_done "$jid" 240; then
        out="$D/accuracy-$jid.out"
        run="$D/runs/accuracy-$jid"
        st=$(field "$jid" JobState) ec=$(field "$jid" ExitCode)
        if [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ]; then
            pass "cpu.sbatch job $jid: $st, ExitCode $ec, $((SECONDS - t0)) s from submission"
        else
            fail "cpu.sbatch job $jid: $st, ExitCode $ec"
            diagnose "$jid"
        fi
        if [ -s "$out" ] && grep -q "srun --mpi=pmix" "$out"; then
            pass "output file $(basename "$out"): $(grep -m1 "job $jid start" "$out" | cut -d' ' -f3-)"
        else
            fail "output file $out missing or without the template's start line"
        fi
        if one_world "$out" 1; then
            pass "one MPI world: $(grep -m1 -E '^  ranks ' "$out" | sed 's/^ *//; s/  */ /g')"
        else
            fail "not one world of 2 ranks: $(grep -E '^  ranks ' "$out" | tr '\n' ' ')"
        fi
        top1=$(summary_value "$run" final_top1 2>/dev/null)
        if [ -s "$run/dawnbench.tsv" ] && awk -v a="$top1" -v f=$FLOOR 'BEGIN { exit !(a + 0 >= f) }'; then
            pass "run directory has dawnbench.tsv; test top-1 $top1 >= $FLOOR"
        else
            fail "run directory $run: dawnbench.tsv $([ -s "$run/dawnbench.tsv" ] && echo present || echo missing), top-1 '${top1}' (floor $FLOOR)"
            tail -5 "$out"
        fi
    else
        fail "the accuracy job did not end in time"
    fi
else
    fail "sbatch cpu.sbatch failed: $jid"
fi

# --- preemption: checkpoint, requeue, resume ---------------------------------------------------
# 128 steps (8 epochs of 16); the signal comes once step 4 is logged.
t0=$SECONDS
if jid=$(submit preempt cpu.sbatch --ntasks=2 --cpus-per-task=1 --time=10 -- --set data.train_subset=2048 \
    --set train.batch_size=128 --set train.epochs=8 --set data.test_subset=1000 --set train.log_every=4); then
    out="$D/preempt-$jid.out"
    run="$D/runs/preempt-$jid"
    started=""
    deadline=$((SECONDS + 120))
    while [ $SECONDS -lt $deadline ]; do
        if grep -q '"type": "train"' "$run/metrics.jsonl" 2>/dev/null; then
            started=1
            break
        fi
        case "$(field "$jid" JobState)" in PENDING | RUNNING | CONFIGURING | "") ;; *) break ;; esac
        sleep 0.2
    done
    if [ -n "$started" ]; then
        scancel --batch --signal=USR1 "$jid"
        pass "job $jid training after $((SECONDS - t0)) s: SIGUSR1 to its batch shell (scancel --batch --signal=USR1)"
        if wait_done "$jid" 300; then
            st=$(field "$jid" JobState) ec=$(field "$jid" ExitCode) restarts=$(field "$jid" Restarts)
            if [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ] && [ "$restarts" = 1 ]; then
                pass "requeued once and finished: $st, ExitCode $ec, Restarts=$restarts, $((SECONDS - t0)) s from submission"
            else
                fail "after the signal: $st, ExitCode $ec, Restarts=$restarts"
                diagnose "$jid"
            fi
            stop_line=$(grep -m1 "SIGUSR1: stopped at step" "$out")
            n=$(sed -nE 's/.*stopped at step ([0-9]+) with checkpoint.*/\1/p' <<<"$stop_line")
            ck=$(printf '%s/checkpoints/step_%08d.h5' "$run" "${n:-0}")
            if [ -n "$n" ] && [ -f "$ck" ]; then
                pass "first start: $(cut -c1-60 <<<"$stop_line")..., $(basename "$ck") written"
            else
                fail "first start: no 'stopped at step' line or no checkpoint ('$stop_line')"
            fi
            if [ "$(grep -c "job $jid start" "$out")" = 2 ] && grep -q "job $jid start 2 " "$out" &&
                grep -q "resumed from .*step_$(printf %08d "${n:-0}").h5: step $n," "$out"; then
                pass "second start of job $jid: $(grep -m1 'resumed from' "$out" | sed "s|$run/||" | cut -c1-90)"
            else
                fail "no second start resuming from step $n"
                grep -E "job $jid start|resum" "$out"
            fi
            if grep -q '"type": "resume"' "$run/metrics.jsonl" 2>/dev/null; then
                pass "metrics.jsonl marks the resume"
            else
                fail "metrics.jsonl has no resume line"
            fi
            steps=$(summary_value "$run" steps 2>/dev/null)
            if [ -s "$run/dawnbench.tsv" ] && [ "$steps" = 128 ]; then
                pass "the run finished: all $steps steps, dawnbench.tsv with $(($(wc -l <"$run/dawnbench.tsv") - 1)) epochs"
            else
                fail "the run did not finish: steps '$steps', dawnbench.tsv $([ -s "$run/dawnbench.tsv" ] && echo present || echo missing)"
            fi
            if one_world "$out" 2; then
                pass "both starts: one world of 2 ranks"
            else
                fail "both starts: not one world of 2 ranks each: $(grep -E '^  ranks ' "$out" | tr '\n' ' ')"
            fi
        else
            fail "the preempted job did not finish in time"
        fi
    else
        fail "job $jid did not start training (state $(field "$jid" JobState) after $((SECONDS - t0)) s)"
        diagnose "$jid"
    fi
else
    fail "sbatch cpu.sbatch failed: $jid"
fi

# --- the GPU templates on pretend GPUs ---------------------------------------------------------
for t in gpu-node multi-node; do
    opts=(--ntasks-per-node=2 --gres=gpu:2 --cpus-per-task=1 --time=5)
    [ $t = multi-node ] && opts+=(--nodes=1)
    if jid=$(submit "$t" "$t.sbatch" "${opts[@]}" -- --set data.train_subset=2048 --set data.test_subset=500 \
        --set train.max_steps=4); then
        if wait_done "$jid" 120; then
            st=$(field "$jid" JobState) ec=$(field "$jid" ExitCode) out="$D/$t-$jid.out"
            if [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ] && one_world "$out" 1 &&
                grep -q "gpu-bind=none" "$out"; then
                pass "$t.sbatch (2 tasks, --gres=gpu:2): $st, ExitCode $ec; $(grep -m1 -oE 'GPUs [0-9]+(,[0-9]+)*' "$out"), one world of 2"
            else
                fail "$t.sbatch: $st, ExitCode $ec"
                diagnose "$jid"
            fi
        else
            fail "$t.sbatch job did not end in time"
        fi
    else
        fail "sbatch $t.sbatch failed: $jid"
    fi
done

# --- nothing left behind ---------------------------------------------------------------------
"$CLUSTER" stop "$D/cluster" >/dev/null 2>&1
left=$("$CLUSTER" pids "$D/cluster" | tr '\n' ' ')
if [ -z "${left// /}" ]; then
    pass "cluster stopped: none of its daemons, steps or jobs left"
else
    fail "left after stop: $(for p in $left; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done 2>/dev/null)"
fi
finish
