/* Parity of the optimizer updates (SGD, LARS, Adam, EMA) and of sum_squares. Everything is
 * float32 in every precision (master weights, gradients, state), so every check is pt_check32;
 * the tolerance covers the GPU's fused multiply-adds (a unit or two of the last place). Sizes are
 * not multiples of the block size. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "parity.h"

static void sgd_case(int64_t n, bool lars, bool nesterov) {
    const be_sgd_args a = {.lr = lars ? 0.37f : 0.1f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = nesterov,
                           .grad_scale = 0.125f};
    float *w = pt_rand_f32(n, -1.0f, 1.0f), *v = pt_rand_f32(n, -0.1f, 0.1f), *g = pt_rand_f32(n, -2.0f, 2.0f);
    float *dw = pt_up(w, n, DT_F32), *dv = pt_up(v, n, DT_F32), *dg = pt_up(g, n, DT_F32);
    /* Two steps, so the second reads a velocity the op itself wrote. */
    for (int s = 0; s < 2; s++) {
        (lars ? P_CPU->lars_update : P_CPU->sgd_update)(w, v, g, n, &a);
        (lars ? P_GPU->lars_update : P_GPU->sgd_update)(dw, dv, dg, n, &a);
    }
    char what[64];
    snprintf(what, sizeof what, "%s%s n=%lld: w", lars ? "lars" : "sgd", nesterov ? " nesterov" : "", (long long)n);
    pt_check32(what, pt_down(dw, n, DT_F32), w, n, 1e-6);
    snprintf(what, sizeof what, "%s%s n=%lld: v", lars ? "lars" : "sgd", nesterov ? " nesterov" : "", (long long)n);
    pt_check32(what, pt_down(dv, n, DT_F32), v, n, 1e-6);
}

static void sum_squares_case(int64_t n) {
    float *x = pt_rand_f32(n, -3.0f, 3.0f);
    const double want = P_CPU->sum_squares(x, n), got = P_GPU->sum_squares(pt_up(x, n, DT_F32), n);
    const double e = fabs(got - want) / fmax(fabs(want), 1e-300);
    /* Both sum in double; only the order differs. */
    TU_CHECK(e <= 1e-12, "sum_squares n=%lld [%s]: %.17g, reference %.17g", (long long)n, P_GPU->name, got, want);
    /* Deterministic: a second run gives the same bits. */
    const double again = P_GPU->sum_squares(pt_up(x, n, DT_F32), n);
    TU_CHECK(memcmp(&again, &got, sizeof got) == 0, "sum_squares n=%lld [%s] differs between runs", (long long)n,
             P_GPU->name);
    char what[64];
    snprintf(what, sizeof what, "sum_squares n=%lld", (long long)n);
    printf("  %-44s %-10s rel err %.2e (tol 1e-12)\n", what, P_GPU->name, e);
}

static void adam_case(int64_t n, float wd) {
    be_adam_args a = {.lr = 2e-4f, .beta1 = 0.0f, .beta2 = 0.999f, .eps = 1e-6f, .weight_decay = wd,
                      .grad_scale = 0.5f, .step = 1};
    if (wd == 0.0f) a.beta1 = 0.5f; /* BigGAN's betas (0, 0.999); the other case takes (0.5, 0.999) */
    float *w = pt_rand_f32(n, -1.0f, 1.0f), *m = pt_rand_f32(n, -0.01f, 0.01f), *v = pt_rand_f32(n, 0.0f, 1e-4f);
    float *g = pt_rand_f32(n, -1.0f, 1.0f);
    float *dw = pt_up(w, n, DT_F32), *dm = pt_up(m, n, DT_F32), *dv = pt_up(v, n, DT_F32), *dg = pt_up(g, n, DT_F32);
    for (int s = 0; s < 3; s++) { /* steps 1, 2, 3: the bias corrections change */
        a.step = s + 1;
        P_CPU->adam_update(w, m, v, g, n, &a);
        P_GPU->adam_update(dw, dm, dv, dg, n, &a);
    }
    char what[64];
    snprintf(what, sizeof what, "adam wd=%g n=%lld: w", (double)wd, (long long)n);
    pt_check32(what, pt_down(dw, n, DT_F32), w, n, 1e-6);
    snprintf(what, sizeof what, "adam wd=%g n=%lld: m", (double)wd, (long long)n);
    pt_check32(what, pt_down(dm, n, DT_F32), m, n, 1e-6);
    snprintf(what, sizeof what, "adam wd=%g n=%lld: v", (double)wd, (long long)n);
    pt_check32(what, pt_down(dv, n, DT_F32), v, n, 1e-6);
}

static void ema_case(int64_t n) {
    float *e = pt_rand_f32(n, -1.0f, 1.0f), *w = pt_rand_f32(n, -1.0f, 1.0f);
    float *de = pt_up(e, n, DT_F32), *dw = pt_up(w, n, DT_F32);
    P_CPU->ema_update(e, w, n, 0.9999f);
    P_GPU->ema_update(de, dw, n, 0.9999f);
    char what[64];
    snprintf(what, sizeof what, "ema n=%lld", (long long)n);
    pt_check32(what, pt_down(de, n, DT_F32), e, n, 1e-6);
}

void parity_optim(void) {
    const int64_t sizes[2] = {1000, 4097};
    for (int i = 0; i < 2; i++)
        for (int lars = 0; lars < 2; lars++)
            for (int nest = 0; nest < 2; nest++) sgd_case(sizes[i], lars, nest);
    sum_squares_case(1);
    sum_squares_case(4097);
    sum_squares_case(300001);
    adam_case(1000, 0.0f);
    adam_case(4097, 1e-2f);
    ema_case(1000);
    ema_case(4097);
}
