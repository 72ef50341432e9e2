/* Convolution: cuDNN's convolution API on NHWC activations, plus own kernels for what cuDNN's
 * layouts and dtypes leave over.
 *
 * The framework stores the weight as a float32 (K, C, R, S) parameter; cuDNN's NHWC filter format
 * is (K, R, S, C) in the activation dtype. Each forward (and each data gradient) therefore
 * transposes and converts the weight into an op-owned KRSC buffer in one small kernel, and the
 * weight gradient, which cuDNN writes KRSC in the activation dtype, is transposed back into the
 * float32 KCRS gradient (added to it when param_accumulate). The bias is added and its gradient
 * reduced by own kernels: the bias is float32 while y may be bf16/f16, and the reduction is
 * deterministic (fixed order) and accumulates in float.
 *
 * Algorithms are chosen once per shape, dtype and math type at op creation (cudnnFind*Ex on
 * scratch buffers, or cuDNN's heuristics with DPT_CUDNN_FIND=0 or when the scratch does not fit)
 * and cached in a static table, so the many identical layers of a ResNet search once. Their
 * workspace is the context's shared one, grown at creation; cuBLAS's handle is re-bound to it.
 *
 * The same file builds into the emulated back end (cuda_emu_dnn.cpp includes it with
 * DPT_CUDA_EMU): there the three cuDNN calls are replaced by naive host loops (emu_conv_*, in
 * cuda_emu_dnn.cpp) and everything else (weight transposes, bias kernels, the gradient
 * accumulation contract) runs as written here. */
#include <stdlib.h>
#include <string.h>

#ifndef DPT_CUDA_EMU
#include "cuda_libs.h"
#else
#include "cuda_internal.h"
/* The naive stand-ins for cuDNN's three calls (cuda_emu_dnn.cpp); weights KRSC in dtype dt. */
void emu_conv_forward(const be_conv_desc *d, dpt_dtype dt, void *y, const void *x, const void *w);
void emu_conv_backward_data(const be_conv_desc *d, dpt_dtype dt, void *dx, bool accumulate, const void *dy,
                            const void *w);
void emu_conv_backward_filter(const be_conv_desc *d, dpt_dtype dt, void *dw, const void *x, const void *dy);
#endif

/* ---- own kernels ---- */

/* dst (K, R, S, C) in T = w (K, C, R, S) float32. i runs over dst. */
template <typename T> __global__ void conv_weight_krsc_kernel(T *dst, const float *w, int K, int C, int RS) {
    const int64_t n = (int64_t)K * C * RS;
    CU_FOR(i, n) {
        const int64_t c = i % C, t = i / C;
        const int64_t rs = t % RS, k = t / RS;
        dst[i] = cu_t<T>(w[(k * C + c) * RS + rs]);
    }
}

/* dw (K, C, R, S) float32 (+)= src (K, R, S, C) in T. i runs over dw. */
template <typename T> __global__ void conv_grad_kcrs_kernel(float *dw, const T *src, int K, int C, int RS, bool acc) {
    const int64_t n = (int64_t)K * C * RS;
    CU_FOR(i, n) {
        const int64_t rs = i % RS, t = i / RS;
        const int64_t c = t % C, k = t / C;
        const float v = cu_f(src[(k * RS + rs) * C + c]);
        dw[i] = acc ? dw[i] + v : v;
    }
}

/* y (rows, K) += bias (K), NHWC rows. */
template <typename T> __global__ void conv_bias_add_kernel(T *y, const float *bias, int64_t rows, int K) {
    const int64_t n = rows * K;
    CU_FOR(i, n) y[i] = cu_t<T>(cu_f(y[i]) + bias[i % K]);
}

/* Bias gradient, first stage: part[split][k] = sum of dy[row][k] over the split's rows. A block
 * has 32 channels (consecutive in memory: coalesced reads) x 8 row lanes; blockIdx.y is the split. */
#define BG_CH 32
#define BG_LANES (CU_THREADS / BG_CH)
template <typename T> __global__ void conv_bias_grad_part_kernel(float *part, const T *dy, int64_t rows, int K) {
    __shared__ float sums[BG_LANES][BG_CH];
    const int cx = (int)threadIdx.x % BG_CH, lane = (int)threadIdx.x / BG_CH;
    const int ch = (int)blockIdx.x * BG_CH + cx;
    const int64_t per = (rows + gridDim.y - 1) / gridDim.y;
    const int64_t r0 = (int64_t)blockIdx.y * per;
    const int64_t r1 = r0 + per < rows ? r0 + per : rows;
    float acc = 0.0f;
    if (ch < K)
        for (int64_t r = r0 + lane; r < r1; r += BG_LANES) acc += cu_f(dy[r * K + ch]);
    sums[lane][cx] = acc;
    __syncthreads();
    if (lane == 0 && ch < K) {
        float s = 0.0f;
        for (int l = 0; l < BG_LANES; l++) s += sums[l][cx];
        part[(int64_t)blockIdx.y * K + ch] = s;
    }
}

/* Second stage: db[k] (+)= sum over splits of part[split][k], in split order. */
__global__ void conv_bias_grad_sum_kernel(float *db, const float *part, int splits, int K, bool acc) {
    CU_FOR(k, (int64_t)K) {
        float s = 0.0f;
        for (int p = 0; p < splits; p++) s += part[(int64_t)p * K + k];
        db[k] = acc ? db[k] + s : s;
    }
}

/* ---- the op ---- */

typedef struct conv_op {
    be_op base;
    be_conv_desc d;
    dpt_dtype dt;  /* activation dtype, fixed at creation by the precision */
    void *w_act;   /* weight (K, R, S, C) in dt */
    void *dw_act;  /* weight gradient (K, R, S, C) in dt, as cuDNN writes it */
    float *bias_part; /* (bias_splits, K) partial bias-gradient sums */
    int bias_splits;
#ifndef DPT_CUDA_EMU
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    /* One per direction: each carries the math type its algorithm was chosen with. */
    cudnnConvolutionDescriptor_t conv_fwd, conv_bd, conv_bf;
    cudnnConvolutionFwdAlgo_t algo_fwd;
    cudnnConvolutionBwdDataAlgo_t algo_bd;
    cudnnConvolutionBwdFilterAlgo_t algo_bf;
    size_t ws_fwd, ws_bd, ws_bf;
#endif
} conv_op;

static int64_t conv_rows(const be_conv_desc *d) { return (int64_t)d->n * d->oh * d->ow; }
static int64_t conv_wn(const be_conv_desc *d) { return (int64_t)d->k * d->c * d->r * d->s; }

#ifndef DPT_CUDA_EMU

static cudnnHandle_t dnn(void) { return (cudnnHandle_t)cu_ctx_get()->dnn; }

static cudnnDataType_t dnn_type(dpt_dtype dt) {
    switch (dt) {
    case DT_F32: return CUDNN_DATA_FLOAT;
    case DT_BF16: return CUDNN_DATA_BFLOAT16;
    case DT_F16: return CUDNN_DATA_HALF;
    default: cu_bad_dtype("conv2d", dt);
    }
}

/* Grows the shared workspace and points cuBLAS's handle at the (possibly new) buffer: growing
 * frees the old one, which the handle would otherwise keep using. */
static void workspace_reserve_rebind(size_t bytes) {
    cu_ctx *c = cu_ctx_get();
    if (bytes <= c->workspace_bytes) return;
    cu_workspace_reserve(bytes);
    CUBLAS_CHECK(cublasSetWorkspace((cublasHandle_t)c->blas, c->workspace, c->workspace_bytes));
}

/* The algorithms of one shape + dtype + math type. */
typedef struct conv_choice {
    int key[13];
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bd;
    cudnnConvolutionBwdFilterAlgo_t bf;
    cudnnMathType_t math_fwd, math_bd, math_bf;
} conv_choice;

#define CONV_CACHE 256
static conv_choice g_cache[CONV_CACHE];
static int g_cached;

static void conv_key(int *key, const be_conv_desc *d, dpt_dtype dt, cudnnMathType_t math) {
    const int k[13] = {d->n, d->c, d->h, d->w, d->k, d->r, d->s, d->stride, d->pad, d->oh, d->ow, (int)dt, (int)math};
    memcpy(key, k, sizeof k);
}

/* Limit on an algorithm's workspace: what is already reserved, and at least 512 MiB (the largest
 * need among the chosen algorithms stays reserved for the rest of the run). */
static size_t ws_limit(void) {
    const size_t floor_bytes = (size_t)512 << 20;
    const size_t have = cu_ctx_get()->workspace_bytes;
    return have > floor_bytes ? have : floor_bytes;
}

/* First usable result (cuDNN sorts them, fastest or most likely first). Strict float32 refuses
 * tensor-op results (they would use TF32); its descriptors stay CUDNN_FMA_MATH anyway. */
template <typename P> static int pick(const P *perf, int n, bool strict, size_t limit) {
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > limit) continue;
        if (strict && (perf[i].mathType == CUDNN_TENSOR_OP_MATH ||
                       perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
            continue;
        return i;
    }
    return -1;
}

static bool find_disabled(void) {
    const char *e = getenv("DPT_CUDNN_FIND");
    return e && strcmp(e, "0") == 0;
}

/* A device allocation for the search that may fail (the search then falls back to heuristics). */
static void *try_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError(); /* an allocation failure is not sticky: clear it */
        return NULL;
    }
    return p;
}

/* Chooses the three algorithms: measured (cudnnFind*Ex) when scratch buffers fit, else cuDNN's
 * heuristics (cudnnGet*_v7). */
static void conv_search(conv_op *o, conv_choice *ch, cudnnMathType_t math) {
    const bool strict = math == CUDNN_FMA_MATH;
    const be_conv_desc *d = &o->d;
    const size_t es = dtype_size(o->dt), limit = ws_limit();
    cudnnConvolutionFwdAlgoPerf_t pf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    cudnnConvolutionBwdDataAlgoPerf_t pd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t pw[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int nf = 0, nd = 0, nw = 0, i_f = -1, i_d = -1, i_w = -1;

    if (!find_disabled()) {
        const size_t xb = (size_t)d->n * d->c * d->h * d->w * es, yb = (size_t)conv_rows(d) * d->k * es;
        const size_t wb = (size_t)conv_wn(d) * es;
        void *x = try_alloc(xb), *y = try_alloc(yb), *w = try_alloc(wb);
        size_t wsb = limit;
        void *ws = NULL;
        while (x && y && w && !ws && wsb >= ((size_t)1 << 20)) {
            ws = try_alloc(wsb);
            if (!ws) wsb /= 2;
        }
        if (x && y && w && ws) {
            /* Zeros: garbage could hold NaN or denormals and skew the timings. */
            CUDA_CHECK(cudaMemsetAsync(x, 0, xb, cu_stream()));
            CUDA_CHECK(cudaMemsetAsync(y, 0, yb, cu_stream()));
            CUDA_CHECK(cudaMemsetAsync(w, 0, wb, cu_stream()));
            CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(dnn(), o->x_desc, x, o->w_desc, w, o->conv_fwd,
                                                               o->y_desc, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &nf,
                                                               pf, ws, wsb));
            CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(dnn(), o->w_desc, w, o->y_desc, y, o->conv_bd,
                                                                    o->x_desc, x,
                                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &nd, pd,
                                                                    ws, wsb));
            CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
                dnn(), o->x_desc, x, o->y_desc, y, o->conv_bf, o->w_desc, w,
                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &nw, pw, ws, wsb));
            CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
            i_f = pick(pf, nf, strict, wsb);
            i_d = pick(pd, nd, strict, wsb);
            i_w = pick(pw, nw, strict, wsb);
        }
        void *bufs[4] = {x, y, w, ws};
        for (int i = 0; i < 4; i++)
            if (bufs[i]) CUDA_CHECK(cudaFree(bufs[i]));
    }
    /* Heuristics for whatever the measurement did not settle. */
    if (i_f < 0) {
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(dnn(), o->x_desc, o->w_desc, o->conv_fwd, o->y_desc,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &nf, pf));
        i_f = pick(pf, nf, strict, limit);
    }
    if (i_d < 0) {
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn(), o->w_desc, o->y_desc, o->conv_bd, o->x_desc,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &nd, pd));
        i_d = pick(pd, nd, strict, limit);
    }
    if (i_w < 0) {
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn(), o->x_desc, o->y_desc, o->conv_bf,
                                                                  o->w_desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                  &nw, pw));
        i_w = pick(pw, nw, strict, limit);
    }
    DPT_CHECK_LIB("cuDNN", i_f >= 0 && i_d >= 0 && i_w >= 0, "conv2d_create",
                  "no usable algorithm for conv (N %d, C %d, H %d, W %d) -> K %d, %dx%d stride %d pad %d, %s, math %d "
                  "(forward %s, backward data %s, backward filter %s)",
                  d->n, d->c, d->h, d->w, d->k, d->r, d->s, d->stride, d->pad, dtype_name(o->dt), (int)math,
                  i_f >= 0 ? "ok" : "none", i_d >= 0 ? "ok" : "none", i_w >= 0 ? "ok" : "none");
    ch->fwd = pf[i_f].algo;
    ch->bd = pd[i_d].algo;
    ch->bf = pw[i_w].algo;
    /* Each call runs with the math type its algorithm was measured with (as PyTorch does); strict
     * float32 stays FMA. */
    ch->math_fwd = strict ? math : pf[i_f].mathType;
    ch->math_bd = strict ? math : pd[i_d].mathType;
    ch->math_bf = strict ? math : pw[i_w].mathType;
}

static void conv_destroy(be_op *op) {
    conv_op *o = (conv_op *)op;
    if (o->x_desc) CUDNN_CHECK(cudnnDestroyTensorDescriptor(o->x_desc));
    if (o->y_desc) CUDNN_CHECK(cudnnDestroyTensorDescriptor(o->y_desc));
    if (o->w_desc) CUDNN_CHECK(cudnnDestroyFilterDescriptor(o->w_desc));
    cudnnConvolutionDescriptor_t cds[3] = {o->conv_fwd, o->conv_bd, o->conv_bf};
    for (int i = 0; i < 3; i++)
        if (cds[i]) CUDNN_CHECK(cudnnDestroyConvolutionDescriptor(cds[i]));
    cu_buffer_free(o->w_act);
    cu_buffer_free(o->dw_act);
    cu_buffer_free(o->bias_part);
    free(o);
}

/* Descriptors, algorithms (cached) and workspace. */
static void conv_engine_create(conv_op *o) {
    const be_conv_desc *d = &o->d;
    const cudnnDataType_t t = dnn_type(o->dt);
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&o->x_desc));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&o->y_desc));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&o->w_desc));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(o->x_desc, CUDNN_TENSOR_NHWC, t, d->n, d->c, d->h, d->w));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(o->y_desc, CUDNN_TENSOR_NHWC, t, d->n, d->k, d->oh, d->ow));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(o->w_desc, t, CUDNN_TENSOR_NHWC, d->k, d->c, d->r, d->s));
    /* Math: tensor cores for 16-bit data; TF32 allowed by the default math in TF32 mode; FMA only
     * (no TF32) for strict float32. Compute (accumulation) type float for every dtype. */
    const dpt_precision p = cu_precision();
    const cudnnMathType_t math = o->dt != DT_F32 ? CUDNN_TENSOR_OP_MATH
                                 : p == PREC_TF32 ? CUDNN_DEFAULT_MATH
                                                  : CUDNN_FMA_MATH;
    cudnnConvolutionDescriptor_t *cds[3] = {&o->conv_fwd, &o->conv_bd, &o->conv_bf};
    for (int i = 0; i < 3; i++) {
        CUDNN_CHECK(cudnnCreateConvolutionDescriptor(cds[i]));
        CUDNN_CHECK(cudnnSetConvolution2dDescriptor(*cds[i], d->pad, d->pad, d->stride, d->stride, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        CUDNN_CHECK(cudnnSetConvolutionMathType(*cds[i], math));
    }
    int on, oc, oh, ow;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(o->conv_fwd, o->x_desc, o->w_desc, &on, &oc, &oh, &ow));
    DPT_CHECK_LIB("cuDNN", on == d->n && oc == d->k && oh == d->oh && ow == d->ow, "conv2d_create",
                  "cuDNN's output (%d, %d, %d, %d) differs from the graph's (%d, %d, %d, %d)", on, oc, oh, ow, d->n,
                  d->k, d->oh, d->ow);

    int key[13];
    conv_key(key, d, o->dt, math);
    const conv_choice *found = NULL;
    for (int i = 0; i < g_cached && !found; i++)
        if (memcmp(g_cache[i].key, key, sizeof key) == 0) found = &g_cache[i];
    conv_choice fresh;
    if (!found) {
        memcpy(fresh.key, key, sizeof key);
        conv_search(o, &fresh, math);
        if (g_cached < CONV_CACHE) g_cache[g_cached++] = fresh;
        found = &fresh;
    }
    o->algo_fwd = found->fwd;
    o->algo_bd = found->bd;
    o->algo_bf = found->bf;
    CUDNN_CHECK(cudnnSetConvolutionMathType(o->conv_fwd, found->math_fwd));
    CUDNN_CHECK(cudnnSetConvolutionMathType(o->conv_bd, found->math_bd));
    CUDNN_CHECK(cudnnSetConvolutionMathType(o->conv_bf, found->math_bf));
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(dnn(), o->x_desc, o->w_desc, o->conv_fwd, o->y_desc,
                                                        o->algo_fwd, &o->ws_fwd));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn(), o->w_desc, o->y_desc, o->conv_bd, o->x_desc,
                                                             o->algo_bd, &o->ws_bd));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn(), o->x_desc, o->y_desc, o->conv_bf, o->w_desc,
                                                               o->algo_bf, &o->ws_bf));
    size_t ws = o->ws_fwd > o->ws_bd ? o->ws_fwd : o->ws_bd;
    if (o->ws_bf > ws) ws = o->ws_bf;
    workspace_reserve_rebind(ws);
}

static void engine_forward(conv_op *o, void *y, const void *x) {
    cu_ctx *c = cu_ctx_get();
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnConvolutionForward(dnn(), &one, o->x_desc, x, o->w_desc, o->w_act, o->conv_fwd, o->algo_fwd,
                                        c->workspace, c->workspace_bytes, &zero, o->y_desc, y));
}

static void engine_backward_data(conv_op *o, void *dx, bool accumulate, const void *dy) {
    cu_ctx *c = cu_ctx_get();
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    CUDNN_CHECK(cudnnConvolutionBackwardData(dnn(), &one, o->w_desc, o->w_act, o->y_desc, dy, o->conv_bd, o->algo_bd,
                                             c->workspace, c->workspace_bytes, &beta, o->x_desc, dx));
}

static void engine_backward_filter(conv_op *o, const void *x, const void *dy) {
    cu_ctx *c = cu_ctx_get();
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(dnn(), &one, o->x_desc, x, o->y_desc, dy, o->conv_bf, o->algo_bf,
                                               c->workspace, c->workspace_bytes, &zero, o->w_desc, o->dw_act));
}

#else /* DPT_CUDA_EMU: the naive stand-ins */

static void conv_destroy(be_op *op) {
    conv_op *o = (conv_op *)op;
    cu_buffer_free(o->w_act);
    cu_buffer_free(o->dw_act);
    cu_buffer_free(o->bias_part);
    free(o);
}

static void conv_engine_create(conv_op *o) { (void)o; }

static void engine_forward(conv_op *o, void *y, const void *x) { emu_conv_forward(&o->d, o->dt, y, x, o->w_act); }

static void engine_backward_data(conv_op *o, void *dx, bool accumulate, const void *dy) {
    emu_conv_backward_data(&o->d, o->dt, dx, accumulate, dy, o->w_act);
}

static void engine_backward_filter(conv_op *o, const void *x, const void *dy) {
    emu_conv_backward_filter(&o->d, o->dt, o->dw_act, x, dy);
}

#endif

static dpt_dtype precision_dtype(dpt_precision p) {
    return p == PREC_BF16 ? DT_BF16 : p == PREC_FP16 ? DT_F16 : DT_F32;
}

static be_op *conv_create(const be_conv_desc *d, dpt_layout layout) {
    DPT_CHECK_LIB("CUDA back end", layout == LAYOUT_NHWC, "conv2d_create",
                  "layout %d: the CUDA back end's activations are NHWC", (int)layout);
    DPT_CHECK_LIB("CUDA back end",
                  d->n > 0 && d->c > 0 && d->k > 0 && d->r > 0 && d->s > 0 && d->stride > 0 && d->pad >= 0 &&
                      d->oh == be_out_size(d->h, d->r, d->stride, d->pad) &&
                      d->ow == be_out_size(d->w, d->s, d->stride, d->pad) && d->oh > 0 && d->ow > 0,
                  "conv2d_create", "bad convolution (N %d, C %d, H %d, W %d) -> (K %d, OH %d, OW %d), %dx%d stride %d pad %d",
                  d->n, d->c, d->h, d->w, d->k, d->oh, d->ow, d->r, d->s, d->stride, d->pad);
    conv_op *o = (conv_op *)dpt_xcalloc(1, sizeof *o);
    o->base.destroy = conv_destroy;
    o->d = *d;
    o->dt = precision_dtype(cu_precision());
    const size_t es = dtype_size(o->dt);
    o->w_act = cu_buffer((size_t)conv_wn(d) * es);
    o->dw_act = cu_buffer((size_t)conv_wn(d) * es);
    if (d->bias) {
        /* Splits of the rows for the bias gradient: enough blocks to fill the device, each with
         * at least a few thousand rows. */
        const int64_t rows = conv_rows(d);
#ifdef DPT_CUDA_EMU
        const int64_t max_splits = 4;
#else
        const int64_t max_splits = 128;
#endif
        int64_t s = rows / 2048;
        o->bias_splits = (int)(s < 1 ? 1 : s > max_splits ? max_splits : s);
        o->bias_part = (float *)cu_buffer((size_t)o->bias_splits * d->k * sizeof(float));
    }
    conv_engine_create(o);
    return &o->base;
}

/* o->w_act = weight (K, C, R, S) float32 as (K, R, S, C) in the activation dtype. */
static void weight_to_act(conv_op *o, const dpt_tensor *weight) {
    const be_conv_desc *d = &o->d;
    DPT_CHECK_LIB("CUDA back end", weight->dtype == DT_F32 && tensor_numel(weight) == conv_wn(d), "conv2d",
                  "weight: %lld values of %s, expected %lld float32 (K, C, R, S)", (long long)tensor_numel(weight),
                  dtype_name(weight->dtype), (long long)conv_wn(d));
    const unsigned blocks = cu_blocks(conv_wn(d), CU_THREADS);
    CU_DISPATCH(o->dt, "conv2d weight",
                CU_LAUNCH(conv_weight_krsc_kernel<T>, blocks, CU_THREADS, cu_stream(), (T *)o->w_act,
                          (const float *)weight->data, d->k, d->c, d->r * d->s));
}

static void check_act(const conv_op *o, const char *what, const dpt_tensor *t, int c, int h, int w) {
    const be_conv_desc *d = &o->d;
    DPT_CHECK_LIB("CUDA back end",
                  t->dtype == o->dt && t->ndim == 4 && t->layout == LAYOUT_NHWC && t->shape[0] == d->n &&
                      t->shape[1] == c && t->shape[2] == h && t->shape[3] == w,
                  what, "tensor %s (%lld, %lld, %lld, %lld) %s, expected NHWC (%d, %d, %d, %d) %s",
                  dtype_name(t->dtype), (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2],
                  (long long)t->shape[3], t->layout == LAYOUT_NHWC ? "NHWC" : "NCHW", d->n, c, h, w,
                  dtype_name(o->dt));
}

static void conv_forward(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *weight,
                         const dpt_tensor *bias) {
    conv_op *o = (conv_op *)op;
    const be_conv_desc *d = &o->d;
    check_act(o, "conv2d_forward (in)", in, d->c, d->h, d->w);
    check_act(o, "conv2d_forward (out)", out, d->k, d->oh, d->ow);
    weight_to_act(o, weight);
    engine_forward(o, out->data, in->data);
    if (d->bias) {
        DPT_CHECK_LIB("CUDA back end", bias && bias->dtype == DT_F32 && tensor_numel(bias) == d->k,
                      "conv2d_forward", "the layer has a bias: expected a float32 (K) tensor");
        const int64_t rows = conv_rows(d);
        const unsigned blocks = cu_blocks(rows * d->k, CU_THREADS);
        CU_DISPATCH(o->dt, "conv2d bias",
                    CU_LAUNCH(conv_bias_add_kernel<T>, blocks, CU_THREADS, cu_stream(), (T *)out->data,
                              (const float *)bias->data, rows, d->k));
    }
}

static void conv_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dweight, dpt_tensor *dbias,
                          bool param_accumulate, const dpt_tensor *dout, const dpt_tensor *in,
                          const dpt_tensor *weight) {
    conv_op *o = (conv_op *)op;
    const be_conv_desc *d = &o->d;
    check_act(o, "conv2d_backward (dout)", dout, d->k, d->oh, d->ow);
    if (din) {
        check_act(o, "conv2d_backward (din)", din, d->c, d->h, d->w);
        weight_to_act(o, weight); /* again: backward need not follow this op's forward */
        engine_backward_data(o, din->data, accumulate, dout->data);
    }
    if (!dweight) return; /* the input's gradient only */
    check_act(o, "conv2d_backward (in)", in, d->c, d->h, d->w);
    DPT_CHECK_LIB("CUDA back end", dweight->dtype == DT_F32 && tensor_numel(dweight) == conv_wn(d),
                  "conv2d_backward", "dweight: expected %lld float32 values (K, C, R, S)", (long long)conv_wn(d));
    engine_backward_filter(o, in->data, dout->data);
    const unsigned wblocks = cu_blocks(conv_wn(d), CU_THREADS);
    CU_DISPATCH(o->dt, "conv2d weight gradient",
                CU_LAUNCH(conv_grad_kcrs_kernel<T>, wblocks, CU_THREADS, cu_stream(), (float *)dweight->data,
                          (const T *)o->dw_act, d->k, d->c, d->r * d->s, param_accumulate));
    if (d->bias && dbias) {
        DPT_CHECK_LIB("CUDA back end", dbias->dtype == DT_F32 && tensor_numel(dbias) == d->k, "conv2d_backward",
                      "dbias: expected %d float32 values", d->k);
        const int64_t rows = conv_rows(d);
        const dim3 grid((unsigned)((d->k + BG_CH - 1) / BG_CH), (unsigned)o->bias_splits);
        CU_DISPATCH(o->dt, "conv2d bias gradient",
                    CU_LAUNCH_SYNC(conv_bias_grad_part_kernel<T>, grid, CU_THREADS, cu_stream(), o->bias_part,
                                   (const T *)dout->data, rows, d->k));
        CU_LAUNCH(conv_bias_grad_sum_kernel, cu_blocks(d->k, CU_THREADS), CU_THREADS, cu_stream(),
                  (float *)dbias->data, (const float *)o->bias_part, o->bias_splits, d->k, param_accumulate);
    }
}

void cu_fill_conv(dpt_backend *be) {
    be->conv2d_create = conv_create;
    be->conv2d_forward = conv_forward;
    be->conv2d_backward = conv_backward;
}
