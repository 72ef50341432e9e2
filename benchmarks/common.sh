# Shared by the benchmark drivers: paths, data conversion, launchers.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DPTRAIN=${DPTRAIN:-$ROOT/build/dptrain}
PYTHON=${PYTHON:-/usr/bin/python3}
DATA=${DATA:-$ROOT/data}
CFG=${CFG:-$ROOT/configs/fashion-resnet9.ini}
FASHION=/usr/share/datasets/fashion-mnist
RUNS=${RUNS:-/tmp/dptrain-bench-$$}
mkdir -p "$RUNS" "$DATA"

[ -x "$DPTRAIN" ] || { echo "build first: cmake -S . -B build && cmake --build build -j" >&2; exit 1; }
"$PYTHON" -c "import torch, h5py" 2>/dev/null || { echo "$PYTHON lacks torch/h5py: launch/install-deps --tests" >&2; exit 1; }
for s in train t10k; do
    n=$([ $s = train ] && echo train || echo test)
    [ -f "$DATA/fashion-$n.h5" ] || "$DPTRAIN" prep idx $FASHION/$s-images-idx3-ubyte.gz $FASHION/$s-labels-idx1-ubyte.gz \
        -o "$DATA/fashion-$n.h5" >/dev/null
done
DATASETS=(--set data.train="$DATA/fashion-train.h5" --set data.test="$DATA/fashion-test.h5")

mpi() {
    local np=$1
    shift
    local extra=()
    [ "$(id -u)" = 0 ] && extra+=(--allow-run-as-root)
    mpirun "${extra[@]}" -np "$np" --bind-to none --mca btl_vader_single_copy_mechanism none "$@"
}

# torch_peer NPROC THREADS ARGS...: the PyTorch peer on NPROC processes (DDP, gloo, loopback).
torch_peer() {
    local np=$1 th=$2
    shift 2
    local port=$((29500 + RANDOM % 400)) pids=() r
    for ((r = 0; r < np; r++)); do
        WORLD_SIZE=$np RANK=$r MASTER_PORT=$port OMP_NUM_THREADS=$th \
            "$PYTHON" "$ROOT/benchmarks/peer/torch_fashion.py" "$CFG" --threads "$th" "$@" &
        pids+=($!)
    done
    local rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return $rc
}

json_field() { sed -E "s/.*\"$1\": ([-0-9.e+]+|true|false|null).*/\\1/"; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
machine() {
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  host: $(hostname)  cores: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "dptrain: $("$DPTRAIN" info | sed -n 2p | xargs)"
    echo "pytorch: $("$PYTHON" -c 'import torch; print(torch.__version__, "threads:", torch.get_num_threads(), "mkldnn:", torch.backends.mkldnn.is_available())')"
}
