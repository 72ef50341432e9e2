/* The CUDA back end's op tables (one per precision), its memory functions, dtype conversion and
 * the finiteness test of dynamic loss scaling. Device set-up and versions: cuda_device.cu (real)
 * or cuda_emu_dnn.cpp (emulated). */
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

static cu_ctx g_ctx;
static dpt_precision g_precision = PREC_FP32;

cu_ctx *cu_ctx_get(void) { return &g_ctx; }
dpt_precision cu_precision(void) { return g_precision; }
void *cuda_stream(void) { return (void *)g_ctx.stream; }

void cu_bad_dtype(const char *what, dpt_dtype dt) {
    dpt_fatal("CUDA back end", what, __FILE__, __LINE__, "dtype %s is not an activation dtype (f32, bf16, f16)",
              dtype_name(dt));
}

void cu_same_dtype(const char *what, dpt_dtype dt, const dpt_tensor *a, const dpt_tensor *b, const dpt_tensor *c) {
    const dpt_tensor *t[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        DPT_CHECK_LIB("CUDA back end", !t[i] || t[i]->dtype == dt, what, "operand %d has dtype %s, expected %s", i,
                      t[i] ? dtype_name(t[i]->dtype) : "-", dtype_name(dt));
}

void cu_workspace_reserve(size_t bytes) {
    cu_ctx *c = &g_ctx;
    if (bytes <= c->workspace_bytes) return;
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    if (c->workspace) CUDA_CHECK(cudaFree(c->workspace));
    CUDA_CHECK(cudaMalloc(&c->workspace, bytes));
    c->workspace_bytes = bytes;
}

void *cu_buffer(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    CUDA_CHECK(cudaMalloc(&p, bytes));
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cu_stream()));
    return p;
}

void cu_buffer_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

void cu_read_doubles(double *host, const double *dev, int n) {
    CUDA_CHECK(cudaMemcpyAsync(g_ctx.hscratch, dev, (size_t)n * sizeof(double), cudaMemcpyDeviceToHost, cu_stream()));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
    memcpy(host, g_ctx.hscratch, (size_t)n * sizeof(double));
}

/* ---- memory ---- */

static void *mem_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaMalloc(&p, bytes);
    DPT_CHECK_LIB("CUDA", e == cudaSuccess, "cudaMalloc", "device %d: %.1f MiB: %s", g_ctx.device,
                  (double)bytes / (1 << 20), cudaGetErrorString(e));
    return p;
}

static void mem_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

/* Host-to-device copies are queued; the source may be reused as soon as this returns, so the
 * copy is waited for unless the host buffer is pinned and owned by the caller for longer (the
 * loader's double buffers): a pageable copy returns after staging anyway. */
static void copy_to_device(void *dst, const void *src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu_stream()));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
}

static void copy_to_host(void *dst, const void *src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu_stream()));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
}

static void *host_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 1);
    DPT_CHECK_LIB("CUDA", e == cudaSuccess, "cudaMallocHost", "%.1f MiB of pinned host memory: %s",
                  (double)bytes / (1 << 20), cudaGetErrorString(e));
    return p;
}

static void host_free(void *p) {
    if (p) CUDA_CHECK(cudaFreeHost(p));
}

static void fill_zero(void *dst, size_t bytes) { CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, cu_stream())); }

static void synchronize(void) { CUDA_CHECK(cudaStreamSynchronize(cu_stream())); }

/* ---- dtype conversion ---- */

template <typename D, typename S> __global__ void convert_kernel(D *dst, const S *src, int64_t n, bool acc) {
    CU_FOR(i, n) {
        float v = cu_f(src[i]);
        dst[i] = cu_t<D>(acc ? cu_f(dst[i]) + v : v);
    }
}

template <typename D> static void convert_from(D *dst, const void *src, dpt_dtype sdt, int64_t n, bool acc) {
    const unsigned blocks = cu_blocks(n, CU_THREADS);
    switch (sdt) {
    case DT_F32: {
        using Kf = void (*)(D *, const float *, int64_t, bool);
        Kf k = convert_kernel<D, float>;
        CU_LAUNCH(k, blocks, CU_THREADS, cu_stream(), dst, (const float *)src, n, acc);
        break;
    }
    case DT_BF16: {
        using Kb = void (*)(D *, const bf16_t *, int64_t, bool);
        Kb k = convert_kernel<D, bf16_t>;
        CU_LAUNCH(k, blocks, CU_THREADS, cu_stream(), dst, (const bf16_t *)src, n, acc);
        break;
    }
    case DT_F16: {
        using Kh = void (*)(D *, const f16_t *, int64_t, bool);
        Kh k = convert_kernel<D, f16_t>;
        CU_LAUNCH(k, blocks, CU_THREADS, cu_stream(), dst, (const f16_t *)src, n, acc);
        break;
    }
    default: cu_bad_dtype("convert (source)", sdt);
    }
}

void cu_convert_into(void *dst, dpt_dtype dst_dt, const void *src, dpt_dtype src_dt, int64_t n, bool accumulate) {
    if (n == 0) return;
    CU_DISPATCH(dst_dt, "convert (destination)", convert_from<T>((T *)dst, src, src_dt, n, accumulate));
}

static void convert(dpt_tensor *dst, const dpt_tensor *src) {
    const int64_t n = tensor_numel(src);
    DPT_CHECK_LIB("CUDA back end", tensor_numel(dst) == n, "convert", "%lld values into %lld", (long long)n,
                  (long long)tensor_numel(dst));
    if (dst->dtype == src->dtype) {
        CUDA_CHECK(cudaMemcpyAsync(dst->data, src->data, tensor_bytes(src), cudaMemcpyDeviceToDevice, cu_stream()));
        return;
    }
    cu_convert_into(dst->data, dst->dtype, src->data, src->dtype, n, false);
}

/* ---- finiteness (dynamic loss scaling) ---- */

__global__ void count_nonfinite_kernel(double *count, const float *x, int64_t n) {
    float bad = 0.0f;
    CU_FOR(i, n) {
        const float v = x[i];
        if (!(v - v == 0.0f)) bad += 1.0f; /* NaN and +-Inf give NaN for v - v */
    }
    bad = cu_block_sum(bad);
    if (threadIdx.x == 0 && bad > 0.0f) atomicAdd(count, (double)bad);
}

static int all_finite(const float *x, int64_t n) {
    double *d = g_ctx.dscratch;
    CUDA_CHECK(cudaMemsetAsync(d, 0, sizeof(double), cu_stream()));
    if (n > 0) CU_LAUNCH_SYNC(count_nonfinite_kernel, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), d, x, n);
    double bad = 0.0;
    cu_read_doubles(&bad, d, 1);
    return bad == 0.0;
}

/* ---- the tables ---- */

static void op_destroy(be_op *op) {
    if (op) op->destroy(op);
}

static void set_threads(int n) { (void)n; }
static int get_threads(void) { return 1; }

static dpt_backend g_tables[4];

const dpt_backend *backend_cuda(dpt_precision precision) {
    DPT_CHECK_LIB("CUDA back end", g_ctx.ready, "backend_cuda", "cuda_init was not called");
    DPT_CHECK(precision >= PREC_FP32 && precision <= PREC_FP16);
    dpt_backend *be = &g_tables[precision];
    g_precision = precision;
    if (be->name) return be;
    static const char *names[4] = {"cuda-fp32", "cuda-tf32", "cuda-bf16", "cuda-fp16"};
    static const dpt_dtype dts[4] = {DT_F32, DT_F32, DT_BF16, DT_F16};
    be->name = names[precision];
    be->device = DEV_CUDA;
    be->act_layout = LAYOUT_NHWC; /* cuDNN's fast layout for tensor-core convolutions */
    be->precision = precision;
    be->act_dtype = dts[precision];
    be->set_threads = set_threads;
    be->get_threads = get_threads;
    be->op_destroy = op_destroy;
    be->mem_alloc = mem_alloc;
    be->mem_free = mem_free;
    be->copy_to_device = copy_to_device;
    be->copy_to_host = copy_to_host;
    be->fill_zero = fill_zero;
    be->host_alloc = host_alloc;
    be->host_free = host_free;
    be->convert = convert;
    be->all_finite = all_finite;
    be->synchronize = synchronize;
    cu_fill_conv(be);
    cu_fill_blas(be);
    cu_fill_norm(be);
    cu_fill_pool(be);
    cu_fill_elementwise(be);
    cu_fill_loss(be);
    cu_fill_optim(be);
    cu_fill_gan(be);
    return be;
}

/* The context's buffers; the device and its handles are set up first (cuda_device.cu). */
void cu_ctx_buffers(void) {
    CUDA_CHECK(cudaMalloc((void **)&g_ctx.dscratch, 64 * sizeof(double)));
    CUDA_CHECK(cudaMallocHost((void **)&g_ctx.hscratch, 64 * sizeof(double)));
    g_ctx.ready = true;
}
