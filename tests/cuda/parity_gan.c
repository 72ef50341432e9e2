/* Parity of the GAN ops of cuda_gan.cu: class embedding (repeated labels, the fatal error on a bad
 * label), spectral normalisation (1, 2 and 0 power iterations, backward with and without
 * param_accumulate) and the orthogonal regulariser (penalty and gradient). Embedding outputs are
 * activations (pt_check); tables, spectral-norm buffers and weights' gradients are float32 in every
 * precision (pt_check32). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dpt/backend/cuda.h"
#include "parity.h"

static void embedding_case(int n, int k, int d) {
    float *table = pt_rand_f32((int64_t)k * d, -1.0f, 1.0f);
    int32_t *labels = (int32_t *)pt_host(n); /* int32 in a float-sized buffer */
    for (int i = 0; i < n; i++) labels[i] = (i * 7 + i / 3) % k; /* every label several times */
    labels[n - 1] = labels[0];
    void *dlabels = pt_up(labels, n, DT_I32);

    float *out = pt_host((int64_t)n * d);
    dpt_tensor t_out = pt_t2(out, DT_F32, n, d, false), t_table = pt_t2(table, DT_F32, k, d, false);
    dpt_tensor t_lab = pt_t1(labels, DT_I32, n, false);
    P_CPU->embedding_forward(&t_out, &t_table, &t_lab);
    dpt_tensor g_out = pt_t2(pt_nan((int64_t)n * d, P_DT), P_DT, n, d, true);
    dpt_tensor g_table = pt_t2(pt_up(table, (int64_t)k * d, DT_F32), DT_F32, k, d, true);
    dpt_tensor g_lab = pt_t1(dlabels, DT_I32, n, true);
    P_GPU->embedding_forward(&g_out, &g_table, &g_lab);
    char what[64];
    snprintf(what, sizeof what, "embedding fwd n=%d k=%d d=%d", n, k, d);
    pt_check(what, pt_down(g_out.data, (int64_t)n * d, P_DT), out, (int64_t)n * d, 1e-7);

    float *dout = pt_rand((int64_t)n * d, -1.0f, 1.0f);
    dpt_tensor t_dout = pt_t2(dout, DT_F32, n, d, false);
    dpt_tensor g_dout = pt_t2(pt_up(dout, (int64_t)n * d, P_DT), P_DT, n, d, true);
    for (int acc = 0; acc < 2; acc++) {
        float *dt = acc ? pt_rand_f32((int64_t)k * d, -1.0f, 1.0f) : pt_host((int64_t)k * d);
        void *gdt = acc ? pt_up(dt, (int64_t)k * d, DT_F32) : pt_nan((int64_t)k * d, DT_F32);
        dpt_tensor t_dt = pt_t2(dt, DT_F32, k, d, false), g_dt = pt_t2(gdt, DT_F32, k, d, true);
        P_CPU->embedding_backward(&t_dt, acc, &t_dout, &t_lab);
        P_GPU->embedding_backward(&g_dt, acc, &g_dout, &g_lab);
        snprintf(what, sizeof what, "embedding bwd%s n=%d k=%d d=%d", acc ? " acc" : "", n, k, d);
        /* dout holds the same values on both sides: only the order of the adds differs. */
        pt_check32(what, pt_down(gdt, (int64_t)k * d, DT_F32), dt, (int64_t)k * d, 1e-6);
    }
}

typedef struct bad_label_ctx {
    bool backward;
} bad_label_ctx;

static void bad_label_run(void *p) {
    const bad_label_ctx *c = p;
    const int n = 6, k = 5, d = 4;
    int32_t labels[6] = {0, 1, 4, 5, 2, 3}; /* sample 3 is outside [0, 5) */
    float *table = pt_rand_f32(k * d, -1.0f, 1.0f);
    dpt_tensor g_table = pt_t2(pt_up(table, k * d, DT_F32), DT_F32, k, d, true);
    dpt_tensor g_lab = pt_t1(pt_up(labels, n, DT_I32), DT_I32, n, true);
    dpt_tensor g_out = pt_t2(pt_nan(n * d, P_DT), P_DT, n, d, true);
    if (c->backward) P_GPU->embedding_backward(&g_table, false, &g_out, &g_lab);
    else P_GPU->embedding_forward(&g_out, &g_table, &g_lab);
}

/* A bad label is a fatal error naming the sample. Forked child: only on the emulator (a real CUDA
 * context does not survive fork). */
static void embedding_bad_label(void) {
    if (!strstr(backend_cuda_describe(), "emulator")) return;
    for (int b = 0; b < 2; b++) {
        bad_label_ctx c = {.backward = b};
        char msg[2048];
        const bool died = tu_expect_death(bad_label_run, &c, msg, sizeof msg);
        TU_CHECK(died && tu_contains(msg, "label 5 of sample 3"), "embedding_%s with a bad label [%s]: %s",
                 b ? "backward" : "forward", P_GPU->name, died ? msg : "did not fail");
    }
    printf("  %-44s %-10s ok\n", "embedding bad label: fatal, names sample", P_GPU->name);
}

static void spectral_norm_case(int rows, int cols, int iters) {
    const int64_t n = (int64_t)rows * cols;
    const float eps = 1e-12f;
    float *w = pt_rand_f32(n, -1.0f, 1.0f), *u = pt_rand_f32(rows, -1.0f, 1.0f), *v = pt_rand_f32(cols, -1.0f, 1.0f);
    float *gu = pt_up(u, rows, DT_F32), *gv = pt_up(v, cols, DT_F32), *gw = pt_up(w, n, DT_F32);
    float *wsn = pt_host(n), *gwsn = pt_nan(n, DT_F32);
    float s_cpu = 0.0f, s_gpu = 0.0f;
    P_CPU->spectral_norm_forward(wsn, u, v, &s_cpu, w, rows, cols, iters, eps);
    P_GPU->spectral_norm_forward(gwsn, gu, gv, &s_gpu, gw, rows, cols, iters, eps);
    char what[80];
    snprintf(what, sizeof what, "sn fwd %dx%d it=%d: w_sn", rows, cols, iters);
    pt_check32(what, pt_down(gwsn, n, DT_F32), wsn, n, 1e-5);
    snprintf(what, sizeof what, "sn fwd %dx%d it=%d: u", rows, cols, iters);
    pt_check32(what, pt_down(gu, rows, DT_F32), u, rows, 1e-5);
    snprintf(what, sizeof what, "sn fwd %dx%d it=%d: v", rows, cols, iters);
    pt_check32(what, pt_down(gv, cols, DT_F32), v, cols, 1e-5);
    snprintf(what, sizeof what, "sn fwd %dx%d it=%d: sigma", rows, cols, iters);
    pt_check32(what, &s_gpu, &s_cpu, 1, 1e-5);

    float *dwsn = pt_rand_f32(n, -1.0f, 1.0f);
    float *gdwsn = pt_up(dwsn, n, DT_F32);
    for (int acc = 0; acc < 2; acc++) {
        float *dw = acc ? pt_rand_f32(n, -1.0f, 1.0f) : pt_host(n);
        float *gdw = acc ? pt_up(dw, n, DT_F32) : pt_nan(n, DT_F32);
        /* Both sides from the same (CPU) u, v and sigma: the backward alone is compared. */
        P_CPU->spectral_norm_backward(dw, acc, dwsn, w, u, v, s_cpu, rows, cols);
        P_GPU->spectral_norm_backward(gdw, acc, gdwsn, gw, pt_up(u, rows, DT_F32), pt_up(v, cols, DT_F32), s_cpu,
                                      rows, cols);
        snprintf(what, sizeof what, "sn bwd%s %dx%d: dw", acc ? " acc" : "", rows, cols);
        pt_check32(what, pt_down(gdw, n, DT_F32), dw, n, 1e-5);
    }
}

static void ortho_case(int rows, int cols, float strength) {
    const int64_t n = (int64_t)rows * cols;
    float *w = pt_rand_f32(n, -0.5f, 0.5f), *dw = pt_rand_f32(n, -1.0f, 1.0f);
    float *gdw = pt_up(dw, n, DT_F32);
    const double want = P_CPU->ortho_reg(dw, pt_host((int64_t)rows * rows), w, rows, cols, strength);
    const double got =
        P_GPU->ortho_reg(gdw, pt_nan((int64_t)rows * rows, DT_F32), pt_up(w, n, DT_F32), rows, cols, strength);
    char what[80];
    snprintf(what, sizeof what, "ortho_reg %dx%d: penalty", rows, cols);
    const float fg = (float)got, fw = (float)want;
    pt_check32(what, &fg, &fw, 1, 1e-5);
    snprintf(what, sizeof what, "ortho_reg %dx%d: dw", rows, cols);
    pt_check32(what, pt_down(gdw, n, DT_F32), dw, n, 1e-5);
}

void parity_gan(void) {
    embedding_case(50, 10, 37);
    embedding_case(1, 3, 300);
    embedding_bad_label();
    spectral_norm_case(20, 75, 1);
    spectral_norm_case(20, 75, 2);
    spectral_norm_case(20, 75, 0);
    spectral_norm_case(300, 37, 1);
    spectral_norm_case(300, 37, 0);
    ortho_case(24, 50, 1e-4f);
    ortho_case(70, 33, 0.5f);
}
