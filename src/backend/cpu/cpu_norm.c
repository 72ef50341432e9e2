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
 * variance. The ReLU mask in backward comes from the forward output (out > 0).
 *
 * The statistics machinery (cpu_bn_*, declared in cpu_internal.h) is shared with conditional
 * BatchNorm (cpu_gan.c), whose affine transform is per sample instead of per channel. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define BLOCK 16

typedef struct bn_op {
    be_op base;
    cpu_bn_stats s;
} bn_op;

void cpu_bn_stats_init(cpu_bn_stats *s, const be_bn_desc *d) {
    memset(s, 0, sizeof *s);
    s->d = *d;
    /* Sized for the most threads OpenMP may give us. */
    s->max_threads = omp_get_num_procs() > omp_get_max_threads() ? omp_get_num_procs() : omp_get_max_threads();
    s->acc = cpu_buffer((size_t)s->max_threads * 2 * d->c * sizeof(double));
    s->fblk = cpu_buffer((size_t)s->max_threads * 2 * d->c * sizeof(float));
    s->a = cpu_buffer((size_t)d->c * sizeof(float));
    s->b = cpu_buffer((size_t)d->c * sizeof(float));
    s->k = cpu_buffer((size_t)d->c * sizeof(float));
    s->sums = cpu_buffer((size_t)2 * d->c * sizeof(double));
    s->red = cpu_buffer((size_t)(2 * d->c + 1) * sizeof(double));
    s->mu = cpu_buffer((size_t)d->c * sizeof(double));
    s->inv = cpu_buffer((size_t)d->c * sizeof(double));
}

void cpu_bn_stats_free(cpu_bn_stats *s) {
    free(s->acc);
    free(s->fblk);
    free(s->a);
    free(s->b);
    free(s->k);
    free(s->sums);
    free(s->red);
    free(s->mu);
    free(s->inv);
}

static void bn_destroy(be_op *op) {
    bn_op *o = (bn_op *)op;
    cpu_bn_stats_free(&o->s);
    free(o);
}

static be_op *bn_create(const be_bn_desc *d, dpt_layout layout) {
    DPT_CHECK_LIB("cpu", layout == LAYOUT_NHWC, "batchnorm_create", "the CPU BatchNorm kernels take NHWC");
    bn_op *o = dpt_xcalloc(1, sizeof *o);
    o->base.destroy = bn_destroy;
    cpu_bn_stats_init(&o->s, d);
    return &o->base;
}

/* Per-channel sums over P pixels, in double:
 *   s0[c] = sum of u(p, c), s1[c] = sum of v(p, c)
 * where (u, v) = (x - k, (x - k)^2) for statistics, or (g, g * (x - k)) for backward with
 * g = dy masked by out > 0 when relu. */
void cpu_bn_channel_sums(cpu_bn_stats *o, const float *x, const float *dy, const float *y, int64_t P, bool relu,
                         bool backward, double *s0, double *s1) {
    const int C = o->d.c;
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

void cpu_bn_affine(float *y, const float *x, const float *a, const float *b, int n, int64_t hw, int C,
                   int64_t stride, bool relu) {
    const int64_t P = (int64_t)n * hw;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++) {
        const float *xp = x + p * C, *ap = a + p / hw * stride, *bp = b + p / hw * stride;
        float *yp = y + p * C;
        if (relu) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float v = ap[c] * xp[c] + bp[c];
                yp[c] = v > 0.0f ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) yp[c] = ap[c] * xp[c] + bp[c];
        }
    }
}

void cpu_bn_batch_stats(cpu_bn_stats *o, float *mean, float *var, float *rm, float *rv, const float *x) {
    const int C = o->d.c;
    const int64_t P = (int64_t)o->d.n * o->d.h * o->d.w;
    /* Shift by the first pixel: sums of (x - k) stay small where the mean is large. */
    memcpy(o->k, x, (size_t)C * sizeof(float));
    double *s0 = o->sums, *s1 = o->sums + C;
    cpu_bn_channel_sums(o, x, NULL, NULL, P, false, false, s0, s1);
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
        o->mu[c] = mu;
        o->inv[c] = 1.0 / sqrt(v + (double)o->d.eps);
    }
}

static void bn_forward_train(be_op *op, dpt_tensor *out, dpt_tensor *save_mean, dpt_tensor *save_var,
                             dpt_tensor *running_mean, dpt_tensor *running_var, const dpt_tensor *in,
                             const dpt_tensor *gamma, const dpt_tensor *beta) {
    cpu_bn_stats *o = &((bn_op *)op)->s;
    const int C = o->d.c;
    const float *g = gamma->data, *bt = beta->data;
    cpu_bn_batch_stats(o, save_mean->data, save_var->data, running_mean->data, running_var->data, in->data);
    for (int c = 0; c < C; c++) {
        double mu = o->mu[c], inv = o->inv[c];
        o->a[c] = (float)(g[c] * inv);
        o->b[c] = (float)(bt[c] - mu * g[c] * inv);
    }
    cpu_bn_affine(out->data, in->data, o->a, o->b, o->d.n, (int64_t)o->d.h * o->d.w, C, 0, o->d.relu);
}

static void bn_forward_eval(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *gamma,
                            const dpt_tensor *beta, const dpt_tensor *running_mean, const dpt_tensor *running_var) {
    cpu_bn_stats *o = &((bn_op *)op)->s;
    const int C = o->d.c;
    const float *g = gamma->data, *bt = beta->data, *rm = running_mean->data, *rv = running_var->data;
    for (int c = 0; c < C; c++) {
        double inv = 1.0 / sqrt((double)rv[c] + (double)o->d.eps);
        o->a[c] = (float)(g[c] * inv);
        o->b[c] = (float)(bt[c] - (double)rm[c] * g[c] * inv);
    }
    cpu_bn_affine(out->data, in->data, o->a, o->b, o->d.n, (int64_t)o->d.h * o->d.w, C, 0, o->d.relu);
}

void cpu_bn_dx(float *dx, bool accumulate, const float *x, const float *dy, const float *y, const float *a,
               int64_t a_stride, const float *b, const float *c0, int n, int64_t hw, int C, bool relu) {
    const int64_t P = (int64_t)n * hw;
    /* Without ReLU, compare x against -inf: every element kept. */
    const float *mask_src = relu ? y : x;
    const float floor = relu ? 0.0f : -INFINITY;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++) {
        const float *xp = x + p * C, *gp = dy + p * C, *mp = mask_src + p * C, *ap = a + p / hw * a_stride;
        float *dxp = dx + p * C;
        if (accumulate) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float g = gp[c];
                g = mp[c] > floor ? g : 0.0f;
                dxp[c] += ap[c] * g + b[c] * xp[c] + c0[c];
            }
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float g = gp[c];
                g = mp[c] > floor ? g : 0.0f;
                dxp[c] = ap[c] * g + b[c] * xp[c] + c0[c];
            }
        }
    }
}

static void bn_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dgamma, dpt_tensor *dbeta,
                        bool param_accumulate, const dpt_tensor *dout, const dpt_tensor *in, const dpt_tensor *out,
                        const dpt_tensor *gamma, const dpt_tensor *beta, const dpt_tensor *save_mean,
                        const dpt_tensor *save_var) {
    cpu_bn_stats *o = &((bn_op *)op)->s;
    const int C = o->d.c;
    const int64_t P = (int64_t)o->d.n * o->d.h * o->d.w;
    const bool relu = o->d.relu;
    const float *x = in->data, *dy = dout->data, *y = out->data, *g = gamma->data;
    const float *mean = save_mean->data, *var = save_var->data;
    float *dg = dgamma->data, *db = dbeta->data;
    /* Sums around the batch mean: k = mean. */
    memcpy(o->k, mean, (size_t)C * sizeof(float));
    double *sg = o->sums, *sgx = o->sums + C;
    cpu_bn_channel_sums(o, x, dy, y, P, relu, true, sg, sgx);
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
    cpu_bn_dx(din->data, accumulate, x, dy, y, ca, 0, cb, c0, o->d.n, (int64_t)o->d.h * o->d.w, C, relu);
}

void cpu_fill_norm(dpt_backend *be) {
    be->batchnorm_create = bn_create;
    be->batchnorm_forward_train = bn_forward_train;
    be->batchnorm_forward_eval = bn_forward_eval;
    be->batchnorm_backward = bn_backward;
}
