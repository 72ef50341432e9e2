/* Fused optimizer updates. */
#include "cpu_internal.h"
#include "dpt/backend/math.h"

static void sgd_update(float *w, float *v, const float *grad, int64_t n, const be_sgd_args *a) {
    const float s = a->grad_scale, lr = a->lr, mu = a->momentum, wd = a->weight_decay;
    const bool nesterov = a->nesterov;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) math_sgd(&w[i], &v[i], grad[i], s, lr, mu, wd, nesterov);
}

void cpu_fill_optim(dpt_backend *be) { be->sgd_update = sgd_update; }
