/* Shared by the CUDA back end's files only.
 *
 * The same sources build twice:
 *   - with nvcc into the real back end (cuDNN, cuBLAS, kernels on the GPU);
 *   - with the host C++ compiler and DPT_CUDA_EMU into the emulated back end (cuda_emu.cpp), which
 *     runs the own kernels on the CPU, one OS thread per CUDA thread of a block, with a real
 *     barrier for __syncthreads. cuDNN and cuBLAS calls are replaced there by plain loops
 *     (cuda_emu_dnn.cpp). CI has no GPU; the emulated back end lets it check every own kernel
 *     (indexing, reductions, dtype handling) against the CPU back end.
 *
 * Rules for kernels, so that both builds run them:
 *   - launch with CU_LAUNCH (no __syncthreads in the kernel) or CU_LAUNCH_SYNC (it has one);
 *   - shared memory only as fixed-size __shared__ arrays; no warp intrinsics (__shfl_*),
 *     no cooperative groups, no dynamic shared memory;
 *   - at most one template argument in a launched kernel's name (the macro splits on commas);
 *   - math with expf, logf, sqrtf, tanhf, fmaxf, fminf, fabsf, rsqrtf; atomicAdd on float and
 *     double only. */
#ifndef DPT_BACKEND_CUDA_INTERNAL_H
#define DPT_BACKEND_CUDA_INTERNAL_H

#ifdef DPT_CUDA_EMU
/* Host definitions before CUDA's headers, which keep them (crt/host_defines.h). Static locals are
 * shared by the threads of the block that runs them: blocks run one at a time. */
#define __shared__ static
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#include <functional>
#endif

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "dpt/backend/backend.h"
#include "dpt/backend/cuda.h"
#include "dpt/backend/math.h"
#include "dpt/core/error.h"
}

#define CUDA_CHECK(expr)                                                                          \
    do {                                                                                          \
        cudaError_t cuda_e_ = (expr);                                                             \
        DPT_CHECK_LIB("CUDA", cuda_e_ == cudaSuccess, #expr, "device %d: %s (%s)", cu_ctx_get()->device, \
                      cudaGetErrorString(cuda_e_), cudaGetErrorName(cuda_e_));                    \
    } while (0)

#define CU_THREADS 256 /* threads per block of the own kernels */

#ifdef DPT_CUDA_EMU
extern thread_local uint3 threadIdx, blockIdx;
extern thread_local dim3 blockDim, gridDim;
void __syncthreads(void);
float atomicAdd(float *p, float v);
double atomicAdd(double *p, double v);
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
/* Runs fn for every thread of every block; `sync`: one OS thread per CUDA thread of a block and a
 * barrier for __syncthreads; otherwise the threads of a block run one after another on the
 * calling thread (a __syncthreads there is a fatal error naming the kernel). */
void emu_launch(const char *name, dim3 grid, dim3 block, bool sync, const std::function<void()> &fn);
#define CU_LAUNCH(kernel, grid, block, stream, ...) \
    emu_launch(#kernel, (grid), (block), false, [&]() { kernel(__VA_ARGS__); })
#define CU_LAUNCH_SYNC(kernel, grid, block, stream, ...) \
    emu_launch(#kernel, (grid), (block), true, [&]() { kernel(__VA_ARGS__); })
#else
#define CU_LAUNCH(kernel, grid, block, stream, ...)                     \
    do {                                                                \
        kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__);          \
        CUDA_CHECK(cudaGetLastError());                                 \
    } while (0)
#define CU_LAUNCH_SYNC CU_LAUNCH
#endif

/* Blocks for a grid-stride loop over n items: enough to fill the device, never more than the
 * items need. The emulator runs blocks one after another, so it gets few. */
static inline unsigned cu_blocks(int64_t n, int threads) {
#ifdef DPT_CUDA_EMU
    const int64_t cap = 8;
#else
    const int64_t cap = 65535;
#endif
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    return (unsigned)(b < cap ? b : cap);
}

/* Grid-stride loop over [0, n). */
#define CU_FOR(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)

/* ---- activation dtypes: float32, bfloat16, float16; arithmetic always in float ---- */
typedef __nv_bfloat16 bf16_t;
typedef __half f16_t;

__device__ __host__ __forceinline__ float cu_f(float x) { return x; }
__device__ __host__ __forceinline__ float cu_f(bf16_t x) { return __bfloat162float(x); }
__device__ __host__ __forceinline__ float cu_f(f16_t x) { return __half2float(x); }
template <typename T> __device__ __host__ __forceinline__ T cu_t(float x);
template <> __device__ __host__ __forceinline__ float cu_t<float>(float x) { return x; }
template <> __device__ __host__ __forceinline__ bf16_t cu_t<bf16_t>(float x) { return __float2bfloat16(x); }
template <> __device__ __host__ __forceinline__ f16_t cu_t<f16_t>(float x) { return __float2half(x); }

/* Runs BODY with T the C++ type of activation dtype DT (F32, BF16 or F16). */
#define CU_DISPATCH(dt, what, ...)                         \
    do {                                                   \
        switch (dt) {                                      \
        case DT_F32: {                                     \
            typedef float T;                               \
            __VA_ARGS__;                                   \
            break;                                         \
        }                                                  \
        case DT_BF16: {                                    \
            typedef bf16_t T;                              \
            __VA_ARGS__;                                   \
            break;                                         \
        }                                                  \
        case DT_F16: {                                     \
            typedef f16_t T;                               \
            __VA_ARGS__;                                   \
            break;                                         \
        }                                                  \
        default: cu_bad_dtype((what), (dt));               \
        }                                                  \
    } while (0)

[[noreturn]] void cu_bad_dtype(const char *what, dpt_dtype dt);
/* Fatal unless every tensor given has dtype dt (NULL entries are skipped). */
void cu_same_dtype(const char *what, dpt_dtype dt, const dpt_tensor *a, const dpt_tensor *b = nullptr,
                   const dpt_tensor *c = nullptr);

/* ---- the per-process context: one device per rank ---- */
typedef struct cu_ctx {
    int device;
    cudaStream_t stream; /* every op of the back end is queued here */
    void *blas;          /* cublasHandle_t (real build) */
    void *dnn;           /* cudnnHandle_t (real build) */
    void *workspace;     /* cuDNN and cuBLAS workspace, grown at op creation, never in a step */
    size_t workspace_bytes;
    double *dscratch; /* (64) device doubles for reductions whose result the host reads */
    double *hscratch; /* (64) pinned host copy of it */
    bool ready;
} cu_ctx;

cu_ctx *cu_ctx_get(void);
/* Allocates the context's scratch and marks it ready (after the device and handles are set). */
void cu_ctx_buffers(void);
static inline cudaStream_t cu_stream(void) { return cu_ctx_get()->stream; }
/* The shared workspace grown to at least `bytes` (at op creation only). */
void cu_workspace_reserve(size_t bytes);
/* Device memory for op-owned buffers created at build time (zeroed). */
void *cu_buffer(size_t bytes);
void cu_buffer_free(void *p);
/* Copies n doubles of device memory into host memory, waiting for the stream. */
void cu_read_doubles(double *host, const double *dev, int n);

/* Every op object starts with this, so op_destroy can dispatch. */
struct be_op {
    void (*destroy)(be_op *op);
};

/* Filling the op table, one group per file. The fp32/tf32/bf16/fp16 tables differ only in
 * precision and act_dtype; ops read both from the tensors and cu_precision(). */
dpt_precision cu_precision(void);
void cu_fill_conv(dpt_backend *be);
void cu_fill_blas(dpt_backend *be);
void cu_fill_norm(dpt_backend *be);
void cu_fill_pool(dpt_backend *be);
void cu_fill_elementwise(dpt_backend *be);
void cu_fill_loss(dpt_backend *be);
void cu_fill_optim(dpt_backend *be);
void cu_fill_gan(dpt_backend *be);

/* Row-major GEMM, batched with strides (batch 1: a plain GEMM), on the context's stream:
 *   C[b] (m, n) = alpha * op(A[b]) op(B[b]) + beta * C[b],
 * op(A) (m, k) is A stored (m, k) row-major, or (k, m) when ta; op(B) (k, n) is B stored (k, n),
 * or (n, k) when tb; lda, ldb, ldc are row strides; sa, sb, sc element strides between batches.
 * A and B have dtype ab (F32, BF16, F16), C has dtype c (ab or F32); float accumulation.
 * F32 products use TF32 tensor cores when the precision is PREC_TF32. Real build: cuBLAS
 * (cuda_gemm.cu); emulated: loops (cuda_emu_dnn.cpp). */
void cu_gemm(dpt_dtype ab, dpt_dtype c, bool ta, bool tb, int m, int n, int k, float alpha, const void *a, int lda,
             int64_t sa, const void *b, int ldb, int64_t sb, float beta, void *cm, int ldc, int64_t sc, int batch);

/* dst[i] (+)= src[i] over n floats of the given dtypes (F32, BF16, F16 each), converting: the
 * gradients of an op computed in the activation dtype into float32 parameter gradients, and the
 * float32 master weights into their activation-dtype copy. */
void cu_convert_into(void *dst, dpt_dtype dst_dt, const void *src, dpt_dtype src_dt, int64_t n, bool accumulate);

/* Block-wide sum of one float per thread (blockDim.x == CU_THREADS), in the order of a fixed tree,
 * so that a result does not depend on scheduling. Every thread of the block must call it; the
 * result is returned to every thread. */
template <typename A> __device__ __forceinline__ A cu_block_sum(A v) {
    __shared__ A part[CU_THREADS];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int s = CU_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    A r = part[0];
    __syncthreads();
    return r;
}

#endif
