/* Fused optimizer updates (SGD, LARS, Adam, weight EMA) and the sum of squares behind LARS's trust
 * ratios. Every pointer is a float32 device array (master weights, their gradients, optimizer
 * state). Each update is one pass over memory with the per-element arithmetic of
 * dpt/backend/math.h, the functions the CPU back end runs. */
#include "cuda_internal.h"

/* ---- SGD and LARS ---- */

static __global__ void sgd_kernel(float *w, float *v, const float *grad, int64_t n, float s, float lr, float mu,
                                  float wd, bool nesterov) {
    CU_FOR(i, n) math_sgd(&w[i], &v[i], grad[i], s, lr, mu, wd, nesterov);
}

static __global__ void lars_kernel(float *w, float *v, const float *grad, int64_t n, float s, float lr, float mu,
                                   float wd, bool nesterov) {
    CU_FOR(i, n) math_lars(&w[i], &v[i], grad[i], s, lr, mu, wd, nesterov);
}

static void sgd_update(float *w, float *v, const float *grad, int64_t n, const be_sgd_args *a) {
    if (n <= 0) return;
    CU_LAUNCH(sgd_kernel, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), w, v, grad, n, a->grad_scale, a->lr,
              a->momentum, a->weight_decay, a->nesterov);
}

static void lars_update(float *w, float *v, const float *grad, int64_t n, const be_sgd_args *a) {
    if (n <= 0) return;
    CU_LAUNCH(lars_kernel, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), w, v, grad, n, a->grad_scale, a->lr,
              a->momentum, a->weight_decay, a->nesterov);
}

/* ---- sum of squares (LARS norms), in double ---- */

/* Deterministic two-stage reduction: at most RED_BLOCKS blocks each write a partial sum to a
 * buffer of this file, then one block adds the partials in a fixed tree into dscratch[0]. No
 * atomics: the result is the same on every run and on every rank for the same data, so replicas
 * that hold identical weights and gradients compute identical LARS trust ratios. */
#define RED_BLOCKS 1024
static double *g_partial; /* (RED_BLOCKS) device doubles, allocated with the first table */

static __global__ void sum_squares_kernel(double *partial, const float *x, int64_t n) {
    double acc = 0.0;
    CU_FOR(i, n) {
        const double v = (double)x[i];
        acc += v * v;
    }
    acc = cu_block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

static __global__ void finish_sum_kernel(double *out, const double *partial, int nb) {
    double acc = 0.0;
    for (int b = (int)threadIdx.x; b < nb; b += (int)blockDim.x) acc += partial[b];
    acc = cu_block_sum(acc);
    if (threadIdx.x == 0) *out = acc;
}

static double sum_squares(const float *x, int64_t n) {
    if (n <= 0) return 0.0;
    unsigned blocks = cu_blocks(n, CU_THREADS);
    if (blocks > RED_BLOCKS) blocks = RED_BLOCKS;
    double *d = cu_ctx_get()->dscratch;
    CU_LAUNCH_SYNC(sum_squares_kernel, blocks, CU_THREADS, cu_stream(), g_partial, x, n);
    CU_LAUNCH_SYNC(finish_sum_kernel, 1, CU_THREADS, cu_stream(), d, g_partial, (int)blocks);
    double sum = 0.0;
    cu_read_doubles(&sum, d, 1);
    return sum;
}

/* ---- Adam and the weights' EMA ---- */

static __global__ void adam_kernel(float *w, float *m, float *v, const float *grad, int64_t n, float s, float wd,
                                   float b1, float b2, float eps, float step_size, float bc2_sqrt) {
    CU_FOR(i, n) math_adam(&w[i], &m[i], &v[i], grad[i], s, wd, b1, b2, eps, step_size, bc2_sqrt);
}

static void adam_update(float *w, float *m, float *v, const float *grad, int64_t n, const be_adam_args *a) {
    DPT_CHECK(a->step >= 1);
    if (n <= 0) return;
    /* The bias corrections once per update, in double, exactly as the CPU back end (cpu_gan.c). */
    const double t = (double)a->step;
    const float step_size = (float)((double)a->lr / (1.0 - pow((double)a->beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow((double)a->beta2, t));
    CU_LAUNCH(adam_kernel, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), w, m, v, grad, n, a->grad_scale,
              a->weight_decay, a->beta1, a->beta2, a->eps, step_size, bc2_sqrt);
}

static __global__ void ema_kernel(float *ema, const float *w, int64_t n, float keep, float take) {
    CU_FOR(i, n) ema[i] = keep * ema[i] + take * w[i];
}

static void ema_update(float *ema, const float *w, int64_t n, float decay) {
    if (n <= 0) return;
    const float keep = decay, take = 1.0f - decay;
    CU_LAUNCH(ema_kernel, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), ema, w, n, keep, take);
}

void cu_fill_optim(dpt_backend *be) {
    if (!g_partial) g_partial = (double *)cu_buffer(RED_BLOCKS * sizeof(double));
    be->sgd_update = sgd_update;
    be->lars_update = lars_update;
    be->sum_squares = sum_squares;
    be->adam_update = adam_update;
    be->ema_update = ema_update;
}
