/* The ops a BigGAN (Brock et al. 2018) adds to a classifier's: 2x upsampling, tanh, class
 * embedding, conditional BatchNorm, spectral normalisation, self-attention's batched matrix
 * product and row softmax, hinge losses, Adam, weight EMA and orthogonal regularisation, and the
 * graph's plumbing for them (scalar shift, gated residual, column blocks).
 * Conventions and formulas: backend.h. Conditional BatchNorm reuses BatchNorm's statistics
 * (cpu_norm.c), so the two agree to the bit on the normalisation and on cross-replica sums.
 * Nothing here allocates: per-shape buffers come from cbn_create or from the caller. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "dpt/backend/math.h"

/* ---- 2x nearest-neighbour upsampling ---- */

/* Logical (N, C, H, W) of an input and the check that out is (N, C, 2H, 2W). */
static void up_dims(const dpt_tensor *small, const dpt_tensor *big, int64_t *n, int64_t *c, int64_t *h, int64_t *w) {
    DPT_CHECK(small->ndim == 4 && big->ndim == 4 && small->layout == big->layout);
    DPT_CHECK(big->shape[0] == small->shape[0] && big->shape[1] == small->shape[1]);
    DPT_CHECK(big->shape[2] == 2 * small->shape[2] && big->shape[3] == 2 * small->shape[3]);
    *n = small->shape[0];
    *c = small->shape[1];
    *h = small->shape[2];
    *w = small->shape[3];
}

static void upsample2x_forward(dpt_tensor *out, const dpt_tensor *in) {
    int64_t n, c, h, w;
    up_dims(in, out, &n, &c, &h, &w);
    const float *x = in->data;
    float *y = out->data;
    if (in->layout == LAYOUT_NHWC) { /* rows of (W, C): each pixel's C values copied to 4 places */
#pragma omp parallel for schedule(static) if (n * c * h * w > CPU_PAR_MIN)
        for (int64_t r = 0; r < n * h; r++) {
            const float *xr = x + r * w * c;
            float *y0 = y + 2 * r * (2 * w) * c, *y1 = y0 + 2 * w * c;
            for (int64_t j = 0; j < w; j++) {
                memcpy(y0 + 2 * j * c, xr + j * c, (size_t)c * sizeof(float));
                memcpy(y0 + (2 * j + 1) * c, xr + j * c, (size_t)c * sizeof(float));
            }
            memcpy(y1, y0, (size_t)(2 * w * c) * sizeof(float));
        }
    } else { /* NCHW: rows of W values in (N*C*H) rows */
#pragma omp parallel for schedule(static) if (n * c * h * w > CPU_PAR_MIN)
        for (int64_t r = 0; r < n * c * h; r++) {
            const float *xr = x + r * w;
            float *y0 = y + 2 * r * (2 * w), *y1 = y0 + 2 * w;
            for (int64_t j = 0; j < w; j++) y0[2 * j] = y0[2 * j + 1] = xr[j];
            memcpy(y1, y0, (size_t)(2 * w) * sizeof(float));
        }
    }
}

static void upsample2x_backward(dpt_tensor *din, bool accumulate, const dpt_tensor *dout) {
    int64_t n, c, h, w;
    up_dims(din, dout, &n, &c, &h, &w);
    /* A pixel's children in memory: NHWC repeats C-vectors (step c), NCHW single values (step 1). */
    const bool nhwc = din->layout == LAYOUT_NHWC;
    const int64_t rows = nhwc ? n * h : n * c * h, cols = nhwc ? w * c : w, step = nhwc ? c : 1;
    const float *dy = dout->data;
    float *dx = din->data;
#pragma omp parallel for schedule(static) if (n * c * h * w > CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *d0 = dy + 2 * r * 2 * cols, *d1 = d0 + 2 * cols;
        float *dxr = dx + r * cols;
        for (int64_t j = 0; j < cols / step; j++) {
            const float *a0 = d0 + 2 * j * step, *a1 = d1 + 2 * j * step;
            float *dxp = dxr + j * step;
            for (int64_t e = 0; e < step; e++) {
                float g = (a0[e] + a0[e + step]) + (a1[e] + a1[e + step]);
                dxp[e] = accumulate ? dxp[e] + g : g;
            }
        }
    }
}

/* ---- tanh ---- */

static void tanh_forward(dpt_tensor *out, const dpt_tensor *in) {
    const int64_t n = tensor_numel(in);
    const float *x = in->data;
    float *y = out->data;
#pragma omp parallel for schedule(static) if (n > CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

static void tanh_backward(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *out) {
    const int64_t n = tensor_numel(out);
    const float *dy = dout->data, *y = out->data;
    float *dx = din->data;
    if (accumulate) {
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] += math_tanh_grad(dy[i], y[i]);
    } else {
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] = math_tanh_grad(dy[i], y[i]);
    }
}

/* ---- class embedding ---- */

/* A label outside the table would read or write out of bounds: stop, naming the sample. */
static void check_labels(const char *op, const int32_t *labels, int64_t n, int64_t k) {
    for (int64_t i = 0; i < n; i++)
        DPT_CHECK_LIB("cpu", labels[i] >= 0 && labels[i] < k, op,
                      "label %d of sample %lld is outside the embedding's [0, %lld)", (int)labels[i], (long long)i,
                      (long long)k);
}

static void embedding_forward(dpt_tensor *out, const dpt_tensor *table, const dpt_tensor *labels) {
    const int64_t n = out->shape[0], d = out->shape[1], k = table->shape[0];
    DPT_CHECK(table->shape[1] == d && labels->dtype == DT_I32 && tensor_numel(labels) == n);
    const int32_t *y = labels->data;
    check_labels("embedding_forward", y, n, k);
    const float *t = table->data;
    float *o = out->data;
    for (int64_t i = 0; i < n; i++) memcpy(o + i * d, t + (int64_t)y[i] * d, (size_t)d * sizeof(float));
}

/* Serial: N*D is a few tens of thousands of adds, and samples sharing a label would race. */
static void embedding_backward(dpt_tensor *dtable, bool param_accumulate, const dpt_tensor *dout,
                               const dpt_tensor *labels) {
    const int64_t n = dout->shape[0], d = dout->shape[1], k = dtable->shape[0];
    DPT_CHECK(dtable->shape[1] == d && labels->dtype == DT_I32 && tensor_numel(labels) == n);
    const int32_t *y = labels->data;
    check_labels("embedding_backward", y, n, k);
    const float *g = dout->data;
    float *dt = dtable->data;
    if (!param_accumulate) memset(dt, 0, (size_t)(k * d) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        float *row = dt + (int64_t)y[i] * d;
        const float *gi = g + i * d;
#pragma omp simd
        for (int64_t j = 0; j < d; j++) row[j] += gi[j];
    }
}

/* ---- conditional BatchNorm ---- */

typedef struct cbn_op {
    be_op base;
    cpu_bn_stats s;
    float *a, *b; /* (N, C) per-sample coefficients */
    double *psum; /* (2, N, C) per-sample sums of g and g * (x - mean) */
} cbn_op;

static void cbn_destroy(be_op *op) {
    cbn_op *o = (cbn_op *)op;
    cpu_bn_stats_free(&o->s);
    free(o->a);
    free(o->b);
    free(o->psum);
    free(o);
}

static be_op *cbn_create(const be_bn_desc *d, dpt_layout layout) {
    DPT_CHECK_LIB("cpu", layout == LAYOUT_NHWC, "cbn_create", "the CPU BatchNorm kernels take NHWC");
    cbn_op *o = dpt_xcalloc(1, sizeof *o);
    o->base.destroy = cbn_destroy;
    cpu_bn_stats_init(&o->s, d);
    const size_t nc = (size_t)d->n * d->c;
    o->a = cpu_buffer(nc * sizeof(float));
    o->b = cpu_buffer(nc * sizeof(float));
    o->psum = cpu_buffer(2 * nc * sizeof(double));
    return &o->base;
}

/* a = gain * inv, b = bias - mean * gain * inv, per sample and channel. */
static void cbn_coefficients(cbn_op *o, const float *gain, const float *bias, const double *mu, const double *inv) {
    const int C = o->s.d.c;
    for (int64_t i = 0; i < o->s.d.n; i++)
        for (int c = 0; c < C; c++) {
            int64_t j = i * C + c;
            o->a[j] = (float)(gain[j] * inv[c]);
            o->b[j] = (float)(bias[j] - mu[c] * gain[j] * inv[c]);
        }
}

static void cbn_forward_train(be_op *op, dpt_tensor *out, dpt_tensor *save_mean, dpt_tensor *save_var,
                              dpt_tensor *running_mean, dpt_tensor *running_var, const dpt_tensor *in,
                              const dpt_tensor *gain, const dpt_tensor *bias) {
    cbn_op *o = (cbn_op *)op;
    const be_bn_desc *d = &o->s.d;
    cpu_bn_batch_stats(&o->s, save_mean->data, save_var->data, running_mean->data, running_var->data, in->data);
    cbn_coefficients(o, gain->data, bias->data, o->s.mu, o->s.inv);
    cpu_bn_affine(out->data, in->data, o->a, o->b, d->n, (int64_t)d->h * d->w, d->c, d->c, d->relu);
}

static void cbn_forward_eval(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *gain,
                             const dpt_tensor *bias, const dpt_tensor *running_mean, const dpt_tensor *running_var) {
    cbn_op *o = (cbn_op *)op;
    const be_bn_desc *d = &o->s.d;
    const float *rm = running_mean->data, *rv = running_var->data;
    for (int c = 0; c < d->c; c++) {
        o->s.mu[c] = rm[c];
        o->s.inv[c] = 1.0 / sqrt((double)rv[c] + (double)d->eps);
    }
    cbn_coefficients(o, gain->data, bias->data, o->s.mu, o->s.inv);
    cpu_bn_affine(out->data, in->data, o->a, o->b, d->n, (int64_t)d->h * d->w, d->c, d->c, d->relu);
}

/* With g = dy (masked by the ReLU), per sample i: dbias = sum g, dgain = sum g * xhat. The input
 * sees dxhat = gain * g, so BatchNorm's channel sums become sum_i gain * (per-sample sums), and
 * dx = a * g + b * x + c0 with a = gain * inv (per sample), b = -inv^3 * sum(dxhat * (x - mean)) / M,
 * c0 = -inv * sum(dxhat) / M - b * mean, M the group's count. */
static void cbn_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dgain, dpt_tensor *dbias,
                         bool accumulate_gb, const dpt_tensor *dout, const dpt_tensor *in, const dpt_tensor *out,
                         const dpt_tensor *gain, const dpt_tensor *save_mean, const dpt_tensor *save_var) {
    cbn_op *o = (cbn_op *)op;
    cpu_bn_stats *s = &o->s;
    const int C = s->d.c, n = s->d.n;
    const int64_t hw = (int64_t)s->d.h * s->d.w, nc = (int64_t)n * C;
    const float *x = in->data, *dy = dout->data, *y = out->data, *gn = gain->data, *mean = save_mean->data;
    const float *var = save_var->data;
    float *dg = dgain->data, *db = dbias->data;
    memcpy(s->k, mean, (size_t)C * sizeof(float)); /* sums around the batch mean */
    double *sg = o->psum, *sgx = o->psum + nc;
    for (int i = 0; i < n; i++) {
        const int64_t off = (int64_t)i * hw * C;
        cpu_bn_channel_sums(s, x + off, dy + off, y + off, hw, s->d.relu, true, sg + (int64_t)i * C,
                            sgx + (int64_t)i * C);
    }
    double *tg = s->sums, *tgx = s->sums + C;
    for (int c = 0; c < C; c++) {
        s->inv[c] = 1.0 / sqrt((double)var[c] + (double)s->d.eps);
        tg[c] = tgx[c] = 0.0;
    }
    for (int64_t j = 0; j < nc; j++) {
        const int c = (int)(j % C);
        const float gb = (float)sg[j], gg = (float)(sgx[j] * s->inv[c]);
        db[j] = accumulate_gb ? db[j] + gb : gb;
        dg[j] = accumulate_gb ? dg[j] + gg : gg;
        tg[c] += gn[j] * sg[j];
        tgx[c] += gn[j] * sgx[j];
    }
    double N = (double)n * hw;
    if (s->d.reduce.fn) { /* dx goes through the group's statistics: the group's sums */
        s->d.reduce.fn(s->d.reduce.ctx, s->sums, 2 * C);
        N = s->count;
    }
    for (int c = 0; c < C; c++) {
        const double inv = s->inv[c], b = -inv * inv * inv * tgx[c] / N;
        s->b[c] = (float)b;
        s->k[c] = (float)(-inv * tg[c] / N - b * mean[c]);
    }
    for (int64_t j = 0; j < nc; j++) o->a[j] = (float)(gn[j] * s->inv[j % C]);
    cpu_bn_dx(din->data, accumulate, x, dy, y, o->a, C, s->b, s->k, n, hw, C, s->d.relu);
}

/* ---- spectral normalisation ---- */

/* x /= max(|x|, eps); returns |x| (before). */
static double sn_normalize(float *x, int n, float eps) {
    double sq = 0.0;
    for (int i = 0; i < n; i++) sq += (double)x[i] * x[i];
    const double nrm = sqrt(sq);
    const float den = (float)fmax(nrm, (double)eps);
    for (int i = 0; i < n; i++) x[i] /= den;
    return nrm;
}

/* v = w^T u: each thread owns a slice of columns and streams every row over it. */
static void sn_wt_u(float *v, const float *w, const float *u, int rows, int cols) {
#pragma omp parallel if ((int64_t)rows * cols > CPU_PAR_MIN)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const int j0 = (int)((int64_t)cols * t / T), j1 = (int)((int64_t)cols * (t + 1) / T);
        for (int j = j0; j < j1; j++) v[j] = 0.0f;
        for (int i = 0; i < rows; i++) {
            const float *row = w + (int64_t)i * cols, ui = u[i];
#pragma omp simd
            for (int j = j0; j < j1; j++) v[j] += row[j] * ui;
        }
    }
}

/* t = w v, rows as dot products accumulated in double. */
static void sn_w_v(float *t, const float *w, const float *v, int rows, int cols) {
#pragma omp parallel for schedule(static) if ((int64_t)rows * cols > CPU_PAR_MIN)
    for (int i = 0; i < rows; i++) {
        const float *row = w + (int64_t)i * cols;
        double acc = 0.0;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < cols; j++) acc += (double)row[j] * v[j];
        t[i] = (float)acc;
    }
}

/* u^T w v without a buffer. */
static double sn_sigma(const float *w, const float *u, const float *v, int rows, int cols) {
    double sigma = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : sigma) if ((int64_t)rows * cols > CPU_PAR_MIN)
    for (int i = 0; i < rows; i++) {
        const float *row = w + (int64_t)i * cols;
        double acc = 0.0;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < cols; j++) acc += (double)row[j] * v[j];
        sigma += u[i] * acc;
    }
    return sigma;
}

static void spectral_norm_forward(float *w_sn, float *u, float *v, float *sigma, const float *w, int rows, int cols,
                                  int power_iterations, float eps) {
    double sg = 0.0;
    for (int it = 0; it < power_iterations; it++) {
        sn_wt_u(v, w, u, rows, cols);
        sn_normalize(v, cols, eps);
        sn_w_v(u, w, v, rows, cols);
        /* u^T (w v) with u = t / max(|t|, eps), t = w v, is |t|^2 / max(|t|, eps). */
        const double nrm = sn_normalize(u, rows, eps);
        sg = nrm * nrm / fmax(nrm, (double)eps);
    }
    if (power_iterations == 0) sg = sn_sigma(w, u, v, rows, cols);
    const float s = (float)sg;
    *sigma = s;
    const int64_t n = (int64_t)rows * cols;
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) w_sn[i] = w[i] / s;
}

static void spectral_norm_backward(float *dw, bool param_accumulate, const float *dw_sn, const float *w,
                                   const float *u, const float *v, float sigma, int rows, int cols) {
    const int64_t n = (int64_t)rows * cols;
    double dot = 0.0; /* sum(dw_sn * w_sn) = sum(dw_sn * w) / sigma */
#pragma omp parallel for simd schedule(static) reduction(+ : dot) if (n > CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dot += (double)dw_sn[i] * w[i];
    const float k = (float)(dot / sigma), inv = 1.0f / sigma;
#pragma omp parallel for schedule(static) if (n > CPU_PAR_MIN)
    for (int i = 0; i < rows; i++) {
        const float ku = k * u[i];
        const float *gr = dw_sn + (int64_t)i * cols;
        float *dr = dw + (int64_t)i * cols;
        if (param_accumulate) {
#pragma omp simd
            for (int j = 0; j < cols; j++) dr[j] += (gr[j] - ku * v[j]) * inv;
        } else {
#pragma omp simd
            for (int j = 0; j < cols; j++) dr[j] = (gr[j] - ku * v[j]) * inv;
        }
    }
}

/* ---- batched matrix product and row softmax (self-attention) ---- */

typedef struct bmm_dims {
    int64_t batch, m, n, k, lda, ldb; /* lda, ldb: stored row lengths */
} bmm_dims;

static bmm_dims bmm_check(const dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, bool ta, bool tb) {
    DPT_CHECK(a->ndim == 3 && b->ndim == 3 && out->ndim == 3);
    bmm_dims d = {.batch = a->shape[0], .m = ta ? a->shape[2] : a->shape[1], .k = ta ? a->shape[1] : a->shape[2],
                  .n = tb ? b->shape[1] : b->shape[2], .lda = a->shape[2], .ldb = b->shape[2]};
    DPT_CHECK(b->shape[0] == d.batch && (tb ? b->shape[2] : b->shape[1]) == d.k);
    DPT_CHECK(out->shape[0] == d.batch && out->shape[1] == d.m && out->shape[2] == d.n);
    return d;
}

/* C (m, n) = beta * C + op(A) op(B), row-major, through oneDNN's threaded sgemm; beta 1 when
 * accumulating, else 0 (C is then never read, so NaN there does not leak). */
static void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                 int64_t ldb, bool accumulate, float *c, int64_t ldc) {
    DNNL_CHECK(dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc));
}

static void bmm_forward(dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, bool trans_a, bool trans_b) {
    const bmm_dims d = bmm_check(out, a, b, trans_a, trans_b);
    const float *pa = a->data, *pb = b->data;
    float *pc = out->data;
    for (int64_t i = 0; i < d.batch; i++)
        gemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', d.m, d.n, d.k, pa + i * d.m * d.k, d.lda, pb + i * d.k * d.n,
             d.ldb, false, pc + i * d.m * d.n, d.n);
}

/* da = dout op(b)^T (transposed back when trans_a); db = op(a)^T dout (likewise). */
static void bmm_backward(dpt_tensor *da, bool accumulate_a, dpt_tensor *db, bool accumulate_b,
                         const dpt_tensor *dout, const dpt_tensor *a, const dpt_tensor *b, bool trans_a,
                         bool trans_b) {
    const bmm_dims d = bmm_check(dout, a, b, trans_a, trans_b);
    const float *pa = a->data, *pb = b->data, *pg = dout->data;
    const int64_t sa = d.m * d.k, sb = d.k * d.n, sc = d.m * d.n;
    for (int64_t i = 0; i < d.batch; i++) {
        const float *ai = pa + i * sa, *bi = pb + i * sb, *gi = pg + i * sc;
        if (da && !trans_a)
            gemm('N', trans_b ? 'N' : 'T', d.m, d.k, d.n, gi, d.n, bi, d.ldb, accumulate_a, (float *)da->data + i * sa,
                 d.k);
        if (da && trans_a)
            gemm(trans_b ? 'T' : 'N', 'T', d.k, d.m, d.n, bi, d.ldb, gi, d.n, accumulate_a, (float *)da->data + i * sa,
                 d.m);
        if (db && !trans_b)
            gemm(trans_a ? 'N' : 'T', 'N', d.k, d.n, d.m, ai, d.lda, gi, d.n, accumulate_b, (float *)db->data + i * sb,
                 d.n);
        if (db && trans_b)
            gemm('T', trans_a ? 'T' : 'N', d.n, d.k, d.m, gi, d.n, ai, d.lda, accumulate_b, (float *)db->data + i * sb,
                 d.k);
    }
}

static void softmax_rows_forward(dpt_tensor *out, const dpt_tensor *in) {
    const int64_t len = in->shape[in->ndim - 1], rows = tensor_numel(in) / len;
    const float *x = in->data;
    float *y = out->data;
#pragma omp parallel for schedule(static) if (rows * len > CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * len;
        float *yr = y + r * len, mx = xr[0];
        for (int64_t j = 1; j < len; j++) mx = xr[j] > mx ? xr[j] : mx;
        double sum = 0.0;
        for (int64_t j = 0; j < len; j++) sum += yr[j] = expf(xr[j] - mx);
        const float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < len; j++) yr[j] *= inv;
    }
}

/* dx = y * (dy - sum(dy * y)) per row. */
static void softmax_rows_backward(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *out) {
    const int64_t len = out->shape[out->ndim - 1], rows = tensor_numel(out) / len;
    const float *dy = dout->data, *y = out->data;
    float *dx = din->data;
#pragma omp parallel for schedule(static) if (rows * len > CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = dy + r * len, *yr = y + r * len;
        float *dr = dx + r * len;
        double dot = 0.0;
        for (int64_t j = 0; j < len; j++) dot += (double)gr[j] * yr[j];
        const float s = (float)dot;
        for (int64_t j = 0; j < len; j++) {
            float g = yr[j] * (gr[j] - s);
            dr[j] = accumulate ? dr[j] + g : g;
        }
    }
}

/* ---- hinge losses ---- */

static void hinge_d(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits, float sign, float grad_scale) {
    const int64_t n = tensor_numel(logits);
    const float *d = logits->data;
    float *l = losses->data, *g = dlogits ? dlogits->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        float gi;
        l[i] = math_hinge_d(&gi, d[i], sign, grad_scale);
        if (g) g[i] = gi;
    }
}

static void hinge_g(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits, float grad_scale) {
    const int64_t n = tensor_numel(logits);
    const float *d = logits->data;
    float *l = losses->data, *g = dlogits ? dlogits->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        l[i] = -d[i];
        if (g) g[i] = -grad_scale;
    }
}

/* ---- optimizer updates and regularisation ---- */

static void adam_update(float *w, float *m, float *v, const float *grad, int64_t n, const be_adam_args *a) {
    DPT_CHECK(a->step >= 1);
    const double t = (double)a->step;
    const float step_size = (float)((double)a->lr / (1.0 - pow((double)a->beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow((double)a->beta2, t));
    const float s = a->grad_scale, wd = a->weight_decay, b1 = a->beta1, b2 = a->beta2, eps = a->eps;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) math_adam(&w[i], &m[i], &v[i], grad[i], s, wd, b1, b2, eps, step_size, bc2_sqrt);
}

static void ema_update(float *ema, const float *w, int64_t n, float decay) {
    const float keep = decay, take = 1.0f - decay;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) ema[i] = keep * ema[i] + take * w[i];
}

/* M = (w w^T) * (1 - I) in work; penalty (strength/2) |M|^2; dw += 2 strength M w. */
static double ortho_reg(float *dw, float *work, const float *w, int rows, int cols, float strength) {
    gemm('N', 'T', rows, rows, cols, w, cols, w, cols, false, work, rows);
    double sq = 0.0;
    for (int i = 0; i < rows; i++) {
        work[(int64_t)i * rows + i] = 0.0f;
        for (int j = 0; j < rows; j++) sq += (double)work[(int64_t)i * rows + j] * work[(int64_t)i * rows + j];
    }
    DNNL_CHECK(dnnl_sgemm('N', 'N', rows, cols, rows, 2.0f * strength, work, rows, w, cols, 1.0f, dw, cols));
    return 0.5 * (double)strength * sq;
}

/* ---- graph plumbing: scalar shift, gated residual, column blocks ---- */

static void add_scalar_forward(dpt_tensor *out, const dpt_tensor *in, float c) {
    const int64_t n = tensor_numel(in);
    const float *x = in->data;
    float *y = out->data;
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] + c;
}

static void scaled_add_forward(dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, const dpt_tensor *gamma) {
    const int64_t n = tensor_numel(out);
    DPT_CHECK(tensor_numel(a) == n && tensor_numel(b) == n && tensor_numel(gamma) == 1);
    const float *pa = a->data, *pb = b->data, gm = *(const float *)gamma->data;
    float *y = out->data;
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = pa[i] + gm * pb[i];
}

static void scaled_add_backward(dpt_tensor *da, bool accumulate_a, dpt_tensor *db, bool accumulate_b,
                                dpt_tensor *dgamma, bool param_accumulate, const dpt_tensor *dout,
                                const dpt_tensor *b, const dpt_tensor *gamma) {
    const int64_t n = tensor_numel(dout);
    const float *dy = dout->data, *pb = b->data, gm = *(const float *)gamma->data;
    if (da) cpu_scale_into(da->data, accumulate_a, dy, 1.0f, n);
    if (db) cpu_scale_into(db->data, accumulate_b, dy, gm, n);
    double s = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : s) if (n > CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) s += (double)dy[i] * pb[i];
    float *dg = dgamma->data;
    *dg = param_accumulate ? *dg + (float)s : (float)s;
}

static void copy_cols(dpt_tensor *dst, int64_t dst_col, const dpt_tensor *src, int64_t src_col, int64_t count,
                      bool accumulate) {
    DPT_CHECK(dst->ndim == 2 && src->ndim == 2 && dst->shape[0] == src->shape[0]);
    DPT_CHECK(dst_col >= 0 && src_col >= 0 && count >= 0);
    DPT_CHECK(dst_col + count <= dst->shape[1] && src_col + count <= src->shape[1]);
    const int64_t rows = dst->shape[0], ld = dst->shape[1], ls = src->shape[1];
    const float *s = (const float *)src->data + src_col;
    float *d = (float *)dst->data + dst_col;
#pragma omp parallel for schedule(static) if (rows * count > CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *sr = s + r * ls;
        float *dr = d + r * ld;
        if (accumulate) {
#pragma omp simd
            for (int64_t j = 0; j < count; j++) dr[j] += sr[j];
        } else {
            memcpy(dr, sr, (size_t)count * sizeof(float));
        }
    }
}

void cpu_fill_gan(dpt_backend *be) {
    be->upsample2x_forward = upsample2x_forward;
    be->upsample2x_backward = upsample2x_backward;
    be->tanh_forward = tanh_forward;
    be->tanh_backward = tanh_backward;
    be->embedding_forward = embedding_forward;
    be->embedding_backward = embedding_backward;
    be->cbn_create = cbn_create;
    be->cbn_forward_train = cbn_forward_train;
    be->cbn_forward_eval = cbn_forward_eval;
    be->cbn_backward = cbn_backward;
    be->spectral_norm_forward = spectral_norm_forward;
    be->spectral_norm_backward = spectral_norm_backward;
    be->bmm_forward = bmm_forward;
    be->bmm_backward = bmm_backward;
    be->softmax_rows_forward = softmax_rows_forward;
    be->softmax_rows_backward = softmax_rows_backward;
    be->hinge_d = hinge_d;
    be->hinge_g = hinge_g;
    be->adam_update = adam_update;
    be->ema_update = ema_update;
    be->ortho_reg = ortho_reg;
    be->add_scalar_forward = add_scalar_forward;
    be->scaled_add_forward = scaled_add_forward;
    be->scaled_add_backward = scaled_add_backward;
    be->copy_cols = copy_cols;
}
