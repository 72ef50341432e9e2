/* BatchNorm (+ fused ReLU) and conditional BatchNorm: CUDA against the CPU back end, in training
 * (batch statistics, saved statistics, running statistics), evaluation and backward, with and
 * without accumulation, and cross-replica with a fake group reduction that both back ends call
 * (its buffers are compared too: CPU and GPU ranks must be able to reduce together). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "parity.h"

/* A fake group of ranks: records each buffer it is given, then turns it into the sums of "this
 * rank and another one": forward (2C + 1 values: sums, sums of squares, count) as if the other
 * rank held this rank's data + 0.5; backward (2C) arbitrary but fixed other-rank sums. */
#define FAKE_MAX 4
typedef struct fake_group {
    int calls;
    int n[FAKE_MAX];
    double buf[FAKE_MAX][2 * 300 + 1];
} fake_group;

static void fake_reduce(void *ctx, double *buf, int n) {
    fake_group *g = ctx;
    if (g->calls < FAKE_MAX && n <= 2 * 300 + 1) {
        g->n[g->calls] = n;
        memcpy(g->buf[g->calls], buf, (size_t)n * sizeof(double));
    }
    g->calls++;
    if (n % 2 == 1) {
        const int C = (n - 1) / 2;
        const double N = buf[2 * C];
        for (int c = 0; c < C; c++) {
            const double s0 = buf[c], s1 = buf[C + c];
            buf[c] = 2.0 * s0 + 0.5 * N;
            buf[C + c] = 2.0 * s1 + s0 + 0.25 * N;
        }
        buf[2 * C] = 2.0 * N;
    } else {
        for (int i = 0; i < n; i++) buf[i] = 2.0 * buf[i] + 0.25 * (double)(i % 7 - 3);
    }
}

static void compare_groups(const char *what, const fake_group *gpu, const fake_group *cpu) {
    TU_CHECK(gpu->calls == cpu->calls, "%s [%s]: %d reductions, the CPU %d", what, P_GPU->name, gpu->calls, cpu->calls);
    double worst = 0.0;
    for (int k = 0; k < gpu->calls && k < cpu->calls && k < FAKE_MAX; k++) {
        TU_CHECK(gpu->n[k] == cpu->n[k], "%s [%s]: reduction %d of %d values, the CPU %d", what, P_GPU->name, k,
                 gpu->n[k], cpu->n[k]);
        double num = 0.0, den = 0.0;
        for (int i = 0; i < gpu->n[k] && i < cpu->n[k]; i++) {
            const double d = gpu->buf[k][i] - cpu->buf[k][i];
            num += d * d;
            den += cpu->buf[k][i] * cpu->buf[k][i];
        }
        const double e = sqrt(num / (den > 1e-300 ? den : 1e-300));
        worst = e > worst ? e : worst;
    }
    TU_CHECK(worst <= 1e-5, "%s [%s]: reduction buffers differ by %.3g", what, P_GPU->name, worst);
    printf("  %-44s %-10s rel err %.2e (tol %.0e)\n", what, P_GPU->name, worst, 1e-5);
}

static float *dup(const float *x, int64_t n) {
    float *p = pt_host(n);
    memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

typedef struct bn_case {
    int n, c, h, w;
    bool relu, acc, pacc, cross;
    float lo, hi; /* input range (a large offset tests the shifted sums) */
} bn_case;

static void tag(char *buf, size_t size, const char *op, const bn_case *k, const char *what) {
    snprintf(buf, size, "%s %dx%dx%dx%d%s%s%s%s %s", op, k->n, k->c, k->h, k->w, k->relu ? " relu" : "",
             k->acc ? " acc" : "", k->pacc ? " pacc" : "", k->cross ? " xrep" : "", what);
}

/* ---- BatchNorm ---- */

static void bn_run(const bn_case *k) {
    const int C = k->c;
    const int64_t P = (int64_t)k->n * k->h * k->w, E = P * C;
    char t[160];
    float *x = pt_rand(E, k->lo, k->hi);
    float *gamma = pt_rand_f32(C, 0.5f, 1.5f), *beta = pt_rand_f32(C, -0.5f, 0.5f);
    float *rm0 = pt_rand_f32(C, -0.2f, 0.2f), *rv0 = pt_rand_f32(C, 0.5f, 1.5f);
    fake_group gc = {0}, gg = {0};
    be_bn_desc d = {.n = k->n, .c = C, .h = k->h, .w = k->w, .eps = 1e-5f, .momentum = 0.1f, .relu = k->relu};
    be_bn_desc dc = d, dg = d;
    if (k->cross) {
        dc.reduce = (be_reduce){.fn = fake_reduce, .ctx = &gc};
        dg.reduce = (be_reduce){.fn = fake_reduce, .ctx = &gg};
    }
    be_op *oc = P_CPU->batchnorm_create(&dc, LAYOUT_NHWC);
    be_op *og = P_GPU->batchnorm_create(&dg, LAYOUT_NHWC);

    /* training forward */
    float *out_c = pt_host(E), *mean_c = pt_host(C), *var_c = pt_host(C), *rm_c = dup(rm0, C), *rv_c = dup(rv0, C);
    dpt_tensor xc = pt_t4(x, DT_F32, k->n, C, k->h, k->w, false), yc = pt_t4(out_c, DT_F32, k->n, C, k->h, k->w, false);
    dpt_tensor gmc = pt_t1(gamma, DT_F32, C, false), btc = pt_t1(beta, DT_F32, C, false);
    dpt_tensor mc = pt_t1(mean_c, DT_F32, C, false), vc = pt_t1(var_c, DT_F32, C, false);
    dpt_tensor rmc = pt_t1(rm_c, DT_F32, C, false), rvc = pt_t1(rv_c, DT_F32, C, false);
    P_CPU->batchnorm_forward_train(oc, &yc, &mc, &vc, &rmc, &rvc, &xc, &gmc, &btc);

    dpt_tensor xg = pt_t4(pt_up(x, E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor yg = pt_t4(pt_nan(E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor gmg = pt_t1(pt_up(gamma, C, DT_F32), DT_F32, C, true), btg = pt_t1(pt_up(beta, C, DT_F32), DT_F32, C, true);
    dpt_tensor mg = pt_t1(pt_nan(C, DT_F32), DT_F32, C, true), vg = pt_t1(pt_nan(C, DT_F32), DT_F32, C, true);
    dpt_tensor rmg = pt_t1(pt_up(rm0, C, DT_F32), DT_F32, C, true), rvg = pt_t1(pt_up(rv0, C, DT_F32), DT_F32, C, true);
    P_GPU->batchnorm_forward_train(og, &yg, &mg, &vg, &rmg, &rvg, &xg, &gmg, &btg);
    tag(t, sizeof t, "bn", k, "out");
    float *out_g = pt_down(yg.data, E, P_DT);
    pt_check(t, out_g, out_c, E, 1e-5);
    tag(t, sizeof t, "bn", k, "save_mean");
    pt_check32(t, pt_down(mg.data, C, DT_F32), mean_c, C, 1e-5);
    tag(t, sizeof t, "bn", k, "save_var");
    pt_check32(t, pt_down(vg.data, C, DT_F32), var_c, C, 1e-5);
    tag(t, sizeof t, "bn", k, "running_mean");
    pt_check32(t, pt_down(rmg.data, C, DT_F32), rm_c, C, 1e-5);
    tag(t, sizeof t, "bn", k, "running_var");
    pt_check32(t, pt_down(rvg.data, C, DT_F32), rv_c, C, 1e-5);

    /* backward, from the same forward output (the ReLU mask) and saved statistics on both */
    float *dy = pt_rand(E, -1.0f, 1.0f);
    float *dx0 = pt_rand(E, -1.0f, 1.0f), *dg0 = pt_rand_f32(C, -1.0f, 1.0f), *db0 = pt_rand_f32(C, -1.0f, 1.0f);
    float *dx_c = dup(dx0, E), *dgam_c = dup(dg0, C), *dbet_c = dup(db0, C);
    dpt_tensor yc2 = pt_t4(out_g, DT_F32, k->n, C, k->h, k->w, false);
    dpt_tensor dyc = pt_t4(dy, DT_F32, k->n, C, k->h, k->w, false), dxc = pt_t4(dx_c, DT_F32, k->n, C, k->h, k->w, false);
    dpt_tensor dgc = pt_t1(dgam_c, DT_F32, C, false), dbc = pt_t1(dbet_c, DT_F32, C, false);
    P_CPU->batchnorm_backward(oc, &dxc, k->acc, &dgc, &dbc, k->pacc, &dyc, &xc, &yc2, &gmc, &btc, &mc, &vc);

    dpt_tensor dyg = pt_t4(pt_up(dy, E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor dxg = pt_t4(k->acc ? pt_up(dx0, E, P_DT) : pt_nan(E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor dgg = pt_t1(k->pacc ? pt_up(dg0, C, DT_F32) : pt_nan(C, DT_F32), DT_F32, C, true);
    dpt_tensor dbg = pt_t1(k->pacc ? pt_up(db0, C, DT_F32) : pt_nan(C, DT_F32), DT_F32, C, true);
    dpt_tensor mg2 = pt_t1(pt_up(mean_c, C, DT_F32), DT_F32, C, true), vg2 = pt_t1(pt_up(var_c, C, DT_F32), DT_F32, C, true);
    P_GPU->batchnorm_backward(og, &dxg, k->acc, &dgg, &dbg, k->pacc, &dyg, &xg, &yg, &gmg, &btg, &mg2, &vg2);
    tag(t, sizeof t, "bn", k, "dx");
    pt_check(t, pt_down(dxg.data, E, P_DT), dx_c, E, 1e-4);
    tag(t, sizeof t, "bn", k, "dgamma");
    pt_check32(t, pt_down(dgg.data, C, DT_F32), dgam_c, C, 1e-4);
    tag(t, sizeof t, "bn", k, "dbeta");
    pt_check32(t, pt_down(dbg.data, C, DT_F32), dbet_c, C, 1e-4);
    if (k->cross) {
        tag(t, sizeof t, "bn", k, "reduce bufs");
        compare_groups(t, &gg, &gc);
    }

    /* evaluation, with the updated running statistics */
    float *oute_c = pt_host(E);
    dpt_tensor yec = pt_t4(oute_c, DT_F32, k->n, C, k->h, k->w, false);
    P_CPU->batchnorm_forward_eval(oc, &yec, &xc, &gmc, &btc, &rmc, &rvc);
    dpt_tensor yeg = pt_t4(pt_nan(E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor rmg2 = pt_t1(pt_up(rm_c, C, DT_F32), DT_F32, C, true), rvg2 = pt_t1(pt_up(rv_c, C, DT_F32), DT_F32, C, true);
    P_GPU->batchnorm_forward_eval(og, &yeg, &xg, &gmg, &btg, &rmg2, &rvg2);
    tag(t, sizeof t, "bn", k, "eval out");
    pt_check(t, pt_down(yeg.data, E, P_DT), oute_c, E, 1e-5);

    P_CPU->op_destroy(oc);
    P_GPU->op_destroy(og);
}

/* ---- conditional BatchNorm ---- */

static void cbn_run(const bn_case *k) {
    const int C = k->c;
    const int64_t P = (int64_t)k->n * k->h * k->w, E = P * C, NC = (int64_t)k->n * C;
    char t[160];
    float *x = pt_rand(E, k->lo, k->hi);
    float *gain = pt_rand(NC, 0.5f, 1.5f), *bias = pt_rand(NC, -0.5f, 0.5f);
    float *rm0 = pt_rand_f32(C, -0.2f, 0.2f), *rv0 = pt_rand_f32(C, 0.5f, 1.5f);
    fake_group gc = {0}, gg = {0};
    be_bn_desc d = {.n = k->n, .c = C, .h = k->h, .w = k->w, .eps = 1e-5f, .momentum = 0.1f, .relu = k->relu};
    be_bn_desc dc = d, dg = d;
    if (k->cross) {
        dc.reduce = (be_reduce){.fn = fake_reduce, .ctx = &gc};
        dg.reduce = (be_reduce){.fn = fake_reduce, .ctx = &gg};
    }
    be_op *oc = P_CPU->cbn_create(&dc, LAYOUT_NHWC);
    be_op *og = P_GPU->cbn_create(&dg, LAYOUT_NHWC);

    float *out_c = pt_host(E), *mean_c = pt_host(C), *var_c = pt_host(C), *rm_c = dup(rm0, C), *rv_c = dup(rv0, C);
    dpt_tensor xc = pt_t4(x, DT_F32, k->n, C, k->h, k->w, false), yc = pt_t4(out_c, DT_F32, k->n, C, k->h, k->w, false);
    dpt_tensor gnc = pt_t2(gain, DT_F32, k->n, C, false), bsc = pt_t2(bias, DT_F32, k->n, C, false);
    dpt_tensor mc = pt_t1(mean_c, DT_F32, C, false), vc = pt_t1(var_c, DT_F32, C, false);
    dpt_tensor rmc = pt_t1(rm_c, DT_F32, C, false), rvc = pt_t1(rv_c, DT_F32, C, false);
    P_CPU->cbn_forward_train(oc, &yc, &mc, &vc, &rmc, &rvc, &xc, &gnc, &bsc);

    dpt_tensor xg = pt_t4(pt_up(x, E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor yg = pt_t4(pt_nan(E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor gng = pt_t2(pt_up(gain, NC, P_DT), P_DT, k->n, C, true), bsg = pt_t2(pt_up(bias, NC, P_DT), P_DT, k->n, C, true);
    dpt_tensor mg = pt_t1(pt_nan(C, DT_F32), DT_F32, C, true), vg = pt_t1(pt_nan(C, DT_F32), DT_F32, C, true);
    dpt_tensor rmg = pt_t1(pt_up(rm0, C, DT_F32), DT_F32, C, true), rvg = pt_t1(pt_up(rv0, C, DT_F32), DT_F32, C, true);
    P_GPU->cbn_forward_train(og, &yg, &mg, &vg, &rmg, &rvg, &xg, &gng, &bsg);
    tag(t, sizeof t, "cbn", k, "out");
    float *out_g = pt_down(yg.data, E, P_DT);
    pt_check(t, out_g, out_c, E, 1e-5);
    tag(t, sizeof t, "cbn", k, "save_mean");
    pt_check32(t, pt_down(mg.data, C, DT_F32), mean_c, C, 1e-5);
    tag(t, sizeof t, "cbn", k, "save_var");
    pt_check32(t, pt_down(vg.data, C, DT_F32), var_c, C, 1e-5);
    tag(t, sizeof t, "cbn", k, "running_mean");
    pt_check32(t, pt_down(rmg.data, C, DT_F32), rm_c, C, 1e-5);
    tag(t, sizeof t, "cbn", k, "running_var");
    pt_check32(t, pt_down(rvg.data, C, DT_F32), rv_c, C, 1e-5);

    float *dy = pt_rand(E, -1.0f, 1.0f);
    float *dx0 = pt_rand(E, -1.0f, 1.0f), *dgn0 = pt_rand(NC, -1.0f, 1.0f), *dbs0 = pt_rand(NC, -1.0f, 1.0f);
    float *dx_c = dup(dx0, E), *dgn_c = dup(dgn0, NC), *dbs_c = dup(dbs0, NC);
    dpt_tensor yc2 = pt_t4(out_g, DT_F32, k->n, C, k->h, k->w, false);
    dpt_tensor dyc = pt_t4(dy, DT_F32, k->n, C, k->h, k->w, false), dxc = pt_t4(dx_c, DT_F32, k->n, C, k->h, k->w, false);
    dpt_tensor dgc = pt_t2(dgn_c, DT_F32, k->n, C, false), dbc = pt_t2(dbs_c, DT_F32, k->n, C, false);
    P_CPU->cbn_backward(oc, &dxc, k->acc, &dgc, &dbc, k->pacc, &dyc, &xc, &yc2, &gnc, &mc, &vc);

    dpt_tensor dyg = pt_t4(pt_up(dy, E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor dxg = pt_t4(k->acc ? pt_up(dx0, E, P_DT) : pt_nan(E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor dgg = pt_t2(k->pacc ? pt_up(dgn0, NC, P_DT) : pt_nan(NC, P_DT), P_DT, k->n, C, true);
    dpt_tensor dbg = pt_t2(k->pacc ? pt_up(dbs0, NC, P_DT) : pt_nan(NC, P_DT), P_DT, k->n, C, true);
    dpt_tensor mg2 = pt_t1(pt_up(mean_c, C, DT_F32), DT_F32, C, true), vg2 = pt_t1(pt_up(var_c, C, DT_F32), DT_F32, C, true);
    P_GPU->cbn_backward(og, &dxg, k->acc, &dgg, &dbg, k->pacc, &dyg, &xg, &yg, &gng, &mg2, &vg2);
    tag(t, sizeof t, "cbn", k, "dx");
    pt_check(t, pt_down(dxg.data, E, P_DT), dx_c, E, 1e-4);
    tag(t, sizeof t, "cbn", k, "dgain");
    pt_check(t, pt_down(dgg.data, NC, P_DT), dgn_c, NC, 1e-4);
    tag(t, sizeof t, "cbn", k, "dbias");
    pt_check(t, pt_down(dbg.data, NC, P_DT), dbs_c, NC, 1e-4);
    if (k->cross) {
        tag(t, sizeof t, "cbn", k, "reduce bufs");
        compare_groups(t, &gg, &gc);
    }

    float *oute_c = pt_host(E);
    dpt_tensor yec = pt_t4(oute_c, DT_F32, k->n, C, k->h, k->w, false);
    P_CPU->cbn_forward_eval(oc, &yec, &xc, &gnc, &bsc, &rmc, &rvc);
    dpt_tensor yeg = pt_t4(pt_nan(E, P_DT), P_DT, k->n, C, k->h, k->w, true);
    dpt_tensor rmg2 = pt_t1(pt_up(rm_c, C, DT_F32), DT_F32, C, true), rvg2 = pt_t1(pt_up(rv_c, C, DT_F32), DT_F32, C, true);
    P_GPU->cbn_forward_eval(og, &yeg, &xg, &gng, &bsg, &rmg2, &rvg2);
    tag(t, sizeof t, "cbn", k, "eval out");
    pt_check(t, pt_down(yeg.data, E, P_DT), oute_c, E, 1e-5);

    P_CPU->op_destroy(oc);
    P_GPU->op_destroy(og);
}

void parity_norm(void) {
    /* n, c, h, w, relu, acc, pacc, cross, lo, hi */
    const bn_case bn[] = {
        {4, 3, 6, 6, false, false, false, false, -1.0f, 2.0f},
        {2, 37, 5, 7, true, true, true, false, -1.0f, 2.0f},
        {8, 64, 4, 4, true, false, true, false, -2.0f, 1.0f},
        {1, 37, 9, 9, false, true, false, false, -1.0f, 1.0f},
        {4, 64, 6, 5, false, false, false, false, 30.0f, 31.0f}, /* mean 30x the deviation */
        {3, 37, 4, 5, true, false, false, true, -1.0f, 2.0f},
        {2, 300, 3, 2, true, true, true, true, -1.0f, 1.0f}, /* two channel groups */
        {6, 64, 10, 11, true, false, true, false, -1.0f, 2.0f}, /* several blocks, full chunks */
    };
    for (size_t i = 0; i < DPT_ARRAY_LEN(bn); i++) {
        bn_run(&bn[i]);
        pt_free_all();
    }
    const bn_case cbn[] = {
        {4, 37, 4, 4, true, true, true, false, -1.0f, 2.0f},
        {2, 3, 8, 8, false, false, false, false, -1.0f, 1.0f},
        {1, 64, 5, 3, true, false, true, false, -1.0f, 1.0f},
        {3, 64, 2, 2, true, false, false, true, -1.0f, 2.0f},
        {2, 37, 6, 6, false, true, false, true, 20.0f, 21.0f},
        {2, 64, 16, 16, true, true, true, false, -1.0f, 2.0f}, /* several blocks per sample */
    };
    for (size_t i = 0; i < DPT_ARRAY_LEN(cbn); i++) {
        cbn_run(&cbn[i]);
        pt_free_all();
    }
}
