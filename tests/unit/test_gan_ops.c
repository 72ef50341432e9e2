/* The GAN ops of the CPU back end's table (backend.h, "GAN ops") against the double reference
 * (tests/ref/ref_gan.c), and the reference against central finite differences, with test_ops.c's
 * method. For each op:
 *   (a) reference backward vs finite differences of L = sum(out * R), R fixed and random;
 *   (b) back-end forward and backward vs the reference on the same (float) inputs;
 *   (c) accumulate conventions: gradients pre-filled with NaN must be overwritten, pre-filled with
 *       random values must be added to;
 *   (d) every back-end output is checked to be finite;
 *   (e) op-specific checks: cross-replica conditional BatchNorm (two half batches whose sums a fake
 *       reduction exchanges) equals the full batch; spectral norm's power iteration converges to a
 *       known largest singular value; hinge kinks; exact EMA; a label out of range stops the
 *       process with a message.
 * The largest error seen per op is printed at the end. Tensors are tiny: the program runs in well
 * under a second. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/backend/backend.h"
#include "ophelp.h"
#include "ref/ref_gan.h"
#include "testutil.h"

/* Tolerances (ophelp.h), relative 2-norm error, as test_ops.c's:
 * - TOL_FD: the double reference vs central differences with step FD_STEP: truncation O(step^2)
 *   ~ 1e-12, rounding O(1e-16 |L| / step) ~ 1e-10; a wrong term gives 1e-2 and up.
 * - TOL_FWD: float32 vs double for short sums and elementwise maps (unit roundoff 6e-8; the
 *   longest sums here have tens of terms).
 * - TOL_BWD: float32 backward vs double: BatchNorm-style input gradients cancel
 *   (M*dxhat - sum dxhat - xhat * sum dxhat*xhat) and lose one or two digits. */

static const dpt_backend *be;

/* ---- upsampling ---- */

typedef struct up_ctx {
    int n, c, h, w;
    double *x, *out;
    const double *R;
} up_ctx;

static double up_loss(void *p) {
    up_ctx *q = p;
    ref_upsample2x_forward(q->out, q->x, q->n, q->c, q->h, q->w);
    return dot(q->out, q->R, (int64_t)q->n * q->c * 4 * q->h * q->w);
}

static void test_upsample(dpt_layout layout) {
    const int n = 2, c = 3, h = 3, w = 4;
    const int64_t nx = (int64_t)n * c * h * w, ny = 4 * nx;
    const char *name = layout == LAYOUT_NHWC ? "upsample2x NHWC" : "upsample2x NCHW";
    float *x = frand(nx, -1.0f, 1.0f), *dy = frand(ny, -1.0f, 1.0f);
    double *xd = f2d(x, nx), *dyd = f2d(dy, ny), *yd = dbuf(ny), *dxd = dbuf(nx);
    ref_upsample2x_forward(yd, xd, n, c, h, w);
    ref_upsample2x_backward(dxd, dyd, n, c, h, w);
    up_ctx q = {n, c, h, w, xd, dbuf(ny), dyd};
    fd_check(lbl("%s: din", name), up_loss, &q, xd, nx, dxd);

    const bool nhwc = layout == LAYOUT_NHWC;
    float *y = fbuf(ny);
    dpt_tensor tx = tensor_4d(nhwc ? to_act(x, n, c, h, w) : x, DT_F32, n, c, h, w, layout);
    dpt_tensor ty = tensor_4d(y, DT_F32, n, c, 2 * h, 2 * w, layout);
    be->upsample2x_forward(&ty, &tx);
    check_exact(lbl("%s: forward", name), nhwc ? from_act(y, n, c, 2 * h, 2 * w) : y, d2f(yd, ny), ny);
    dpt_tensor tdy = tensor_4d(nhwc ? to_act(dy, n, c, 2 * h, 2 * w) : dy, DT_F32, n, c, 2 * h, 2 * w, layout);
    double *ex = dbuf(nx);
    for (int acc = 0; acc < 2; acc++) {
        float *dx = grad_dest(ex, dxd, nx, acc);
        if (nhwc) dx = to_act(dx, n, c, h, w);
        dpt_tensor tdx = tensor_4d(dx, DT_F32, n, c, h, w, layout);
        be->upsample2x_backward(&tdx, acc, &tdy);
        check_rel(lbl("%s: din (accumulate=%d)", name, acc), nhwc ? from_act(dx, n, c, h, w) : dx, ex, nx, TOL_FWD);
    }
    tmp_free_all();
}

/* ---- tanh ---- */

typedef struct ew_ctx {
    int64_t n;
    double *x, *out;
    const double *R;
} ew_ctx;

static double tanh_loss(void *p) {
    ew_ctx *q = p;
    ref_tanh_forward(q->out, q->x, q->n);
    return dot(q->out, q->R, q->n);
}

static void test_tanh(void) {
    const int n = 2, c = 3, h = 4, w = 5;
    const int64_t ne = (int64_t)n * c * h * w;
    float *x = frand(ne, -3.0f, 3.0f), *dy = frand(ne, -1.0f, 1.0f);
    x[0] = 0.0f;
    x[1] = 20.0f; /* saturated: output 1, gradient 0 */
    double *xd = f2d(x, ne), *dyd = f2d(dy, ne), *yd = dbuf(ne), *dxd = dbuf(ne);
    ref_tanh_forward(yd, xd, ne);
    ref_tanh_backward(dxd, dyd, yd, ne);
    ew_ctx q = {ne, xd, dbuf(ne), dyd};
    fd_check("tanh: din", tanh_loss, &q, xd, ne, dxd);

    float *y = fbuf(ne);
    dpt_tensor tx = act_tensor(x, n, c, h, w), ty = act_tensor(y, n, c, h, w), tdy = act_tensor(dy, n, c, h, w);
    be->tanh_forward(&ty, &tx);
    check_rel("tanh: forward", y, yd, ne, TOL_FWD);
    /* Backward from the back end's own output, against the reference on that same output. */
    ref_tanh_backward(dxd, dyd, f2d(y, ne), ne);
    double *ex = dbuf(ne);
    for (int acc = 0; acc < 2; acc++) {
        float *dx = grad_dest(ex, dxd, ne, acc);
        dpt_tensor tdx = act_tensor(dx, n, c, h, w);
        be->tanh_backward(&tdx, acc, &tdy, &ty);
        check_rel(lbl("tanh: din (accumulate=%d)", acc), dx, ex, ne, TOL_FWD);
    }
    tmp_free_all();
}

/* ---- embedding ---- */

typedef struct emb_ctx {
    int n, d;
    const int32_t *labels;
    double *table, *out;
    const double *R;
} emb_ctx;

static double emb_loss(void *p) {
    emb_ctx *q = p;
    ref_embedding_forward(q->out, q->table, q->labels, q->n, q->d);
    return dot(q->out, q->R, (int64_t)q->n * q->d);
}

/* An embedding op on labels {1, bad}, run by tu_expect_death. */
typedef struct bad_label {
    bool backward;
    int32_t bad;
} bad_label;

static void embed_bad_label(void *p) {
    const bad_label *a = p;
    float table[4 * 3] = {0}, out[2 * 3] = {0};
    int32_t labels[2] = {1, a->bad};
    dpt_tensor tt = tensor_2d(table, DT_F32, 4, 3), to = tensor_2d(out, DT_F32, 2, 3);
    dpt_tensor tl = tensor_1d(labels, DT_I32, 2);
    if (a->backward)
        be->embedding_backward(&tt, false, &to, &tl);
    else
        be->embedding_forward(&to, &tt, &tl);
}

/* Runs the op in a child process with stderr captured: it must exit non-zero naming the label. */
static void check_label_rejected(bool backward, int32_t bad) {
    const char *what = backward ? "embedding_backward" : "embedding_forward";
    bad_label a = {backward, bad};
    char msg[2048], want[64];
    TU_CHECK(tu_expect_death(embed_bad_label, &a, msg, sizeof msg), "%s with label %d: the process carried on",
             what, (int)bad);
    snprintf(want, sizeof want, "label %d of sample 1", (int)bad);
    TU_CHECK(tu_contains(msg, want), "%s with label %d: message lacks \"%s\": %s", what, (int)bad, want, msg);
}

static void test_embedding(void) {
    const int n = 7, k = 5, d = 6;
    static const int32_t labels[7] = {3, 1, 3, 0, 4, 3, 1}; /* 3 three times, 1 twice, 2 never */
    float *table = frand(k * d, -1.0f, 1.0f), *dy = frand(n * d, -1.0f, 1.0f);
    double *td = f2d(table, k * d), *dyd = f2d(dy, n * d), *yd = dbuf(n * d), *dtd = dbuf(k * d);
    ref_embedding_forward(yd, td, labels, n, d);
    ref_embedding_backward(dtd, dyd, labels, n, k, d);
    emb_ctx q = {n, d, labels, td, dbuf(n * d), dyd};
    fd_check("embedding: dtable", emb_loss, &q, td, k * d, dtd);

    float *y = fbuf(n * d);
    dpt_tensor tt = tensor_2d(table, DT_F32, k, d), ty = tensor_2d(y, DT_F32, n, d);
    dpt_tensor tl = tensor_1d((void *)labels, DT_I32, n), tdy = tensor_2d(dy, DT_F32, n, d);
    be->embedding_forward(&ty, &tt, &tl);
    check_exact("embedding: forward", y, d2f(yd, n * d), n * d);
    double *ex = dbuf(k * d);
    for (int pacc = 0; pacc < 2; pacc++) {
        float *dt = grad_dest(ex, dtd, k * d, pacc);
        dpt_tensor tdt = tensor_2d(dt, DT_F32, k, d);
        be->embedding_backward(&tdt, pacc, &tdy, &tl);
        check_rel(lbl("embedding: dtable (param_accumulate=%d)", pacc), dt, ex, k * d, TOL_FWD);
    }
    check_label_rejected(false, 4);
    check_label_rejected(false, -1);
    check_label_rejected(true, 7);
    tmp_free_all();
}

/* ---- spectral normalisation ---- */

typedef struct sn_ctx {
    int rows, cols;
    double *w, *out;
    const double *u, *v, *R;
} sn_ctx;

static double sn_loss(void *p) {
    sn_ctx *q = p;
    ref_sn_forward(q->out, q->w, q->u, q->v, q->rows, q->cols);
    return dot(q->out, q->R, (int64_t)q->rows * q->cols);
}

static void test_spectral_norm(void) {
    const int rows = 6, cols = 10; /* a conv weight (6, 5, 1, 2) viewed as (6, 10) */
    const int64_t nw = (int64_t)rows * cols;
    const float eps = 1e-12f;
    float *w = frand(nw, -1.0f, 1.0f), *u0 = frand(rows, -1.0f, 1.0f), *v0 = frand(cols, -1.0f, 1.0f);
    float *dws = frand(nw, -1.0f, 1.0f);
    double *wd = f2d(w, nw), *ud = f2d(u0, rows), *vd = f2d(v0, cols), *dwsd = f2d(dws, nw);
    /* One training step: one power iteration from u0, then sigma and w / sigma. */
    ref_sn_power_iteration(ud, vd, wd, rows, cols, 1, eps);
    double *wsn = dbuf(nw), *dwd = dbuf(nw);
    const double sigma = ref_sn_forward(wsn, wd, ud, vd, rows, cols);
    ref_sn_backward(dwd, dwsd, wd, ud, vd, rows, cols);
    sn_ctx q = {rows, cols, wd, dbuf(nw), ud, vd, dwsd};
    fd_check("spectral_norm: dw (u, v fixed)", sn_loss, &q, wd, nw, dwd);

    float *u = fcopy(u0, rows), *v = fcopy(v0, cols), *w_sn = fbuf(nw), s = NAN;
    be->spectral_norm_forward(w_sn, u, v, &s, w, rows, cols, 1, eps);
    check_rel("spectral_norm: updated u", u, ud, rows, TOL_FWD);
    check_rel("spectral_norm: updated v", v, vd, cols, TOL_FWD);
    check_rel("spectral_norm: sigma", &s, &sigma, 1, TOL_FWD);
    check_rel("spectral_norm: w_sn", w_sn, wsn, nw, TOL_FWD);
    double *ex = dbuf(nw);
    for (int pacc = 0; pacc < 2; pacc++) {
        float *dw = grad_dest(ex, dwd, nw, pacc);
        be->spectral_norm_backward(dw, pacc, dws, w, u, v, s, rows, cols);
        check_rel(lbl("spectral_norm: dw (param_accumulate=%d)", pacc), dw, ex, nw, TOL_BWD);
    }
    /* Evaluation: no power iteration, u and v untouched, sigma = u^T w v from them. */
    float *u1 = fcopy(u, rows), *v1 = fcopy(v, cols), s_eval = NAN;
    float *w2 = frand(nw, -1.0f, 1.0f); /* another weight, so that sigma must be recomputed */
    const double sigma2 = ref_sn_forward(wsn, f2d(w2, nw), f2d(u, rows), f2d(v, cols), rows, cols);
    be->spectral_norm_forward(w_sn, u, v, &s_eval, w2, rows, cols, 0, eps);
    check_exact("spectral_norm eval: u unchanged", u, u1, rows);
    check_exact("spectral_norm eval: v unchanged", v, v1, cols);
    check_rel("spectral_norm eval: sigma", &s_eval, &sigma2, 1, TOL_FWD);
    check_rel("spectral_norm eval: w_sn", w_sn, wsn, nw, TOL_FWD);
    tmp_free_all();
}

/* Householder reflector H = I - 2 a a^T / |a|^2 (orthogonal, symmetric), (n, n). */
static void householder(double *hm, const double *a, int n) {
    const double aa = dot(a, a, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) hm[i * n + j] = (i == j) - 2.0 * a[i] * a[j] / aa;
}

/* W = U diag(sv) V^T with U, V reflectors: the largest singular value is sv[0] = 3 exactly (the
 * next is 2, so the iteration gains (2/3)^2 per step), with singular vectors U[:, 0], V[:, 0].
 * Many training steps (one iteration each) must reach it, in double (the reference) and in float
 * (the back end). */
static void test_spectral_norm_converges(void) {
    enum { R = 5, C = 7 };
    static const double sv[R] = {3.0, 2.0, 1.0, 0.5, 0.25};
    double a[C], b[C], U[R * R], V[C * C], W[R * C];
    tu_fill_uniform_d(a, R, -1.0, 1.0, oh_next_stream());
    tu_fill_uniform_d(b, C, -1.0, 1.0, oh_next_stream());
    householder(U, a, R);
    householder(V, b, C);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) {
            W[i * C + j] = 0.0;
            for (int l = 0; l < R; l++) W[i * C + j] += U[i * R + l] * sv[l] * V[j * C + l];
        }
    float *wf = d2f(W, R * C), *u = frand(R, -1.0f, 1.0f), *v = fbuf(C), *w_sn = fbuf(R * C), s = 0.0f;
    double *ud = f2d(u, R), *vd = dbuf(C);
    for (int step = 0; step < 100; step++) be->spectral_norm_forward(w_sn, u, v, &s, wf, R, C, 1, 1e-12f);
    ref_sn_power_iteration(ud, vd, W, R, C, 100, 1e-12);
    const double sigma_ref = ref_sn_forward(dbuf(R * C), W, ud, vd, R, C);
    double align_u = 0.0, align_v = 0.0;
    for (int i = 0; i < R; i++) align_u += u[i] * U[i * R];
    for (int j = 0; j < C; j++) align_v += v[j] * V[j * C];
    note("spectral_norm_converges", "fwd", fabs(s - 3.0) / 3.0);
    TU_CHECK(fabs(sigma_ref - 3.0) < 1e-12, "spectral norm reference: sigma %.17g after 100 iterations, want 3",
             sigma_ref);
    TU_CHECK(fabs(s - 3.0) < 3e-6, "spectral norm: sigma %.9g after 100 steps, want 3 (float)", (double)s);
    TU_CHECK(fabs(fabs(align_u) - 1.0) < 1e-5 && fabs(fabs(align_v) - 1.0) < 1e-5,
             "spectral norm: u, v not the top singular vectors: |u.u1| = %.9g, |v.v1| = %.9g", fabs(align_u),
             fabs(align_v));
    tmp_free_all();
}

/* ---- hinge losses ---- */

typedef struct hinge_ctx {
    int n;
    double sign; /* 0: generator */
    double *x, *out;
    const double *R;
} hinge_ctx;

static double hinge_loss(void *p) {
    hinge_ctx *q = p;
    if (q->sign != 0.0) ref_hinge_d(q->out, NULL, q->x, q->n, q->sign, 1.0);
    else ref_hinge_g(q->out, NULL, q->x, q->n, 1.0);
    return dot(q->out, q->R, q->n);
}

static void test_hinge(void) {
    enum { N = 10 };
    /* Dyadic values, so float and double agree exactly; +-1 are the kinks of real and fake. */
    static const float logits[N] = {1.0f, -1.0f, 0.5f, 2.0f, -0.25f, 1.5f, 0.0f, -3.0f, 0.75f, -1.5f};
    const float scale = 0.125f; /* 1 / batch */
    double ld[N], gd[N];
    float l[N], g[N];
    dpt_tensor tx = tensor_1d((void *)logits, DT_F32, N), tl = tensor_1d(l, DT_F32, N), tg = tensor_1d(g, DT_F32, N);
    double *xd = f2d(logits, N);
    for (int mode = 0; mode < 3; mode++) { /* real, fake, generator */
        const float sign = mode == 0 ? 1.0f : mode == 1 ? -1.0f : 0.0f;
        const char *name = mode == 0 ? "hinge_d real" : mode == 1 ? "hinge_d fake" : "hinge_g";
        for (int i = 0; i < N; i++) l[i] = g[i] = NAN;
        if (mode < 2) {
            ref_hinge_d(ld, gd, xd, N, sign, scale);
            be->hinge_d(&tl, &tg, &tx, sign, scale);
        } else {
            ref_hinge_g(ld, gd, xd, N, scale);
            be->hinge_g(&tl, &tg, &tx, scale);
        }
        check_exact(lbl("%s: losses", name), l, d2f(ld, N), N);
        check_exact(lbl("%s: dlogits", name), g, d2f(gd, N), N);
        be->hinge_d(&tl, NULL, &tx, 1.0f, scale); /* loss only */
        check_finite(lbl("%s: losses without dlogits", name), l, N);
    }
    /* The kinks by hand: real d = 1 and fake d = -1 give loss 0 and gradient 0 (relu'(0) = 0);
     * real d = 0.5: loss 0.5, gradient -scale; fake d = 0.5: loss 1.5, gradient +scale. */
    be->hinge_d(&tl, &tg, &tx, 1.0f, scale);
    TU_CHECK(l[0] == 0.0f && g[0] == 0.0f && l[2] == 0.5f && g[2] == -scale && l[1] == 2.0f && g[1] == -scale,
             "hinge_d real by hand: l %g %g %g g %g %g %g", (double)l[0], (double)l[1], (double)l[2], (double)g[0],
             (double)g[1], (double)g[2]);
    be->hinge_d(&tl, &tg, &tx, -1.0f, scale);
    TU_CHECK(l[1] == 0.0f && g[1] == 0.0f && l[2] == 1.5f && g[2] == scale && l[0] == 2.0f && g[0] == scale,
             "hinge_d fake by hand: l %g %g %g g %g %g %g", (double)l[0], (double)l[1], (double)l[2], (double)g[0],
             (double)g[1], (double)g[2]);

    /* The reference's gradients vs finite differences, away from the kinks. */
    float *x = frand(N, -3.0f, 3.0f), *r = frand(N, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        if (fabsf(fabsf(x[i]) - 1.0f) < 1e-3f) x[i] += 0.01f;
    double *xr = f2d(x, N), *rd = f2d(r, N), *gr = dbuf(N), *gw = dbuf(N);
    for (int mode = 0; mode < 3; mode++) {
        const double sign = mode == 0 ? 1.0 : mode == 1 ? -1.0 : 0.0;
        if (mode < 2) ref_hinge_d(ld, gr, xr, N, sign, 1.0);
        else ref_hinge_g(ld, gr, xr, N, 1.0);
        for (int i = 0; i < N; i++) gw[i] = rd[i] * gr[i];
        hinge_ctx q = {N, sign, xr, dbuf(N), rd};
        fd_check(lbl("hinge (sign %g): dlogits", sign), hinge_loss, &q, xr, N, gw);
    }
    tmp_free_all();
}

/* ---- Adam and EMA ---- */

static void test_adam(void) {
    enum { N = 64 };
    static const be_adam_args cases[] = {
        /* BigGAN's: lr 1e-4 (G) / 4e-4 (D), betas (0, 0.999), eps 1e-6 (1e-8 in PyTorch's default) */
        {.lr = 1e-4f, .beta1 = 0.0f, .beta2 = 0.999f, .eps = 1e-6f, .weight_decay = 0.0f, .grad_scale = 1.0f},
        {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-6f, .weight_decay = 0.5f, .grad_scale = 0.5f},
    };
    for (size_t ci = 0; ci < DPT_ARRAY_LEN(cases); ci++) {
        be_adam_args a = cases[ci];
        /* Weights and gradients of 1e-3: the weight decay term (0.5 * w) is as large as the
         * gradient, eps (1e-6) is 1e-3 of sqrt(v), and float keeps the update (1e-4) to 1e-6. */
        float *w = frand(N, -1e-3f, 1e-3f), *m = fbuf(N), *v = fbuf(N);
        double *wd = f2d(w, N), *md = dbuf(N), *vd = dbuf(N);
        static const int64_t steps[] = {1, 2, 3, 4, 1000};
        for (size_t si = 0; si < DPT_ARRAY_LEN(steps); si++) {
            float *g = frand(N, -2e-3f, 2e-3f);
            double *w_before = dbuf(N);
            memcpy(w_before, wd, N * sizeof(double));
            a.step = steps[si];
            be->adam_update(w, m, v, g, N, &a);
            ref_adam(wd, md, vd, f2d(g, N), N, a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.grad_scale, a.step);
            /* The update itself (w - w_before) is what must be accurate. */
            float *dw = fbuf(N);
            double *dwd = dbuf(N);
            for (int i = 0; i < N; i++) {
                dw[i] = (float)((double)w[i] - w_before[i]);
                dwd[i] = wd[i] - w_before[i];
            }
            check_rel(lbl("adam case %zu step %lld: update", ci, (long long)a.step), dw, dwd, N, TOL_BWD);
            check_rel(lbl("adam case %zu step %lld: m", ci, (long long)a.step), m, md, N, TOL_FWD);
            check_rel(lbl("adam case %zu step %lld: v", ci, (long long)a.step), v, vd, N, TOL_FWD);
            tu_f2d(wd, w, N); /* go on from the float state, so that errors do not compound */
            tu_f2d(md, m, N);
            tu_f2d(vd, v, N);
        }
    }
    /* The reference by hand: from m = v = 0, step 1 moves w by -lr * g / (|g| + eps). */
    double w1 = 0.5, m1 = 0.0, v1 = 0.0, g1 = -0.25;
    ref_adam(&w1, &m1, &v1, &g1, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1.0, 1);
    TU_CHECK(fabs(w1 - (0.5 + 1e-3 * 0.25 / (0.25 + 1e-8))) < 1e-15, "adam reference first step: w %.17g", w1);
    tmp_free_all();
}

/* Dyadic values and decay: float arithmetic is exact. */
static void test_ema(void) {
    float ema[4] = {1.0f, -2.0f, 0.5f, 0.0f};
    const float w[4] = {3.0f, 2.0f, -0.5f, 8.0f}, want[4] = {1.5f, -1.0f, 0.25f, 2.0f};
    be->ema_update(ema, w, 4, 0.75f);
    check_exact("ema_update (decay 0.75)", ema, want, 4);
    double e[4] = {1.0, -2.0, 0.5, 0.0}, wd[4] = {3.0, 2.0, -0.5, 8.0};
    ref_ema(e, wd, 4, 0.75);
    TU_CHECK(e[0] == 1.5 && e[1] == -1.0 && e[2] == 0.25 && e[3] == 2.0, "ema reference: %g %g %g %g", e[0], e[1],
             e[2], e[3]);
}

/* ---- conditional BatchNorm ---- */

typedef struct cbn_ctx {
    int n, c, h, w;
    bool relu;
    double eps;
    double *x, *gain, *bias, *stats, *out;
    const double *R;
} cbn_ctx;

static double cbn_loss(void *p) {
    cbn_ctx *q = p;
    ref_cbn_forward_train(q->out, q->stats, q->stats + q->c, q->x, q->gain, q->bias, q->n, q->c, q->h, q->w, q->eps,
                          q->relu);
    return dot(q->out, q->R, (int64_t)q->n * q->c * q->h * q->w);
}

/* Inputs of one conditional BatchNorm case, float and double, with the reference's results. */
typedef struct cbn_case {
    int n, c, h, w;
    bool relu;
    be_bn_desc d;
    float *x, *gain, *bias, *dy, *rm, *rv;
    double *yd, *mean, *var, *dxd, *dgd, *dbd, *erm, *erv;
} cbn_case;

static cbn_case cbn_setup(int n, int c, int h, int w, bool relu) {
    cbn_case k = {.n = n, .c = c, .h = h, .w = w, .relu = relu};
    k.d = (be_bn_desc){.n = n, .c = c, .h = h, .w = w, .eps = 1e-5f, .momentum = 0.1f, .relu = relu};
    const int64_t nx = (int64_t)n * c * h * w, m = (int64_t)n * h * w;
    k.x = frand(nx, -1.0f, 3.0f);
    k.gain = frand(n * c, 0.5f, 1.5f);
    k.bias = frand(n * c, -0.5f, 0.5f);
    k.dy = frand(nx, -1.0f, 1.0f);
    k.rm = frand(c, -0.5f, 0.5f);
    k.rv = frand(c, 0.5f, 1.5f);
    k.yd = dbuf(nx), k.mean = dbuf(c), k.var = dbuf(c), k.dxd = dbuf(nx), k.dgd = dbuf(n * c), k.dbd = dbuf(n * c);
    ref_cbn_forward_train(k.yd, k.mean, k.var, f2d(k.x, nx), f2d(k.gain, n * c), f2d(k.bias, n * c), n, c, h, w,
                          k.d.eps, relu);
    ref_cbn_backward(k.dxd, k.dgd, k.dbd, f2d(k.dy, nx), f2d(k.x, nx), k.yd, f2d(k.gain, n * c), n, c, h, w, k.d.eps,
                     relu);
    /* Running statistics take the unbiased variance (PyTorch's convention). */
    k.erm = dbuf(c), k.erv = dbuf(c);
    for (int i = 0; i < c; i++) {
        k.erm[i] = (1.0 - k.d.momentum) * k.rm[i] + k.d.momentum * k.mean[i];
        k.erv[i] = (1.0 - k.d.momentum) * k.rv[i] + k.d.momentum * k.var[i] * (double)m / (double)(m - 1);
    }
    return k;
}

static void test_cbn(int n, int c, int h, int w, bool relu) {
    const int64_t nx = (int64_t)n * c * h * w, nc = (int64_t)n * c;
    char name[80];
    snprintf(name, sizeof name, "cbn (%d,%d,%d,%d)%s", n, c, h, w, relu ? " +relu" : "");
    cbn_case k = cbn_setup(n, c, h, w, relu);
    double *xd = f2d(k.x, nx), *gd = f2d(k.gain, nc), *bd = f2d(k.bias, nc);
    if (relu) { /* finite differences need every pre-activation well away from the kink */
        double *pre = dbuf(nx), min_abs = INFINITY;
        ref_cbn_forward_train(pre, dbuf(c), dbuf(c), xd, gd, bd, n, c, h, w, k.d.eps, false);
        for (int64_t i = 0; i < nx; i++) min_abs = fmin(min_abs, fabs(pre[i]));
        TU_CHECK(min_abs > 1e-4, "%s: test setup: a pre-activation is %.3g from the ReLU kink", name, min_abs);
    }
    cbn_ctx q = {n, c, h, w, relu, k.d.eps, xd, gd, bd, dbuf(2 * c), dbuf(nx), f2d(k.dy, nx)};
    fd_check(lbl("%s: din", name), cbn_loss, &q, xd, nx, k.dxd);
    fd_check(lbl("%s: dgain", name), cbn_loss, &q, gd, nc, k.dgd);
    fd_check(lbl("%s: dbias", name), cbn_loss, &q, bd, nc, k.dbd);

    be_op *op = be->cbn_create(&k.d, be->act_layout);
    float *y = fbuf(nx), *smean = fbuf(c), *svar = fbuf(c), *rm = fcopy(k.rm, c), *rv = fcopy(k.rv, c);
    dpt_tensor tx = act_tensor(to_act(k.x, n, c, h, w), n, c, h, w), ty = act_tensor(y, n, c, h, w);
    dpt_tensor tg = tensor_2d(k.gain, DT_F32, n, c), tb = tensor_2d(k.bias, DT_F32, n, c);
    dpt_tensor tsm = tensor_1d(smean, DT_F32, c), tsv = tensor_1d(svar, DT_F32, c);
    dpt_tensor trm = tensor_1d(rm, DT_F32, c), trv = tensor_1d(rv, DT_F32, c);
    be->cbn_forward_train(op, &ty, &tsm, &tsv, &trm, &trv, &tx, &tg, &tb);
    check_rel(lbl("%s: train forward", name), from_act(y, n, c, h, w), k.yd, nx, TOL_FWD);
    check_rel(lbl("%s: saved mean", name), smean, k.mean, c, TOL_FWD);
    check_rel(lbl("%s: saved variance", name), svar, k.var, c, TOL_FWD);
    check_rel(lbl("%s: running mean update", name), rm, k.erm, c, TOL_FWD);
    check_rel(lbl("%s: running variance update", name), rv, k.erv, c, TOL_FWD);

    dpt_tensor tdy = act_tensor(to_act(k.dy, n, c, h, w), n, c, h, w);
    double *ex = dbuf(nx), *eg = dbuf(nc), *eb = dbuf(nc);
    for (int mode = 0; mode < 4; mode++) {
        const bool acc = mode & 1, acc_gb = mode & 2;
        float *dx = to_act(grad_dest(ex, k.dxd, nx, acc), n, c, h, w);
        float *dg = grad_dest(eg, k.dgd, nc, acc_gb), *db = grad_dest(eb, k.dbd, nc, acc_gb);
        dpt_tensor tdx = act_tensor(dx, n, c, h, w);
        dpt_tensor tdg = tensor_2d(dg, DT_F32, n, c), tdb = tensor_2d(db, DT_F32, n, c);
        be->cbn_backward(op, &tdx, acc, &tdg, &tdb, acc_gb, &tdy, &tx, &ty, &tg, &tsm, &tsv);
        check_rel(lbl("%s: din (accumulate=%d)", name, acc), from_act(dx, n, c, h, w), ex, nx, TOL_BWD);
        check_rel(lbl("%s: dgain (accumulate_gb=%d)", name, acc_gb), dg, eg, nc, TOL_BWD);
        check_rel(lbl("%s: dbias (accumulate_gb=%d)", name, acc_gb), db, eb, nc, TOL_BWD);
    }
    double *ye = dbuf(nx);
    ref_cbn_forward_eval(ye, xd, gd, bd, f2d(rm, c), f2d(rv, c), n, c, h, w, k.d.eps, relu);
    be->cbn_forward_eval(op, &ty, &tx, &tg, &tb, &trm, &trv);
    check_rel(lbl("%s: eval forward", name), from_act(y, n, c, h, w), ye, nx, TOL_FWD);
    be->op_destroy(op);
    tmp_free_all();
}

/* Two replicas in one process. Local sums do not depend on the reduction's result, so each
 * collective runs twice: a recording pass stores every replica's local sums, then the real pass
 * adds the other replica's recorded sums, which is what an allreduce over two ranks returns. */
typedef struct replica_store {
    bool record;
    double rec[2][64];
} replica_store;

typedef struct replica_ctx {
    replica_store *st;
    int self;
} replica_ctx;

static void fake_reduce(void *ctx, double *buf, int n) {
    replica_ctx *r = ctx;
    if (n > 64) {
        fprintf(stderr, "test_gan_ops: fake_reduce: %d values, room for 64\n", n);
        exit(1);
    }
    if (r->st->record) memcpy(r->st->rec[r->self], buf, (size_t)n * sizeof(double));
    else
        for (int i = 0; i < n; i++) buf[i] += r->st->rec[1 - r->self][i];
}

static void test_cbn_cross_replica(bool relu) {
    enum { N = 4, C = 5, H = 3, W = 2, HALF = N / 2 };
    const int64_t nx = (int64_t)N * C * H * W, hx = nx / 2, hc = HALF * C;
    const char *name = relu ? "cbn cross-replica +relu" : "cbn cross-replica";
    cbn_case k = cbn_setup(N, C, H, W, relu);
    replica_store st = {0};
    replica_ctx rc[2] = {{&st, 0}, {&st, 1}};
    be_op *op[2];
    float *xa = to_act(k.x, N, C, H, W), *dya = to_act(k.dy, N, C, H, W), *y = fbuf(nx), *dx = fbuf(nx);
    float *dg = fbuf(N * C), *db = fbuf(N * C), *mean[2], *var[2], *rm[2], *rv[2];
    dpt_tensor tx[2], ty[2], tdy[2], tdx[2], tg[2], tb[2], tdg[2], tdb[2], tm[2], tv[2], trm[2], trv[2];
    for (int r = 0; r < 2; r++) {
        be_bn_desc d = k.d;
        d.n = HALF;
        d.reduce = (be_reduce){.fn = fake_reduce, .ctx = &rc[r]};
        op[r] = be->cbn_create(&d, be->act_layout);
        mean[r] = fbuf(C), var[r] = fbuf(C), rm[r] = fbuf(C), rv[r] = fbuf(C);
        tx[r] = act_tensor(xa + r * hx, HALF, C, H, W), ty[r] = act_tensor(y + r * hx, HALF, C, H, W);
        tdy[r] = act_tensor(dya + r * hx, HALF, C, H, W), tdx[r] = act_tensor(dx + r * hx, HALF, C, H, W);
        tg[r] = tensor_2d(k.gain + r * hc, DT_F32, HALF, C), tb[r] = tensor_2d(k.bias + r * hc, DT_F32, HALF, C);
        tdg[r] = tensor_2d(dg + r * hc, DT_F32, HALF, C), tdb[r] = tensor_2d(db + r * hc, DT_F32, HALF, C);
        tm[r] = tensor_1d(mean[r], DT_F32, C), tv[r] = tensor_1d(var[r], DT_F32, C);
        trm[r] = tensor_1d(rm[r], DT_F32, C), trv[r] = tensor_1d(rv[r], DT_F32, C);
    }
    for (int pass = 0; pass < 2; pass++) {
        st.record = pass == 0;
        for (int r = 0; r < 2; r++) { /* the recording pass must not move the running statistics */
            memcpy(rm[r], k.rm, C * sizeof(float));
            memcpy(rv[r], k.rv, C * sizeof(float));
            be->cbn_forward_train(op[r], &ty[r], &tm[r], &tv[r], &trm[r], &trv[r], &tx[r], &tg[r], &tb[r]);
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        st.record = pass == 0;
        for (int r = 0; r < 2; r++)
            be->cbn_backward(op[r], &tdx[r], false, &tdg[r], &tdb[r], false, &tdy[r], &tx[r], &ty[r], &tg[r], &tm[r],
                             &tv[r]);
    }
    check_rel(lbl("%s: forward (both halves) vs full batch", name), from_act(y, N, C, H, W), k.yd, nx, TOL_FWD);
    for (int r = 0; r < 2; r++) {
        check_rel(lbl("%s: replica %d mean", name, r), mean[r], k.mean, C, TOL_FWD);
        check_rel(lbl("%s: replica %d variance", name, r), var[r], k.var, C, TOL_FWD);
        check_rel(lbl("%s: replica %d running mean", name, r), rm[r], k.erm, C, TOL_FWD);
        check_rel(lbl("%s: replica %d running variance", name, r), rv[r], k.erv, C, TOL_FWD);
    }
    check_rel(lbl("%s: din vs full batch", name), from_act(dx, N, C, H, W), k.dxd, nx, TOL_BWD);
    check_rel(lbl("%s: dgain vs full batch", name), dg, k.dgd, N * C, TOL_BWD);
    check_rel(lbl("%s: dbias vs full batch", name), db, k.dbd, N * C, TOL_BWD);
    for (int r = 0; r < 2; r++) be->op_destroy(op[r]);
    tmp_free_all();
}

/* ---- batched matrix product and row softmax ---- */

typedef struct bmm_ctx {
    int batch, m, n, k;
    bool ta, tb;
    double *a, *b, *out;
    const double *R;
} bmm_ctx;

static double bmm_loss(void *p) {
    bmm_ctx *q = p;
    ref_bmm_forward(q->out, q->a, q->b, q->batch, q->m, q->n, q->k, q->ta, q->tb);
    return dot(q->out, q->R, (int64_t)q->batch * q->m * q->n);
}

static dpt_tensor t3(float *p, int64_t a, int64_t b, int64_t c) {
    const int64_t shape[3] = {a, b, c};
    return tensor_make(p, DT_F32, 3, shape, LAYOUT_NCHW);
}

static void test_bmm(int batch, int m, int n, int k, bool ta, bool tb, bool fd) {
    const int64_t na = (int64_t)batch * m * k, nb = (int64_t)batch * k * n, no = (int64_t)batch * m * n;
    char name[80];
    snprintf(name, sizeof name, "bmm (%d: %dx%d x %dx%d)%s%s", batch, m, k, k, n, ta ? " ta" : "", tb ? " tb" : "");
    float *a = frand(na, -1.0f, 1.0f), *b = frand(nb, -1.0f, 1.0f), *dy = frand(no, -1.0f, 1.0f);
    double *ad = f2d(a, na), *bd = f2d(b, nb), *dyd = f2d(dy, no), *yd = dbuf(no), *dad = dbuf(na), *dbd = dbuf(nb);
    ref_bmm_forward(yd, ad, bd, batch, m, n, k, ta, tb);
    ref_bmm_backward(dad, dbd, dyd, ad, bd, batch, m, n, k, ta, tb);
    if (fd) {
        bmm_ctx q = {batch, m, n, k, ta, tb, ad, bd, dbuf(no), dyd};
        fd_check(lbl("%s: da", name), bmm_loss, &q, ad, na, dad);
        fd_check(lbl("%s: db", name), bmm_loss, &q, bd, nb, dbd);
    }
    dpt_tensor tA = ta ? t3(a, batch, k, m) : t3(a, batch, m, k), tB = tb ? t3(b, batch, n, k) : t3(b, batch, k, n);
    float *y = fbuf(no);
    dpt_tensor ty = t3(y, batch, m, n), tdy = t3(dy, batch, m, n);
    be->bmm_forward(&ty, &tA, &tB, ta, tb);
    check_rel(lbl("%s: forward", name), y, yd, no, TOL_FWD);
    double *ea = dbuf(na), *eb = dbuf(nb);
    for (int mode = 0; mode < 4; mode++) {
        const bool acc_a = mode & 1, acc_b = mode & 2;
        float *da = grad_dest(ea, dad, na, acc_a), *db = grad_dest(eb, dbd, nb, acc_b);
        dpt_tensor tda = tA, tdb = tB;
        tda.data = da, tdb.data = db;
        be->bmm_backward(&tda, acc_a, &tdb, acc_b, &tdy, &tA, &tB, ta, tb);
        check_rel(lbl("%s: da (accumulate_a=%d)", name, acc_a), da, ea, na, TOL_FWD);
        check_rel(lbl("%s: db (accumulate_b=%d)", name, acc_b), db, eb, nb, TOL_FWD);
        be->bmm_backward(mode & 1 ? NULL : &tda, false, mode & 1 ? &tdb : NULL, false, &tdy, &tA, &tB, ta, tb);
    }
    tmp_free_all();
}

typedef struct sm_ctx {
    int64_t rows, len;
    double *x, *out;
    const double *R;
} sm_ctx;

static double sm_loss(void *p) {
    sm_ctx *q = p;
    ref_softmax_rows_forward(q->out, q->x, q->rows, q->len);
    return dot(q->out, q->R, q->rows * q->len);
}

static void test_softmax_rows(void) {
    enum { B = 2, ROWS = 3, LEN = 7, NE = B * ROWS * LEN };
    float *x = frand(NE, -5.0f, 5.0f), *dy = frand(NE, -1.0f, 1.0f);
    for (int j = 0; j < LEN; j++) x[LEN + j] += 1000.0f; /* a naive exp overflows on this row */
    double *xd = f2d(x, NE), *dyd = f2d(dy, NE), *yd = dbuf(NE), *dxd = dbuf(NE);
    ref_softmax_rows_forward(yd, xd, B * ROWS, LEN);
    ref_softmax_rows_backward(dxd, dyd, yd, B * ROWS, LEN);
    sm_ctx q = {B * ROWS, LEN, xd, dbuf(NE), dyd};
    fd_check("softmax_rows: din", sm_loss, &q, xd, NE, dxd);
    float *y = fbuf(NE);
    dpt_tensor tx = t3(x, B, ROWS, LEN), ty = t3(y, B, ROWS, LEN), tdy = t3(dy, B, ROWS, LEN);
    be->softmax_rows_forward(&ty, &tx);
    check_rel("softmax_rows: forward", y, yd, NE, TOL_FWD);
    double *ex = dbuf(NE);
    for (int acc = 0; acc < 2; acc++) {
        float *dx = grad_dest(ex, dxd, NE, acc);
        dpt_tensor tdx = t3(dx, B, ROWS, LEN);
        be->softmax_rows_backward(&tdx, acc, &tdy, &ty);
        check_rel(lbl("softmax_rows: din (accumulate=%d)", acc), dx, ex, NE, TOL_BWD);
    }
    tmp_free_all();
}

/* ---- orthogonal regularisation ---- */

typedef struct ortho_ctx {
    int rows, cols;
    double strength, *w;
} ortho_ctx;

static double ortho_loss(void *p) {
    ortho_ctx *q = p;
    return ref_ortho_reg(NULL, q->w, q->rows, q->cols, q->strength);
}

static void test_ortho(void) {
    const int rows = 5, cols = 7;
    const int64_t nw = (int64_t)rows * cols;
    const float strength = 1e-1f;
    float *w = frand(nw, -1.0f, 1.0f);
    double *wd = f2d(w, nw), *gd = dbuf(nw);
    const double pen = ref_ortho_reg(gd, wd, rows, cols, strength);
    ortho_ctx q = {rows, cols, strength, wd};
    fd_check("ortho_reg: dw", ortho_loss, &q, wd, nw, gd);
    double *ex = dbuf(nw);
    float *dw = grad_dest(ex, gd, nw, true), *work = fbuf(rows * rows);
    const double got = be->ortho_reg(dw, work, w, rows, cols, strength);
    float gotf = (float)got;
    check_rel("ortho_reg: penalty", &gotf, &pen, 1, TOL_FWD);
    check_rel("ortho_reg: dw (adds to the gradient)", dw, ex, nw, TOL_FWD);
    tmp_free_all();
}

/* ---- graph plumbing: scalar shift, gated residual, column blocks ---- */

static void test_add_scalar(void) {
    const int64_t n = 2 * 3 * 4 * 5;
    float *x = frand(n, -2.0f, 2.0f), *y = fbuf(n), *want = fbuf(n);
    for (int64_t i = 0; i < n; i++) want[i] = x[i] + 1.0f;
    dpt_tensor tx = act_tensor(x, 2, 3, 4, 5), ty = act_tensor(y, 2, 3, 4, 5);
    be->add_scalar_forward(&ty, &tx, 1.0f);
    check_exact("add_scalar: forward", y, want, n);
    tmp_free_all();
}

typedef struct sadd_ctx {
    int64_t n;
    double *a, *b, *gamma, *out;
    const double *R;
} sadd_ctx;

static double sadd_loss(void *p) {
    sadd_ctx *q = p;
    ref_scaled_add_forward(q->out, q->a, q->b, *q->gamma, q->n);
    return dot(q->out, q->R, q->n);
}

static void test_scaled_add(void) {
    const int n = 2, c = 4, h = 3, w = 3;
    const int64_t ne = (int64_t)n * c * h * w;
    float *a = frand(ne, -1.0f, 1.0f), *b = frand(ne, -1.0f, 1.0f), *dy = frand(ne, -1.0f, 1.0f);
    float gamma = 0.7f;
    double *ad = f2d(a, ne), *bd = f2d(b, ne), *dyd = f2d(dy, ne), gd = gamma, yd[2 * 4 * 3 * 3];
    double *dad = dbuf(ne), *dbd = dbuf(ne), dgd;
    ref_scaled_add_forward(yd, ad, bd, gd, ne);
    ref_scaled_add_backward(dad, dbd, &dgd, dyd, bd, gd, ne);
    sadd_ctx q = {ne, ad, bd, &gd, dbuf(ne), dyd};
    fd_check("scaled_add: da", sadd_loss, &q, ad, ne, dad);
    fd_check("scaled_add: db", sadd_loss, &q, bd, ne, dbd);
    fd_check("scaled_add: dgamma", sadd_loss, &q, &gd, 1, &dgd);

    float *y = fbuf(ne);
    dpt_tensor ta = act_tensor(a, n, c, h, w), tb = act_tensor(b, n, c, h, w), ty = act_tensor(y, n, c, h, w);
    dpt_tensor tdy = act_tensor(dy, n, c, h, w), tg = tensor_1d(&gamma, DT_F32, 1);
    be->scaled_add_forward(&ty, &ta, &tb, &tg);
    check_rel("scaled_add: forward", y, yd, ne, TOL_FWD);
    double *ea = dbuf(ne), *eb = dbuf(ne), eg;
    for (int acc = 0; acc < 2; acc++) {
        float *da = grad_dest(ea, dad, ne, acc), *db = grad_dest(eb, dbd, ne, !acc);
        float *dg = grad_dest(&eg, &dgd, 1, acc);
        dpt_tensor tda = act_tensor(da, n, c, h, w), tdb = act_tensor(db, n, c, h, w), tdg = tensor_1d(dg, DT_F32, 1);
        be->scaled_add_backward(&tda, acc, &tdb, !acc, &tdg, acc, &tdy, &tb, &tg);
        check_rel(lbl("scaled_add: da (accumulate=%d)", acc), da, ea, ne, TOL_FWD);
        check_rel(lbl("scaled_add: db (accumulate=%d)", !acc), db, eb, ne, TOL_FWD);
        check_rel(lbl("scaled_add: dgamma (accumulate=%d)", acc), dg, &eg, 1, TOL_FWD);
    }
    /* Either input gradient may be absent. */
    float *dg = fbuf(1);
    dpt_tensor tdg = tensor_1d(dg, DT_F32, 1);
    be->scaled_add_backward(NULL, false, NULL, false, &tdg, false, &tdy, &tb, &tg);
    check_rel("scaled_add: dgamma alone", dg, &dgd, 1, TOL_FWD);
    tmp_free_all();
}

/* Concat's forward (two blocks into one matrix) and slice's backward (a block added into a
 * gradient): exact copies and adds. */
static void test_copy_cols(void) {
    const int64_t rows = 3, ls = 7, ld = 11, col0 = 2, dcol = 5, count = 4;
    float *src = frand(rows * ls, -1.0f, 1.0f);
    double *srcd = f2d(src, rows * ls), *want = dbuf(rows * ld);
    for (int acc = 0; acc < 2; acc++) {
        float *dst = acc ? frand(rows * ld, -1.0f, 1.0f) : fbuf(rows * ld);
        for (int64_t i = 0; i < rows * ld; i++) want[i] = dst[i];
        ref_copy_cols(want, ld, dcol, srcd, ls, col0, count, rows, acc);
        dpt_tensor td = tensor_2d(dst, DT_F32, rows, ld), ts = tensor_2d(src, DT_F32, rows, ls);
        be->copy_cols(&td, dcol, &ts, col0, count, acc);
        check_exact(lbl("copy_cols (accumulate=%d)", acc), dst, d2f(want, rows * ld), rows * ld);
    }
    tmp_free_all();
}

int main(void) {
    be = backend_cpu();
    oh_init("test_gan_ops", be->act_layout, 1001);
    test_upsample(LAYOUT_NHWC);
    test_upsample(LAYOUT_NCHW);
    test_tanh();
    test_embedding();
    test_spectral_norm();
    test_spectral_norm_converges();
    test_hinge();
    test_adam();
    test_ema();
    for (int relu = 0; relu < 2; relu++) {
        test_cbn(4, 6, 3, 3, relu);
        test_cbn(2, 16, 2, 3, relu);
        test_cbn_cross_replica(relu);
    }
    for (int t = 0; t < 4; t++) {
        test_bmm(2, 3, 4, 5, t & 1, t & 2, true);
        test_bmm(2, 64, 16, 8, t & 1, t & 2, false); /* attention-like sizes */
    }
    test_softmax_rows();
    test_ortho();
    test_add_scalar();
    test_scaled_add();
    test_copy_cols();
    oh_print_notes();
    return tu_finish("test_gan_ops");
}
