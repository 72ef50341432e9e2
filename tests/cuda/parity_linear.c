/* Parity of the linear layer (with and without bias, n = 1, accumulate on and off, input gradient
 * only) and of the batched matrix product (all four transpose combinations, accumulate on and off,
 * one gradient only). */
#include <stdio.h>
#include <string.h>

#include "parity.h"

static float *copy_of(const float *x, int64_t n) {
    float *c = pt_host(n);
    memcpy(c, x, (size_t)n * sizeof(float));
    return c;
}

static void linear_case(int n, int in, int out, bool bias, bool acc) {
    const be_linear_desc d = {.n = n, .in = in, .out = out, .bias = bias};
    const int64_t nx = (int64_t)n * in, ny = (int64_t)n * out, nw = (int64_t)out * in;
    float *x = pt_rand(nx, -1.0f, 1.0f), *w = pt_rand_f32(nw, -0.5f, 0.5f), *b = pt_rand_f32(out, -1.0f, 1.0f);
    be_op *cop = P_CPU->linear_create(&d), *gop = P_GPU->linear_create(&d);
    char tag[64], what[96];
    snprintf(tag, sizeof tag, "linear %dx%d->%d%s%s", n, in, out, bias ? " bias" : "", acc ? " acc" : "");

    /* forward */
    float *y = pt_host(ny);
    dpt_tensor t_x = pt_t2(x, DT_F32, n, in, false), t_y = pt_t2(y, DT_F32, n, out, false);
    dpt_tensor t_w = pt_t2(w, DT_F32, out, in, false), t_b = pt_t1(b, DT_F32, out, false);
    P_CPU->linear_forward(cop, &t_y, &t_x, &t_w, bias ? &t_b : NULL);
    dpt_tensor g_x = pt_t2(pt_up(x, nx, P_DT), P_DT, n, in, true), g_y = pt_t2(pt_nan(ny, P_DT), P_DT, n, out, true);
    dpt_tensor g_w = pt_t2(pt_up(w, nw, DT_F32), DT_F32, out, in, true);
    dpt_tensor g_b = pt_t1(pt_up(b, out, DT_F32), DT_F32, out, true);
    P_GPU->linear_forward(gop, &g_y, &g_x, &g_w, bias ? &g_b : NULL);
    snprintf(what, sizeof what, "%s: out", tag);
    pt_check(what, pt_down(g_y.data, ny, P_DT), y, ny, 1e-5);

    /* backward (after the forward: the reduced-precision weight copy comes from it) */
    float *dy = pt_rand(ny, -1.0f, 1.0f);
    float *dx = acc ? pt_rand(nx, -1.0f, 1.0f) : pt_host(nx);
    float *dw = acc ? pt_rand_f32(nw, -1.0f, 1.0f) : pt_host(nw);
    float *db = acc ? pt_rand_f32(out, -1.0f, 1.0f) : pt_host(out);
    dpt_tensor g_dy = pt_t2(pt_up(dy, ny, P_DT), P_DT, n, out, true);
    dpt_tensor g_dx = pt_t2(acc ? pt_up(dx, nx, P_DT) : pt_nan(nx, P_DT), P_DT, n, in, true);
    dpt_tensor g_dw = pt_t2(acc ? pt_up(dw, nw, DT_F32) : pt_nan(nw, DT_F32), DT_F32, out, in, true);
    dpt_tensor g_db = pt_t1(acc ? pt_up(db, out, DT_F32) : pt_nan(out, DT_F32), DT_F32, out, true);
    float *dx0 = copy_of(dx, nx);
    dpt_tensor t_dy = pt_t2(dy, DT_F32, n, out, false), t_dx = pt_t2(dx, DT_F32, n, in, false);
    dpt_tensor t_dw = pt_t2(dw, DT_F32, out, in, false), t_db = pt_t1(db, DT_F32, out, false);
    P_CPU->linear_backward(cop, &t_dx, acc, &t_dw, bias ? &t_db : NULL, acc, &t_dy, &t_x, &t_w);
    P_GPU->linear_backward(gop, &g_dx, acc, &g_dw, bias ? &g_db : NULL, acc, &g_dy, &g_x, &g_w);
    snprintf(what, sizeof what, "%s: din", tag);
    pt_check(what, pt_down(g_dx.data, nx, P_DT), dx, nx, 1e-5);
    /* dweight and dbias are float32, from the same (rounded) dout and in on both sides with float
     * accumulation: only the order of the sums differs, in every precision (bf16 and f16 products
     * are exact in float32), so the float32 tolerance holds. */
    snprintf(what, sizeof what, "%s: dweight", tag);
    pt_check32(what, pt_down(g_dw.data, nw, DT_F32), dw, nw, 1e-5);
    if (bias) {
        snprintf(what, sizeof what, "%s: dbias", tag);
        pt_check32(what, pt_down(g_db.data, out, DT_F32), db, out, 1e-5);
    }

    /* input gradient only (dweight NULL): dweight and dbias untouched */
    float *dw_before = pt_down(g_dw.data, nw, DT_F32);
    memcpy(dx, dx0, (size_t)nx * sizeof(float));
    g_dx.data = acc ? pt_up(dx, nx, P_DT) : pt_nan(nx, P_DT);
    P_CPU->linear_backward(cop, &t_dx, acc, NULL, NULL, false, &t_dy, &t_x, &t_w);
    P_GPU->linear_backward(gop, &g_dx, acc, NULL, NULL, false, &g_dy, &g_x, &g_w);
    snprintf(what, sizeof what, "%s: din only", tag);
    pt_check(what, pt_down(g_dx.data, nx, P_DT), dx, nx, 1e-5);
    snprintf(what, sizeof what, "%s: din only leaves dweight", tag);
    pt_check_exact(what, pt_down(g_dw.data, nw, DT_F32), dw_before, nw);

    P_CPU->op_destroy(cop);
    P_GPU->op_destroy(gop);
}

static dpt_tensor t3(void *p, dpt_dtype dt, const int64_t *shape, bool dev) {
    dpt_tensor t = tensor_make(p, dt, 3, shape, LAYOUT_NCHW);
    t.device = dev ? DEV_CUDA : DEV_CPU;
    return t;
}

static void bmm_case(int batch, int m, int n, int k, bool ta, bool tb, bool acc) {
    const int64_t na = (int64_t)batch * m * k, nb = (int64_t)batch * k * n, nc = (int64_t)batch * m * n;
    float *a = pt_rand(na, -1.0f, 1.0f), *b = pt_rand(nb, -1.0f, 1.0f);
    /* a stored (B, M, K) or (B, K, M); b (B, K, N) or (B, N, K) */
    const int64_t ashape[3] = {batch, ta ? k : m, ta ? m : k}, bshape[3] = {batch, tb ? n : k, tb ? k : n};
    const int64_t cshape[3] = {batch, m, n};
    char tag[64], what[96];
    snprintf(tag, sizeof tag, "bmm %dx%dx%dx%d t%d%d%s", batch, m, n, k, ta, tb, acc ? " acc" : "");
    float *c = pt_host(nc);
    dpt_tensor t_a = t3(a, DT_F32, ashape, false), t_b = t3(b, DT_F32, bshape, false);
    dpt_tensor t_c = t3(c, DT_F32, cshape, false);
    dpt_tensor g_a = t3(pt_up(a, na, P_DT), P_DT, ashape, true), g_b = t3(pt_up(b, nb, P_DT), P_DT, bshape, true);
    dpt_tensor g_c = t3(pt_nan(nc, P_DT), P_DT, cshape, true);
    P_CPU->bmm_forward(&t_c, &t_a, &t_b, ta, tb);
    P_GPU->bmm_forward(&g_c, &g_a, &g_b, ta, tb);
    snprintf(what, sizeof what, "%s: out", tag);
    pt_check(what, pt_down(g_c.data, nc, P_DT), c, nc, 1e-5);

    float *dc = pt_rand(nc, -1.0f, 1.0f);
    float *da = acc ? pt_rand(na, -1.0f, 1.0f) : pt_host(na), *db = acc ? pt_rand(nb, -1.0f, 1.0f) : pt_host(nb);
    dpt_tensor t_dc = t3(dc, DT_F32, cshape, false), g_dc = t3(pt_up(dc, nc, P_DT), P_DT, cshape, true);
    dpt_tensor t_da = t3(da, DT_F32, ashape, false), t_db = t3(db, DT_F32, bshape, false);
    dpt_tensor g_da = t3(acc ? pt_up(da, na, P_DT) : pt_nan(na, P_DT), P_DT, ashape, true);
    dpt_tensor g_db = t3(acc ? pt_up(db, nb, P_DT) : pt_nan(nb, P_DT), P_DT, bshape, true);
    P_CPU->bmm_backward(&t_da, acc, &t_db, acc, &t_dc, &t_a, &t_b, ta, tb);
    P_GPU->bmm_backward(&g_da, acc, &g_db, acc, &g_dc, &g_a, &g_b, ta, tb);
    snprintf(what, sizeof what, "%s: da", tag);
    pt_check(what, pt_down(g_da.data, na, P_DT), da, na, 1e-5);
    snprintf(what, sizeof what, "%s: db", tag);
    pt_check(what, pt_down(g_db.data, nb, P_DT), db, nb, 1e-5);

    if (!acc) { /* one gradient at a time: the other is NULL */
        dpt_tensor g_da1 = t3(pt_nan(na, P_DT), P_DT, ashape, true), g_db1 = t3(pt_nan(nb, P_DT), P_DT, bshape, true);
        P_GPU->bmm_backward(&g_da1, false, NULL, false, &g_dc, &g_a, &g_b, ta, tb);
        P_GPU->bmm_backward(NULL, false, &g_db1, false, &g_dc, &g_a, &g_b, ta, tb);
        snprintf(what, sizeof what, "%s: da alone", tag);
        pt_check(what, pt_down(g_da1.data, na, P_DT), da, na, 1e-5);
        snprintf(what, sizeof what, "%s: db alone", tag);
        pt_check(what, pt_down(g_db1.data, nb, P_DT), db, nb, 1e-5);
    }
}

void parity_linear(void) {
    linear_case(7, 33, 45, true, false);
    linear_case(7, 33, 45, true, true);
    linear_case(1, 20, 9, true, false);
    linear_case(1, 20, 9, false, true);
    linear_case(40, 130, 10, false, false);
    linear_case(300, 17, 70, true, true); /* more rows than the column sums' lanes and tiles */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int acc = 0; acc < 2; acc++) bmm_case(3, 5, 7, 9, ta, tb, acc);
    bmm_case(1, 1, 33, 4, true, false, false);
}
