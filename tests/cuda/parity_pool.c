/* Parity of pooling: max and average, windowed (kernel 3 stride 2 pad 1, kernel 2 stride 2, odd
 * sizes whose last row and column no window covers) and global, forward and backward
 * (overwriting and accumulating). Max pooling is also run on inputs with many ties (values on a
 * coarse grid), where the CPU's first-maximum rule decides which input gets the gradient. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "parity.h"

static void pool_case(be_pool_kind kind, int n, int c, int h, int w, int kernel, int stride, int pad, bool ties) {
    be_pool_desc d = {0};
    d.n = n;
    d.c = c;
    d.h = h;
    d.w = w;
    d.kind = kind;
    d.kernel = kernel;
    d.stride = stride;
    d.pad = pad;
    d.oh = kernel ? be_out_size(h, kernel, stride, pad) : 1;
    d.ow = kernel ? be_out_size(w, kernel, stride, pad) : 1;
    const int64_t m = (int64_t)n * c * h * w, mo = (int64_t)n * c * d.oh * d.ow;
    char what[128], shape[96];
    if (kernel)
        snprintf(shape, sizeof shape, "%s %dx%dx%dx%d k%d s%d p%d%s", kind == POOL_MAX ? "max" : "avg", n, c, h, w,
                 kernel, stride, pad, ties ? " ties" : "");
    else
        snprintf(shape, sizeof shape, "%s %dx%dx%dx%d global%s", kind == POOL_MAX ? "max" : "avg", n, c, h, w,
                 ties ? " ties" : "");

    float *x = pt_rand(m, -2.0f, 2.0f);
    if (ties) /* 9 levels: most windows hold their maximum more than once */
        for (int64_t i = 0; i < m; i++) x[i] = roundf(x[i] * 2.0f) * 0.5f;
    float *dy = pt_rand(mo, -1.0f, 1.0f);

    be_op *cop = P_CPU->pool_create(&d, P_CPU->act_layout);
    be_op *gop = P_GPU->pool_create(&d, P_GPU->act_layout);
    dpt_tensor hx = pt_t4(x, DT_F32, n, c, h, w, false), dx = pt_t4(pt_up(x, m, P_DT), P_DT, n, c, h, w, true);
    dpt_tensor hdy = pt_t4(dy, DT_F32, n, c, d.oh, d.ow, false);
    dpt_tensor ddy = pt_t4(pt_up(dy, mo, P_DT), P_DT, n, c, d.oh, d.ow, true);
    float *want = pt_host(mo);
    dpt_tensor hy = pt_t4(want, DT_F32, n, c, d.oh, d.ow, false);
    dpt_tensor dyo = pt_t4(pt_nan(mo, P_DT), P_DT, n, c, d.oh, d.ow, true);
    P_CPU->pool_forward(cop, &hy, &hx);
    P_GPU->pool_forward(gop, &dyo, &dx);
    snprintf(what, sizeof what, "pool_forward %s", shape);
    if (kind == POOL_MAX) pt_check_exact(what, pt_down(dyo.data, mo, P_DT), want, mo);
    else pt_check(what, pt_down(dyo.data, mo, P_DT), want, mo, 1e-6);

    for (int acc = 0; acc < 2; acc++) {
        float *hg = pt_host(m);
        void *dg;
        if (acc) {
            const float *p = pt_rand(m, -1.0f, 1.0f);
            memcpy(hg, p, (size_t)m * sizeof(float));
            dg = pt_up(p, m, P_DT);
        } else {
            dg = pt_nan(m, P_DT);
        }
        dpt_tensor thg = pt_t4(hg, DT_F32, n, c, h, w, false), tdg = pt_t4(dg, P_DT, n, c, h, w, true);
        P_CPU->pool_backward(cop, &thg, acc, &hdy, &hx, &hy);
        P_GPU->pool_backward(gop, &tdg, acc, &ddy, &dx, &dyo);
        snprintf(what, sizeof what, "pool_backward %s%s", shape, acc ? " acc" : "");
        pt_check(what, pt_down(dg, m, P_DT), hg, m, 1e-6);
    }
    P_CPU->op_destroy(cop);
    P_GPU->op_destroy(gop);
}

void parity_pool(void) {
    for (int k = 0; k < 2; k++) {
        const be_pool_kind kind = k ? POOL_AVG : POOL_MAX;
        pool_case(kind, 2, 37, 9, 9, 3, 2, 1, false);  /* ResNet stem pooling */
        pool_case(kind, 1, 3, 8, 7, 3, 2, 1, false);   /* even / odd sizes */
        pool_case(kind, 2, 37, 8, 8, 2, 2, 0, false);
        pool_case(kind, 1, 3, 7, 5, 2, 2, 0, false);   /* last row and column uncovered */
        pool_case(kind, 2, 37, 4, 4, 0, 0, 0, false);  /* global */
        pool_case(kind, 1, 3, 7, 5, 0, 0, 0, false);
    }
    pool_case(POOL_MAX, 2, 37, 9, 9, 3, 2, 1, true);
    pool_case(POOL_MAX, 2, 5, 8, 8, 2, 2, 0, true);
    pool_case(POOL_MAX, 2, 37, 4, 4, 0, 0, 0, true);
    pool_case(POOL_MAX, 1, 3, 6, 6, 3, 1, 1, true); /* stride 1: up to 9 windows per input */
    pool_case(POOL_AVG, 1, 3, 6, 6, 3, 1, 1, false);
}
