/* Losses: softmax cross-entropy (label smoothing, fused gradient), top-1/top-5 counts (with ties)
 * and the hinge losses, CUDA against the CPU back end. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "parity.h"

static int32_t *rand_labels(int64_t n, int k, uint32_t seed) {
    int32_t *y = (int32_t *)pt_host(n); /* int32 and float have the same size */
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        y[i] = (int32_t)((s >> 8) % (uint32_t)k);
    }
    return y;
}

static void xent_case(int n, int k, float eps, float scale, bool grad) {
    char t[128];
    const int64_t E = (int64_t)n * k;
    float *x = pt_rand(E, -5.0f, 5.0f);
    int32_t *y = rand_labels(n, k, 7u + (uint32_t)k);
    float *l_c = pt_host(n), *dx_c = pt_host(E);
    dpt_tensor xc = pt_t2(x, DT_F32, n, k, false), yc = pt_t1(y, DT_I32, n, false);
    dpt_tensor lc = pt_t1(l_c, DT_F32, n, false), dxc = pt_t2(dx_c, DT_F32, n, k, false);
    P_CPU->softmax_xent(&lc, grad ? &dxc : NULL, &xc, &yc, eps, scale);

    dpt_tensor xg = pt_t2(pt_up(x, E, P_DT), P_DT, n, k, true), yg = pt_t1(pt_up(y, n, DT_I32), DT_I32, n, true);
    dpt_tensor lg = pt_t1(pt_nan(n, DT_F32), DT_F32, n, true), dxg = pt_t2(pt_nan(E, P_DT), P_DT, n, k, true);
    P_GPU->softmax_xent(&lg, grad ? &dxg : NULL, &xg, &yg, eps, scale);
    snprintf(t, sizeof t, "softmax_xent %dx%d eps %g%s losses", n, k, eps, grad ? "" : " nograd");
    pt_check32(t, pt_down(lg.data, n, DT_F32), l_c, n, 1e-5);
    if (grad) {
        snprintf(t, sizeof t, "softmax_xent %dx%d eps %g dlogits", n, k, eps);
        pt_check(t, pt_down(dxg.data, E, P_DT), dx_c, E, 1e-5);
    }
}

/* Integer-valued logits in a small range: many ties with the label's score. */
static void topk_case(int rows, int n, int k, int levels) {
    const int64_t E = (int64_t)rows * k;
    float *x = pt_rand_f32(E, 0.0f, (float)levels);
    for (int64_t i = 0; i < E; i++) x[i] = floorf(x[i]);
    int32_t *y = rand_labels(rows, k, 11u + (uint32_t)k);
    /* Rows where the label scores the maximum: alone (rank 0), or tied with j others placed
     * before or after it (the rank then depends on the tie rule). */
    for (int i = 0; i < rows; i++) {
        float *row = x + (int64_t)i * k;
        if (i % 3 == 2) continue;
        row[y[i]] = (float)levels;
        for (int j = 0; i % 3 == 1 && j < 1 + i % 7; j++) row[(y[i] + 1 + j * 5 * (i % 2 ? 1 : -1) + 5 * k) % k] = (float)levels;
    }
    int64_t c1 = -1, c5 = -1, g1 = -1, g5 = -1;
    dpt_tensor xc = pt_t2(x, DT_F32, rows, k, false), yc = pt_t1(y, DT_I32, rows, false);
    P_CPU->topk_correct(&c1, &c5, &xc, &yc, n);
    dpt_tensor xg = pt_t2(pt_up(x, E, P_DT), P_DT, rows, k, true), yg = pt_t1(pt_up(y, rows, DT_I32), DT_I32, rows, true);
    P_GPU->topk_correct(&g1, &g5, &xg, &yg, n);
    TU_CHECK(g1 == c1 && g5 == c5, "topk_correct %dx%d n %d [%s]: top1 %lld top5 %lld, CPU %lld %lld", rows, k, n,
             P_GPU->name, (long long)g1, (long long)g5, (long long)c1, (long long)c5);
    char t[128];
    snprintf(t, sizeof t, "topk_correct %dx%d n %d (%lld, %lld)", rows, k, n, (long long)c1, (long long)c5);
    printf("  %-44s %-10s %s\n", t, P_GPU->name, g1 == c1 && g5 == c5 ? "exact" : "DIFFERS");
}

static void hinge_case(int n, float sign, bool two_d) {
    char t[128];
    float *x = pt_rand(n, -2.0f, 2.0f);
    /* the kinks: 1 - sign * d == 0 */
    x[0] = sign != 0.0f ? 1.0f / sign : 1.0f;
    if (n > 1) x[1] = -x[0];
    const float scale = 1.0f / (float)n;
    float *l_c = pt_host(n), *d_c = pt_host(n);
    dpt_tensor xc = two_d ? pt_t2(x, DT_F32, n, 1, false) : pt_t1(x, DT_F32, n, false);
    dpt_tensor lc = pt_t1(l_c, DT_F32, n, false);
    dpt_tensor dc = two_d ? pt_t2(d_c, DT_F32, n, 1, false) : pt_t1(d_c, DT_F32, n, false);
    if (sign != 0.0f) P_CPU->hinge_d(&lc, &dc, &xc, sign, scale);
    else P_CPU->hinge_g(&lc, &dc, &xc, scale);
    void *xd = pt_up(x, n, P_DT), *dd = pt_nan(n, P_DT);
    dpt_tensor xg = two_d ? pt_t2(xd, P_DT, n, 1, true) : pt_t1(xd, P_DT, n, true);
    dpt_tensor lg = pt_t1(pt_nan(n, DT_F32), DT_F32, n, true);
    dpt_tensor dg = two_d ? pt_t2(dd, P_DT, n, 1, true) : pt_t1(dd, P_DT, n, true);
    if (sign != 0.0f) P_GPU->hinge_d(&lg, &dg, &xg, sign, scale);
    else P_GPU->hinge_g(&lg, &dg, &xg, scale);
    const char *op = sign != 0.0f ? "hinge_d" : "hinge_g";
    snprintf(t, sizeof t, "%s n %d sign %g%s losses", op, n, sign, two_d ? " (N,1)" : "");
    pt_check32(t, pt_down(lg.data, n, DT_F32), l_c, n, 1e-6);
    snprintf(t, sizeof t, "%s n %d sign %g%s dlogits", op, n, sign, two_d ? " (N,1)" : "");
    pt_check(t, pt_down(dg.data, n, P_DT), d_c, n, 1e-6);
}

void parity_loss(void) {
    xent_case(5, 10, 0.0f, 1.0f, true);
    xent_case(7, 1000, 0.1f, 1.0f / 7.0f, true);
    xent_case(3, 300, 0.1f, 1.0f, false);
    xent_case(4, 257, 0.2f, 2.0f, true);
    pt_free_all();
    topk_case(20, 18, 10, 3);
    topk_case(9, 9, 1000, 4);
    topk_case(30, 30, 7, 2);
    topk_case(6, 0, 10, 3);
    pt_free_all();
    hinge_case(33, 1.0f, true);
    hinge_case(17, -1.0f, false);
    hinge_case(40, 0.0f, true);
}
