/* BatchNorm (+ fused ReLU), own OpenMP kernels on NHWC activations.
 *
 * Why not oneDNN's: oneDNN 2.6 accumulates the batch statistics in float over all N*H*W values
 * of a channel; on Fashion-MNIST's first layer (50,176 values per channel, mean several times
 * the standard deviation) its normalised output differs from a float64 computation by 6e-5
 * relative, against about 1e-7 here, and a ResNet-9's input-side gradients then differ from
 * PyTorch's by 1e-2 (tests/torch_parity.py). Here sums run in float over blocks of 16 pixels,
 * shifted by the channel's first value, and in double across blocks.
 *
 * Cross-replica BatchNorm (desc->reduce set) reduces the per-channel sums of the forward
 * statistics and of backward across the group; see backend.h.
 *
 * Running statistics follow PyTorch: running = (1 - m) * running + m * batch, with the unbiased
 * variance. The ReLU mask in backward comes from the forward output (out > 0). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define BLOCK 16

typedef struct bn_op {
    be_op base;
    be_bn_desc d;
    int max_threads;
    double *acc;  /* (threads, 2, C) */
    float *fblk;  /* (threads, 2, C) block sums */
    float *a, *b, *k; /* per-channel coefficients (C) */
    double *sums;     /* (2, C) channel sums of the last pass */
    double *red;      /* (2C + 1) cross-replica reduction buffer */
    double count;     /* values per channel behind the last batch statistics (all ranks) */
} bn_op;

static void bn_destroy(be_op *op) {
    bn_op *o = (bn_op *)op;
    free(o->acc);
    free(o->fblk);
    free(o->a);
    free(o->b);
    free(o->k);
    free(o->sums);
    free(o->red);
    free(o);
}

static be_op *bn_create(const be_bn_desc *d, dpt_layout layout) {
    DPT_CHECK_LIB("cpu", layout == LAYOUT_NHWC, "batchnorm_create", "the CPU BatchNorm kernels take NHWC");
    bn_op *o = dpt_xcalloc(1, sizeof *o);
    o->base.destroy = bn_destroy;
    o->d = *d;
    /* Sized for the most threads OpenMP may give us. */
    o->max_threads = omp_get_num_procs() > omp_get_max_threads() ? omp_get_num_procs() : omp_get_max_threads();
    o->acc = cpu_buffer((size_t)o->max_threads * 2 * d->c * sizeof(double));
    o->fblk = cpu_buffer((size_t)o->max_threads * 2 * d->c * sizeof(float));
    o->a = cpu_buffer((size_t)d->c * sizeof(float));
    o->b = cpu_buffer((size_t)d->c * sizeof(float));
    o->k = cpu_buffer((size_t)d->c * sizeof(float));
    o->sums = cpu_buffer((size_t)2 * d->c * sizeof(double));
    o->red = cpu_buffer((size_t)(2 * d->c + 1) * sizeof(double));
    return &o->base;
}

/* Per-channel sums over all pixels, in double:
 *   s0[c] = sum of u(p, c), s1[c] = sum of v(p, c)
 * where (u, v) = (x - k, (x - k)^2) for statistics, or (g, g * (x - k)) for backward with
 * g = dy masked by out > 0 when relu. */
static void channel_sums(bn_op *o, const float *x, const float *dy, const float *y, bool relu, bool backward,
                         double *s0, double *s1) {
    const int C = o->d.c;
    const int64_t P = (int64_t)o->d.n * o->d.h * o->d.w;
    const float *k = o->k;
    int nt = 1;
#pragma omp parallel
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        DPT_CHECK(T <= o->max_threads);
#pragma omp single
        nt = T;
        int64_t p0 = P * t / T, p1 = P * (t + 1) / T;
        double *d0 = o->acc + (size_t)t * 2 * C, *d1 = d0 + C;
        float *f0 = o->fblk + (size_t)t * 2 * C, *f1 = f0 + C;
        for (int c = 0; c < C; c++) d0[c] = d1[c] = 0.0;
        for (int64_t pb = p0; pb < p1; pb += BLOCK) {
            int64_t pe = pb + BLOCK < p1 ? pb + BLOCK : p1;
            for (int c = 0; c < C; c++) f0[c] = f1[c] = 0.0f;
            for (int64_t p = pb; p < pe; p++) {
                const float *xp = x + p * C;
                if (!backward) {
#pragma omp simd
                    for (int c = 0; c < C; c++) {
                        float u = xp[c] - k[c];
                        f0[c] += u;
                        f1[c] += u * u;
                    }
                } else {
                    const float *gp = dy + p * C, *yp = relu ? y + p * C : x + p * C;
                    const float floor = relu ? 0.0f : -INFINITY;
#pragma omp simd
                    for (int c = 0; c < C; c++) {
                        float g = gp[c];
                        g = yp[c] > floor ? g : 0.0f; /* a select of a loaded value: vectorizes */
                        f0[c] += g;
                        f1[c] += g * (xp[c] - k[c]);
                    }
                }
            }
            for (int c = 0; c < C; c++) {
                d0[c] += f0[c];
                d1[c] += f1[c];
            }
        }
    }
    for (int c = 0; c < C; c++) s0[c] = s1[c] = 0.0;
    for (int t = 0; t < nt; t++) {
        const double *d0 = o->acc + (size_t)t * 2 * C, *d1 = d0 + C;
        for (int c = 0; c < C; c++) {
            s0[c] += d0[c];
            s1[c] += d1[c];
        }
    }
}

/* y = a * x + b (then ReLU), per channel. */
static void affine(float *y, const float *x, const float *a, const float *b, int64_t P, int C, bool relu) {
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++) {
        const float *xp = x + p * C;
        float *yp = y + p * C;
        if (relu) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float v = a[c] * xp[c] + b[c];
                yp[c] = v > 0.0f ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) yp[c] = a[c] * xp[c] + b[c];
        }
    }
}

static void bn_forward_train(be_op *op, dpt_tensor *out, dpt_tensor *save_mean, dpt_tensor *save_var,
                             dpt_tensor *running_mean, dpt_tensor *running_var, const dpt_tensor *in,
                             const dpt_tensor *gamma, const dpt_tensor *beta) {
    bn_op *o = (bn_op *)op;
    const int C = o->d.c;
    const int64_t P = (int64_t)o->d.n * o->d.h * o->d.w;
    const float *x = in->data, *g = gamma->data, *bt = beta->data;
    float *mean = save_mean->data, *var = save_var->data, *rm = running_mean->data, *rv = running_var->data;
    /* Shift by the first pixel: sums of (x - k) stay small where the mean is large. */
    memcpy(o->k, x, (size_t)C * sizeof(float));
    double *s0 = o->sums, *s1 = o->sums + C;
    channel_sums(o, x, NULL, NULL, false, false, s0, s1);
    double N = (double)P;
    if (o->d.reduce.fn) {
        /* Ranks shift by different k: reduce unshifted sums (double keeps sum(x^2) exact enough:
         * the cancellation costs mean^2/var * 1e-16 relative). */
        double *r = o->red;
        for (int c = 0; c < C; c++) {
            double k = o->k[c];
            r[c] = s0[c] + N * k;
            r[C + c] = s1[c] + 2.0 * k * s0[c] + N * k * k;
        }
        r[2 * C] = N;
        o->d.reduce.fn(o->d.reduce.ctx, r, 2 * C + 1);
        N = r[2 * C];
        for (int c = 0; c < C; c++) {
            o->k[c] = 0.0f;
            s0[c] = r[c];
            s1[c] = r[C + c];
        }
    }
    o->count = N;
    const double m = o->d.momentum, unbias = N > 1 ? N / (N - 1) : 1.0;
    for (int c = 0; c < C; c++) {
        double mu_shift = s0[c] / N;
        double v = s1[c] / N - mu_shift * mu_shift;
        if (v < 0.0) v = 0.0;
        double mu = (double)o->k[c] + mu_shift;
        mean[c] = (float)mu;
        var[c] = (float)v;
        rm[c] = (float)((1.0 - m) * rm[c] + m * mu);
        rv[c] = (float)((1.0 - m) * rv[c] + m * v * unbias);
        double inv = 1.0 / sqrt(v + (double)o->d.eps);
        o->a[c] = (float)(g[c] * inv);
        o->b[c] = (float)(bt[c] - mu * g[c] * inv);
    }
    affine(out->data, x, o->a, o->b, P, C, o->d.relu);
}

static void bn_forward_eval(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *gamma,
                            const dpt_tensor *beta, const dpt_tensor *running_mean, const dpt_tensor *running_var) {
    bn_op *o = (bn_op *)op;
    const int C = o->d.c;
    const float *g = gamma->data, *bt = beta->data, *rm = running_mean->data, *rv = running_var->data;
    for (int c = 0; c < C; c++) {
        double inv = 1.0 / sqrt((double)rv[c] + (double)o->d.eps);
        o->a[c] = (float)(g[c] * inv);
        o->b[c] = (float)(bt[c] - (double)rm[c] * g[c] * inv);
    }
    affine(out->data, in->data, o->a, o->b, (int64_t)o->d.n * o->d.h * o->d.w, C, o->d.relu);
}

static void bn_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dgamma, dpt_tensor *dbeta,
                        bool param_accumulate, const dpt_tensor *dout, const dpt_tensor *in, const dpt_tensor *out,
                        const dpt_tensor *gamma, const dpt_tensor *beta, const dpt_tensor *save_mean,
                        const dpt_tensor *save_var) {
    bn_op *o = (bn_op *)op;
    const int C = o->d.c;
    const int64_t P = (int64_t)o->d.n * o->d.h * o->d.w;
    const bool relu = o->d.relu;
    const float *x = in->data, *dy = dout->data, *y = out->data, *g = gamma->data;
    const float *mean = save_mean->data, *var = save_var->data;
    float *dg = dgamma->data, *db = dbeta->data;
    /* Sums around the batch mean: k = mean. */
    memcpy(o->k, mean, (size_t)C * sizeof(float));
    double *sg = o->sums, *sgx = o->sums + C;
    channel_sums(o, x, dy, y, relu, true, sg, sgx);
    for (int c = 0; c < C; c++) {
        double inv = 1.0 / sqrt((double)var[c] + (double)o->d.eps);
        double dgam = sgx[c] * inv, dbet = sg[c];
        dg[c] = param_accumulate ? dg[c] + (float)dgam : (float)dgam;
        db[c] = param_accumulate ? db[c] + (float)dbet : (float)dbet;
    }
    double N = (double)P;
    if (o->d.reduce.fn) { /* dx goes through the group's statistics: the group's sums */
        o->d.reduce.fn(o->d.reduce.ctx, o->sums, 2 * C);
        N = o->count;
    }
    /* dx = a*g + b*x + c0 with a = gamma*inv, b = -gamma*inv^3*sum(g*(x-mean))/N,
     * c0 = -a*sum(g)/N - b*mean. */
    float *ca = o->a, *cb = o->b, *c0 = o->k;
    for (int c = 0; c < C; c++) {
        double inv = 1.0 / sqrt((double)var[c] + (double)o->d.eps);
        double a = g[c] * inv, b = -g[c] * inv * inv * inv * sgx[c] / N;
        ca[c] = (float)a;
        cb[c] = (float)b;
        c0[c] = (float)(-a * sg[c] / N - b * mean[c]);
    }
    float *dx = din->data;
    /* Without ReLU, compare x against -inf: every element kept. */
    const float *mask_src = relu ? y : x;
    const float floor = relu ? 0.0f : -INFINITY;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++) {
        const float *xp = x + p * C, *gp = dy + p * C, *mp = mask_src + p * C;
        float *dxp = dx + p * C;
        if (accumulate) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float g = gp[c];
                g = mp[c] > floor ? g : 0.0f;
                dxp[c] += ca[c] * g + cb[c] * xp[c] + c0[c];
            }
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float g = gp[c];
                g = mp[c] > floor ? g : 0.0f;
                dxp[c] = ca[c] * g + cb[c] * xp[c] + c0[c];
            }
        }
    }
}

void cpu_fill_norm(dpt_backend *be) {
    be->batchnorm_create = bn_create;
    be->batchnorm_forward_train = bn_forward_train;
    be->batchnorm_forward_eval = bn_forward_eval;
    be->batchnorm_backward = bn_backward;
}
