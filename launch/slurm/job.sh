# The body of the sbatch templates in this directory, sourced by them in the batch shell (so
# that its signal traps are the batch shell's): runs
#   srun --mpi=pmix --cpus-per-task=$SLURM_CPUS_PER_TASK [--gpu-bind=...] --kill-on-bad-exit=1 \
#       $DPTRAIN train CONFIG --out RUN_DIR --resume auto [--set ...]
# and handles preemption. The templates only hold their #SBATCH lines and what differs.
#
# Submit from the repository (or wherever the relative paths below resolve): the job runs in the
# submit directory. Options given to sbatch override the #SBATCH lines. Environment variables
# (sbatch exports the caller's environment) choose:
#   DPTRAIN       the binary (default build/dptrain, relative to the submit directory)
#   DPT_RUNS      where run directories go (default runs): the run directory is
#                 $DPT_RUNS/<name>-$SLURM_JOB_ID, <name> being DPT_RUN_NAME or the config's name
#   DPT_RUN_DIR   the run directory itself (e.g. to go on with an earlier job's run)
#   DPT_SRUN_MPI  srun's MPI plugin: auto (default: pmix when `srun --mpi=list` has it, else
#                 pmi2), or pmix, pmi2, ... Open MPI as Debian and Ubuntu build it has PMIx but
#                 no PMI-2 client: with pmi2 its ranks stop in MPI_Init ("OMPI was not built with
#                 SLURM's PMI support"). MPICH and Intel MPI work with pmi2.
#
# Preemption and time limits. --signal=B:USR1@120 makes Slurm send SIGUSR1 to this batch shell
# 120 s before the time limit (or up to 60 s earlier). The shell passes it to srun, which
# forwards it to every rank; the ranks agree on it at the next step, write a checkpoint into
# <run dir>/checkpoints and exit 0 ("stopped at step N with checkpoint ..."). The shell then
# requeues the job (scontrol requeue; --requeue allows it): the same job id starts again, after
# Slurm's credential lifetime (AuthInfo cred_expire, 120 s by default), in the same run
# directory, and --resume auto goes on from that checkpoint (a run with no checkpoint starts at
# step 0; one that had finished says so and exits 0). The output file is appended to
# (--open-mode=append): it shows every start of the job. Each start gets the whole --time again.
#   scancel --batch --signal=USR1 JOBID   the same by hand: checkpoint, requeue, go on
#   scancel --signal=USR1 JOBID           checkpoint and end (exit 0, no requeue; to go on later,
#                                         sbatch again with DPT_RUN_DIR=<run dir>)
#   scancel JOBID                         SIGTERM to everything: srun kills the ranks at once,
#                                         which may or may not have written their checkpoint
# Checkpoints are only written on these signals unless train.checkpoint_every is set: set it
# too (e.g. --set train.checkpoint_every=0: every epoch) to survive node failures and SIGKILL.
#
set -uo pipefail
# SIGUSR1 (from --signal, or scancel --batch --signal=USR1): checkpoint, then requeue. It is
# passed to srun, which forwards it to every rank (SIGTERM would not do: srun answers it by
# killing the step). It is passed on only once this start's dptrain has installed its signal
# handlers (it has when it writes to log.txt), since SIGUSR1 kills a process that has none.
# SIGTERM (scancel, preemption, the time limit itself) reaches the ranks from Slurm directly;
# the shell only records it and waits, without requeueing (a preempting Slurm requeues by
# itself). Note that srun reacts to its own SIGTERM by killing the step: the ranks may or may not
# get their checkpoint out. The SIGUSR1 warning is the reliable path.
stop_signal=""
srun_pid=""
on_signal() {
    stop_signal=$1
    echo "$(date '+%F %T') batch shell: SIG$1"
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM
if [ $# -lt 1 ]; then
    echo "usage: sbatch ${DPT_TEMPLATE:-TEMPLATE}.sbatch CONFIG [--set section.key=value ...]" >&2
    exit 2
fi
CONFIG=$1
shift
cd "${SLURM_SUBMIT_DIR:-.}" || exit 1
DPTRAIN=${DPTRAIN:-build/dptrain}
RUN_DIR=${DPT_RUN_DIR:-${DPT_RUNS:-runs}/${DPT_RUN_NAME:-$(basename "$CONFIG" .ini)}-$SLURM_JOB_ID}
mpi=${DPT_SRUN_MPI:-auto}
if [ "$mpi" = auto ]; then
    if srun --mpi=list 2>&1 | grep -qw pmix; then mpi=pmix; else mpi=pmi2; fi
fi
# One compute thread per allocated CPU of the rank. Slurm 22.05 stopped handing the job's
# --cpus-per-task on to srun (srun no longer reads SLURM_CPUS_PER_TASK), so it is passed
# explicitly below; without it srun places and binds the ranks as if each had one CPU.
cpus=${SLURM_CPUS_PER_TASK:-1}
export OMP_NUM_THREADS=$cpus
# GPU templates set gpu_bind (srun's --gpu-bind) before sourcing this file.
gpu=()
gpus=""
if [ -n "${gpu_bind:-}" ]; then
    gpu=(--gpu-bind="$gpu_bind")
    gpus=", GPUs ${CUDA_VISIBLE_DEVICES:-none visible}, --gpu-bind=$gpu_bind"
fi
echo "$(date '+%F %T') job $SLURM_JOB_ID start $((${SLURM_RESTART_COUNT:-0} + 1)) on $SLURM_JOB_NODELIST:" \
    "$SLURM_NTASKS task(s) x $cpus CPU(s)$gpus, srun --mpi=$mpi, run directory $RUN_DIR"

log_size() { stat -c %s "$RUN_DIR/log.txt" 2>/dev/null || echo 0; }
log0=$(log_size)

srun --mpi="$mpi" --cpus-per-task="$cpus" "${gpu[@]}" --kill-on-bad-exit=1 \
    "$DPTRAIN" train "$CONFIG" --out "$RUN_DIR" --resume auto "$@" &
srun_pid=$!
forwarded=""
while :; do
    if [ "$stop_signal" = USR1 ] && [ -z "$forwarded" ] && kill -0 "$srun_pid" 2>/dev/null; then
        if [ "$(log_size)" -gt "$log0" ]; then
            echo "$(date '+%F %T') asking the ranks to checkpoint and stop"
            kill -USR1 "$srun_pid"
            forwarded=1
        else
            sleep 1
            continue
        fi
    fi
    wait "$srun_pid" # returns early when a trapped signal arrives
    rc=$?
    kill -0 "$srun_pid" 2>/dev/null || break
done
echo "$(date '+%F %T') srun exited with $rc"
if [ "$stop_signal" = USR1 ] && [ $rc -eq 0 ] &&
    tail -n 3 "$RUN_DIR/log.txt" 2>/dev/null | grep -q "stopped at step"; then
    echo "$(date '+%F %T') requeueing job $SLURM_JOB_ID; it goes on from the checkpoint in $RUN_DIR"
    scontrol requeue "$SLURM_JOB_ID" && exit 0
    echo "scontrol requeue failed: go on by hand with --resume auto and --out $RUN_DIR" >&2
fi
exit $rc
