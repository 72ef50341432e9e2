/* BatchNorm (+ fused ReLU) and conditional BatchNorm on NHWC activations: own kernels with the
 * arithmetic of the CPU back end (cpu_norm.c, and cbn in cpu_gan.c).
 *
 * Statistics: per-channel sums in two passes, without atomics (deterministic).
 *   1. bn_partial_kernel: a block covers a range of pixels and a group of CW channels; thread
 *      (lane, row) sums channel lane over every RS-th pixel of the range, in float over chunks
 *      of BN_CHUNK pixels, shifted by k (the first pixel's value for statistics, the batch mean
 *      for backward, as the CPU), and in double across chunks; the rows of a block are then
 *      added in double in a fixed order and the block writes one partial per channel.
 *   2. bn_stats_final_kernel / bn_grad_final_kernel: 32 threads per channel add its partials
 *      with a fixed tree and finish the per-channel arithmetic in double.
 * Partials are laid out (2, C, blocks) so that pass 2 reads them contiguously.
 *
 * Cross-replica BatchNorm (desc->reduce.fn): the same buffers as the CPU (forward: unshifted
 * sums (2C) and the count, 2C + 1 doubles; backward: the two per-channel sums, 2C), copied to a
 * pinned host buffer, reduced by the caller's function and copied back (or, with reduce.device,
 * reduced in place on the device by NCCL), so that CPU and GPU
 * ranks interoperate.
 *
 * The affine transform and dx run over (pixel, channel) with the same thread tiling, so that a
 * thread keeps its channel's coefficients in registers and no element needs a division by C.
 * Everything is allocated at create time. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#ifdef DPT_CUDA_EMU
#define BN_UNROLL
#define BN_RCAP 8      /* most pixel blocks of the statistics pass */
#define BN_PPT 16      /* pixels per thread aimed at in the statistics pass */
#define BN_GRID_CAP 8  /* most pixel blocks of the elementwise passes */
#else
#define BN_UNROLL _Pragma("unroll")
#define BN_RCAP 1024
#define BN_PPT 64
#define BN_GRID_CAP 4096
#endif
#define BN_CHUNK 16 /* pixels summed in float before adding to double (the CPU's block) */
#define BN_SEG_CAP 2048 /* most blocks of cbn's per-sample backward sums */

enum { BN_STATS = 0, BN_GRAD = 1, BN_GRAD_RELU = 2 };

typedef struct bn_state {
    be_bn_desc d;
    int G, CW, RS;    /* channel groups, channels per group, pixel rows per block */
    int64_t P, hw;    /* pixels N*H*W, pixels per sample */
    int R;            /* pixel blocks of the statistics pass over P */
    int rseg;         /* cbn backward: pixel blocks per sample */
    double *part;     /* (2, C, blocks) partial sums */
    double *sums;     /* (2C) channel sums (device) */
    double *hred;     /* (2C + 1) pinned host buffer of the cross-replica reduction */
    float *k;         /* (C) shift of the last statistics pass */
    double *mu, *inv; /* (C) batch mean and 1 / sqrt(var + eps) */
    float *a, *b;     /* (C) coefficients; cbn: (N, C) */
    float *cb, *c0;   /* (C) backward coefficients */
    double *psum;     /* cbn: (2, N, C) per-sample sums of g and g * (x - mean) */
    double count;     /* values per channel behind the last batch statistics (all ranks) */
} bn_state;

typedef struct bn_op {
    be_op base;
    bn_state s;
} bn_op;

/* ---- kernels ---- */

template <typename T>
__device__ __forceinline__ void bn_acc(float &f0, float &f1, const T *x, const T *dy, const T *y, int64_t i, float k,
                                       int mode) {
    const float xv = cu_f(x[i]);
    if (mode == BN_STATS) {
        const float u = xv - k;
        f0 += u;
        f1 += u * u;
    } else {
        /* Without ReLU, x > -inf keeps every element (the CPU's mask). */
        const bool relu = mode == BN_GRAD_RELU;
        const float m = relu ? cu_f(y[i]) : xv, floor = relu ? 0.0f : -INFINITY;
        float g = cu_f(dy[i]);
        g = m > floor ? g : 0.0f;
        f0 += g;
        f1 += g * (xv - k);
    }
}

/* Pass 1: part[(s, c, block)] for segments of pseg pixels, rseg blocks each (rtot blocks in all).
 * Statistics: (x - k, (x - k)^2) with k the first pixel's value (written to kout); backward:
 * (g, g * (x - k)) with k = kin. */
template <typename T>
__global__ void bn_partial_kernel(double *part, float *kout, const T *x, const T *dy, const T *y, const float *kin,
                                  int mode, int C, int CW, int RS, int64_t pseg, int rseg, int rtot) {
    __shared__ double sh0[CU_THREADS], sh1[CU_THREADS];
    const int t = (int)threadIdx.x, lane = t % CW, row = t / CW;
    const int c = (int)blockIdx.y * CW + lane;
    const bool on = row < RS && c < C;
    double d0 = 0.0, d1 = 0.0;
    if (on) {
        const float k = mode == BN_STATS ? cu_f(x[c]) : kin[c];
        if (mode == BN_STATS && blockIdx.x == 0 && row == 0) kout[c] = k;
        const int seg = (int)blockIdx.x / rseg, j = (int)blockIdx.x % rseg;
        const int64_t pb = (pseg + rseg - 1) / rseg, seg_end = (int64_t)(seg + 1) * pseg;
        const int64_t p0 = (int64_t)seg * pseg + (int64_t)j * pb;
        const int64_t end = p0 + pb < seg_end ? p0 + pb : seg_end;
        int64_t p = p0 + row;
        while (p < end) {
            float f0 = 0.0f, f1 = 0.0f;
            if (p + (int64_t)(BN_CHUNK - 1) * RS < end) {
                BN_UNROLL
                for (int q = 0; q < BN_CHUNK; q++) bn_acc(f0, f1, x, dy, y, (p + (int64_t)q * RS) * C + c, k, mode);
                p += (int64_t)BN_CHUNK * RS;
            } else {
                for (; p < end; p += RS) bn_acc(f0, f1, x, dy, y, p * C + c, k, mode);
            }
            d0 += f0;
            d1 += f1;
        }
    }
    sh0[t] = d0;
    sh1[t] = d1;
    __syncthreads();
    if (row == 0 && c < C) {
        double a0 = 0.0, a1 = 0.0;
        for (int r = 0; r < RS; r++) {
            a0 += sh0[r * CW + lane];
            a1 += sh1[r * CW + lane];
        }
        part[(int64_t)c * rtot + blockIdx.x] = a0;
        part[(int64_t)(C + c) * rtot + blockIdx.x] = a1;
    }
}

/* Pass 2: a block adds the partials of BN_FIN_CH channels, BN_FIN_LANES threads per channel,
 * each over a strided subset and then in a fixed tree. Every thread must call it; true (with c
 * and the two sums) for the first lane of a channel that exists. */
#define BN_FIN_LANES 32
#define BN_FIN_CH (CU_THREADS / BN_FIN_LANES)
__device__ __forceinline__ bool bn_final_sums(const double *part, int rtot, int C, int *cp, double *s0p, double *s1p) {
    __shared__ double sh0[CU_THREADS], sh1[CU_THREADS];
    const int t = (int)threadIdx.x, lane = t % BN_FIN_LANES;
    const int c = (int)blockIdx.x * BN_FIN_CH + t / BN_FIN_LANES;
    double s0 = 0.0, s1 = 0.0;
    if (c < C)
        for (int r = lane; r < rtot; r += BN_FIN_LANES) {
            s0 += part[(int64_t)c * rtot + r];
            s1 += part[(int64_t)(C + c) * rtot + r];
        }
    sh0[t] = s0;
    sh1[t] = s1;
    __syncthreads();
    for (int s = BN_FIN_LANES / 2; s > 0; s >>= 1) {
        if (lane < s) {
            sh0[t] += sh0[t + s];
            sh1[t] += sh1[t + s];
        }
        __syncthreads();
    }
    *cp = c;
    *s0p = sh0[t];
    *s1p = sh1[t];
    return lane == 0 && c < C;
}

static unsigned bn_final_blocks(int C) { return (unsigned)((C + BN_FIN_CH - 1) / BN_FIN_CH); }

typedef struct bn_stat_args {
    const double *part;
    int rtot, C;
    const float *k;
    double *red; /* non-NULL: write the unshifted sums there and stop (cross-replica) */
    double N, m, eps;
    float *mean, *var, *rm, *rv;
    double *mu, *inv;
    const float *gamma, *beta; /* NULL: no per-channel coefficients (cbn) */
    float *a, *b;
} bn_stat_args;

/* cpu_bn_batch_stats's per-channel arithmetic. */
__device__ __forceinline__ void bn_stats_one(const bn_stat_args &p, int c, double s0, double s1, double k) {
    const double N = p.N, m = p.m, unbias = N > 1 ? N / (N - 1) : 1.0;
    const double mu_shift = s0 / N;
    double v = s1 / N - mu_shift * mu_shift;
    if (v < 0.0) v = 0.0;
    const double mu = k + mu_shift;
    p.mean[c] = (float)mu;
    p.var[c] = (float)v;
    p.rm[c] = (float)((1.0 - m) * p.rm[c] + m * mu);
    p.rv[c] = (float)((1.0 - m) * p.rv[c] + m * v * unbias);
    const double inv = 1.0 / sqrt(v + p.eps);
    p.mu[c] = mu;
    p.inv[c] = inv;
    if (p.gamma) {
        p.a[c] = (float)(p.gamma[c] * inv);
        p.b[c] = (float)(p.beta[c] - mu * p.gamma[c] * inv);
    }
}

/* Pass 2 of the statistics. */
__global__ void bn_stats_final_kernel(bn_stat_args p) {
    const int C = p.C;
    int c;
    double s0, s1;
    if (!bn_final_sums(p.part, p.rtot, C, &c, &s0, &s1)) return;
    const double k = p.k[c], N = p.N;
    if (p.red) {
        p.red[c] = s0 + N * k;
        p.red[C + c] = s1 + 2.0 * k * s0 + N * k * k;
    } else {
        bn_stats_one(p, c, s0, s1, k);
    }
}

/* The statistics from the group's unshifted sums (p.red). */
__global__ void bn_stats_apply_kernel(bn_stat_args p) {
    CU_FOR(c, p.C) bn_stats_one(p, (int)c, p.red[c], p.red[p.C + c], 0.0);
}

/* Backward coefficients of dx = a * g + b * x + c0 from the (group's) sums. gamma NULL: cbn,
 * whose a is per sample (set elsewhere). */
__device__ __forceinline__ void bn_grad_coef(int c, double sg, double sgx, double inv, double N, const float *gamma,
                                             const float *mean, float *ca, float *cb, float *c0) {
    if (gamma) {
        const double a = gamma[c] * inv, b = -gamma[c] * inv * inv * inv * sgx / N;
        ca[c] = (float)a;
        cb[c] = (float)b;
        c0[c] = (float)(-a * sg / N - b * mean[c]);
    } else {
        const double b = -inv * inv * inv * sgx / N;
        cb[c] = (float)b;
        c0[c] = (float)(-inv * sg / N - b * mean[c]);
    }
}

typedef struct bn_grad_args {
    const double *part;
    int rtot, C;
    const float *mean, *var;
    double eps, N;
    float *dg, *db;
    bool pacc;
    double *sums, *inv;
    bool finish; /* compute the coefficients (no cross-replica reduction in between) */
    const float *gamma;
    float *ca, *cb, *c0;
} bn_grad_args;

/* Pass 2 of BatchNorm's backward: dgamma, dbeta and the sums. */
__global__ void bn_grad_final_kernel(bn_grad_args p) {
    const int C = p.C;
    int c;
    double s0, s1;
    if (!bn_final_sums(p.part, p.rtot, C, &c, &s0, &s1)) return;
    const double inv = 1.0 / sqrt((double)p.var[c] + p.eps);
    const double dgam = s1 * inv, dbet = s0;
    p.dg[c] = p.pacc ? p.dg[c] + (float)dgam : (float)dgam;
    p.db[c] = p.pacc ? p.db[c] + (float)dbet : (float)dbet;
    p.sums[c] = s0;
    p.sums[C + c] = s1;
    p.inv[c] = inv;
    if (p.finish) bn_grad_coef(c, s0, s1, inv, p.N, p.gamma, p.mean, p.ca, p.cb, p.c0);
}

/* The coefficients from the group's sums (after the cross-replica reduction). */
__global__ void bn_grad_coef_kernel(bn_grad_args p) {
    CU_FOR(c, p.C) bn_grad_coef((int)c, p.sums[c], p.sums[p.C + c], p.inv[c], p.N, p.gamma, p.mean, p.ca, p.cb, p.c0);
}

/* Evaluation coefficients from the running statistics (BatchNorm: a, b per channel; cbn: mu and
 * inv, the per-sample coefficients follow). */
__global__ void bn_eval_coef_kernel(int C, const float *rm, const float *rv, double eps, const float *gamma,
                                    const float *beta, float *a, float *b, double *mu, double *inv) {
    CU_FOR(c, C) {
        const double iv = 1.0 / sqrt((double)rv[c] + eps);
        if (gamma) {
            a[c] = (float)(gamma[c] * iv);
            b[c] = (float)(beta[c] - (double)rm[c] * gamma[c] * iv);
        } else {
            mu[c] = rm[c];
            inv[c] = iv;
        }
    }
}

/* cbn: a = gain * inv, b = bias - mean * gain * inv, per sample and channel. */
template <typename T>
__global__ void cbn_coef_kernel(float *a, float *b, const T *gain, const T *bias, const double *mu, const double *inv,
                                int C, int64_t nc) {
    CU_FOR(j, nc) {
        const int c = (int)(j % C);
        const float g = cu_f(gain[j]);
        a[j] = (float)(g * inv[c]);
        b[j] = (float)(cu_f(bias[j]) - mu[c] * g * inv[c]);
    }
}

/* y = a * x + b (then ReLU); a, b per channel, or per sample and channel when per_sample. */
template <typename T>
__global__ void bn_affine_kernel(T *y, const T *x, const float *a, const float *b, bool per_sample, int64_t hw, int C,
                                 int CW, int RS, int64_t P, bool relu) {
    const int t = (int)threadIdx.x, lane = t % CW, row = t / CW, c = (int)blockIdx.y * CW + lane;
    if (row >= RS || c >= C) return;
    float ac = a[c], bc = b[c];
    for (int64_t p = (int64_t)blockIdx.x * RS + row; p < P; p += (int64_t)gridDim.x * RS) {
        if (per_sample) {
            const int64_t j = p / hw * C + c;
            ac = a[j];
            bc = b[j];
        }
        const int64_t i = p * C + c;
        float v = ac * cu_f(x[i]) + bc;
        if (relu) v = v > 0.0f ? v : 0.0f;
        y[i] = cu_t<T>(v);
    }
}

/* dx (+)= a * g + b * x + c0 with g = dy masked by y > 0 when relu; a per channel or per sample. */
template <typename T>
__global__ void bn_dx_kernel(T *dx, bool acc, const T *x, const T *dy, const T *y, const float *a, bool per_sample,
                             int64_t hw, const float *b, const float *c0, int C, int CW, int RS, int64_t P, bool relu) {
    const int t = (int)threadIdx.x, lane = t % CW, row = t / CW, c = (int)blockIdx.y * CW + lane;
    if (row >= RS || c >= C) return;
    float ac = a[c];
    const float bc = b[c], cc = c0[c], floor = relu ? 0.0f : -INFINITY;
    for (int64_t p = (int64_t)blockIdx.x * RS + row; p < P; p += (int64_t)gridDim.x * RS) {
        if (per_sample) ac = a[p / hw * C + c];
        const int64_t i = p * C + c;
        const float xv = cu_f(x[i]);
        const float m = relu ? cu_f(y[i]) : xv;
        float g = cu_f(dy[i]);
        g = m > floor ? g : 0.0f;
        const float v = ac * g + bc * xv + cc;
        dx[i] = cu_t<T>(acc ? cu_f(dx[i]) + v : v);
    }
}

/* cbn backward, per sample and channel: the sums over the sample's blocks, dbias = sum g,
 * dgain = sum g * xhat, and a = gain * inv. */
template <typename T>
__global__ void cbn_seg_kernel(double *psum, T *dgain, T *dbias, bool acc, float *a, const double *part, int rtot,
                               int rseg, const T *gain, const float *var, double eps, int C, int64_t nc) {
    CU_FOR(j, nc) {
        const int c = (int)(j % C);
        const int64_t i = j / C;
        double sg = 0.0, sgx = 0.0;
        for (int r = 0; r < rseg; r++) {
            sg += part[(int64_t)c * rtot + i * rseg + r];
            sgx += part[(int64_t)(C + c) * rtot + i * rseg + r];
        }
        const double inv = 1.0 / sqrt((double)var[c] + eps);
        const float gb = (float)sg, gg = (float)(sgx * inv);
        dbias[j] = cu_t<T>(acc ? cu_f(dbias[j]) + gb : gb);
        dgain[j] = cu_t<T>(acc ? cu_f(dgain[j]) + gg : gg);
        psum[j] = sg;
        psum[nc + j] = sgx;
        a[j] = (float)(cu_f(gain[j]) * inv);
    }
}

/* cbn backward, per channel: the input's sums sum_i gain * (per-sample sums). */
template <typename T>
__global__ void cbn_tot_kernel(double *sums, double *inv, const double *psum, const T *gain, const float *var,
                               double eps, int n, int C, bool finish, double N, const float *mean, float *cb,
                               float *c0) {
    CU_FOR(c, C) {
        const int64_t nc = (int64_t)n * C;
        double tg = 0.0, tgx = 0.0;
        for (int i = 0; i < n; i++) {
            const int64_t j = (int64_t)i * C + c;
            const double g = cu_f(gain[j]);
            tg += g * psum[j];
            tgx += g * psum[nc + j];
        }
        const double iv = 1.0 / sqrt((double)var[c] + eps);
        sums[c] = tg;
        sums[C + c] = tgx;
        inv[c] = iv;
        if (finish) bn_grad_coef((int)c, tg, tgx, iv, N, NULL, mean, NULL, cb, c0);
    }
}

/* ---- host side ---- */

static int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t imax64(int64_t a, int64_t b) { return a > b ? a : b; }

static void bn_state_init(bn_state *s, const be_bn_desc *d, dpt_layout layout, bool cbn, const char *what) {
    DPT_CHECK_LIB("CUDA back end", layout == LAYOUT_NHWC, what, "the CUDA BatchNorm kernels take NHWC");
    DPT_CHECK_LIB("CUDA back end", d->n > 0 && d->c > 0 && d->h > 0 && d->w > 0, what, "empty shape (%d, %d, %d, %d)",
                  d->n, d->c, d->h, d->w);
    memset(s, 0, sizeof *s);
    s->d = *d;
    const int C = d->c;
    s->G = (C + CU_THREADS - 1) / CU_THREADS;
    s->CW = (C + s->G - 1) / s->G;
    s->RS = CU_THREADS / s->CW;
    s->hw = (int64_t)d->h * d->w;
    s->P = (int64_t)d->n * s->hw;
    const int64_t per_block = (int64_t)s->RS * BN_PPT;
    s->R = (int)imax64(1, imin64((s->P + per_block - 1) / per_block, imax64(1, BN_RCAP / s->G)));
    int64_t rtot = s->R;
    if (cbn) {
        s->rseg = (int)imax64(1, imin64((s->hw + per_block - 1) / per_block, imax64(1, BN_SEG_CAP / ((int64_t)d->n * s->G))));
        rtot = imax64(rtot, (int64_t)d->n * s->rseg);
    }
    s->part = (double *)cu_buffer((size_t)(2 * C * rtot) * sizeof(double));
    s->sums = (double *)cu_buffer((size_t)(2 * C + 1) * sizeof(double));
    CUDA_CHECK(cudaMallocHost((void **)&s->hred, (size_t)(2 * C + 1) * sizeof(double)));
    s->k = (float *)cu_buffer((size_t)C * sizeof(float));
    s->mu = (double *)cu_buffer((size_t)C * sizeof(double));
    s->inv = (double *)cu_buffer((size_t)C * sizeof(double));
    const size_t ncoef = cbn ? (size_t)d->n * C : (size_t)C;
    s->a = (float *)cu_buffer(ncoef * sizeof(float));
    s->b = (float *)cu_buffer(ncoef * sizeof(float));
    s->cb = (float *)cu_buffer((size_t)C * sizeof(float));
    s->c0 = (float *)cu_buffer((size_t)C * sizeof(float));
    if (cbn) s->psum = (double *)cu_buffer(2 * (size_t)d->n * C * sizeof(double));
    s->count = (double)s->P;
}

static void bn_destroy(be_op *op) {
    bn_state *s = &((bn_op *)op)->s;
    CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
    cu_buffer_free(s->part);
    cu_buffer_free(s->sums);
    CUDA_CHECK(cudaFreeHost(s->hred));
    cu_buffer_free(s->k);
    cu_buffer_free(s->mu);
    cu_buffer_free(s->inv);
    cu_buffer_free(s->a);
    cu_buffer_free(s->b);
    cu_buffer_free(s->cb);
    cu_buffer_free(s->c0);
    cu_buffer_free(s->psum);
    free(op);
}

static be_op *op_create(const be_bn_desc *d, dpt_layout layout, bool cbn) {
    bn_op *o = (bn_op *)dpt_xcalloc(1, sizeof *o);
    o->base.destroy = bn_destroy;
    bn_state_init(&o->s, d, layout, cbn, cbn ? "cbn_create" : "batchnorm_create");
    return &o->base;
}

static be_op *bn_create(const be_bn_desc *d, dpt_layout layout) { return op_create(d, layout, false); }
static be_op *cbn_create(const be_bn_desc *d, dpt_layout layout) { return op_create(d, layout, true); }

static dim3 elem_grid(const bn_state *s) {
    const int64_t b = imin64((s->P + s->RS - 1) / s->RS, imax64(1, BN_GRID_CAP / s->G));
    return dim3((unsigned)b, (unsigned)s->G);
}

/* Copies n doubles of device memory to the pinned host buffer, reduces them across the group
 * (extra: a value appended after them, the count, or < 0 for none), copies them back. Returns
 * the reduced extra value. */
static double bn_reduce(bn_state *s, double *dev, int n, double extra) {
    if (s->d.reduce.device) { /* queued on the stream (NCCL): equal counts on every rank */
        s->d.reduce.fn(s->d.reduce.ctx, dev, n);
        return extra >= 0.0 ? extra * (double)s->d.reduce.ranks : 0.0;
    }
    cudaStream_t st = cu_stream();
    CUDA_CHECK(cudaMemcpyAsync(s->hred, dev, (size_t)n * sizeof(double), cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    int m = n;
    if (extra >= 0.0) s->hred[m++] = extra;
    s->d.reduce.fn(s->d.reduce.ctx, s->hred, m);
    CUDA_CHECK(cudaMemcpyAsync(dev, s->hred, (size_t)n * sizeof(double), cudaMemcpyHostToDevice, st));
    return extra >= 0.0 ? s->hred[n] : 0.0;
}

/* Batch statistics of x (the group's when reduce is set): save_mean, save_var, running
 * statistics, s->mu, s->inv, s->count; a, b when gamma is given (BatchNorm). */
static void bn_batch_stats(bn_state *s, const char *what, const dpt_tensor *in, dpt_tensor *mean, dpt_tensor *var,
                           dpt_tensor *rm, dpt_tensor *rv, const float *gamma, const float *beta) {
    const int C = s->d.c;
    cu_same_dtype(what, DT_F32, mean, var, rm);
    cu_same_dtype(what, DT_F32, rv);
    DPT_CHECK_LIB("CUDA back end", tensor_numel(in) == s->P * C, what, "input has %lld values, the op %lld",
                  (long long)tensor_numel(in), (long long)(s->P * C));
    CU_DISPATCH(in->dtype, what,
                CU_LAUNCH_SYNC(bn_partial_kernel<T>, dim3((unsigned)s->R, (unsigned)s->G), CU_THREADS, cu_stream(),
                               s->part, s->k, (const T *)in->data, (const T *)NULL, (const T *)NULL,
                               (const float *)NULL, (int)BN_STATS, C, s->CW, s->RS, s->P, s->R, s->R));
    bn_stat_args p;
    p.part = s->part;
    p.rtot = s->R;
    p.C = C;
    p.k = s->k;
    p.red = NULL;
    p.N = (double)s->P;
    p.m = (double)s->d.momentum;
    p.eps = (double)s->d.eps;
    p.mean = (float *)mean->data;
    p.var = (float *)var->data;
    p.rm = (float *)rm->data;
    p.rv = (float *)rv->data;
    p.mu = s->mu;
    p.inv = s->inv;
    p.gamma = gamma;
    p.beta = beta;
    p.a = s->a;
    p.b = s->b;
    if (s->d.reduce.fn) {
        p.red = s->sums;
        CU_LAUNCH_SYNC(bn_stats_final_kernel, bn_final_blocks(C), CU_THREADS, cu_stream(), p);
        p.N = bn_reduce(s, s->sums, 2 * C, p.N);
        CU_LAUNCH(bn_stats_apply_kernel, cu_blocks(C, CU_THREADS), CU_THREADS, cu_stream(), p);
    } else {
        CU_LAUNCH_SYNC(bn_stats_final_kernel, bn_final_blocks(C), CU_THREADS, cu_stream(), p);
    }
    s->count = p.N;
}

static void bn_affine(bn_state *s, const char *what, dpt_tensor *out, const dpt_tensor *in, bool per_sample) {
    cu_same_dtype(what, in->dtype, out);
    CU_DISPATCH(in->dtype, what,
                CU_LAUNCH(bn_affine_kernel<T>, elem_grid(s), CU_THREADS, cu_stream(), (T *)out->data,
                          (const T *)in->data, (const float *)s->a, (const float *)s->b, per_sample, s->hw, s->d.c,
                          s->CW, s->RS, s->P, s->d.relu));
}

static void bn_forward_train(be_op *op, dpt_tensor *out, dpt_tensor *save_mean, dpt_tensor *save_var,
                             dpt_tensor *running_mean, dpt_tensor *running_var, const dpt_tensor *in,
                             const dpt_tensor *gamma, const dpt_tensor *beta) {
    bn_state *s = &((bn_op *)op)->s;
    const char *what = "batchnorm_forward_train";
    cu_same_dtype(what, DT_F32, gamma, beta);
    bn_batch_stats(s, what, in, save_mean, save_var, running_mean, running_var, (const float *)gamma->data,
                   (const float *)beta->data);
    bn_affine(s, what, out, in, false);
}

static void bn_forward_eval(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *gamma,
                            const dpt_tensor *beta, const dpt_tensor *running_mean, const dpt_tensor *running_var) {
    bn_state *s = &((bn_op *)op)->s;
    const char *what = "batchnorm_forward_eval";
    cu_same_dtype(what, DT_F32, gamma, beta, running_mean);
    cu_same_dtype(what, DT_F32, running_var);
    const int C = s->d.c;
    CU_LAUNCH(bn_eval_coef_kernel, cu_blocks(C, CU_THREADS), CU_THREADS, cu_stream(), C,
              (const float *)running_mean->data, (const float *)running_var->data, (double)s->d.eps,
              (const float *)gamma->data, (const float *)beta->data, s->a, s->b, (double *)NULL, (double *)NULL);
    bn_affine(s, what, out, in, false);
}

/* Pass 1 of backward: sums of (g, g * (x - mean)) over segments of pseg pixels. */
static void bn_grad_partials(bn_state *s, const char *what, const dpt_tensor *dout, const dpt_tensor *in,
                             const dpt_tensor *out, const float *mean, int64_t pseg, int rseg, int rtot) {
    cu_same_dtype(what, in->dtype, dout, out);
    const int mode = s->d.relu ? BN_GRAD_RELU : BN_GRAD;
    const int nblk = rtot;
    CU_DISPATCH(in->dtype, what,
                CU_LAUNCH_SYNC(bn_partial_kernel<T>, dim3((unsigned)nblk, (unsigned)s->G), CU_THREADS, cu_stream(),
                               s->part, (float *)NULL, (const T *)in->data, (const T *)dout->data,
                               (const T *)out->data, mean, mode, s->d.c, s->CW, s->RS, pseg, rseg, rtot));
}

static void bn_dx(bn_state *s, const char *what, dpt_tensor *din, bool accumulate, const dpt_tensor *dout,
                  const dpt_tensor *in, const dpt_tensor *out, bool per_sample) {
    cu_same_dtype(what, in->dtype, din);
    CU_DISPATCH(in->dtype, what,
                CU_LAUNCH(bn_dx_kernel<T>, elem_grid(s), CU_THREADS, cu_stream(), (T *)din->data, accumulate,
                          (const T *)in->data, (const T *)dout->data, (const T *)out->data, (const float *)s->a,
                          per_sample, s->hw, (const float *)s->cb, (const float *)s->c0, s->d.c, s->CW, s->RS, s->P,
                          s->d.relu));
}

static void bn_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dgamma, dpt_tensor *dbeta,
                        bool param_accumulate, const dpt_tensor *dout, const dpt_tensor *in, const dpt_tensor *out,
                        const dpt_tensor *gamma, const dpt_tensor *beta, const dpt_tensor *save_mean,
                        const dpt_tensor *save_var) {
    (void)beta;
    bn_state *s = &((bn_op *)op)->s;
    const char *what = "batchnorm_backward";
    const int C = s->d.c;
    cu_same_dtype(what, DT_F32, dgamma, dbeta, gamma);
    cu_same_dtype(what, DT_F32, save_mean, save_var);
    const float *mean = (const float *)save_mean->data;
    bn_grad_partials(s, what, dout, in, out, mean, s->P, s->R, s->R);
    bn_grad_args p;
    p.part = s->part;
    p.rtot = s->R;
    p.C = C;
    p.mean = mean;
    p.var = (const float *)save_var->data;
    p.eps = (double)s->d.eps;
    p.N = (double)s->P;
    p.dg = (float *)dgamma->data;
    p.db = (float *)dbeta->data;
    p.pacc = param_accumulate;
    p.sums = s->sums;
    p.inv = s->inv;
    p.finish = !s->d.reduce.fn;
    p.gamma = (const float *)gamma->data;
    p.ca = s->a;
    p.cb = s->cb;
    p.c0 = s->c0;
    CU_LAUNCH_SYNC(bn_grad_final_kernel, bn_final_blocks(C), CU_THREADS, cu_stream(), p);
    if (s->d.reduce.fn) { /* dx goes through the group's statistics: the group's sums */
        bn_reduce(s, s->sums, 2 * C, -1.0);
        p.N = s->count;
        CU_LAUNCH(bn_grad_coef_kernel, cu_blocks(C, CU_THREADS), CU_THREADS, cu_stream(), p);
    }
    if (din) bn_dx(s, what, din, accumulate, dout, in, out, false);
}

/* ---- conditional BatchNorm ---- */

static void cbn_coefficients(bn_state *s, const char *what, const dpt_tensor *in, const dpt_tensor *gain,
                             const dpt_tensor *bias) {
    const int64_t nc = (int64_t)s->d.n * s->d.c;
    cu_same_dtype(what, in->dtype, gain, bias);
    DPT_CHECK_LIB("CUDA back end", tensor_numel(gain) == nc && tensor_numel(bias) == nc, what,
                  "gain and bias need (N, C) = %lld values", (long long)nc);
    CU_DISPATCH(in->dtype, what,
                CU_LAUNCH(cbn_coef_kernel<T>, cu_blocks(nc, CU_THREADS), CU_THREADS, cu_stream(), s->a, s->b,
                          (const T *)gain->data, (const T *)bias->data, (const double *)s->mu,
                          (const double *)s->inv, s->d.c, nc));
}

static void cbn_forward_train(be_op *op, dpt_tensor *out, dpt_tensor *save_mean, dpt_tensor *save_var,
                              dpt_tensor *running_mean, dpt_tensor *running_var, const dpt_tensor *in,
                              const dpt_tensor *gain, const dpt_tensor *bias) {
    bn_state *s = &((bn_op *)op)->s;
    const char *what = "cbn_forward_train";
    bn_batch_stats(s, what, in, save_mean, save_var, running_mean, running_var, NULL, NULL);
    cbn_coefficients(s, what, in, gain, bias);
    bn_affine(s, what, out, in, true);
}

static void cbn_forward_eval(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *gain,
                             const dpt_tensor *bias, const dpt_tensor *running_mean, const dpt_tensor *running_var) {
    bn_state *s = &((bn_op *)op)->s;
    const char *what = "cbn_forward_eval";
    cu_same_dtype(what, DT_F32, running_mean, running_var);
    const int C = s->d.c;
    CU_LAUNCH(bn_eval_coef_kernel, cu_blocks(C, CU_THREADS), CU_THREADS, cu_stream(), C,
              (const float *)running_mean->data, (const float *)running_var->data, (double)s->d.eps,
              (const float *)NULL, (const float *)NULL, (float *)NULL, (float *)NULL, s->mu, s->inv);
    cbn_coefficients(s, what, in, gain, bias);
    bn_affine(s, what, out, in, true);
}

/* As the CPU: per-sample sums of g and g * (x - mean) give dbias and dgain; the input's sums are
 * sum_i gain * (per-sample sums), reduced across the group when cross-replica. */
static void cbn_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dgain, dpt_tensor *dbias,
                         bool accumulate_gb, const dpt_tensor *dout, const dpt_tensor *in, const dpt_tensor *out,
                         const dpt_tensor *gain, const dpt_tensor *save_mean, const dpt_tensor *save_var) {
    bn_state *s = &((bn_op *)op)->s;
    const char *what = "cbn_backward";
    const int C = s->d.c, n = s->d.n;
    const int64_t nc = (int64_t)n * C;
    cu_same_dtype(what, DT_F32, save_mean, save_var);
    cu_same_dtype(what, in->dtype, dgain, dbias, gain);
    DPT_CHECK_LIB("CUDA back end", tensor_numel(gain) == nc && tensor_numel(dgain) == nc && tensor_numel(dbias) == nc,
                  what, "gain, dgain and dbias need (N, C) = %lld values", (long long)nc);
    const float *mean = (const float *)save_mean->data, *var = (const float *)save_var->data;
    const int rtot = n * s->rseg;
    bn_grad_partials(s, what, dout, in, out, mean, s->hw, s->rseg, rtot);
    const double eps = (double)s->d.eps;
    const bool finish = !s->d.reduce.fn;
    CU_DISPATCH(in->dtype, what,
                CU_LAUNCH(cbn_seg_kernel<T>, cu_blocks(nc, CU_THREADS), CU_THREADS, cu_stream(), s->psum,
                          (T *)dgain->data, (T *)dbias->data, accumulate_gb, s->a, (const double *)s->part, rtot,
                          s->rseg, (const T *)gain->data, var, eps, C, nc);
                CU_LAUNCH(cbn_tot_kernel<T>, cu_blocks(C, CU_THREADS), CU_THREADS, cu_stream(), s->sums, s->inv,
                          (const double *)s->psum, (const T *)gain->data, var, eps, n, C, finish, (double)s->P, mean,
                          s->cb, s->c0));
    if (!finish) { /* dx goes through the group's statistics: the group's sums */
        bn_reduce(s, s->sums, 2 * C, -1.0);
        bn_grad_args p;
        memset(&p, 0, sizeof p);
        p.C = C;
        p.mean = mean;
        p.N = s->count;
        p.sums = s->sums;
        p.inv = s->inv;
        p.gamma = NULL;
        p.cb = s->cb;
        p.c0 = s->c0;
        CU_LAUNCH(bn_grad_coef_kernel, cu_blocks(C, CU_THREADS), CU_THREADS, cu_stream(), p);
    }
    if (din) bn_dx(s, what, din, accumulate, dout, in, out, true);
}

void cu_fill_norm(dpt_backend *be) {
    be->batchnorm_create = bn_create;
    be->batchnorm_forward_train = bn_forward_train;
    be->batchnorm_forward_eval = bn_forward_eval;
    be->batchnorm_backward = bn_backward;
    be->cbn_create = cbn_create;
    be->cbn_forward_train = cbn_forward_train;
    be->cbn_forward_eval = cbn_forward_eval;
    be->cbn_backward = cbn_backward;
}
