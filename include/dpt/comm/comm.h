/* Communication between ranks. Knows buffers, not layers. The MPI back end serves host buffers
 * (the CPU back end); an NCCL back end for device buffers would sit beside it.
 * Every collective is issued in the same order on every rank and carries a sequence number.
 * Collectives wait with a deadline (comm_set_timeout): a rank that waits longer finds out which
 * ranks have not arrived, names them (rank, host, pid) in one error line, and every rank exits
 * non-zero instead of hanging. */
#ifndef DPT_COMM_COMM_H
#define DPT_COMM_COMM_H

#include "dpt/comm/topology.h"
#include "dpt/core/error.h"

typedef struct comm_info {
    int rank, world;
    int local_rank, local_size; /* from MPI_Comm_split_type(SHARED): works under any launcher */
    int node, num_nodes;
    char host[256];
    char mpi_version[256];
    char launcher[96]; /* "mpirun", "srun (Slurm job 12, step 0)", "none (singleton)", ... */
    bool launched;     /* started by mpirun/srun/a PMI launcher, not as a singleton */
} comm_info;

/* Host names in the rank table are cut to this length (with the NUL). */
#define COMM_HOST_LEN 64

/* Initialises MPI (thread level FUNNELED), fills comm_info and installs an abort hook so that a
 * fatal error on one rank stops all of them. */
void comm_init(int *argc, char ***argv);
const comm_info *comm_get(void);
/* Every rank's place (node, local rank, ranks on its node) and host name, indexed by rank. */
const comm_place *comm_places(void);
const char *comm_host_of(int rank);
void comm_finalize(void);
DPT_NORETURN void comm_abort(int code);

/* Seconds a rank waits on one collective before it reports a stall and stops every rank; 0 (the
 * default) waits forever. Every rank should set the same value, before its first collective that
 * should be guarded. It must exceed any legitimate imbalance (a checkpoint written by one rank, an
 * uneven evaluation) since ranks that wait are indistinguishable from ranks that are stuck. */
void comm_set_timeout(double seconds);
/* The current training step, named in stall reports; -1 outside the step loop. */
void comm_set_step(int64_t step);
/* Collectives this rank has issued (every collective call, gradient bucket and group collective
 * counts one). */
uint64_t comm_sequence(void);

void comm_barrier(void);
void comm_bcast(void *buf, size_t bytes, int root);
void comm_allreduce_sum_f64(double *buf, int n);
void comm_allreduce_sum_f32(float *buf, int64_t n);
/* bfloat16 values (uint16_t bit patterns), summed pairwise in float32 and rounded to bf16. */
void comm_allreduce_sum_bf16(uint16_t *buf, int64_t n);
void comm_allreduce_sum_i64(int64_t *buf, int n);
void comm_allreduce_max_f64(double *buf, int n);
void comm_allreduce_min_i64(int64_t *buf, int n);
/* out[world]: every rank's value. */
void comm_allgather_u64(uint64_t value, uint64_t *out);
/* recv (root only; world * n bytes) gets every rank's n bytes in rank order (small records). */
void comm_gather_bytes(const void *send, int n, void *recv, int root);
/* recv (root only; world * n floats) gets every rank's n floats in rank order. */
void comm_gather_f32(const float *send, int64_t n, float *recv, int root);
/* The inverse: rank r receives send[r * n, r * n + n) from root (send is read on root only). */
void comm_scatter_f32(const float *send, float *recv, int64_t n, int root);

/* dptrain bench allreduce: in-place sums of min_bytes to max_bytes (doubling) with the same
 * collective training uses, timed after warm-up like nccl-tests (size, count, type, time, algbw,
 * busbw = algbw * 2(n-1)/n, #wrong) on rank 0's stdout. Every size is verified exactly: rank r
 * contributes small integers whose sums are exact in the type, whatever the summation order.
 * corrupt_rank >= 0 (a test hook) changes one element on that rank after the sum, so that the
 * check is seen to fail. Returns the number of wrong elements over all ranks and sizes. */
typedef struct comm_bench_opts {
    int64_t min_bytes, max_bytes;
    bool bf16;
    int warmup, iters;
    int corrupt_rank;
    /* Device buffers (NULL: host buffers and comm_allreduce_sum_*): memory and the wait from the
     * back end, sums queued by dev_sum (comm_device.h); `transport` names them. */
    const struct dpt_backend *dev;
    void (*dev_sum)(void *buf, int64_t n, bool bf16);
    const char *transport;
} comm_bench_opts;
int64_t comm_bench_allreduce(const comm_bench_opts *o);

/* Every rank passes its status; returns the lowest rank that failed, or -1 when all succeeded.
 * Used at set-up so that one rank's bad input stops every rank with one message. */
int comm_agree(dpt_status s);

/* Groups of `size` consecutive ranks (0: all ranks) with their own collectives: the
 * statistics groups of cross-replica BatchNorm. Collective: every rank calls it. */
typedef struct comm_group comm_group;
comm_group *comm_group_create(int size);
void comm_group_destroy(comm_group *g);
/* In-place sum over the group's ranks. */
void comm_group_allreduce_sum_f64(comm_group *g, double *buf, int n);

/* Gradient synchronisation: gradients live in one arena laid out like the parameters, and are
 * grouped into buckets in the reverse of the registration (= forward) order, the order backward
 * produces them. A bucket's allreduce (sum, in place) starts as soon as its last gradient is
 * final and progresses while backward goes on; comm_grad_wait completes them all. */
typedef struct comm_grad_sync comm_grad_sync;

/* offsets (bytes into base) and numel of each parameter's gradient, in registration order; base
 * is host memory (device arenas: comm_device.h). bf16: buckets travel as bfloat16 (half the
 * bytes; summed in float32 and rounded at each step of the reduction) and are converted back into
 * the float32 arena. */
comm_grad_sync *comm_grad_sync_create(float *base, const size_t *offsets, const int64_t *numel, int nparams,
                                      size_t bucket_bytes, bool bf16);
void comm_grad_sync_destroy(comm_grad_sync *s);
int comm_grad_num_buckets(const comm_grad_sync *s);
/* Bucket b covers parameters [first, last] (registration indices) and bytes [begin, end). */
void comm_grad_bucket_range(const comm_grad_sync *s, int b, int *first, int *last, size_t *begin, size_t *end);
void comm_grad_begin(comm_grad_sync *s);
void comm_grad_ready(comm_grad_sync *s, int param);
/* Lets started allreduces progress (MPI makes progress only inside MPI calls). */
void comm_grad_progress(comm_grad_sync *s);
/* Waits for every bucket; returns the seconds spent waiting (exposed communication). */
double comm_grad_wait(comm_grad_sync *s);
/* The last step's communication times (seconds), for the timeline (train.profile):
 *   in_flight: while some bucket was in flight, the union of the intervals from each bucket's
 *              start to the moment its completion was seen (by comm_grad_progress or
 *              comm_grad_wait); completions are seen only when polled, so it is an upper bound
 *              at the granularity of one layer's backward;
 *   polling:   spent inside comm_grad_progress during backward (MPI progresses host transfers
 *              only inside MPI calls, so this is communication work that backward paid for).
 * in_flight minus the exposed wait (comm_grad_wait's return) is the part backward hid. */
typedef struct comm_grad_times {
    double in_flight, polling;
} comm_grad_times;
comm_grad_times comm_grad_last_times(const comm_grad_sync *s);

#endif
