/* Softmax cross-entropy (label smoothing, fused gradient), top-k accuracy and the hinge losses,
 * own kernels with the arithmetic of the CPU back end (cpu_loss.c, hinge in cpu_gan.c):
 * math_softmax_xent_row's formula with one block per row (rows have up to ~1000 classes) and
 * block reductions in a fixed order; top-k with the CPU's rank and tie rule. */
#include "cuda_internal.h"

/* Block-wide maximum (blockDim.x == CU_THREADS), fixed tree; every thread must call it. */
__device__ __forceinline__ float loss_block_max(float v) {
    __shared__ float part[CU_THREADS];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int s = CU_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            const float o = part[threadIdx.x + s];
            part[threadIdx.x] = o > part[threadIdx.x] ? o : part[threadIdx.x];
        }
        __syncthreads();
    }
    const float r = part[0];
    __syncthreads();
    return r;
}

/* One block per row: losses[i] = -sum(q * log softmax), dlogits = scale * (softmax - q),
 * q = (1 - eps) * onehot(label) + eps / k. */
template <typename T>
__global__ void softmax_xent_kernel(float *losses, T *dlogits, const T *logits, const int32_t *labels, int k,
                                    float eps, float scale) {
    const int64_t row = blockIdx.x;
    const T *x = logits + row * k;
    const int label = labels[row];
    float mx = -INFINITY;
    for (int j = (int)threadIdx.x; j < k; j += (int)blockDim.x) {
        const float v = cu_f(x[j]);
        mx = v > mx ? v : mx;
    }
    /* The CPU starts from logits[0] and keeps it unless a value is greater: the same maximum
     * (NaN aside). */
    mx = loss_block_max(mx);
    float sum = 0.0f;
    for (int j = (int)threadIdx.x; j < k; j += (int)blockDim.x) sum += expf(cu_f(x[j]) - mx);
    sum = cu_block_sum<float>(sum);
    const float lse = mx + logf(sum);
    const float off = eps / (float)k, on = 1.0f - eps + off;
    float loss = 0.0f;
    for (int j = (int)threadIdx.x; j < k; j += (int)blockDim.x) {
        const float logp = cu_f(x[j]) - lse;
        const float q = j == label ? on : off;
        loss -= q * logp;
        if (dlogits) dlogits[row * k + j] = cu_t<T>(scale * (expf(logp) - q));
    }
    loss = cu_block_sum<float>(loss);
    if (threadIdx.x == 0) losses[row] = loss;
}

static void softmax_xent(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits, const dpt_tensor *labels,
                         float smoothing, float grad_scale) {
    const char *what = "softmax_xent";
    DPT_CHECK_LIB("CUDA back end", logits->ndim == 2, what, "logits must be 2-d (N, K), have %d dimensions",
                  logits->ndim);
    const int64_t n = logits->shape[0];
    const int k = (int)logits->shape[1];
    DPT_CHECK_LIB("CUDA back end", labels->dtype == DT_I32 && tensor_numel(labels) >= n, what,
                  "labels must be int32 with %lld values", (long long)n);
    cu_same_dtype(what, DT_F32, losses);
    void *dl = dlogits ? dlogits->data : NULL;
    if (dl) cu_same_dtype(what, logits->dtype, dlogits);
    if (n == 0 || k == 0) return;
    CU_DISPATCH(logits->dtype, what,
                CU_LAUNCH_SYNC(softmax_xent_kernel<T>, (unsigned)n, CU_THREADS, cu_stream(), (float *)losses->data,
                               (T *)dl, (const T *)logits->data, (const int32_t *)labels->data, k, smoothing,
                               grad_scale));
}

/* One block per row: the label's rank (classes scoring higher, ties broken towards the lower
 * index, as the CPU); counts[0] += rank < 1, counts[1] += rank < 5 (integers: exact in any order). */
template <typename T> __global__ void topk_kernel(double *counts, const T *logits, const int32_t *labels, int k) {
    const int64_t row = blockIdx.x;
    const T *x = logits + row * k;
    const int label = labels[row];
    const float target = cu_f(x[label]);
    double rank = 0.0;
    for (int j = (int)threadIdx.x; j < k; j += (int)blockDim.x) {
        const float v = cu_f(x[j]);
        rank += (v > target || (v == target && j < label)) ? 1.0 : 0.0;
    }
    rank = cu_block_sum<double>(rank);
    if (threadIdx.x == 0) {
        if (rank < 1.0) atomicAdd(&counts[0], 1.0);
        if (rank < 5.0) atomicAdd(&counts[1], 1.0);
    }
}

static void topk_correct(int64_t *top1, int64_t *top5, const dpt_tensor *logits, const dpt_tensor *labels, int n) {
    const char *what = "topk_correct";
    DPT_CHECK_LIB("CUDA back end", logits->ndim == 2 && n >= 0 && n <= logits->shape[0], what,
                  "%d rows of logits with %lld", n, (long long)logits->shape[0]);
    DPT_CHECK_LIB("CUDA back end", labels->dtype == DT_I32 && tensor_numel(labels) >= n, what,
                  "labels must be int32 with %d values", n);
    const int k = (int)logits->shape[1];
    *top1 = *top5 = 0;
    if (n == 0 || k == 0) return;
    double *d = cu_ctx_get()->dscratch;
    CUDA_CHECK(cudaMemsetAsync(d, 0, 2 * sizeof(double), cu_stream()));
    CU_DISPATCH(logits->dtype, what,
                CU_LAUNCH_SYNC(topk_kernel<T>, (unsigned)n, CU_THREADS, cu_stream(), d, (const T *)logits->data,
                               (const int32_t *)labels->data, k));
    double h[2];
    cu_read_doubles(h, d, 2);
    *top1 = (int64_t)h[0];
    *top5 = (int64_t)h[1];
}

/* ---- hinge losses ---- */

template <typename T>
__global__ void hinge_d_kernel(float *losses, T *dlogits, const T *logits, int64_t n, float sign, float scale) {
    CU_FOR(i, n) {
        float g;
        losses[i] = math_hinge_d(&g, cu_f(logits[i]), sign, scale);
        if (dlogits) dlogits[i] = cu_t<T>(g);
    }
}

template <typename T> __global__ void hinge_g_kernel(float *losses, T *dlogits, const T *logits, int64_t n, float scale) {
    CU_FOR(i, n) {
        losses[i] = -cu_f(logits[i]);
        if (dlogits) dlogits[i] = cu_t<T>(-scale);
    }
}

static void *hinge_check(const char *what, dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits) {
    const int64_t n = tensor_numel(logits);
    cu_same_dtype(what, DT_F32, losses);
    DPT_CHECK_LIB("CUDA back end", tensor_numel(losses) >= n, what, "%lld losses for %lld logits",
                  (long long)tensor_numel(losses), (long long)n);
    void *dl = dlogits ? dlogits->data : NULL;
    if (dl) {
        cu_same_dtype(what, logits->dtype, dlogits);
        DPT_CHECK_LIB("CUDA back end", tensor_numel(dlogits) == n, what, "%lld gradients for %lld logits",
                      (long long)tensor_numel(dlogits), (long long)n);
    }
    return dl;
}

static void hinge_d(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits, float sign, float grad_scale) {
    const char *what = "hinge_d";
    void *dl = hinge_check(what, losses, dlogits, logits);
    const int64_t n = tensor_numel(logits);
    if (n == 0) return;
    CU_DISPATCH(logits->dtype, what,
                CU_LAUNCH(hinge_d_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (float *)losses->data,
                          (T *)dl, (const T *)logits->data, n, sign, grad_scale));
}

static void hinge_g(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits, float grad_scale) {
    const char *what = "hinge_g";
    void *dl = hinge_check(what, losses, dlogits, logits);
    const int64_t n = tensor_numel(logits);
    if (n == 0) return;
    CU_DISPATCH(logits->dtype, what,
                CU_LAUNCH(hinge_g_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (float *)losses->data,
                          (T *)dl, (const T *)logits->data, n, grad_scale));
}

void cu_fill_loss(dpt_backend *be) {
    be->softmax_xent = softmax_xent;
    be->topk_correct = topk_correct;
    be->hinge_d = hinge_d;
    be->hinge_g = hinge_g;
}
