/* Fused optimizer updates. */
#include "cpu_internal.h"
#include "dpt/backend/math.h"

static void sgd_update(float *w, float *v, const float *grad, int64_t n, const be_sgd_args *a) {
    const float s = a->grad_scale, lr = a->lr, mu = a->momentum, wd = a->weight_decay;
    const bool nesterov = a->nesterov;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) math_sgd(&w[i], &v[i], grad[i], s, lr, mu, wd, nesterov);
}

static void lars_update(float *w, float *v, const float *grad, int64_t n, const be_sgd_args *a) {
    const float s = a->grad_scale, lr = a->lr, mu = a->momentum, wd = a->weight_decay;
    const bool nesterov = a->nesterov;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) math_lars(&w[i], &v[i], grad[i], s, lr, mu, wd, nesterov);
}

static double sum_squares(const float *x, int64_t n) {
    double sum = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : sum) if (n > 65536)
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * (double)x[i];
    return sum;
}

void cpu_fill_optim(dpt_backend *be) {
    be->sgd_update = sgd_update;
    be->lars_update = lars_update;
    be->sum_squares = sum_squares;
}
