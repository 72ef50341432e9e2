/* Parity of the elementwise and plumbing ops: ReLU, add (+ReLU), scale, tanh, add_scalar,
 * scaled_add, 2x upsampling (NHWC and NCHW), copy_cols and row softmax. Each gradient is checked
 * overwriting (the device buffer starts as NaN) and accumulating into a known prefill. */
#include <stdio.h>
#include <string.h>

#include "parity.h"

/* A gradient destination: the host copy for the CPU and the device one, both holding the same
 * prefill when accumulating; NaN on the device otherwise. */
typedef struct pt_dst {
    float *h;
    void *d;
} pt_dst;

static pt_dst dst_make(int64_t n, bool acc) {
    pt_dst o;
    o.h = pt_host(n);
    if (acc) {
        const float *p = pt_rand(n, -1.0f, 1.0f);
        memcpy(o.h, p, (size_t)n * sizeof(float));
        o.d = pt_up(p, n, P_DT);
    } else {
        o.d = pt_nan(n, P_DT);
    }
    return o;
}

/* A host copy of x rounded to P_DT (a CPU output fed to both sides as a backward input). */
static float *rounded(const float *x, int64_t n) {
    float *r = pt_host(n);
    memcpy(r, x, (size_t)n * sizeof(float));
    pt_round(r, n, P_DT);
    return r;
}

static void name(char *buf, size_t size, const char *op, int n, int c, int h, int w, const char *extra) {
    snprintf(buf, size, "%s %dx%dx%dx%d%s", op, n, c, h, w, extra);
}

/* relu, add (+relu), scale, tanh, add_scalar on one (N, C, H, W) shape. */
static void unary_binary(int n, int c, int h, int w) {
    const int64_t m = (int64_t)n * c * h * w;
    char what[96];
    float *x = pt_rand(m, -2.0f, 2.0f), *x2 = pt_rand(m, -2.0f, 2.0f), *dy = pt_rand(m, -1.0f, 1.0f);
    dpt_tensor hx = pt_t4(x, DT_F32, n, c, h, w, false), hx2 = pt_t4(x2, DT_F32, n, c, h, w, false);
    dpt_tensor hdy = pt_t4(dy, DT_F32, n, c, h, w, false);
    dpt_tensor dx = pt_t4(pt_up(x, m, P_DT), P_DT, n, c, h, w, true);
    dpt_tensor dx2 = pt_t4(pt_up(x2, m, P_DT), P_DT, n, c, h, w, true);
    dpt_tensor ddy = pt_t4(pt_up(dy, m, P_DT), P_DT, n, c, h, w, true);

    /* relu */
    {
        float *want = pt_host(m);
        dpt_tensor hy = pt_t4(want, DT_F32, n, c, h, w, false);
        dpt_tensor dy_ = pt_t4(pt_nan(m, P_DT), P_DT, n, c, h, w, true);
        P_CPU->relu_forward(&hy, &hx);
        P_GPU->relu_forward(&dy_, &dx);
        name(what, sizeof what, "relu_forward", n, c, h, w, "");
        pt_check(what, pt_down(dy_.data, m, P_DT), want, m, 1e-6);
        for (int acc = 0; acc < 2; acc++) {
            pt_dst g = dst_make(m, acc);
            dpt_tensor hg = pt_t4(g.h, DT_F32, n, c, h, w, false), dg = pt_t4(g.d, P_DT, n, c, h, w, true);
            dpt_tensor dout = pt_t4(pt_up(want, m, P_DT), P_DT, n, c, h, w, true);
            P_CPU->relu_backward(&hg, acc, &hdy, &hy);
            P_GPU->relu_backward(&dg, acc, &ddy, &dout);
            name(what, sizeof what, "relu_backward", n, c, h, w, acc ? " acc" : "");
            pt_check(what, pt_down(g.d, m, P_DT), g.h, m, 1e-6);
        }
    }
    /* add, add + relu, and their backward */
    for (int relu = 0; relu < 2; relu++) {
        float *want = pt_host(m);
        dpt_tensor hy = pt_t4(want, DT_F32, n, c, h, w, false);
        dpt_tensor dy_ = pt_t4(pt_nan(m, P_DT), P_DT, n, c, h, w, true);
        P_CPU->add_forward(&hy, &hx, &hx2, relu);
        P_GPU->add_forward(&dy_, &dx, &dx2, relu);
        name(what, sizeof what, "add_forward", n, c, h, w, relu ? " relu" : "");
        pt_check(what, pt_down(dy_.data, m, P_DT), want, m, 1e-6);
        float *yr = rounded(want, m);
        dpt_tensor hyr = pt_t4(yr, DT_F32, n, c, h, w, false);
        dpt_tensor dyr = pt_t4(pt_up(yr, m, P_DT), P_DT, n, c, h, w, true);
        /* (da overwrite, db accumulate), (da accumulate, db NULL), (da NULL, db overwrite) */
        const int cases[3][2] = {{0, 1}, {1, -1}, {-1, 0}};
        for (int k = 0; k < 3; k++) {
            pt_dst a = dst_make(m, cases[k][0] == 1), b = dst_make(m, cases[k][1] == 1);
            dpt_tensor ha = pt_t4(a.h, DT_F32, n, c, h, w, false), da = pt_t4(a.d, P_DT, n, c, h, w, true);
            dpt_tensor hb = pt_t4(b.h, DT_F32, n, c, h, w, false), db = pt_t4(b.d, P_DT, n, c, h, w, true);
            const bool use_a = cases[k][0] >= 0, use_b = cases[k][1] >= 0;
            P_CPU->add_backward(use_a ? &ha : NULL, cases[k][0] == 1, use_b ? &hb : NULL, cases[k][1] == 1, &hdy,
                                &hyr, relu);
            P_GPU->add_backward(use_a ? &da : NULL, cases[k][0] == 1, use_b ? &db : NULL, cases[k][1] == 1, &ddy,
                                &dyr, relu);
            char extra[48];
            snprintf(extra, sizeof extra, "%s da%s", relu ? " relu" : "", cases[k][0] == 1 ? " acc" : "");
            name(what, sizeof what, "add_backward", n, c, h, w, extra);
            if (use_a) pt_check(what, pt_down(a.d, m, P_DT), a.h, m, 1e-6);
            snprintf(extra, sizeof extra, "%s db%s", relu ? " relu" : "", cases[k][1] == 1 ? " acc" : "");
            name(what, sizeof what, "add_backward", n, c, h, w, extra);
            if (use_b) pt_check(what, pt_down(b.d, m, P_DT), b.h, m, 1e-6);
        }
    }
    /* scale */
    {
        const float alpha = 0.37f;
        float *want = pt_host(m);
        dpt_tensor hy = pt_t4(want, DT_F32, n, c, h, w, false);
        dpt_tensor dy_ = pt_t4(pt_nan(m, P_DT), P_DT, n, c, h, w, true);
        P_CPU->scale_forward(&hy, &hx, alpha);
        P_GPU->scale_forward(&dy_, &dx, alpha);
        name(what, sizeof what, "scale_forward", n, c, h, w, "");
        pt_check(what, pt_down(dy_.data, m, P_DT), want, m, 1e-6);
        for (int acc = 0; acc < 2; acc++) {
            pt_dst g = dst_make(m, acc);
            dpt_tensor hg = pt_t4(g.h, DT_F32, n, c, h, w, false), dg = pt_t4(g.d, P_DT, n, c, h, w, true);
            P_CPU->scale_backward(&hg, acc, &hdy, -1.5f);
            P_GPU->scale_backward(&dg, acc, &ddy, -1.5f);
            name(what, sizeof what, "scale_backward", n, c, h, w, acc ? " acc" : "");
            pt_check(what, pt_down(g.d, m, P_DT), g.h, m, 1e-6);
        }
    }
    /* tanh */
    {
        float *want = pt_host(m);
        dpt_tensor hy = pt_t4(want, DT_F32, n, c, h, w, false);
        dpt_tensor dy_ = pt_t4(pt_nan(m, P_DT), P_DT, n, c, h, w, true);
        P_CPU->tanh_forward(&hy, &hx);
        P_GPU->tanh_forward(&dy_, &dx);
        name(what, sizeof what, "tanh_forward", n, c, h, w, "");
        pt_check(what, pt_down(dy_.data, m, P_DT), want, m, 1e-6);
        float *yr = rounded(want, m);
        dpt_tensor hyr = pt_t4(yr, DT_F32, n, c, h, w, false);
        dpt_tensor dyr = pt_t4(pt_up(yr, m, P_DT), P_DT, n, c, h, w, true);
        for (int acc = 0; acc < 2; acc++) {
            pt_dst g = dst_make(m, acc);
            dpt_tensor hg = pt_t4(g.h, DT_F32, n, c, h, w, false), dg = pt_t4(g.d, P_DT, n, c, h, w, true);
            P_CPU->tanh_backward(&hg, acc, &hdy, &hyr);
            P_GPU->tanh_backward(&dg, acc, &ddy, &dyr);
            name(what, sizeof what, "tanh_backward", n, c, h, w, acc ? " acc" : "");
            pt_check(what, pt_down(g.d, m, P_DT), g.h, m, 1e-6);
        }
    }
    /* add_scalar */
    {
        float *want = pt_host(m);
        dpt_tensor hy = pt_t4(want, DT_F32, n, c, h, w, false);
        dpt_tensor dy_ = pt_t4(pt_nan(m, P_DT), P_DT, n, c, h, w, true);
        P_CPU->add_scalar_forward(&hy, &hx, 1.0f);
        P_GPU->add_scalar_forward(&dy_, &dx, 1.0f);
        name(what, sizeof what, "add_scalar_forward", n, c, h, w, "");
        pt_check(what, pt_down(dy_.data, m, P_DT), want, m, 1e-6);
    }
}

/* scaled_add: out = a + gamma * b; backward da, db, dgamma. */
static void scaled_add(int n, int c, int h, int w) {
    const int64_t m = (int64_t)n * c * h * w;
    char what[96];
    float *a = pt_rand(m, -2.0f, 2.0f), *b = pt_rand(m, -2.0f, 2.0f), *dy = pt_rand(m, -1.0f, 1.0f);
    float gamma = 0.7f;
    dpt_tensor ha = pt_t4(a, DT_F32, n, c, h, w, false), hb = pt_t4(b, DT_F32, n, c, h, w, false);
    dpt_tensor hdy = pt_t4(dy, DT_F32, n, c, h, w, false), hgm = pt_t1(&gamma, DT_F32, 1, false);
    dpt_tensor da_ = pt_t4(pt_up(a, m, P_DT), P_DT, n, c, h, w, true);
    dpt_tensor db_ = pt_t4(pt_up(b, m, P_DT), P_DT, n, c, h, w, true);
    dpt_tensor ddy = pt_t4(pt_up(dy, m, P_DT), P_DT, n, c, h, w, true);
    dpt_tensor dgm = pt_t1(pt_up(&gamma, 1, DT_F32), DT_F32, 1, true);

    float *want = pt_host(m);
    dpt_tensor hy = pt_t4(want, DT_F32, n, c, h, w, false);
    dpt_tensor dy_ = pt_t4(pt_nan(m, P_DT), P_DT, n, c, h, w, true);
    P_CPU->scaled_add_forward(&hy, &ha, &hb, &hgm);
    P_GPU->scaled_add_forward(&dy_, &da_, &db_, &dgm);
    name(what, sizeof what, "scaled_add_forward", n, c, h, w, "");
    pt_check(what, pt_down(dy_.data, m, P_DT), want, m, 1e-6);

    /* (da, db, dgamma) accumulate flags; -1: NULL */
    const int cases[3][3] = {{0, 0, 0}, {1, 1, 1}, {-1, 0, 1}};
    for (int k = 0; k < 3; k++) {
        pt_dst ga = dst_make(m, cases[k][0] == 1), gb = dst_make(m, cases[k][1] == 1);
        dpt_tensor hga = pt_t4(ga.h, DT_F32, n, c, h, w, false), dga = pt_t4(ga.d, P_DT, n, c, h, w, true);
        dpt_tensor hgb = pt_t4(gb.h, DT_F32, n, c, h, w, false), dgb = pt_t4(gb.d, P_DT, n, c, h, w, true);
        float dgamma = cases[k][2] ? 0.25f : 0.0f;
        dpt_tensor hgg = pt_t1(&dgamma, DT_F32, 1, false);
        dpt_tensor dgg = pt_t1(cases[k][2] ? pt_up(&dgamma, 1, DT_F32) : pt_nan(1, DT_F32), DT_F32, 1, true);
        const bool use_a = cases[k][0] >= 0;
        P_CPU->scaled_add_backward(use_a ? &hga : NULL, cases[k][0] == 1, &hgb, cases[k][1] == 1, &hgg, cases[k][2],
                                   &hdy, &hb, &hgm);
        P_GPU->scaled_add_backward(use_a ? &dga : NULL, cases[k][0] == 1, &dgb, cases[k][1] == 1, &dgg, cases[k][2],
                                   &ddy, &db_, &dgm);
        const char *tag[3] = {"", " acc", " acc"};
        if (use_a) {
            name(what, sizeof what, "scaled_add_backward da", n, c, h, w, tag[cases[k][0] == 1]);
            pt_check(what, pt_down(ga.d, m, P_DT), ga.h, m, 1e-6);
        }
        name(what, sizeof what, "scaled_add_backward db", n, c, h, w, tag[cases[k][1] == 1]);
        pt_check(what, pt_down(gb.d, m, P_DT), gb.h, m, 1e-6);
        name(what, sizeof what, "scaled_add_backward dgamma", n, c, h, w, tag[cases[k][2] == 1]);
        pt_check32(what, pt_down(dgg.data, 1, DT_F32), &dgamma, 1, 1e-5);
    }
}

static dpt_tensor t4_layout(void *p, dpt_dtype dt, int n, int c, int h, int w, dpt_layout layout, bool dev) {
    dpt_tensor t = tensor_4d(p, dt, n, c, h, w, layout);
    t.device = dev ? DEV_CUDA : DEV_CPU;
    return t;
}

static void upsample(int n, int c, int h, int w, dpt_layout layout) {
    const int64_t m = (int64_t)n * c * h * w, big = 4 * m;
    const char *ln = layout == LAYOUT_NHWC ? " nhwc" : " nchw";
    char what[96], extra[32];
    float *x = pt_rand(m, -2.0f, 2.0f), *dy = pt_rand(big, -1.0f, 1.0f);
    dpt_tensor hx = t4_layout(x, DT_F32, n, c, h, w, layout, false);
    dpt_tensor dx = t4_layout(pt_up(x, m, P_DT), P_DT, n, c, h, w, layout, true);
    dpt_tensor hdy = t4_layout(dy, DT_F32, n, c, 2 * h, 2 * w, layout, false);
    dpt_tensor ddy = t4_layout(pt_up(dy, big, P_DT), P_DT, n, c, 2 * h, 2 * w, layout, true);
    float *want = pt_host(big);
    dpt_tensor hy = t4_layout(want, DT_F32, n, c, 2 * h, 2 * w, layout, false);
    dpt_tensor dy_ = t4_layout(pt_nan(big, P_DT), P_DT, n, c, 2 * h, 2 * w, layout, true);
    P_CPU->upsample2x_forward(&hy, &hx);
    P_GPU->upsample2x_forward(&dy_, &dx);
    name(what, sizeof what, "upsample2x_forward", n, c, h, w, ln);
    pt_check_exact(what, pt_down(dy_.data, big, P_DT), want, big);
    for (int acc = 0; acc < 2; acc++) {
        pt_dst g = dst_make(m, acc);
        dpt_tensor hg = t4_layout(g.h, DT_F32, n, c, h, w, layout, false);
        dpt_tensor dg = t4_layout(g.d, P_DT, n, c, h, w, layout, true);
        P_CPU->upsample2x_backward(&hg, acc, &hdy);
        P_GPU->upsample2x_backward(&dg, acc, &ddy);
        snprintf(extra, sizeof extra, "%s%s", ln, acc ? " acc" : "");
        name(what, sizeof what, "upsample2x_backward", n, c, h, w, extra);
        pt_check(what, pt_down(g.d, m, P_DT), g.h, m, 1e-6);
    }
}

static void copy_cols(int rows, int dcols, int scols, int dcol, int scol, int count) {
    char what[96];
    const int64_t nd = (int64_t)rows * dcols, ns = (int64_t)rows * scols;
    float *src = pt_rand(ns, -2.0f, 2.0f);
    dpt_tensor hs = pt_t2(src, DT_F32, rows, scols, false), ds = pt_t2(pt_up(src, ns, P_DT), P_DT, rows, scols, true);
    for (int acc = 0; acc < 2; acc++) {
        /* A known prefill in both cases: columns outside the block must be left alone. */
        pt_dst d = dst_make(nd, true);
        dpt_tensor hd = pt_t2(d.h, DT_F32, rows, dcols, false), dd = pt_t2(d.d, P_DT, rows, dcols, true);
        P_CPU->copy_cols(&hd, dcol, &hs, scol, count, acc);
        P_GPU->copy_cols(&dd, dcol, &ds, scol, count, acc);
        snprintf(what, sizeof what, "copy_cols %dx%d[%d:+%d] <- %dx%d[%d]%s", rows, dcols, dcol, count, rows, scols,
                 scol, acc ? " acc" : "");
        if (acc) pt_check(what, pt_down(d.d, nd, P_DT), d.h, nd, 1e-6);
        else pt_check_exact(what, pt_down(d.d, nd, P_DT), d.h, nd);
    }
}

static void softmax_rows(int rows, int len) {
    char what[96];
    const int64_t m = (int64_t)rows * len;
    float *x = pt_rand(m, -5.0f, 5.0f), *dy = pt_rand(m, -1.0f, 1.0f);
    dpt_tensor hx = pt_t2(x, DT_F32, rows, len, false), dx = pt_t2(pt_up(x, m, P_DT), P_DT, rows, len, true);
    dpt_tensor hdy = pt_t2(dy, DT_F32, rows, len, false), ddy = pt_t2(pt_up(dy, m, P_DT), P_DT, rows, len, true);
    float *want = pt_host(m);
    dpt_tensor hy = pt_t2(want, DT_F32, rows, len, false), dy_ = pt_t2(pt_nan(m, P_DT), P_DT, rows, len, true);
    P_CPU->softmax_rows_forward(&hy, &hx);
    P_GPU->softmax_rows_forward(&dy_, &dx);
    snprintf(what, sizeof what, "softmax_rows_forward %dx%d", rows, len);
    pt_check(what, pt_down(dy_.data, m, P_DT), want, m, 1e-5);
    float *yr = rounded(want, m);
    dpt_tensor hyr = pt_t2(yr, DT_F32, rows, len, false), dyr = pt_t2(pt_up(yr, m, P_DT), P_DT, rows, len, true);
    for (int acc = 0; acc < 2; acc++) {
        pt_dst g = dst_make(m, acc);
        dpt_tensor hg = pt_t2(g.h, DT_F32, rows, len, false), dg = pt_t2(g.d, P_DT, rows, len, true);
        P_CPU->softmax_rows_backward(&hg, acc, &hdy, &hyr);
        P_GPU->softmax_rows_backward(&dg, acc, &ddy, &dyr);
        snprintf(what, sizeof what, "softmax_rows_backward %dx%d%s", rows, len, acc ? " acc" : "");
        pt_check(what, pt_down(g.d, m, P_DT), g.h, m, 1e-5);
    }
}

void parity_elementwise(void) {
    unary_binary(2, 37, 5, 3);
    unary_binary(1, 3, 4, 4);
    scaled_add(2, 37, 5, 3);
    scaled_add(4, 64, 16, 16); /* several blocks' partial sums of dgamma */
    upsample(2, 37, 3, 5, LAYOUT_NHWC);
    upsample(1, 3, 4, 4, LAYOUT_NHWC);
    upsample(2, 5, 3, 4, LAYOUT_NCHW);
    copy_cols(5, 20, 13, 5, 2, 9);
    copy_cols(1, 37, 37, 0, 0, 37);
    softmax_rows(6, 10);     /* a thread per row */
    softmax_rows(5, 300);    /* a block per row */
    softmax_rows(3, 4096);
    softmax_rows(1, 33);
}
