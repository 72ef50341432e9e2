/* Elementwise and plumbing ops of the CUDA back end, own kernels: ReLU, residual add (+ReLU),
 * scale, tanh, scalar shift, gated residual (scaled_add), nearest 2x upsampling, column blocks
 * and row softmax. Activations in the table's dtype (F32, BF16, F16), arithmetic in float;
 * semantics as the CPU back end (cpu_elementwise.c, cpu_gan.c) and backend.h. */
#include "cuda_internal.h"

/* Kernels and helpers have internal linkage: other kernel files may use the same names. */
namespace {

/* Activation dtype of an op: that of `t`, which every other operand given must share. */
static dpt_dtype act_dt(const char *what, const dpt_tensor *t, const dpt_tensor *b = nullptr,
                        const dpt_tensor *c = nullptr) {
    cu_same_dtype(what, t->dtype, t, b, c);
    return t->dtype;
}

static void same_numel(const char *what, int64_t n, const dpt_tensor *t) {
    DPT_CHECK_LIB("CUDA back end", tensor_numel(t) == n, what, "operand has %lld values, expected %lld",
                  (long long)tensor_numel(t), (long long)n);
}

/* ---- ReLU, add, scale, tanh, add_scalar ---- */

template <typename T> __global__ void relu_fwd_kernel(T *y, const T *x, int64_t n) {
    CU_FOR(i, n) y[i] = cu_t<T>(math_relu(cu_f(x[i])));
}

/* da (+)= g and db (+)= g with g = dy, masked by y > 0 when `mask`; da or db may be NULL. */
template <typename T>
__global__ void pass_grad_kernel(T *da, bool acc_a, T *db, bool acc_b, const T *dy, const T *y, bool mask,
                                 int64_t n) {
    CU_FOR(i, n) {
        float g = cu_f(dy[i]);
        if (mask) g = cu_f(y[i]) > 0.0f ? g : 0.0f;
        if (da) da[i] = cu_t<T>(acc_a ? cu_f(da[i]) + g : g);
        if (db) db[i] = cu_t<T>(acc_b ? cu_f(db[i]) + g : g);
    }
}

template <typename T> __global__ void add_fwd_kernel(T *y, const T *a, const T *b, bool relu, int64_t n) {
    CU_FOR(i, n) {
        float v = cu_f(a[i]) + cu_f(b[i]);
        y[i] = cu_t<T>(relu ? math_relu(v) : v);
    }
}

/* y (+)= alpha * x */
template <typename T> __global__ void scale_kernel(T *y, const T *x, float alpha, bool acc, int64_t n) {
    CU_FOR(i, n) {
        float v = alpha * cu_f(x[i]);
        y[i] = cu_t<T>(acc ? cu_f(y[i]) + v : v);
    }
}

template <typename T> __global__ void add_scalar_kernel(T *y, const T *x, float c, int64_t n) {
    CU_FOR(i, n) y[i] = cu_t<T>(cu_f(x[i]) + c);
}

template <typename T> __global__ void tanh_fwd_kernel(T *y, const T *x, int64_t n) {
    CU_FOR(i, n) y[i] = cu_t<T>(tanhf(cu_f(x[i])));
}

template <typename T> __global__ void tanh_bwd_kernel(T *dx, const T *dy, const T *y, bool acc, int64_t n) {
    CU_FOR(i, n) {
        float g = math_tanh_grad(cu_f(dy[i]), cu_f(y[i]));
        dx[i] = cu_t<T>(acc ? cu_f(dx[i]) + g : g);
    }
}

static void relu_forward(dpt_tensor *out, const dpt_tensor *in) {
    const int64_t n = tensor_numel(in);
    same_numel("relu_forward", n, out);
    if (n == 0) return;
    CU_DISPATCH(act_dt("relu_forward", in, out), "relu_forward",
                CU_LAUNCH(relu_fwd_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (T *)out->data,
                          (const T *)in->data, n));
}

static void relu_backward(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *out) {
    const int64_t n = tensor_numel(out);
    same_numel("relu_backward", n, din);
    same_numel("relu_backward", n, dout);
    if (n == 0) return;
    CU_DISPATCH(act_dt("relu_backward", din, dout, out), "relu_backward",
                CU_LAUNCH(pass_grad_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (T *)din->data,
                          accumulate, (T *)nullptr, false, (const T *)dout->data, (const T *)out->data, true, n));
}

static void add_forward(dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, bool relu) {
    const int64_t n = tensor_numel(out);
    same_numel("add_forward", n, a);
    same_numel("add_forward", n, b);
    if (n == 0) return;
    CU_DISPATCH(act_dt("add_forward", out, a, b), "add_forward",
                CU_LAUNCH(add_fwd_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (T *)out->data,
                          (const T *)a->data, (const T *)b->data, relu, n));
}

static void add_backward(dpt_tensor *da, bool accumulate_a, dpt_tensor *db, bool accumulate_b,
                         const dpt_tensor *dout, const dpt_tensor *out, bool relu) {
    const int64_t n = tensor_numel(out);
    if (da) same_numel("add_backward", n, da);
    if (db) same_numel("add_backward", n, db);
    same_numel("add_backward", n, dout);
    if (n == 0 || (!da && !db)) return;
    cu_same_dtype("add_backward", dout->dtype, da, db, out);
    CU_DISPATCH(dout->dtype, "add_backward",
                CU_LAUNCH(pass_grad_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(),
                          da ? (T *)da->data : (T *)nullptr, accumulate_a, db ? (T *)db->data : (T *)nullptr,
                          accumulate_b, (const T *)dout->data, (const T *)out->data, relu, n));
}

static void scale_into(const char *what, dpt_tensor *dst, bool accumulate, const dpt_tensor *src, float alpha) {
    const int64_t n = tensor_numel(src);
    same_numel(what, n, dst);
    if (n == 0) return;
    CU_DISPATCH(act_dt(what, dst, src), what,
                CU_LAUNCH(scale_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (T *)dst->data,
                          (const T *)src->data, alpha, accumulate, n));
}

static void scale_forward(dpt_tensor *out, const dpt_tensor *in, float alpha) {
    scale_into("scale_forward", out, false, in, alpha);
}

static void scale_backward(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, float alpha) {
    scale_into("scale_backward", din, accumulate, dout, alpha);
}

static void add_scalar_forward(dpt_tensor *out, const dpt_tensor *in, float c) {
    const int64_t n = tensor_numel(in);
    same_numel("add_scalar_forward", n, out);
    if (n == 0) return;
    CU_DISPATCH(act_dt("add_scalar_forward", out, in), "add_scalar_forward",
                CU_LAUNCH(add_scalar_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (T *)out->data,
                          (const T *)in->data, c, n));
}

static void tanh_forward(dpt_tensor *out, const dpt_tensor *in) {
    const int64_t n = tensor_numel(in);
    same_numel("tanh_forward", n, out);
    if (n == 0) return;
    CU_DISPATCH(act_dt("tanh_forward", out, in), "tanh_forward",
                CU_LAUNCH(tanh_fwd_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (T *)out->data,
                          (const T *)in->data, n));
}

static void tanh_backward(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *out) {
    const int64_t n = tensor_numel(out);
    same_numel("tanh_backward", n, din);
    same_numel("tanh_backward", n, dout);
    if (n == 0) return;
    CU_DISPATCH(act_dt("tanh_backward", din, dout, out), "tanh_backward",
                CU_LAUNCH(tanh_bwd_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), (T *)din->data,
                          (const T *)dout->data, (const T *)out->data, accumulate, n));
}

/* ---- gated residual: out = a + gamma * b ---- */

template <typename T>
__global__ void scaled_add_fwd_kernel(T *y, const T *a, const T *b, const float *gamma, int64_t n) {
    const float g = *gamma;
    CU_FOR(i, n) y[i] = cu_t<T>(cu_f(a[i]) + g * cu_f(b[i]));
}

/* At most this many blocks for the dgamma reduction: their partial sums go to the context's
 * 64-double scratch, which the second kernel adds in a fixed order. */
#define SA_BLOCKS 64

/* da (+)= dy, db (+)= gamma * dy (either may be NULL) and, when part is set, each block's
 * sum of dy * b (double) into part[blockIdx.x]. */
template <typename T>
__global__ void scaled_add_bwd_kernel(T *da, bool acc_a, T *db, bool acc_b, double *part, const T *dy, const T *b,
                                      const float *gamma, int64_t n) {
    const float g = *gamma;
    double s = 0.0;
    CU_FOR(i, n) {
        const float d = cu_f(dy[i]);
        if (da) da[i] = cu_t<T>(acc_a ? cu_f(da[i]) + d : d);
        if (db) {
            const float v = g * d;
            db[i] = cu_t<T>(acc_b ? cu_f(db[i]) + v : v);
        }
        if (part) s += (double)d * (double)cu_f(b[i]);
    }
    if (part) {
        s = cu_block_sum(s);
        if (threadIdx.x == 0) part[blockIdx.x] = s;
    }
}

/* One block: dgamma (+)= sum of part[0..nparts). */
__global__ void scaled_add_dgamma_kernel(float *dgamma, const double *part, int nparts, bool acc) {
    double s = (int)threadIdx.x < nparts ? part[threadIdx.x] : 0.0;
    s = cu_block_sum(s);
    if (threadIdx.x == 0) *dgamma = acc ? *dgamma + (float)s : (float)s;
}

static void scaled_add_forward(dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, const dpt_tensor *gamma) {
    const int64_t n = tensor_numel(out);
    same_numel("scaled_add_forward", n, a);
    same_numel("scaled_add_forward", n, b);
    DPT_CHECK_LIB("CUDA back end", tensor_numel(gamma) == 1 && gamma->dtype == DT_F32, "scaled_add_forward",
                  "gamma must be one float32 value");
    if (n == 0) return;
    CU_DISPATCH(act_dt("scaled_add_forward", out, a, b), "scaled_add_forward",
                CU_LAUNCH(scaled_add_fwd_kernel<T>, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(),
                          (T *)out->data, (const T *)a->data, (const T *)b->data, (const float *)gamma->data, n));
}

static void scaled_add_backward(dpt_tensor *da, bool accumulate_a, dpt_tensor *db, bool accumulate_b,
                                dpt_tensor *dgamma, bool param_accumulate, const dpt_tensor *dout,
                                const dpt_tensor *b, const dpt_tensor *gamma) {
    const int64_t n = tensor_numel(dout);
    if (da) same_numel("scaled_add_backward", n, da);
    if (db) same_numel("scaled_add_backward", n, db);
    same_numel("scaled_add_backward", n, b);
    DPT_CHECK_LIB("CUDA back end", tensor_numel(gamma) == 1 && gamma->dtype == DT_F32, "scaled_add_backward",
                  "gamma must be one float32 value");
    DPT_CHECK_LIB("CUDA back end", !dgamma || (tensor_numel(dgamma) == 1 && dgamma->dtype == DT_F32),
                  "scaled_add_backward", "dgamma must be one float32 value");
    cu_same_dtype("scaled_add_backward", dout->dtype, da, db, b);
    double *part = dgamma ? cu_ctx_get()->dscratch : nullptr;
    unsigned blocks = cu_blocks(n, CU_THREADS);
    if (part && blocks > SA_BLOCKS) blocks = SA_BLOCKS;
    if (n > 0 && (da || db || part)) {
        CU_DISPATCH(dout->dtype, "scaled_add_backward",
                    CU_LAUNCH_SYNC(scaled_add_bwd_kernel<T>, blocks, CU_THREADS, cu_stream(),
                                   da ? (T *)da->data : (T *)nullptr, accumulate_a,
                                   db ? (T *)db->data : (T *)nullptr, accumulate_b, part, (const T *)dout->data,
                                   (const T *)b->data, (const float *)gamma->data, n));
    }
    if (dgamma) {
        if (n == 0) {
            blocks = 1;
            CUDA_CHECK(cudaMemsetAsync(part, 0, sizeof(double), cu_stream()));
        }
        CU_LAUNCH_SYNC(scaled_add_dgamma_kernel, 1, CU_THREADS, cu_stream(), (float *)dgamma->data,
                       (const double *)part, (int)blocks, param_accumulate);
    }
}

/* ---- nearest 2x upsampling ----
 * Both layouts as planes of (H, W) pixels of `inner` contiguous values: NHWC has N planes with
 * inner = C, NCHW has N * C planes with inner = 1. Indices in int (checked at launch). */

template <typename T>
__global__ void upsample_fwd_kernel(T *y, const T *x, int h, int w, int inner, int64_t total) {
    CU_FOR(i, total) {
        int t = (int)i;
        const int e = t % inner;
        t /= inner;
        const int ox = t % (2 * w);
        t /= 2 * w;
        const int oy = t % (2 * h);
        const int p = t / (2 * h);
        y[i] = x[((int64_t)(p * h + (oy >> 1)) * w + (ox >> 1)) * inner + e];
    }
}

/* Each input pixel sums its four children, in the CPU's order. */
template <typename T>
__global__ void upsample_bwd_kernel(T *dx, const T *dy, int h, int w, int inner, bool acc, int64_t total) {
    CU_FOR(i, total) {
        int t = (int)i;
        const int e = t % inner;
        t /= inner;
        const int ix = t % w;
        t /= w;
        const int iy = t % h;
        const int p = t / h;
        const int64_t row = (int64_t)2 * w * inner;
        const T *d0 = dy + ((int64_t)(p * 2 * h + 2 * iy) * (2 * w) + 2 * ix) * inner + e, *d1 = d0 + row;
        const float g = (cu_f(d0[0]) + cu_f(d0[inner])) + (cu_f(d1[0]) + cu_f(d1[inner]));
        dx[i] = cu_t<T>(acc ? cu_f(dx[i]) + g : g);
    }
}

/* Plane geometry of the smaller tensor and the check that big is (N, C, 2H, 2W), same layout. */
static void up_geom(const char *what, const dpt_tensor *small, const dpt_tensor *big, int *h, int *w, int *inner) {
    DPT_CHECK_LIB("CUDA back end", small->ndim == 4 && big->ndim == 4 && small->layout == big->layout, what,
                  "4-d tensors of one layout expected");
    DPT_CHECK_LIB("CUDA back end",
                  big->shape[0] == small->shape[0] && big->shape[1] == small->shape[1] &&
                      big->shape[2] == 2 * small->shape[2] && big->shape[3] == 2 * small->shape[3],
                  what, "output must be (N, C, 2H, 2W) of the input");
    DPT_CHECK_LIB("CUDA back end", tensor_numel(big) < INT32_MAX, what, "%lld values: too many for int indices",
                  (long long)tensor_numel(big));
    *h = (int)small->shape[2];
    *w = (int)small->shape[3];
    *inner = small->layout == LAYOUT_NHWC ? (int)small->shape[1] : 1;
}

static void upsample2x_forward(dpt_tensor *out, const dpt_tensor *in) {
    int h, w, inner;
    up_geom("upsample2x_forward", in, out, &h, &w, &inner);
    const int64_t total = tensor_numel(out);
    if (total == 0) return;
    CU_DISPATCH(act_dt("upsample2x_forward", out, in), "upsample2x_forward",
                CU_LAUNCH(upsample_fwd_kernel<T>, cu_blocks(total, CU_THREADS), CU_THREADS, cu_stream(),
                          (T *)out->data, (const T *)in->data, h, w, inner, total));
}

static void upsample2x_backward(dpt_tensor *din, bool accumulate, const dpt_tensor *dout) {
    int h, w, inner;
    up_geom("upsample2x_backward", din, dout, &h, &w, &inner);
    const int64_t total = tensor_numel(din);
    if (total == 0) return;
    CU_DISPATCH(act_dt("upsample2x_backward", din, dout), "upsample2x_backward",
                CU_LAUNCH(upsample_bwd_kernel<T>, cu_blocks(total, CU_THREADS), CU_THREADS, cu_stream(),
                          (T *)din->data, (const T *)dout->data, h, w, inner, accumulate, total));
}

/* ---- column blocks ---- */

template <typename T>
__global__ void copy_cols_kernel(T *d, int64_t ld, const T *s, int64_t ls, int64_t count, bool acc, int64_t total) {
    CU_FOR(i, total) {
        const int64_t r = i / count, j = i - r * count;
        const T v = s[r * ls + j];
        T *p = d + r * ld + j;
        *p = acc ? cu_t<T>(cu_f(*p) + cu_f(v)) : v;
    }
}

static void copy_cols(dpt_tensor *dst, int64_t dst_col, const dpt_tensor *src, int64_t src_col, int64_t count,
                      bool accumulate) {
    DPT_CHECK_LIB("CUDA back end", dst->ndim == 2 && src->ndim == 2 && dst->shape[0] == src->shape[0], "copy_cols",
                  "2-d tensors with the same number of rows expected");
    DPT_CHECK(dst_col >= 0 && src_col >= 0 && count >= 0);
    DPT_CHECK(dst_col + count <= dst->shape[1] && src_col + count <= src->shape[1]);
    const int64_t rows = dst->shape[0], total = rows * count;
    if (total == 0) return;
    CU_DISPATCH(act_dt("copy_cols", dst, src), "copy_cols",
                CU_LAUNCH(copy_cols_kernel<T>, cu_blocks(total, CU_THREADS), CU_THREADS, cu_stream(),
                          (T *)dst->data + dst_col, dst->shape[1], (const T *)src->data + src_col, src->shape[1],
                          count, accumulate, total));
}

/* ---- softmax over the last dimension ----
 * Rows up to SM_SMALL values: one thread per row. Longer rows: one block per row (grid-stride
 * over rows), each thread keeping a running (max, sum of exp) over its strided values, merged
 * across the block in a fixed tree (online softmax: two reads of the row instead of three). */
#define SM_SMALL 32

/* (m, s) <- the merge of (m, s) and (m2, s2), s being sums of exp(x - m). */
__device__ __forceinline__ void sm_merge(float &m, float &s, float m2, float s2) {
    if (m2 == -INFINITY) return;
    if (m == -INFINITY) {
        m = m2;
        s = s2;
        return;
    }
    const float mx = fmaxf(m, m2);
    s = s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

/* Block-wide merge of every thread's (m, s); every thread gets the result. */
__device__ __forceinline__ void sm_block_merge(float &m, float &s) {
    __shared__ float pm[CU_THREADS], ps[CU_THREADS];
    const int t = (int)threadIdx.x;
    pm[t] = m;
    ps[t] = s;
    __syncthreads();
    for (int k = CU_THREADS / 2; k > 0; k >>= 1) {
        if (t < k) {
            float a = pm[t], b = ps[t];
            sm_merge(a, b, pm[t + k], ps[t + k]);
            pm[t] = a;
            ps[t] = b;
        }
        __syncthreads();
    }
    m = pm[0];
    s = ps[0];
    __syncthreads();
}

template <typename T> __global__ void softmax_small_fwd_kernel(T *y, const T *x, int64_t rows, int len) {
    CU_FOR(r, rows) {
        const T *xr = x + r * len;
        T *yr = y + r * len;
        float mx = cu_f(xr[0]);
        for (int j = 1; j < len; j++) mx = fmaxf(mx, cu_f(xr[j]));
        float sum = 0.0f;
        for (int j = 0; j < len; j++) sum += expf(cu_f(xr[j]) - mx);
        const float inv = 1.0f / sum;
        for (int j = 0; j < len; j++) yr[j] = cu_t<T>(expf(cu_f(xr[j]) - mx) * inv);
    }
}

template <typename T> __global__ void softmax_block_fwd_kernel(T *y, const T *x, int64_t rows, int64_t len) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * len;
        T *yr = y + r * len;
        float m = -INFINITY, s = 0.0f;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
            const float v = cu_f(xr[j]);
            if (v > m) {
                s = s * expf(m - v) + 1.0f;
                m = v;
            } else if (m != -INFINITY) {
                s += expf(v - m);
            }
        }
        sm_block_merge(m, s);
        const float inv = 1.0f / s;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) yr[j] = cu_t<T>(expf(cu_f(xr[j]) - m) * inv);
    }
}

/* dx (+)= y * (dy - sum(dy * y)) per row, the dot product in double as the CPU's. */
template <typename T>
__global__ void softmax_small_bwd_kernel(T *dx, const T *dy, const T *y, bool acc, int64_t rows, int len) {
    CU_FOR(r, rows) {
        const T *gr = dy + r * len, *yr = y + r * len;
        T *dr = dx + r * len;
        double dot = 0.0;
        for (int j = 0; j < len; j++) dot += (double)cu_f(gr[j]) * cu_f(yr[j]);
        const float s = (float)dot;
        for (int j = 0; j < len; j++) {
            const float g = cu_f(yr[j]) * (cu_f(gr[j]) - s);
            dr[j] = cu_t<T>(acc ? cu_f(dr[j]) + g : g);
        }
    }
}

template <typename T>
__global__ void softmax_block_bwd_kernel(T *dx, const T *dy, const T *y, bool acc, int64_t rows, int64_t len) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *gr = dy + r * len, *yr = y + r * len;
        T *dr = dx + r * len;
        double dot = 0.0;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) dot += (double)cu_f(gr[j]) * cu_f(yr[j]);
        const float s = (float)cu_block_sum(dot);
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
            const float g = cu_f(yr[j]) * (cu_f(gr[j]) - s);
            dr[j] = cu_t<T>(acc ? cu_f(dr[j]) + g : g);
        }
    }
}

static void softmax_rows_forward(dpt_tensor *out, const dpt_tensor *in) {
    const int64_t n = tensor_numel(in);
    same_numel("softmax_rows_forward", n, out);
    const int64_t len = in->ndim > 0 ? in->shape[in->ndim - 1] : 1;
    if (n == 0 || len == 0) return;
    const int64_t rows = n / len;
    if (len <= SM_SMALL) {
        CU_DISPATCH(act_dt("softmax_rows_forward", out, in), "softmax_rows_forward",
                    CU_LAUNCH(softmax_small_fwd_kernel<T>, cu_blocks(rows, CU_THREADS), CU_THREADS, cu_stream(),
                              (T *)out->data, (const T *)in->data, rows, (int)len));
    } else {
        CU_DISPATCH(act_dt("softmax_rows_forward", out, in), "softmax_rows_forward",
                    CU_LAUNCH_SYNC(softmax_block_fwd_kernel<T>, cu_blocks(rows, 1), CU_THREADS, cu_stream(),
                                   (T *)out->data, (const T *)in->data, rows, len));
    }
}

static void softmax_rows_backward(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *out) {
    const int64_t n = tensor_numel(out);
    same_numel("softmax_rows_backward", n, din);
    same_numel("softmax_rows_backward", n, dout);
    const int64_t len = out->ndim > 0 ? out->shape[out->ndim - 1] : 1;
    if (n == 0 || len == 0) return;
    const int64_t rows = n / len;
    if (len <= SM_SMALL) {
        CU_DISPATCH(act_dt("softmax_rows_backward", din, dout, out), "softmax_rows_backward",
                    CU_LAUNCH(softmax_small_bwd_kernel<T>, cu_blocks(rows, CU_THREADS), CU_THREADS, cu_stream(),
                              (T *)din->data, (const T *)dout->data, (const T *)out->data, accumulate, rows,
                              (int)len));
    } else {
        CU_DISPATCH(act_dt("softmax_rows_backward", din, dout, out), "softmax_rows_backward",
                    CU_LAUNCH_SYNC(softmax_block_bwd_kernel<T>, cu_blocks(rows, 1), CU_THREADS, cu_stream(),
                                   (T *)din->data, (const T *)dout->data, (const T *)out->data, accumulate, rows,
                                   len));
    }
}

} // namespace

void cu_fill_elementwise(dpt_backend *be) {
    be->relu_forward = relu_forward;
    be->relu_backward = relu_backward;
    be->add_forward = add_forward;
    be->add_backward = add_backward;
    be->scale_forward = scale_forward;
    be->scale_backward = scale_backward;
    be->tanh_forward = tanh_forward;
    be->tanh_backward = tanh_backward;
    be->add_scalar_forward = add_scalar_forward;
    be->scaled_add_forward = scaled_add_forward;
    be->scaled_add_backward = scaled_add_backward;
    be->upsample2x_forward = upsample2x_forward;
    be->upsample2x_backward = upsample2x_backward;
    be->copy_cols = copy_cols;
    be->softmax_rows_forward = softmax_rows_forward;
    be->softmax_rows_backward = softmax_rows_backward;
}
