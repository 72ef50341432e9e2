/* Collectives on device buffers (comm_device.h): NCCL, CUDA-aware MPI, or MPI through pinned host
 * memory, and the gradient engine that queues each bucket's reduction as backward produces it.
 *
 * Built by nvcc against NCCL, or as host C++ for the tests (DPT_CUDA_EMU): there device memory is
 * host memory, a stream runs its work when it is queued, events hold the time they were recorded,
 * and nccl_emu.cpp provides NCCL's calls over MPI. The ordering logic (events, the communication
 * stream, which bucket may start when) is the same code in both builds. */
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#if defined(OPEN_MPI) && OPEN_MPI
#include <mpi-ext.h> /* MPIX_CUDA_AWARE_SUPPORT, MPIX_Query_cuda_support */
#endif
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "comm_internal.h"
#include "dpt/comm/comm_device.h"
#include "dpt/core/bf16.h"
#include "dpt/core/log.h"
#include "dpt/core/timer.h"
}

#define DEV_CHECK(expr)                                                                                      \
    do {                                                                                                     \
        cudaError_t dev_e_ = (expr);                                                                         \
        DPT_CHECK_LIB("CUDA", dev_e_ == cudaSuccess, #expr, "comm on device %d: %s (%s)", D.gpu,             \
                      cudaGetErrorString(dev_e_), cudaGetErrorName(dev_e_));                                 \
    } while (0)

#define NCCL_CHECK(expr)                                                                                     \
    do {                                                                                                     \
        ncclResult_t nccl_r_ = (expr);                                                                       \
        DPT_CHECK_LIB("NCCL", nccl_r_ == ncclSuccess, #expr, "device %d: %s", D.gpu, ncclGetErrorString(nccl_r_)); \
    } while (0)

static struct {
    comm_dev_transport t;
    int gpu;
    cudaStream_t compute, comm; /* the back end's stream; the one reductions run on */
    ncclComm_t nccl;
    void *scratch; /* pinned host memory of comm_dev_allreduce_sum's host-staged path */
    size_t scratch_bytes;
    char desc[320];
} D = {COMM_DEV_NONE, -1, 0, 0, NULL, NULL, 0, ""};

/* ---- bf16 conversion on the communication stream ---- */

#ifdef DPT_CUDA_EMU
static void to_bf16(uint16_t *dst, const float *src, int64_t n, cudaStream_t st) {
    (void)st;
    for (int64_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}
static void from_bf16(float *dst, const uint16_t *src, int64_t n, cudaStream_t st) {
    (void)st;
    for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}
#else
/* The rounding of dpt/core/bf16.h (nearest, ties to even; NaN stays NaN), on the device. */
__global__ void to_bf16_kernel(uint16_t *dst, const float *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        uint32_t u = __float_as_uint(src[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            dst[i] = (uint16_t)((u >> 16) | 0x40u);
        else
            dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}
__global__ void from_bf16_kernel(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}
static unsigned conv_blocks(int64_t n) {
    int64_t b = (n + 255) / 256;
    return (unsigned)(b < 1 ? 1 : b > 4096 ? 4096 : b);
}
static void to_bf16(uint16_t *dst, const float *src, int64_t n, cudaStream_t st) {
    to_bf16_kernel<<<conv_blocks(n), 256, 0, st>>>(dst, src, n);
    DEV_CHECK(cudaGetLastError());
}
static void from_bf16(float *dst, const uint16_t *src, int64_t n, cudaStream_t st) {
    from_bf16_kernel<<<conv_blocks(n), 256, 0, st>>>(dst, src, n);
    DEV_CHECK(cudaGetLastError());
}
#endif

/* ---- set-up ---- */

bool comm_dev_nccl_built(void) { return true; }

/* Whether MPI takes device pointers: DPT_MPI_CUDA_AWARE=0|1 decides when set, else Open MPI's
 * MPIX_Query_cuda_support (the library built with CUDA and its run-time support on). */
static bool mpi_cuda_aware(char *why, size_t size) {
    const char *env = getenv("DPT_MPI_CUDA_AWARE");
    if (env && *env) {
        snprintf(why, size, "DPT_MPI_CUDA_AWARE=%s", env);
        return atoi(env) != 0;
    }
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
    const bool aware = MPIX_Query_cuda_support() != 0;
    snprintf(why, size, "MPIX_Query_cuda_support() = %d", aware ? 1 : 0);
    return aware;
#elif defined(MPIX_CUDA_AWARE_SUPPORT)
    snprintf(why, size, "this Open MPI was built without CUDA support");
    return false;
#else
    snprintf(why, size, "the MPI library does not say it is CUDA-aware");
    return false;
#endif
}

dpt_status comm_dev_init(const char *want, int gpu, void *stream) {
    const comm_info *ci = comm_get();
    D.gpu = gpu;
    D.compute = (cudaStream_t)stream;
    /* Ranks of one node on one GPU: NCCL refuses them (one rank per GPU per communicator). */
    uint64_t *all = (uint64_t *)dpt_xmalloc((size_t)ci->world * sizeof(uint64_t));
    comm_allgather_u64(((uint64_t)(uint32_t)ci->node << 32) | (uint32_t)gpu, all);
    int share_a = -1, share_b = -1, share_gpu = -1;
    for (int i = 0; i < ci->world && share_a < 0; i++)
        for (int j = i + 1; j < ci->world; j++)
            if (all[i] == all[j]) {
                share_a = i;
                share_b = j;
                share_gpu = (int)(all[i] & 0xffffffffu);
                break;
            }
    free(all);
    char shared[160] = "";
    if (share_a >= 0)
        snprintf(shared, sizeof shared, "ranks %d and %d share GPU %d of %s", share_a, share_b, share_gpu,
                 comm_host_of(share_a));
    if (!strcmp(want, "nccl") && share_a >= 0)
        return dpt_error(DPT_ERR_CONFIG,
                         "comm.backend = nccl: %s, and NCCL needs one GPU per rank; use comm.backend = mpi (or "
                         "auto), or one rank per GPU",
                         shared);
    char aware_why[96];
    const bool aware = mpi_cuda_aware(aware_why, sizeof aware_why);
    DEV_CHECK(cudaStreamCreateWithFlags(&D.comm, cudaStreamNonBlocking));
    if (strcmp(want, "mpi") && share_a < 0) {
        ncclUniqueId id;
        if (ci->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
        comm_bcast(&id, sizeof id, 0);
        NCCL_CHECK(ncclCommInitRank(&D.nccl, ci->world, id, ci->rank));
        int v = 0;
        ncclGetVersion(&v);
        D.t = COMM_DEV_NCCL;
        snprintf(D.desc, sizeof D.desc, "NCCL %d.%d.%d, %d ranks on %d GPUs, own stream (%s)", v / 10000,
                 v / 100 % 100, v % 100, ci->world, ci->world,
                 !strcmp(want, "nccl") ? "comm.backend = nccl" : "auto: one GPU per rank");
    } else {
        D.t = aware ? COMM_DEV_MPI_CUDA : COMM_DEV_MPI_HOST;
        snprintf(D.desc, sizeof D.desc, "MPI %s (%s; %s: %s)", aware ? "on device pointers" : "through pinned host memory",
                 !strcmp(want, "mpi") ? "comm.backend = mpi" : shared, aware ? "CUDA-aware" : "not CUDA-aware",
                 aware_why);
    }
    return DPT_OK;
}

comm_dev_transport comm_dev_get(void) { return D.t; }

const char *comm_dev_describe(void) { return D.t == COMM_DEV_NONE ? "none" : D.desc; }

void comm_dev_finalize(void) {
    if (D.t == COMM_DEV_NONE) return;
    if (D.t == COMM_DEV_NCCL) ncclCommDestroy(D.nccl);
    cudaStreamDestroy(D.comm);
    if (D.scratch) cudaFreeHost(D.scratch);
    D.scratch = NULL;
    D.scratch_bytes = 0;
    D.t = COMM_DEV_NONE;
}

/* ---- plain allreduce (bench allreduce, buffers outside the gradient arena) ---- */

static MPI_Datatype mpi_type(bool bf16) { return bf16 ? MPI_UINT16_T : MPI_FLOAT; }
static MPI_Op mpi_sum(bool bf16) { return bf16 ? comm_bf16_sum_op() : MPI_SUM; }

/* comm.h's host sums, which hand the pointer to MPI: device memory when MPI is CUDA-aware. */
static void mpi_allreduce(void *buf, int64_t n, bool bf16) {
    if (bf16)
        comm_allreduce_sum_bf16((uint16_t *)buf, n);
    else
        comm_allreduce_sum_f32((float *)buf, n);
}

void comm_dev_allreduce_sum(void *buf, int64_t n, bool bf16) {
    DPT_CHECK_LIB("comm", D.t != COMM_DEV_NONE, "comm_dev_allreduce_sum", "device collectives are not open");
    const size_t bytes = (size_t)n * (bf16 ? 2 : 4);
    switch (D.t) {
    case COMM_DEV_NCCL:
        comm_next_seq();
        NCCL_CHECK(ncclAllReduce(buf, buf, (size_t)n, bf16 ? ncclBfloat16 : ncclFloat, ncclSum, D.nccl, D.compute));
        break;
    case COMM_DEV_MPI_CUDA:
        DEV_CHECK(cudaStreamSynchronize(D.compute));
        mpi_allreduce(buf, n, bf16);
        break;
    default:
        if (bytes > D.scratch_bytes) {
            if (D.scratch) DEV_CHECK(cudaFreeHost(D.scratch));
            DEV_CHECK(cudaMallocHost(&D.scratch, bytes));
            D.scratch_bytes = bytes;
        }
        DEV_CHECK(cudaMemcpyAsync(D.scratch, buf, bytes, cudaMemcpyDeviceToHost, D.compute));
        DEV_CHECK(cudaStreamSynchronize(D.compute));
        mpi_allreduce(D.scratch, n, bf16);
        DEV_CHECK(cudaMemcpyAsync(buf, D.scratch, bytes, cudaMemcpyHostToDevice, D.compute));
        break;
    }
}

/* ---- BatchNorm statistics groups (NCCL) ---- */

struct comm_dev_group {
    ncclComm_t c;
};

comm_dev_group *comm_dev_group_create(int size) {
    const comm_info *ci = comm_get();
    if (D.t != COMM_DEV_NCCL) return NULL;
    if (size <= 0 || size > ci->world) size = ci->world;
    /* A communicator of its own even for the whole world: the statistics are reduced on the
     * compute stream while gradient buckets are reduced on the communication stream, and NCCL
     * kernels of one communicator on two streams may wait on each other across ranks. The
     * group's first rank makes the id and sends it over an MPI communicator of the group. */
    comm_dev_group *g = (comm_dev_group *)dpt_xcalloc(1, sizeof *g);
    MPI_Comm mc;
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, ci->rank / size, ci->rank, &mc));
    ncclUniqueId id;
    if (ci->rank % size == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, mc));
    MPI_CHECK(MPI_Comm_free(&mc));
    NCCL_CHECK(ncclCommInitRank(&g->c, size, id, ci->rank % size));
    return g;
}

void comm_dev_group_destroy(comm_dev_group *g) {
    if (!g) return;
    ncclCommDestroy(g->c);
    free(g);
}

void comm_dev_group_allreduce_sum_f64(comm_dev_group *g, double *buf, int n) {
    NCCL_CHECK(ncclAllReduce(buf, buf, (size_t)n, ncclDouble, ncclSum, g->c, D.compute));
}

/* ---- the gradient engine ---- */

enum { B_IDLE = 0, B_STAGING, B_REDUCING, B_REDUCED };

typedef struct dev_engine {
    comm_dev_transport t;
    float *base;     /* the gradient arena (device) */
    uint16_t *wire;  /* bf16: the arena as bfloat16 (device), else NULL */
    char *host;      /* MPI through host memory: pinned copy of what travels */
    size_t elem;     /* bytes per element on the wire */
    int nb, next;    /* buckets; the next one whose MPI reduction may start (index order) */
    int64_t *first, *count;
    int *state;
    MPI_Request *req;
    cudaEvent_t *ready, *staged, *done, bwd_end, all_done;
} dev_engine;

static void *wire_ptr(dev_engine *e, int b) {
    return e->wire ? (void *)(e->wire + e->first[b]) : (void *)(e->base + e->first[b]);
}

static bool event_done(cudaEvent_t ev) {
    cudaError_t r = cudaEventQuery(ev);
    if (r == cudaErrorNotReady) return false;
    DEV_CHECK(r);
    return true;
}

/* MPI: starts the reductions of staged buckets in index order (every rank issues them in the
 * same order), as far as their copies have finished. */
static void issue_staged(dev_engine *e, bool block) {
    while (e->next < e->nb && e->state[e->next] == B_STAGING) {
        const int b = e->next;
        if (block)
            DEV_CHECK(cudaEventSynchronize(e->staged[b]));
        else if (!event_done(e->staged[b]))
            return;
        void *p = e->t == COMM_DEV_MPI_HOST ? (void *)(e->host + e->first[b] * (int64_t)e->elem) : wire_ptr(e, b);
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, p, (int)e->count[b], mpi_type(e->wire != NULL), mpi_sum(e->wire != NULL),
                                 MPI_COMM_WORLD, &e->req[b]));
        e->state[b] = B_REDUCING;
        e->next++;
    }
}

static void dev_start(void *ctx, int b, size_t begin, size_t end) {
    dev_engine *e = (dev_engine *)ctx;
    (void)begin;
    (void)end;
    DPT_CHECK_LIB("comm", e->count[b] <= INT32_MAX, "gradient bucket", "bucket %d has %lld values", b,
                  (long long)e->count[b]);
    /* Everything backward queued so far includes this bucket's gradients. */
    DEV_CHECK(cudaEventRecord(e->ready[b], D.compute));
    DEV_CHECK(cudaStreamWaitEvent(D.comm, e->ready[b], 0));
    if (e->wire) to_bf16(e->wire + e->first[b], e->base + e->first[b], e->count[b], D.comm);
    if (e->t == COMM_DEV_NCCL) {
        void *p = wire_ptr(e, b);
        NCCL_CHECK(ncclAllReduce(p, p, (size_t)e->count[b], e->wire ? ncclBfloat16 : ncclFloat, ncclSum, D.nccl, D.comm));
        if (e->wire) from_bf16(e->base + e->first[b], e->wire + e->first[b], e->count[b], D.comm);
        DEV_CHECK(cudaEventRecord(e->done[b], D.comm));
        e->state[b] = B_REDUCING;
        return;
    }
    if (e->t == COMM_DEV_MPI_HOST)
        DEV_CHECK(cudaMemcpyAsync(e->host + e->first[b] * (int64_t)e->elem, wire_ptr(e, b),
                                  (size_t)e->count[b] * e->elem, cudaMemcpyDeviceToHost, D.comm));
    DEV_CHECK(cudaEventRecord(e->staged[b], D.comm));
    e->state[b] = B_STAGING;
    issue_staged(e, false);
}

static bool dev_test(void *ctx, int b) {
    dev_engine *e = (dev_engine *)ctx;
    if (e->t == COMM_DEV_NCCL) return event_done(e->done[b]);
    issue_staged(e, false);
    if (e->state[b] == B_REDUCING) {
        int done = 0;
        MPI_CHECK(MPI_Test(&e->req[b], &done, MPI_STATUS_IGNORE));
        if (done) e->state[b] = B_REDUCED;
    }
    return e->state[b] == B_REDUCED;
}

static void dev_wait(void *ctx, int b, uint64_t seq, const char *what) {
    dev_engine *e = (dev_engine *)ctx;
    if (e->t == COMM_DEV_NCCL) return; /* queued on the stream: finish waits for the last one */
    issue_staged(e, true);
    if (e->state[b] == B_REDUCING) comm_wait(&e->req[b], 1, seq, what);
    e->state[b] = B_REDUCED;
    /* The sums go back into the arena on the communication stream. */
    if (e->t == COMM_DEV_MPI_HOST)
        DEV_CHECK(cudaMemcpyAsync(wire_ptr(e, b), e->host + e->first[b] * (int64_t)e->elem, (size_t)e->count[b] * e->elem,
                                  cudaMemcpyHostToDevice, D.comm));
    if (e->wire) from_bf16(e->base + e->first[b], e->wire + e->first[b], e->count[b], D.comm);
}

static double elapsed_s(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0.0f;
    DEV_CHECK(cudaEventElapsedTime(&ms, a, b));
    return 1e-3 * (double)ms;
}

static void dev_finish(void *ctx, double *exposed, double *in_flight) {
    dev_engine *e = (dev_engine *)ctx;
    for (int b = 0; b < e->nb; b++) e->state[b] = B_IDLE;
    e->next = 0;
    DEV_CHECK(cudaEventRecord(e->bwd_end, D.compute));
    DEV_CHECK(cudaEventRecord(e->all_done, D.comm));
    DEV_CHECK(cudaStreamWaitEvent(D.compute, e->all_done, 0)); /* the update waits on one event */
    if (e->t != COMM_DEV_NCCL || e->nb == 0) return;
    /* NCCL has no deadline of its own: a rank that stopped would leave the others spinning in
     * its kernels. Wait here with comm.timeout_s, then measure on the device's clock. */
    const double t0 = timer_now(), limit = comm_timeout();
    if (limit <= 0) DEV_CHECK(cudaEventSynchronize(e->all_done));
    while (!event_done(e->all_done)) {
        sched_yield(); /* the loader's threads share these cores */
        if (limit > 0 && timer_now() - t0 > limit) {
            ncclCommAbort(D.nccl);
            dpt_fatal("comm", "gradient allreduce", __FILE__, __LINE__,
                      "the NCCL reduction of %d gradient buckets did not finish within comm.timeout_s = %.0f s: "
                      "a rank stopped or the network failed",
                      e->nb, limit);
        }
    }
    DEV_CHECK(cudaEventSynchronize(e->bwd_end));
    *exposed = elapsed_s(e->bwd_end, e->all_done);
    if (*exposed < 0) *exposed = 0;
    /* The union of the buckets' [ready, done] intervals, on the device's clock. */
    double total = 0, lo = 0, hi = -1;
    for (int b = 0; b < e->nb; b++) {
        const double s = elapsed_s(e->ready[0], e->ready[b]), d = elapsed_s(e->ready[0], e->done[b]);
        if (s > hi) {
            if (hi > lo) total += hi - lo;
            lo = s;
            hi = d;
        } else if (d > hi) {
            hi = d;
        }
    }
    if (hi > lo) total += hi - lo;
    *in_flight = total;
}

static void dev_destroy(void *ctx) {
    dev_engine *e = (dev_engine *)ctx;
    for (int b = 0; b < e->nb; b++) {
        cudaEventDestroy(e->ready[b]);
        cudaEventDestroy(e->staged[b]);
        cudaEventDestroy(e->done[b]);
    }
    cudaEventDestroy(e->bwd_end);
    cudaEventDestroy(e->all_done);
    if (e->wire) cudaFree(e->wire);
    if (e->host) cudaFreeHost(e->host);
    free(e->first);
    free(e->count);
    free(e->state);
    free(e->req);
    free(e->ready);
    free(e->staged);
    free(e->done);
    free(e);
}

comm_grad_sync *comm_dev_grad_sync_create(float *base, const size_t *offsets, const int64_t *numel, int nparams,
                                          size_t bucket_bytes, bool bf16) {
    DPT_CHECK_LIB("comm", D.t != COMM_DEV_NONE, "comm_dev_grad_sync_create", "device collectives are not open");
    comm_grad_sync *s = comm_grad_layout(offsets, numel, nparams, bucket_bytes);
    dev_engine *e = (dev_engine *)dpt_xcalloc(1, sizeof *e);
    e->t = D.t;
    e->base = base;
    e->elem = bf16 ? 2 : 4;
    e->nb = comm_grad_num_buckets(s);
    const size_t nb = (size_t)(e->nb ? e->nb : 1);
    e->first = (int64_t *)dpt_xcalloc(nb, sizeof(int64_t));
    e->count = (int64_t *)dpt_xcalloc(nb, sizeof(int64_t));
    e->state = (int *)dpt_xcalloc(nb, sizeof(int));
    e->req = (MPI_Request *)dpt_xcalloc(nb, sizeof(MPI_Request));
    e->ready = (cudaEvent_t *)dpt_xcalloc(nb, sizeof(cudaEvent_t));
    e->staged = (cudaEvent_t *)dpt_xcalloc(nb, sizeof(cudaEvent_t));
    e->done = (cudaEvent_t *)dpt_xcalloc(nb, sizeof(cudaEvent_t));
    int64_t total = 0;
    for (int b = 0; b < e->nb; b++) {
        int first, last;
        size_t begin, end;
        comm_grad_bucket_range(s, b, &first, &last, &begin, &end);
        e->first[b] = (int64_t)(begin / sizeof(float));
        e->count[b] = (int64_t)((end - begin) / sizeof(float));
        if (e->first[b] + e->count[b] > total) total = e->first[b] + e->count[b];
        e->req[b] = MPI_REQUEST_NULL;
        DEV_CHECK(cudaEventCreate(&e->ready[b]));
        DEV_CHECK(cudaEventCreate(&e->staged[b]));
        DEV_CHECK(cudaEventCreate(&e->done[b]));
    }
    DEV_CHECK(cudaEventCreate(&e->bwd_end));
    DEV_CHECK(cudaEventCreate(&e->all_done));
    if (bf16) DEV_CHECK(cudaMalloc((void **)&e->wire, (size_t)(total ? total : 1) * sizeof(uint16_t)));
    if (e->t == COMM_DEV_MPI_HOST) DEV_CHECK(cudaMallocHost((void **)&e->host, (size_t)(total ? total : 1) * e->elem));
    comm_grad_set_engine(s, (grad_engine){e, dev_start, dev_test, dev_wait, dev_finish, dev_destroy});
    return s;
}
