/* Linear layers and the batched matrix product (self-attention) on cu_gemm (cuBLAS; loops in the
 * emulator). Activations (in, out and their gradients, bmm's operands) have the activation dtype;
 * the linear's weight, bias and their gradients are float32 parameters.
 *
 * Reduced precision (bf16, f16): the op keeps a copy of the weight in the activation dtype,
 * refreshed by every forward from the float32 master weight. Backward uses that copy for the input
 * gradient: forward must precede backward on the same weights (as in the graph, where the update
 * comes after both). The weight gradient is accumulated by cu_gemm directly into float32 (A and B
 * in the activation dtype, C in float32), so param_accumulate adds without a rounding. */
#include <stdlib.h>

#include "cuda_internal.h"

typedef struct linear_op {
    be_op base;
    be_linear_desc d;
    dpt_dtype act;  /* the activation dtype at creation */
    void *w_act;    /* (OUT, IN) weight in the activation dtype; NULL for float32 */
} linear_op;

static dpt_dtype act_dtype(void) {
    switch (cu_precision()) {
    case PREC_BF16: return DT_BF16;
    case PREC_FP16: return DT_F16;
    default: return DT_F32;
    }
}

static void linear_destroy(be_op *op) {
    linear_op *o = (linear_op *)op;
    cu_buffer_free(o->w_act);
    free(o);
}

static be_op *linear_create(const be_linear_desc *d) {
    DPT_CHECK(d->n > 0 && d->in > 0 && d->out > 0);
    linear_op *o = (linear_op *)dpt_xcalloc(1, sizeof *o);
    o->base.destroy = linear_destroy;
    o->d = *d;
    o->act = act_dtype();
    if (o->act != DT_F32) o->w_act = cu_buffer((size_t)d->out * d->in * dtype_size(o->act));
    return &o->base;
}

/* out (n, m) += bias (m), in the activation dtype. */
template <typename T> static __global__ void add_bias_kernel(T *out, const float *bias, int n, int m) {
    for (int i = (int)blockIdx.x; i < n; i += (int)gridDim.x) { /* a row per block: no index division */
        T *row = out + (int64_t)i * m;
        for (int j = (int)threadIdx.x; j < m; j += (int)blockDim.x) row[j] = cu_t<T>(cu_f(row[j]) + bias[j]);
    }
}

/* db (m) (+)= column sums of dy (n, m), float accumulation. A block takes tiles of 32 columns; its
 * 8 row lanes sum every 8th row (a warp reads 32 consecutive values of one row), then the lane sums
 * are added in a fixed order. */
#define COL_TILE 32
#define ROW_LANES (CU_THREADS / COL_TILE)

template <typename T> static __global__ void col_sum_kernel(float *db, const T *dy, int n, int m, bool acc) {
    __shared__ float part[ROW_LANES][COL_TILE];
    const int tx = (int)threadIdx.x % COL_TILE, ty = (int)threadIdx.x / COL_TILE;
    for (int j0 = (int)blockIdx.x * COL_TILE; j0 < m; j0 += (int)gridDim.x * COL_TILE) { /* uniform */
        const int j = j0 + tx;
        float s = 0.0f;
        if (j < m)
            for (int i = ty; i < n; i += ROW_LANES) s += cu_f(dy[(int64_t)i * m + j]);
        part[ty][tx] = s;
        __syncthreads();
        if (ty == 0 && j < m) {
            float sum = 0.0f;
            for (int l = 0; l < ROW_LANES; l++) sum += part[l][tx];
            db[j] = acc ? db[j] + sum : sum;
        }
        __syncthreads();
    }
}

static void linear_forward(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *weight,
                           const dpt_tensor *bias) {
    linear_op *o = (linear_op *)op;
    const be_linear_desc *d = &o->d;
    cu_same_dtype("linear_forward", o->act, out, in);
    cu_same_dtype("linear_forward (weight)", DT_F32, weight, d->bias ? bias : NULL);
    DPT_CHECK(tensor_numel(in) == (int64_t)d->n * d->in && tensor_numel(out) == (int64_t)d->n * d->out);
    const void *w = weight->data;
    if (o->act != DT_F32) {
        cu_convert_into(o->w_act, o->act, weight->data, DT_F32, (int64_t)d->out * d->in, false);
        w = o->w_act;
    }
    /* out (N, OUT) = in (N, IN) W^T */
    cu_gemm(o->act, o->act, false, true, d->n, d->out, d->in, 1.0f, in->data, d->in, 0, w, d->in, 0, 0.0f, out->data,
            d->out, 0, 1);
    if (d->bias)
        CU_DISPATCH(o->act, "linear_forward",
                    CU_LAUNCH(add_bias_kernel<T>, cu_blocks((int64_t)d->n * CU_THREADS, CU_THREADS), CU_THREADS,
                              cu_stream(), (T *)out->data, (const float *)bias->data, d->n, d->out));
}

static void linear_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dweight, dpt_tensor *dbias,
                            bool param_accumulate, const dpt_tensor *dout, const dpt_tensor *in,
                            const dpt_tensor *weight) {
    linear_op *o = (linear_op *)op;
    const be_linear_desc *d = &o->d;
    cu_same_dtype("linear_backward", o->act, dout, din, dweight ? in : NULL);
    cu_same_dtype("linear_backward (weight)", DT_F32, weight, dweight, dbias);
    if (din) { /* dx (N, IN) = dy (N, OUT) W (OUT, IN); reduced precision: the forward's copy of W */
        const void *w = o->act == DT_F32 ? weight->data : o->w_act;
        cu_gemm(o->act, o->act, false, false, d->n, d->in, d->out, 1.0f, dout->data, d->out, 0, w, d->in, 0,
                accumulate ? 1.0f : 0.0f, din->data, d->in, 0, 1);
    }
    if (!dweight) return; /* the input's gradient only */
    /* dW (OUT, IN) = dy^T (OUT, N) x (N, IN), accumulated in float32 */
    cu_gemm(o->act, DT_F32, true, false, d->out, d->in, d->n, 1.0f, dout->data, d->out, 0, in->data, d->in, 0,
            param_accumulate ? 1.0f : 0.0f, dweight->data, d->in, 0, 1);
    if (d->bias && dbias)
        CU_DISPATCH(o->act, "linear_backward",
                    CU_LAUNCH_SYNC(col_sum_kernel<T>, cu_blocks(d->out, COL_TILE), CU_THREADS, cu_stream(),
                                   (float *)dbias->data, (const T *)dout->data, d->n, d->out, param_accumulate));
}

/* ---- batched matrix product ---- */

typedef struct bmm_dims {
    int batch, m, n, k, lda, ldb; /* lda, ldb: stored row lengths */
} bmm_dims;

static bmm_dims bmm_check(const dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, bool ta, bool tb) {
    DPT_CHECK(a->ndim == 3 && b->ndim == 3 && out->ndim == 3);
    bmm_dims d;
    d.batch = (int)a->shape[0];
    d.m = (int)(ta ? a->shape[2] : a->shape[1]);
    d.k = (int)(ta ? a->shape[1] : a->shape[2]);
    d.n = (int)(tb ? b->shape[1] : b->shape[2]);
    d.lda = (int)a->shape[2];
    d.ldb = (int)b->shape[2];
    DPT_CHECK(b->shape[0] == d.batch && (tb ? b->shape[2] : b->shape[1]) == d.k);
    DPT_CHECK(out->shape[0] == d.batch && out->shape[1] == d.m && out->shape[2] == d.n);
    return d;
}

static void bmm_forward(dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, bool trans_a, bool trans_b) {
    const bmm_dims d = bmm_check(out, a, b, trans_a, trans_b);
    const dpt_dtype dt = out->dtype;
    cu_same_dtype("bmm_forward", dt, a, b);
    cu_gemm(dt, dt, trans_a, trans_b, d.m, d.n, d.k, 1.0f, a->data, d.lda, (int64_t)d.m * d.k, b->data, d.ldb,
            (int64_t)d.k * d.n, 0.0f, out->data, d.n, (int64_t)d.m * d.n, d.batch);
}

/* da = dout op(b)^T (transposed back when trans_a); db = op(a)^T dout (likewise); as cpu_gan.c. */
static void bmm_backward(dpt_tensor *da, bool accumulate_a, dpt_tensor *db, bool accumulate_b, const dpt_tensor *dout,
                         const dpt_tensor *a, const dpt_tensor *b, bool trans_a, bool trans_b) {
    const bmm_dims d = bmm_check(dout, a, b, trans_a, trans_b);
    const dpt_dtype dt = dout->dtype;
    cu_same_dtype("bmm_backward", dt, a, b, da);
    cu_same_dtype("bmm_backward", dt, db);
    const int64_t sa = (int64_t)d.m * d.k, sb = (int64_t)d.k * d.n, sc = (int64_t)d.m * d.n;
    const float ba = accumulate_a ? 1.0f : 0.0f, bb = accumulate_b ? 1.0f : 0.0f;
    if (da && !trans_a) /* da (m, k) = dout (m, n) op(b)^T */
        cu_gemm(dt, dt, false, !trans_b, d.m, d.k, d.n, 1.0f, dout->data, d.n, sc, b->data, d.ldb, sb, ba, da->data,
                d.k, sa, d.batch);
    if (da && trans_a) /* da (k, m) = op(b) (k, n) dout^T */
        cu_gemm(dt, dt, trans_b, true, d.k, d.m, d.n, 1.0f, b->data, d.ldb, sb, dout->data, d.n, sc, ba, da->data,
                d.m, sa, d.batch);
    if (db && !trans_b) /* db (k, n) = op(a)^T (k, m) dout */
        cu_gemm(dt, dt, !trans_a, false, d.k, d.n, d.m, 1.0f, a->data, d.lda, sa, dout->data, d.n, sc, bb, db->data,
                d.n, sb, d.batch);
    if (db && trans_b) /* db (n, k) = dout^T (n, m) op(a) */
        cu_gemm(dt, dt, true, trans_a, d.n, d.k, d.m, 1.0f, dout->data, d.n, sc, a->data, d.lda, sa, bb, db->data,
                d.k, sb, d.batch);
}

void cu_fill_blas(dpt_backend *be) {
    be->linear_create = linear_create;
    be->linear_forward = linear_forward;
    be->linear_backward = linear_backward;
    be->bmm_forward = bmm_forward;
    be->bmm_backward = bmm_backward;
}
