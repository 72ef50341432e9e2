#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for tests/mpi/slurm_cluster.sh and for trying the sbatch
# templates in launch/slurm/ by hand. Runs as root, without systemd, and keeps everything in one
# private directory (no file under /etc is touched):
#   tests/slurm/cluster.sh start [DIR]    writes DIR/slurm.conf, starts munged, slurmctld and
#                                         slurmd, waits (at most 60 s) until the node is idle
#   tests/slurm/cluster.sh stop [DIR]     cancels the cluster's jobs, stops its daemons and
#                                         anything left of its jobs; safe to repeat
#   tests/slurm/cluster.sh status [DIR]   the daemons' pids and sinfo
#   tests/slurm/cluster.sh pids [DIR]     every process of the cluster (daemons, steps, jobs)
# DIR defaults to $DPT_SLURM_DIR or /tmp/dptrain-slurm. Then, in the calling shell:
#   export SLURM_CONF=DIR/slurm.conf; sbatch ...; squeue; scontrol show job ...
# Needs the packages slurmctld, slurmd, slurm-client and munge (launch/install-deps --tests);
# installs nothing. Ports: $DPT_SLURM_PORT for slurmctld and the next one for slurmd; unset, the
# first free pair from 6817 up (so that two test builds on one machine can each have a cluster).
# DPT_SLURM_GPUS=N gives the node N pretend GPUs (gres/gpu counted, no devices behind them), so
# that GPU job scripts can be submitted and their srun options checked on a machine without one.
#
# Settings for a container on a small machine, and why:
#  - proctrack/linuxproc: finds a job's processes through /proc (parent pids), where
#    proctrack/cgroup would need a writable, delegated cgroup tree that containers rarely have;
#  - task/affinity: binds each task to its CPUs with sched_setaffinity, which works here; no
#    task/cgroup (cgroups again), no accounting (no slurmdbd), jobacct_gather/none;
#  - SelectType=select/cons_tres with CR_Core: cores are what is allocated, memory is not
#    tracked, so a job needs no --mem;
#  - the node is described exactly as `slurmd -C` sees it (CPUs, sockets, cores, threads,
#    RealMemory), so slurmd registers it without draining it;
#  - munged runs as root on a private socket with a private key (AuthInfo=socket=...), so a
#    munged of the machine, if any, is neither needed nor disturbed;
#  - AuthInfo cred_expire=10: a requeued job may start again only after cred_expire seconds
#    (Slurm's default is 120 s); 10 s keeps the preemption test short;
#  - SchedulerParameters sched_interval=5,bf_interval=5: pending jobs (a requeued one) are
#    looked at every 5 s rather than every 30-60 s;
#  - MinJobAge=600: finished jobs stay visible to `scontrol show job` for 10 minutes.
set -uo pipefail
cmd=${1:-}
DIR=${2:-${DPT_SLURM_DIR:-/tmp/dptrain-slurm}}
PORT=${DPT_SLURM_PORT:-}
WAIT_S=${DPT_SLURM_WAIT_S:-60}

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}
[ -n "$cmd" ] || die "usage: $0 start|stop|status|pids [DIR]"
[ "$(id -u)" = 0 ] || die "must run as root (slurmd starts job steps as their users)"
mkdir -p "$DIR" || die "cannot create $DIR"
DIR=$(cd "$DIR" && pwd -P)
# Unix socket paths (munged's, slurmstepd's under the spool directory) must stay under 108
# bytes: a deep DIR gets a short alias in /tmp (made by start, removed by stop; the daemons and
# jobs know the cluster by that name, this script reads and writes through DIR).
RUN=$DIR
if [ ${#DIR} -gt 60 ]; then
    RUN=/tmp/dpt-slurm-$(printf %s "$DIR" | md5sum | cut -c1-10)
fi
CONF=$RUN/slurm.conf
export SLURM_CONF=$CONF
NODE=$(hostname -s)
SOCK=$RUN/munge/munge.socket

alive() { # PID: running (a zombie, not yet reaped by a container's init, counts as gone)
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

pid_of() { # NAME: the pid in its pid file, if that process is alive
    local p
    p=$(cat "$DIR/run/$1.pid" 2>/dev/null) || return 1
    [ -n "$p" ] && alive "$p" && echo "$p"
}

# Processes of this cluster, matched on their environment so that nothing of another Slurm or of
# the caller is touched: its daemons (started with DPT_SLURM_CLUSTER=$RUN), and with
# SLURM_CONF=$CONF its slurmstepds and slurmctld's slurmscriptd (Slurm gives them a fresh
# environment) and its jobs' processes (they have a SLURM_JOB_ID).
cluster_pids() {
    local e p comm a=$$ mine=" "
    while [ -n "$a" ] && [ "$a" != 0 ]; do # this script and its ancestors are never matched
        mine+="$a "
        a=$(awk '/^PPid:/ { print $2 }' "/proc/$a/status" 2>/dev/null)
    done
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}
        p=${p%/environ}
        case "$mine" in *" $p "*) continue ;; esac
        comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
        if { tr '\0' '\n' <"$e"; } 2>/dev/null | awk -v run="$RUN" -v conf="$CONF" -v comm="$comm" '
            $0 == "DPT_SLURM_CLUSTER=" run { d = 1 } $0 == "SLURM_CONF=" conf { c = 1 } /^SLURM_JOB_ID=/ { j = 1 }
            END { exit !(d || (c && (j || comm == "slurmstepd" || comm == "slurmscriptd"))) }'; then
            echo "$p"
        fi
    done
}

log_tails() {
    local f
    for f in "$DIR"/log/*.log; do
        [ -f "$f" ] || continue
        echo "----- last lines of $f"
        tail -n 25 "$f"
    done
}

port_busy() { # PORT: something listens on it (ss asks without connecting; else try to connect)
    if command -v ss >/dev/null; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

write_conf() {
    local hw cpus boards sockets cores threads mem
    hw=$(slurmd -C 2>/dev/null | head -1) || true
    val() { sed -nE "s/.*[[:space:]]$1=([0-9]+).*/\1/p" <<<"$hw"; }
    cpus=$(val CPUs) boards=$(val Boards) sockets=$(val SocketsPerBoard) cores=$(val CoresPerSocket)
    threads=$(val ThreadsPerCore) mem=$(val RealMemory)
    [ -n "$cpus" ] && [ -n "$mem" ] || die "slurmd -C did not describe this machine: '$hw'"
    local gpus=${DPT_SLURM_GPUS:-0} gres=""
    rm -f "$RUN/gres.conf"
    if [ "$gpus" -gt 0 ]; then
        # gres/gpu drops GPUs without a device file: give it copies of /dev/null (or plain
        # files where mknod is not allowed; slurmd then logs an error per file and goes on).
        local i
        mkdir -p "$RUN/dev"
        for i in $(seq 0 $((gpus - 1))); do
            [ -e "$RUN/dev/gpu$i" ] || mknod "$RUN/dev/gpu$i" c 1 3 2>/dev/null || : >"$RUN/dev/gpu$i"
        done
        gres=" Gres=gpu:$gpus"
        echo "NodeName=$NODE Name=gpu File=$RUN/dev/gpu[0-$((gpus - 1))]" >"$RUN/gres.conf"
    fi
    cat >"$CONF" <<EOF
# Written by tests/slurm/cluster.sh: a one-node cluster on localhost (see that script).
ClusterName=dpttest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK,cred_expire=10
StateSaveLocation=$RUN/state
SlurmdSpoolDir=$RUN/spool
SlurmctldPidFile=$RUN/run/slurmctld.pid
SlurmdPidFile=$RUN/run/slurmd.pid
SlurmctldLogFile=$RUN/log/slurmctld.log
SlurmdLogFile=$RUN/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$RUN/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
KillWait=30
InactiveLimit=0
SlurmdTimeout=120
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus Boards=${boards:-1} SocketsPerBoard=${sockets:-1} \
 CoresPerSocket=${cores:-$cpus} ThreadsPerCore=${threads:-1} RealMemory=$mem$gres State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    : >"$RUN/plugstack.conf"
}

start_munge() {
    mkdir -p "$RUN/munge"
    chmod 755 "$RUN/munge"
    local key=$RUN/munge/munge.key
    if [ ! -s "$key" ]; then
        if ! mungekey --create --keyfile="$key" 2>/dev/null; then
            dd if=/dev/urandom of="$key" bs=1024 count=1 status=none || die "cannot write $key"
        fi
    fi
    chmod 400 "$key"
    DPT_SLURM_CLUSTER=$RUN munged --force --socket="$SOCK" --key-file="$key" --pid-file="$RUN/run/munged.pid" \
        --log-file="$RUN/log/munged.log" --seed-file="$RUN/munge/munged.seed" ||
        { log_tails; die "munged did not start"; }
    local i
    for i in $(seq 50); do
        if munge -n --socket="$SOCK" 2>/dev/null | unmunge --socket="$SOCK" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    log_tails
    die "munged does not answer on $SOCK"
}

start() {
    local missing=() p
    for p in munged munge slurmctld slurmd slurmstepd sinfo scontrol; do
        command -v "$p" >/dev/null || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] ||
        die "not installed: ${missing[*]} (launch/install-deps --tests installs slurmctld slurmd slurm-client munge)"
    if pid_of slurmctld >/dev/null || pid_of slurmd >/dev/null || pid_of munged >/dev/null; then
        echo "cluster.sh: a cluster in $DIR is running; stopping it first"
        stop
    fi
    if [ -z "$PORT" ]; then
        PORT=6817
        while port_busy "$PORT" || port_busy $((PORT + 1)); do
            PORT=$((PORT + 2))
            [ "$PORT" -lt 6917 ] || die "no two free ports from 6817 to 6917; set DPT_SLURM_PORT"
        done
    fi
    for p in "$PORT" $((PORT + 1)); do
        port_busy "$p" && die "port $p is in use (another slurmctld/slurmd?); set DPT_SLURM_PORT"
    done
    [ "$RUN" = "$DIR" ] || ln -sfn "$DIR" "$RUN" || die "cannot make the alias $RUN"
    rm -rf "$RUN/state" "$RUN/spool" "$RUN/log" "$RUN/run"
    mkdir -p "$RUN/state" "$RUN/spool" "$RUN/log" "$RUN/run"
    write_conf
    start_munge
    # -c: no jobs from an earlier start; -i: ignore a state file that does not match.
    DPT_SLURM_CLUSTER=$RUN slurmctld -c -i -f "$CONF" || { log_tails; die "slurmctld did not start"; }
    DPT_SLURM_CLUSTER=$RUN slurmd -f "$CONF" -N "$NODE" || { log_tails; die "slurmd did not start"; }
    local t0=$SECONDS state=""
    while [ $((SECONDS - t0)) -lt "$WAIT_S" ]; do
        state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null)
        case "$state" in
        idle) break ;;
        down* | drain* | fail*)
            # A node that was down in a previous life comes back on its own (ReturnToService=2)
            # once slurmd registers; nudge it once in case it does not.
            scontrol update nodename="$NODE" state=resume >/dev/null 2>&1
            ;;
        esac
        # The daemons write their pid files a moment after they fork: give them 5 s.
        if [ $((SECONDS - t0)) -ge 5 ] && ! { pid_of slurmctld && pid_of slurmd; } >/dev/null; then
            break
        fi
        sleep 0.5
    done
    if [ "$state" != idle ]; then
        echo "cluster.sh: the node is not idle after ${WAIT_S} s (state '${state:-?}'):" >&2
        echo "slurmctld pid $(pid_of slurmctld || echo none), slurmd pid $(pid_of slurmd || echo none)" >&2
        scontrol show node "$NODE" 2>&1 | sed 's/^/  /' >&2
        log_tails >&2
        stop
        exit 1
    fi
    echo "cluster.sh: node $NODE idle ($(sinfo -h -N -n "$NODE" -o '%c CPUs, %m MB')); export SLURM_CONF=$CONF"
}

stop() {
    local p pids i
    if pid_of slurmctld >/dev/null; then
        scancel --quiet --full --signal=KILL --user=root 2>/dev/null || true
        scancel --quiet --user=root 2>/dev/null || true
    fi
    for p in slurmd slurmctld munged; do
        pids=$(pid_of $p) && kill -TERM $pids 2>/dev/null
    done
    for i in $(seq 100); do
        pid_of slurmd >/dev/null || pid_of slurmctld >/dev/null || pid_of munged >/dev/null || break
        sleep 0.1
    done
    # What is left: daemons that did not stop within 10 s, slurmstepds, job processes.
    pids=$(cluster_pids | tr '\n' ' ')
    if [ -n "${pids// /}" ]; then
        kill -KILL $pids 2>/dev/null
        sleep 0.2
    fi
    rm -f "$DIR"/run/*.pid "$DIR/munge/munge.socket" "$DIR/munge/munge.socket.lock"
    [ "$RUN" = "$DIR" ] || [ "$(readlink "$RUN" 2>/dev/null)" != "$DIR" ] || rm -f "$RUN"
    echo "cluster.sh: stopped${pids:+ (killed leftovers: $pids)}"
}

status() {
    local p
    for p in munged slurmctld slurmd; do
        echo "$p: $(pid_of $p || echo not running)"
    done
    pid_of slurmctld >/dev/null && sinfo -N
}

case "$cmd" in
start) start ;;
stop) stop ;;
status) status ;;
pids) cluster_pids ;;
*) die "usage: $0 start|stop|status|pids [DIR]" ;;
esac
