/* Every op of the CPU back end's table against the double reference (tests/ref), and the
 * reference itself against central finite differences. For each op:
 *   (a) reference backward vs finite differences of L = sum(out * R), R fixed and random;
 *   (b) back-end forward and backward vs the reference on the same (float) inputs;
 *   (c) accumulate conventions: with accumulate / param_accumulate set the op must add into a
 *       pre-filled buffer; unset it must overwrite (the buffer is pre-filled with NaN, so an op
 *       that reads or adds instead of overwriting fails);
 *   (d) exact checks for the elementwise ops, the loss's top-k counts and the SGD update;
 *   (e) every back-end output is checked to be finite.
 * Tensors are tiny so that the whole program runs in about a second. */
#include <math.h>
#include <string.h>

#include "dpt/backend/backend.h"
#include "ophelp.h"
#include "ref/ref_ops.h"
#include "testutil.h"

/* Tolerances (ophelp.h), relative 2-norm error:
 * - TOL_FD: the double reference vs central differences with step FD_STEP. Truncation error is
 *   O(step^2) ~ 1e-12 and rounding O(1e-16 |L| / step) ~ 1e-9, so 1e-6 leaves margin yet catches
 *   any wrong term (those show up as errors of order 1e-2 or more).
 * - TOL_FWD: float32 forward vs double. Unit roundoff is 6e-8; the longest dot products here
 *   (C*R*S <= 147 terms) accumulate with random signs to ~1e-7; 1e-5 allows for other blocked
 *   summation orders and tiny outputs.
 * - TOL_BWD: float32 backward vs double. Weight gradients sum over N*OH*OW, and BatchNorm's input
 *   gradient (M*g - sum g - xhat * sum g*xhat) cancels, costing one to two more digits.
 * Largest errors seen (oneDNN 2.6, AVX-512 kernels, 2 threads): 7e-9 (FD), 2e-7 (forward),
 * 2e-7 (backward); a wrong term or convention gives 1e-3 and up. */

/* ---- helpers beyond ophelp.h ---- */

static const dpt_backend *be;

/* Distinct values spaced 0.01 apart in random order, so that max pooling has no ties and a
 * finite-difference step never changes the argmax. */
static float *fdistinct(int64_t n) {
    float *key = frand(n, 0.0f, 1.0f), *p = fbuf(n);
    for (int64_t i = 0; i < n; i++) {
        int64_t rank = 0;
        for (int64_t j = 0; j < n; j++) rank += key[j] < key[i] || (key[j] == key[i] && j < i);
        p[i] = 0.01f * (float)(rank - n / 2);
    }
    return p;
}

/* ---- (a) finite differences of the reference ---- */

typedef enum fd_kind { FD_CONV, FD_BN, FD_POOL, FD_LINEAR, FD_XENT } fd_kind;

/* One reference forward and what it needs; x, p1, p2 are the inputs that get perturbed
 * (input; weight or gamma; bias or beta). L = sum(out * R). */
typedef struct fd_prob {
    fd_kind kind;
    int n, c, h, w, k, r, stride, pad, oh, ow; /* linear: c = in, k = out; pool: k = kernel */
    bool relu, is_max;
    double eps;                                /* BatchNorm eps or label smoothing */
    double *x, *p1, *p2;
    const int32_t *labels;
    double *stats; /* (2C) BatchNorm scratch */
    double *out;
    const double *R;
    int64_t nout;
} fd_prob;

/* The fd_prob ctx's L, for fd_check. */
static double fd_loss(void *ctx) {
    fd_prob *p = ctx;
    switch (p->kind) {
    case FD_CONV:
        ref_conv2d_forward(p->out, p->x, p->p1, p->p2, p->n, p->c, p->h, p->w, p->k, p->r, p->r, p->stride, p->pad,
                           p->oh, p->ow);
        break;
    case FD_BN:
        ref_bn_forward_train(p->out, p->stats, p->stats + p->c, p->x, p->p1, p->p2, p->n, p->c, p->h, p->w, p->eps,
                             p->relu);
        break;
    case FD_POOL:
        ref_pool_forward(p->out, p->x, p->n, p->c, p->h, p->w, p->is_max, p->k, p->stride, p->pad, p->oh, p->ow);
        break;
    case FD_LINEAR: ref_linear_forward(p->out, p->x, p->p1, p->p2, p->n, p->c, p->k); break;
    case FD_XENT: ref_softmax_xent(p->out, NULL, p->x, p->labels, p->n, p->k, p->eps, 1.0); break;
    }
    return dot(p->out, p->R, p->nout);
}

/* ---- convolution ---- */

typedef struct conv_case {
    int n, c, h, w, k, r, stride, pad;
    bool bias;
} conv_case;

static void test_conv(const conv_case *cc) {
    const int n = cc->n, c = cc->c, h = cc->h, w = cc->w, k = cc->k, r = cc->r, st = cc->stride, pad = cc->pad;
    const int oh = be_out_size(h, r, st, pad), ow = be_out_size(w, r, st, pad);
    const int64_t nx = (int64_t)n * c * h * w, nw = (int64_t)k * c * r * r, ny = (int64_t)n * k * oh * ow;
    char name[96];
    snprintf(name, sizeof name, "conv in (%d,%d,%d,%d) k=%d %dx%d stride %d pad %d%s", n, c, h, w, k, r, r, st, pad,
             cc->bias ? " +bias" : "");
    float *x = frand(nx, -1.0f, 1.0f), *wt = frand(nw, -0.5f, 0.5f), *dy = frand(ny, -1.0f, 1.0f);
    float *b = cc->bias ? frand(k, -0.5f, 0.5f) : NULL;
    double *xd = f2d(x, nx), *wd = f2d(wt, nw), *bd = f2d(b, k), *dyd = f2d(dy, ny);
    double *yd = dbuf(ny), *dxd = dbuf(nx), *dwd = dbuf(nw), *dbd = dbuf(k);
    ref_conv2d_forward(yd, xd, wd, bd, n, c, h, w, k, r, r, st, pad, oh, ow);
    ref_conv2d_backward(dxd, dwd, cc->bias ? dbd : NULL, dyd, xd, wd, n, c, h, w, k, r, r, st, pad, oh, ow);

    fd_prob p = {.kind = FD_CONV, .n = n, .c = c, .h = h, .w = w, .k = k, .r = r, .stride = st, .pad = pad,
                 .oh = oh, .ow = ow, .x = xd, .p1 = wd, .p2 = bd, .out = dbuf(ny), .R = dyd, .nout = ny};
    fd_check(lbl("%s: din", name), fd_loss, &p, xd, nx, dxd);
    fd_check(lbl("%s: dweight", name), fd_loss, &p, wd, nw, dwd);
    if (cc->bias) fd_check(lbl("%s: dbias", name), fd_loss, &p, bd, k, dbd);

    be_conv_desc d = {.n = n, .c = c, .h = h, .w = w, .k = k, .r = r, .s = r, .stride = st, .pad = pad,
                      .oh = oh, .ow = ow, .bias = cc->bias};
    be_op *op = be->conv2d_create(&d, be->act_layout);
    dpt_tensor tx = act_tensor(to_act(x, n, c, h, w), n, c, h, w);
    dpt_tensor tw = tensor_4d(wt, DT_F32, k, c, r, r, LAYOUT_NCHW), tb = tensor_1d(b, DT_F32, k);
    float *y = fbuf(ny);
    dpt_tensor ty = act_tensor(y, n, k, oh, ow);
    be->conv2d_forward(op, &ty, &tx, &tw, cc->bias ? &tb : NULL);
    check_rel(lbl("%s: forward", name), from_act(y, n, k, oh, ow), yd, ny, TOL_FWD);

    dpt_tensor tdy = act_tensor(to_act(dy, n, k, oh, ow), n, k, oh, ow);
    double *ex = dbuf(nx), *ew = dbuf(nw), *eb = dbuf(k);
    for (int mode = 0; mode < 4; mode++) {
        const bool acc = mode & 1, pacc = mode & 2;
        float *dx = to_act(grad_dest(ex, dxd, nx, acc), n, c, h, w);
        float *dw = grad_dest(ew, dwd, nw, pacc), *db = grad_dest(eb, dbd, k, pacc);
        dpt_tensor tdx = act_tensor(dx, n, c, h, w), tdw = tensor_4d(dw, DT_F32, k, c, r, r, LAYOUT_NCHW);
        dpt_tensor tdb = tensor_1d(db, DT_F32, k);
        be->conv2d_backward(op, &tdx, acc, &tdw, cc->bias ? &tdb : NULL, pacc, &tdy, &tx, &tw);
        check_rel(lbl("%s: din (accumulate=%d)", name, acc), from_act(dx, n, c, h, w), ex, nx, TOL_BWD);
        check_rel(lbl("%s: dweight (param_accumulate=%d)", name, pacc), dw, ew, nw, TOL_BWD);
        if (cc->bias) check_rel(lbl("%s: dbias (param_accumulate=%d)", name, pacc), db, eb, k, TOL_BWD);
    }
    /* First layer: neither din nor dbias is wanted. */
    float *dw = grad_dest(ew, dwd, nw, false);
    dpt_tensor tdw = tensor_4d(dw, DT_F32, k, c, r, r, LAYOUT_NCHW);
    be->conv2d_backward(op, NULL, false, &tdw, NULL, false, &tdy, &tx, &tw);
    check_rel(lbl("%s: dweight with din = dbias = NULL", name), dw, ew, nw, TOL_BWD);
    be->op_destroy(op);
    tmp_free_all();
}

/* ---- batch normalization ---- */

static void test_bn(int n, int c, int h, int w, bool relu) {
    const int64_t nx = (int64_t)n * c * h * w, m = (int64_t)n * h * w;
    const be_bn_desc d = {.n = n, .c = c, .h = h, .w = w, .eps = 1e-5f, .momentum = 0.1f, .relu = relu};
    const double eps = d.eps, mom = d.momentum;
    char name[80];
    snprintf(name, sizeof name, "batchnorm (%d,%d,%d,%d)%s", n, c, h, w, relu ? " +relu" : "");
    float *x = frand(nx, -1.0f, 3.0f), *gamma = frand(c, 0.5f, 1.5f), *beta = frand(c, -0.5f, 0.5f);
    float *dy = frand(nx, -1.0f, 1.0f), *rm = frand(c, -0.5f, 0.5f), *rv = frand(c, 0.5f, 1.5f);
    double *xd = f2d(x, nx), *gd = f2d(gamma, c), *bd = f2d(beta, c), *dyd = f2d(dy, nx);
    double *yd = dbuf(nx), *mean = dbuf(c), *var = dbuf(c), *dxd = dbuf(nx), *dgd = dbuf(c), *dbd = dbuf(c);
    ref_bn_forward_train(yd, mean, var, xd, gd, bd, n, c, h, w, eps, relu);
    ref_bn_backward(dxd, dgd, dbd, dyd, xd, yd, gd, n, c, h, w, eps, relu);

    if (relu) { /* finite differences need every pre-activation well away from the kink */
        double *pre = dbuf(nx), min_abs = INFINITY;
        ref_bn_forward_train(pre, dbuf(c), dbuf(c), xd, gd, bd, n, c, h, w, eps, false);
        for (int64_t i = 0; i < nx; i++) min_abs = fmin(min_abs, fabs(pre[i]));
        TU_CHECK(min_abs > 1e-4, "%s: test setup: a pre-activation is %.3g from the ReLU kink", name, min_abs);
    }
    fd_prob p = {.kind = FD_BN, .n = n, .c = c, .h = h, .w = w, .relu = relu, .eps = eps, .x = xd, .p1 = gd,
                 .p2 = bd, .stats = dbuf(2 * c), .out = dbuf(nx), .R = dyd, .nout = nx};
    fd_check(lbl("%s: din", name), fd_loss, &p, xd, nx, dxd);
    fd_check(lbl("%s: dgamma", name), fd_loss, &p, gd, c, dgd);
    fd_check(lbl("%s: dbeta", name), fd_loss, &p, bd, c, dbd);

    be_op *op = be->batchnorm_create(&d, be->act_layout);
    float *y = fbuf(nx), *smean = fbuf(c), *svar = fbuf(c);
    dpt_tensor tx = act_tensor(to_act(x, n, c, h, w), n, c, h, w), ty = act_tensor(y, n, c, h, w);
    dpt_tensor tg = tensor_1d(gamma, DT_F32, c), tb = tensor_1d(beta, DT_F32, c);
    dpt_tensor tsm = tensor_1d(smean, DT_F32, c), tsv = tensor_1d(svar, DT_F32, c);
    float *rm_be = fbuf(c), *rv_be = fbuf(c);
    memcpy(rm_be, rm, (size_t)c * sizeof(float));
    memcpy(rv_be, rv, (size_t)c * sizeof(float));
    dpt_tensor trm = tensor_1d(rm_be, DT_F32, c), trv = tensor_1d(rv_be, DT_F32, c);
    be->batchnorm_forward_train(op, &ty, &tsm, &tsv, &trm, &trv, &tx, &tg, &tb);
    check_rel(lbl("%s: train forward", name), from_act(y, n, c, h, w), yd, nx, TOL_FWD);
    check_rel(lbl("%s: saved mean", name), smean, mean, c, TOL_FWD);
    check_rel(lbl("%s: saved variance", name), svar, var, c, TOL_FWD);
    /* Running statistics take the unbiased variance (PyTorch's convention). */
    double *erm = dbuf(c), *erv = dbuf(c);
    for (int i = 0; i < c; i++) {
        erm[i] = (1.0 - mom) * rm[i] + mom * mean[i];
        erv[i] = (1.0 - mom) * rv[i] + mom * var[i] * (double)m / (double)(m - 1);
    }
    check_rel(lbl("%s: running mean update", name), rm_be, erm, c, TOL_FWD);
    check_rel(lbl("%s: running variance update", name), rv_be, erv, c, TOL_FWD);

    dpt_tensor tdy = act_tensor(to_act(dy, n, c, h, w), n, c, h, w);
    double *ex = dbuf(nx), *eg = dbuf(c), *eb = dbuf(c);
    for (int mode = 0; mode < 4; mode++) {
        const bool acc = mode & 1, pacc = mode & 2;
        float *dx = to_act(grad_dest(ex, dxd, nx, acc), n, c, h, w);
        float *dg = grad_dest(eg, dgd, c, pacc), *db = grad_dest(eb, dbd, c, pacc);
        dpt_tensor tdx = act_tensor(dx, n, c, h, w), tdg = tensor_1d(dg, DT_F32, c), tdb = tensor_1d(db, DT_F32, c);
        be->batchnorm_backward(op, &tdx, acc, &tdg, &tdb, pacc, &tdy, &tx, &ty, &tg, &tb, &tsm, &tsv);
        check_rel(lbl("%s: din (accumulate=%d)", name, acc), from_act(dx, n, c, h, w), ex, nx, TOL_BWD);
        check_rel(lbl("%s: dgamma (param_accumulate=%d)", name, pacc), dg, eg, c, TOL_BWD);
        check_rel(lbl("%s: dbeta (param_accumulate=%d)", name, pacc), db, eb, c, TOL_BWD);
    }

    /* Evaluation with the updated running statistics. */
    double *ye = dbuf(nx);
    ref_bn_forward_eval(ye, xd, gd, bd, f2d(rm_be, c), f2d(rv_be, c), n, c, h, w, eps, relu);
    be->batchnorm_forward_eval(op, &ty, &tx, &tg, &tb, &trm, &trv);
    check_rel(lbl("%s: eval forward", name), from_act(y, n, c, h, w), ye, nx, TOL_FWD);
    be->op_destroy(op);
    tmp_free_all();
}

/* ---- pooling ---- */

typedef struct pool_case {
    int n, c, h, w, kernel, stride, pad; /* kernel 0: global */
} pool_case;

static void test_pool(const pool_case *pc, bool is_max) {
    const int n = pc->n, c = pc->c, h = pc->h, w = pc->w, kn = pc->kernel, st = pc->stride, pad = pc->pad;
    const int oh = kn ? be_out_size(h, kn, st, pad) : 1, ow = kn ? be_out_size(w, kn, st, pad) : 1;
    const int64_t nx = (int64_t)n * c * h * w, ny = (int64_t)n * c * oh * ow;
    char name[96];
    if (kn) snprintf(name, sizeof name, "%s pool (%d,%d,%d,%d) %dx%d stride %d pad %d", is_max ? "max" : "avg", n, c,
                     h, w, kn, kn, st, pad);
    else snprintf(name, sizeof name, "global %s pool (%d,%d,%d,%d)", is_max ? "max" : "avg", n, c, h, w);
    float *x = is_max ? fdistinct(nx) : frand(nx, -1.0f, 1.0f), *dy = frand(ny, -1.0f, 1.0f);
    double *xd = f2d(x, nx), *dyd = f2d(dy, ny), *yd = dbuf(ny), *dxd = dbuf(nx);
    ref_pool_forward(yd, xd, n, c, h, w, is_max, kn, st, pad, oh, ow);
    ref_pool_backward(dxd, dyd, xd, n, c, h, w, is_max, kn, st, pad, oh, ow);
    fd_prob p = {.kind = FD_POOL, .n = n, .c = c, .h = h, .w = w, .k = kn, .stride = st, .pad = pad, .oh = oh,
                 .ow = ow, .is_max = is_max, .x = xd, .out = dbuf(ny), .R = dyd, .nout = ny};
    fd_check(lbl("%s: din", name), fd_loss, &p, xd, nx, dxd);

    const be_pool_desc d = {.n = n, .c = c, .h = h, .w = w, .kind = is_max ? POOL_MAX : POOL_AVG, .kernel = kn,
                            .stride = st, .pad = pad, .oh = oh, .ow = ow};
    be_op *op = be->pool_create(&d, be->act_layout);
    float *y = fbuf(ny);
    dpt_tensor tx = act_tensor(to_act(x, n, c, h, w), n, c, h, w), ty = act_tensor(y, n, c, oh, ow);
    be->pool_forward(op, &ty, &tx);
    check_rel(lbl("%s: forward", name), from_act(y, n, c, oh, ow), yd, ny, TOL_FWD);
    dpt_tensor tdy = act_tensor(to_act(dy, n, c, oh, ow), n, c, oh, ow);
    double *ex = dbuf(nx);
    for (int acc = 0; acc < 2; acc++) {
        float *dx = to_act(grad_dest(ex, dxd, nx, acc), n, c, h, w);
        dpt_tensor tdx = act_tensor(dx, n, c, h, w);
        be->pool_backward(op, &tdx, acc, &tdy, &tx, &ty);
        check_rel(lbl("%s: din (accumulate=%d)", name, acc), from_act(dx, n, c, h, w), ex, nx, TOL_BWD);
    }
    be->op_destroy(op);
    tmp_free_all();
}

/* The reference's tie rule (first element in scan order), which random inputs never reach. */
static void test_pool_ties(void) {
    const double x[16] = {1, 1, 0, 3, 1, 1, 3, 3, 2, 0, 5, 5, 0, 2, 5, 5}; /* (1, 1, 4, 4) */
    const double dy[4] = {1, 2, 3, 4}, want[16] = {1, 0, 0, 2, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0};
    double y[4], dx[16];
    ref_pool_forward(y, x, 1, 1, 4, 4, true, 2, 2, 0, 2, 2);
    ref_pool_backward(dx, dy, x, 1, 1, 4, 4, true, 2, 2, 0, 2, 2);
    TU_CHECK(y[0] == 1 && y[1] == 3 && y[2] == 2 && y[3] == 5, "ref max pool with ties: forward %g %g %g %g", y[0],
             y[1], y[2], y[3]);
    TU_CHECK(!memcmp(dx, want, sizeof dx), "ref max pool with ties: gradient not routed to the first maximum");
}

/* ---- linear ---- */

static void test_linear(bool bias) {
    const int n = 4, in = 12, out = 10;
    const char *name = bias ? "linear 12->10 +bias" : "linear 12->10";
    float *x = frand(n * in, -1.0f, 1.0f), *wt = frand(out * in, -0.5f, 0.5f), *dy = frand(n * out, -1.0f, 1.0f);
    float *b = bias ? frand(out, -0.5f, 0.5f) : NULL;
    double *xd = f2d(x, n * in), *wd = f2d(wt, out * in), *bd = f2d(b, out), *dyd = f2d(dy, n * out);
    double *yd = dbuf(n * out), *dxd = dbuf(n * in), *dwd = dbuf(out * in), *dbd = dbuf(out);
    ref_linear_forward(yd, xd, wd, bd, n, in, out);
    ref_linear_backward(dxd, dwd, bias ? dbd : NULL, dyd, xd, wd, n, in, out);
    fd_prob p = {.kind = FD_LINEAR, .n = n, .c = in, .k = out, .x = xd, .p1 = wd, .p2 = bd, .out = dbuf(n * out),
                 .R = dyd, .nout = n * out};
    fd_check(lbl("%s: din", name), fd_loss, &p, xd, n * in, dxd);
    fd_check(lbl("%s: dweight", name), fd_loss, &p, wd, out * in, dwd);
    if (bias) fd_check(lbl("%s: dbias", name), fd_loss, &p, bd, out, dbd);

    const be_linear_desc d = {.n = n, .in = in, .out = out, .bias = bias};
    be_op *op = be->linear_create(&d);
    float *y = fbuf(n * out);
    dpt_tensor tx = tensor_2d(x, DT_F32, n, in), tw = tensor_2d(wt, DT_F32, out, in), tb = tensor_1d(b, DT_F32, out);
    dpt_tensor ty = tensor_2d(y, DT_F32, n, out), tdy = tensor_2d(dy, DT_F32, n, out);
    be->linear_forward(op, &ty, &tx, &tw, bias ? &tb : NULL);
    check_rel(lbl("%s: forward", name), y, yd, n * out, TOL_FWD);
    double *ex = dbuf(n * in), *ew = dbuf(out * in), *eb = dbuf(out);
    for (int mode = 0; mode < 4; mode++) {
        const bool acc = mode & 1, pacc = mode & 2;
        float *dx = grad_dest(ex, dxd, n * in, acc), *dw = grad_dest(ew, dwd, out * in, pacc);
        float *db = grad_dest(eb, dbd, out, pacc);
        dpt_tensor tdx = tensor_2d(dx, DT_F32, n, in), tdw = tensor_2d(dw, DT_F32, out, in);
        dpt_tensor tdb = tensor_1d(db, DT_F32, out);
        be->linear_backward(op, &tdx, acc, &tdw, bias ? &tdb : NULL, pacc, &tdy, &tx, &tw);
        check_rel(lbl("%s: din (accumulate=%d)", name, acc), dx, ex, n * in, TOL_BWD);
        check_rel(lbl("%s: dweight (param_accumulate=%d)", name, pacc), dw, ew, out * in, TOL_BWD);
        if (bias) check_rel(lbl("%s: dbias (param_accumulate=%d)", name, pacc), db, eb, out, TOL_BWD);
    }
    float *dw = grad_dest(ew, dwd, out * in, false);
    dpt_tensor tdw = tensor_2d(dw, DT_F32, out, in);
    be->linear_backward(op, NULL, false, &tdw, NULL, false, &tdy, &tx, &tw);
    check_rel(lbl("%s: dweight with din = dbias = NULL", name), dw, ew, out * in, TOL_BWD);
    be->op_destroy(op);
    tmp_free_all();
}

/* ---- softmax cross-entropy and top-k ---- */

static void test_xent(double smoothing) {
    const int n = 8, k = 10;
    const float scale = 1.0f / 8.0f; /* the trainer passes 1 / (global batch) */
    char name[48];
    snprintf(name, sizeof name, "softmax_xent smoothing %.1f", smoothing);
    int32_t labels[8];
    for (int i = 0; i < n; i++) labels[i] = (3 * i + 1) % k;
    float *x = frand(n * k, -3.0f, 3.0f), *r = frand(n, -1.0f, 1.0f);
    double *xd = f2d(x, n * k), *rd = f2d(r, n), *ld = dbuf(n), *dxd = dbuf(n * k), *g = dbuf(n * k);
    ref_softmax_xent(ld, dxd, xd, labels, n, k, smoothing, 1.0);
    for (int i = 0; i < n * k; i++) g[i] = rd[i / k] * dxd[i]; /* dL/dlogits for L = sum(loss * R) */
    fd_prob p = {.kind = FD_XENT, .n = n, .k = k, .eps = smoothing, .x = xd, .labels = labels, .out = dbuf(n),
                 .R = rd, .nout = n};
    fd_check(lbl("%s: dlogits", name), fd_loss, &p, xd, n * k, g);

    ref_softmax_xent(ld, dxd, xd, labels, n, k, smoothing, scale);
    float *l = fbuf(n), *dx = fbuf(n * k);
    dpt_tensor tl = tensor_1d(l, DT_F32, n), tdx = tensor_2d(dx, DT_F32, n, k), tx = tensor_2d(x, DT_F32, n, k);
    dpt_tensor ty = tensor_1d(labels, DT_I32, n);
    be->softmax_xent(&tl, &tdx, &tx, &ty, (float)smoothing, scale);
    check_rel(lbl("%s: losses", name), l, ld, n, TOL_FWD);
    check_rel(lbl("%s: dlogits (grad_scale 1/8)", name), dx, dxd, n * k, TOL_FWD);
    tmp_free_all();
}

/* Rank of the label = classes with a larger logit, plus equal ones with a lower index. */
static void test_topk(void) {
    static const float logits[9][10] = {
        {0.1f, 0.2f, 0.3f, 2.0f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f}, /* label 3: rank 0 */
        {3.0f, 0.1f, 1.0f, 0.2f, 2.0f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f}, /* label 2: rank 2 */
        {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 0.1f, 0.5f, 0.2f, 0.3f}, /* label 7: rank 6 */
        {0.1f, 2.0f, 0.2f, 0.3f, 0.4f, 2.0f, 0.5f, 0.6f, 0.7f, 0.8f}, /* label 5 ties class 1: rank 1 */
        {0.1f, 2.0f, 0.2f, 0.3f, 0.4f, 0.5f, 2.0f, 0.6f, 0.7f, 0.8f}, /* label 1 ties class 6: rank 0 */
        {5.0f, 5.0f, 5.0f, 5.0f, 1.0f, 0.1f, 0.2f, 0.3f, 1.0f, 0.4f}, /* label 4 ties class 8: rank 4 */
        {5.0f, 5.0f, 1.0f, 5.0f, 5.0f, 0.1f, 0.2f, 0.3f, 1.0f, 0.4f}, /* label 8 ties class 2: rank 5 */
        {0}, /* all equal, label 0: rank 0 */
        {0}, /* all equal, label 9: rank 9 */
    };
    static const int32_t labels[9] = {3, 2, 7, 5, 1, 4, 8, 0, 9};
    static const int64_t hit1[9] = {1, 0, 0, 0, 1, 0, 0, 1, 0}, hit5[9] = {1, 1, 0, 1, 1, 1, 0, 1, 0};
    int64_t sum1 = 0, sum5 = 0;
    for (int i = 0; i < 9; i++) { /* one row at a time, so that errors cannot cancel in a count */
        dpt_tensor tx = tensor_2d((void *)logits[i], DT_F32, 1, 10), ty = tensor_1d((void *)&labels[i], DT_I32, 1);
        int64_t t1 = -1, t5 = -1;
        be->topk_correct(&t1, &t5, &tx, &ty, 1);
        TU_CHECK(t1 == hit1[i] && t5 == hit5[i], "topk_correct row %d (label %d): top1 %lld top5 %lld, want %lld %lld",
                 i, labels[i], (long long)t1, (long long)t5, (long long)hit1[i], (long long)hit5[i]);
        if (i < 3) sum1 += hit1[i], sum5 += hit5[i];
    }
    /* Only the first n rows count. */
    dpt_tensor tx = tensor_2d((void *)logits, DT_F32, 9, 10), ty = tensor_1d((void *)labels, DT_I32, 9);
    int64_t t1 = -1, t5 = -1;
    be->topk_correct(&t1, &t5, &tx, &ty, 3);
    TU_CHECK(t1 == sum1 && t5 == sum5, "topk_correct over the first 3 of 9 rows: top1 %lld top5 %lld, want %lld %lld",
             (long long)t1, (long long)t5, (long long)sum1, (long long)sum5);
}

/* ---- elementwise ---- */

static void test_elementwise(void) {
    const int n = 2, c = 3, h = 4, w = 5, ne = n * c * h * w;
    float *a = frand(ne, -1.0f, 1.0f), *b = frand(ne, -1.0f, 1.0f), *dy = frand(ne, -1.0f, 1.0f);
    float *y = fbuf(ne), *want = fbuf(ne);
    a[0] = 0.0f; /* ReLU at exactly zero: output 0, gradient 0 */
    a[1] = -0.0f;
    b[2] = -a[2]; /* a sum of exactly zero */
    dpt_tensor ta = act_tensor(a, n, c, h, w), tb = act_tensor(b, n, c, h, w), ty = act_tensor(y, n, c, h, w);
    dpt_tensor tdy = act_tensor(dy, n, c, h, w);

    be->relu_forward(&ty, &ta);
    for (int i = 0; i < ne; i++) want[i] = a[i] > 0.0f ? a[i] : 0.0f;
    check_exact("relu forward", y, want, ne);
    for (int acc = 0; acc < 2; acc++) {
        float *dx = acc ? frand(ne, -1.0f, 1.0f) : fbuf(ne);
        for (int i = 0; i < ne; i++) {
            float g = y[i] > 0.0f ? dy[i] : 0.0f;
            want[i] = acc ? dx[i] + g : g;
            if (!acc) dx[i] = NAN;
        }
        dpt_tensor tdx = act_tensor(dx, n, c, h, w);
        be->relu_backward(&tdx, acc, &tdy, &ty);
        check_exact(lbl("relu backward (accumulate=%d)", acc), dx, want, ne);
    }

    float *wa = fbuf(ne), *wb = fbuf(ne);
    for (int relu = 0; relu < 2; relu++) {
        be->add_forward(&ty, &ta, &tb, relu);
        for (int i = 0; i < ne; i++) {
            float s = a[i] + b[i];
            want[i] = relu && !(s > 0.0f) ? 0.0f : s;
        }
        check_exact(lbl("add forward (relu=%d)", relu), y, want, ne);
        for (int mode = 0; mode < 4; mode++) {
            const bool acc_a = mode & 1, acc_b = mode & 2;
            float *da = acc_a ? frand(ne, -1.0f, 1.0f) : fbuf(ne), *db = acc_b ? frand(ne, -1.0f, 1.0f) : fbuf(ne);
            for (int i = 0; i < ne; i++) {
                float g = relu && !(y[i] > 0.0f) ? 0.0f : dy[i];
                wa[i] = acc_a ? da[i] + g : g;
                wb[i] = acc_b ? db[i] + g : g;
                if (!acc_a) da[i] = NAN;
                if (!acc_b) db[i] = NAN;
            }
            dpt_tensor tda = act_tensor(da, n, c, h, w), tdb = act_tensor(db, n, c, h, w);
            be->add_backward(&tda, acc_a, &tdb, acc_b, &tdy, &ty, relu);
            check_exact(lbl("add backward da (relu=%d accumulate_a=%d accumulate_b=%d)", relu, acc_a, acc_b), da, wa,
                        ne);
            check_exact(lbl("add backward db (relu=%d accumulate_a=%d accumulate_b=%d)", relu, acc_a, acc_b), db, wb,
                        ne);
        }
    }

    const float alpha = 0.3f;
    be->scale_forward(&ty, &ta, alpha);
    for (int i = 0; i < ne; i++) want[i] = alpha * a[i];
    check_exact("scale forward", y, want, ne);
    for (int acc = 0; acc < 2; acc++) {
        float *dx = acc ? frand(ne, -1.0f, 1.0f) : fbuf(ne);
        for (int i = 0; i < ne; i++) {
            want[i] = acc ? dx[i] + alpha * dy[i] : alpha * dy[i];
            if (!acc) dx[i] = NAN;
        }
        dpt_tensor tdx = act_tensor(dx, n, c, h, w);
        be->scale_backward(&tdx, acc, &tdy, alpha);
        check_exact(lbl("scale backward (accumulate=%d)", acc), dx, want, ne);
    }
    tmp_free_all();
}

/* ---- SGD ---- */

/* Inputs are small dyadic fractions, so float arithmetic is exact and results compare with ==. */
static void test_sgd(void) {
    static const be_sgd_args cases[] = {
        {.lr = 0.5f, .momentum = 0.5f, .weight_decay = 0.25f, .nesterov = true, .grad_scale = 0.5f},
        {.lr = 0.25f, .momentum = 0.5f, .weight_decay = 0.0f, .nesterov = false, .grad_scale = 1.0f},
        {.lr = 0.5f, .momentum = 0.0f, .weight_decay = 0.5f, .nesterov = false, .grad_scale = 1.0f},
        {.lr = 0.125f, .momentum = 0.75f, .weight_decay = 0.0625f, .nesterov = true, .grad_scale = 0.25f},
    };
    const float grad[4] = {2.0f, -4.0f, 1.0f, 0.25f};
    for (size_t ci = 0; ci < DPT_ARRAY_LEN(cases); ci++) {
        const be_sgd_args *a = &cases[ci];
        float w[4] = {4.0f, -2.0f, 0.5f, 1.0f}, v[4] = {1.0f, 0.5f, -1.0f, 0.0f};
        double ew[4] = {4.0, -2.0, 0.5, 1.0}, ev[4] = {1.0, 0.5, -1.0, 0.0};
        for (int step = 0; step < 2; step++) { /* the second step uses the first's momentum */
            be->sgd_update(w, v, grad, 4, a);
            for (int i = 0; i < 4; i++) {
                double g = (double)a->grad_scale * grad[i] + (double)a->weight_decay * ew[i];
                ev[i] = (double)a->momentum * ev[i] + g;
                ew[i] -= (double)a->lr * (a->nesterov ? g + (double)a->momentum * ev[i] : ev[i]);
                TU_CHECK(w[i] == ew[i] && v[i] == ev[i], "sgd case %zu step %d element %d: w %.9g v %.9g, want %.9g "
                         "%.9g", ci, step, i, (double)w[i], (double)v[i], ew[i], ev[i]);
            }
            if (step == 0 && ci == 0) /* by hand: g = 0.5*2 + 0.25*4 = 2; v = 0.5*1 + 2; w = 4 - 0.5*(2 + 1.25) */
                TU_CHECK(w[0] == 2.375f && v[0] == 2.5f, "sgd nesterov by hand: w %g v %g, want 2.375 2.5",
                         (double)w[0], (double)v[0]);
            if (step == 0 && ci == 1) /* g = -4; v = 0.5*0.5 - 4 = -3.75; w = -2 + 0.25*3.75 */
                TU_CHECK(w[1] == -1.0625f && v[1] == -3.75f, "sgd momentum by hand: w %g v %g, want -1.0625 -3.75",
                         (double)w[1], (double)v[1]);
        }
    }
}

int main(void) {
    be = backend_cpu();
    oh_init("test_ops", be->act_layout, 1);
    static const conv_case convs[] = {
        {2, 3, 6, 6, 4, 3, 1, 1, true},    {2, 1, 5, 5, 4, 3, 1, 1, false},  /* 3x3 s1 p1; C = 1 */
        {2, 16, 6, 6, 8, 3, 1, 1, true},   {2, 4, 8, 8, 6, 3, 2, 1, true},   /* 3x3 s2 p1 */
        {2, 4, 7, 7, 6, 3, 2, 1, false},   {2, 8, 8, 8, 4, 1, 2, 0, false},  /* 1x1 s2 p0 */
        {2, 8, 7, 7, 4, 1, 2, 0, true},    {1, 3, 12, 12, 4, 7, 2, 3, true}, /* 7x7 s2 p3 */
        {1, 3, 11, 11, 4, 7, 2, 3, false}, {2, 3, 7, 7, 4, 3, 2, 0, true},   /* 7x7 -> 3x3 */
        {2, 3, 8, 8, 4, 3, 2, 0, false},   /* 8x8 -> 3x3: the last row and column are dropped */
    };
    for (size_t i = 0; i < DPT_ARRAY_LEN(convs); i++) test_conv(&convs[i]);
    for (int relu = 0; relu < 2; relu++) {
        test_bn(4, 8, 5, 5, relu);
        test_bn(2, 16, 3, 3, relu);
    }
    static const pool_case pools[] = {
        {2, 3, 8, 8, 2, 2, 0}, {2, 3, 7, 7, 2, 2, 0}, /* 2x2 s2 even, odd (7x7 -> 3x3) */
        {2, 4, 8, 8, 3, 2, 1}, {2, 4, 7, 7, 3, 2, 1}, /* 3x3 s2 p1 */
        {2, 3, 5, 5, 0, 0, 0}, {2, 4, 4, 6, 0, 0, 0}, /* global */
    };
    for (size_t i = 0; i < DPT_ARRAY_LEN(pools); i++) {
        test_pool(&pools[i], true);
        test_pool(&pools[i], false);
    }
    test_pool_ties();
    test_linear(true);
    test_linear(false);
    test_xent(0.0);
    test_xent(0.1);
    test_topk();
    test_elementwise();
    test_sgd();
    return tu_finish("test_ops");
}
