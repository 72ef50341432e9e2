/* The emulator under the CUDA back end's own kernels (see cuda_internal.h): kernel launches run on
 * the CPU, and the handful of CUDA runtime calls the kernel files make work on host memory.
 * It exists for CI, which has no GPU: it checks the kernels' indexing, reductions and dtype
 * handling against the CPU back end. It says nothing about speed, about cuDNN or cuBLAS (replaced
 * by cuda_emu_dnn.cpp), or about races between blocks (blocks run one after another). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cuda_internal.h"
extern "C" {
#include "dpt/core/timer.h"
}

thread_local uint3 threadIdx, blockIdx;
thread_local dim3 blockDim, gridDim;

/* The barrier of the launch this thread belongs to (NULL: a launch without __syncthreads). */
static thread_local pthread_barrier_t *emu_barrier;
static thread_local const char *emu_kernel;

void __syncthreads(void) {
    DPT_CHECK_LIB("CUDA emulator", emu_barrier != NULL, emu_kernel,
                  "__syncthreads in a kernel launched with CU_LAUNCH (use CU_LAUNCH_SYNC)");
    pthread_barrier_wait(emu_barrier);
}

static pthread_mutex_t emu_atomic_lock = PTHREAD_MUTEX_INITIALIZER;

float atomicAdd(float *p, float v) {
    pthread_mutex_lock(&emu_atomic_lock);
    float old = *p;
    *p = old + v;
    pthread_mutex_unlock(&emu_atomic_lock);
    return old;
}

double atomicAdd(double *p, double v) {
    pthread_mutex_lock(&emu_atomic_lock);
    double old = *p;
    *p = old + v;
    pthread_mutex_unlock(&emu_atomic_lock);
    return old;
}

typedef struct emu_thread {
    uint3 tid;
    dim3 grid, block;
    const std::function<void()> *fn;
    pthread_barrier_t *barrier;
    const char *name;
} emu_thread;

static void emu_run_blocks(const emu_thread *t) {
    threadIdx = t->tid;
    blockDim = t->block;
    gridDim = t->grid;
    emu_barrier = t->barrier;
    emu_kernel = t->name;
    for (unsigned z = 0; z < t->grid.z; z++)
        for (unsigned y = 0; y < t->grid.y; y++)
            for (unsigned x = 0; x < t->grid.x; x++) {
                blockIdx = make_uint3(x, y, z);
                (*t->fn)();
                /* No block starts before every thread has left the last one: its shared
                 * arrays (static locals) are reused. */
                if (t->barrier) pthread_barrier_wait(t->barrier);
            }
    emu_barrier = NULL;
}

static void *emu_thread_main(void *arg) {
    emu_run_blocks((const emu_thread *)arg);
    return NULL;
}

void emu_launch(const char *name, dim3 grid, dim3 block, bool sync, const std::function<void()> &fn) {
    const unsigned nthreads = block.x * block.y * block.z;
    DPT_CHECK_LIB("CUDA emulator", nthreads >= 1 && nthreads <= 1024 && grid.x >= 1 && grid.y >= 1 && grid.z >= 1,
                  name, "launch of %ux%ux%u blocks of %ux%ux%u threads", grid.x, grid.y, grid.z, block.x, block.y,
                  block.z);
    std::vector<emu_thread> th(nthreads);
    unsigned k = 0;
    for (unsigned z = 0; z < block.z; z++)
        for (unsigned y = 0; y < block.y; y++)
            for (unsigned x = 0; x < block.x; x++, k++) th[k] = {make_uint3(x, y, z), grid, block, &fn, NULL, name};
    if (!sync) {
        /* Threads of a block one after another: each runs every block, which for a kernel without
         * __syncthreads gives the same result as any interleaving of a race-free kernel. */
        for (unsigned i = 0; i < nthreads; i++) emu_run_blocks(&th[i]);
        return;
    }
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, nthreads);
    std::vector<pthread_t> tid(nthreads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (unsigned i = 0; i < nthreads; i++) {
        th[i].barrier = &barrier;
        int rc = pthread_create(&tid[i], &attr, emu_thread_main, &th[i]);
        DPT_CHECK_LIB("CUDA emulator", rc == 0, name, "pthread_create: %s", strerror(rc));
    }
    for (unsigned i = 0; i < nthreads; i++) pthread_join(tid[i], NULL);
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&barrier);
}

/* ---- the CUDA runtime calls the back end makes, on host memory ---- */
extern "C" {

cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!*p) return cudaErrorMemoryAllocation;
    /* Fresh device memory is garbage: NaN bytes make a kernel that reads it before writing show. */
    memset(*p, 0xff, bytes);
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t s) {
    (void)kind;
    (void)s;
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s) {
    (void)s;
    if (bytes) memset(dst, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}

/* Streams run their work when it is queued, so an event is complete once recorded; it keeps the
 * time of recording (comm/'s timeline measures with events). */
struct CUevent_st {
    double t;
};
static struct CUstream_st *emu_stream_handle(void) {
    static char handle;
    return (struct CUstream_st *)(void *)&handle;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    (void)flags;
    *s = emu_stream_handle();
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags) {
    (void)s;
    (void)flags;
    return e ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = (cudaEvent_t)calloc(1, sizeof(CUevent_st));
    return *e ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    (void)s;
    if (!e) return cudaErrorInvalidResourceHandle;
    e->t = timer_now();
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e) { return e ? cudaSuccess : cudaErrorInvalidResourceHandle; }
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return cudaEventQuery(e); }

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!a || !b) return cudaErrorInvalidResourceHandle;
    *ms = (float)(1e3 * (b->t - a->t));
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    free(e);
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
const char *cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }

} /* extern "C" */

/* ---- the device entry points of the emulated back end ---- */

bool cuda_built(void) { return true; }

/* One emulated device, or DPT_EMU_DEVICES of them (tests of ranks with a GPU each, or with none). */
int cuda_device_count(char *why, size_t size) {
    const char *env = getenv("DPT_EMU_DEVICES");
    if (!env || !*env) return 1;
    if (atoi(env) <= 0 && why) snprintf(why, size, "DPT_EMU_DEVICES=%s", env);
    return atoi(env) > 0 ? atoi(env) : 0;
}

void cuda_init(int device) {
    cu_ctx *c = cu_ctx_get();
    if (c->ready) return;
    const int n = cuda_device_count(NULL, 0);
    DPT_CHECK_LIB("CUDA emulator", device >= 0 && device < n, "cuda_init", "device %d requested; the emulator has %d",
                  device, n);
    c->device = device;
    c->stream = 0;
    cu_ctx_buffers();
}

const char *backend_cuda_describe(void) { return "CUDA emulator (own kernels on host threads; tests only)"; }

void cuda_print_info(FILE *f) { fprintf(f, "  CUDA back end : emulated (tests only)\n"); }
