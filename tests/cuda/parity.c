/* The parity harness (parity.h) and the main of test_cuda_ops (real GPU) and
 * test_cudaemu_ops (emulated back end). */
#include "parity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/backend/cuda.h"
#include "dpt/core/bf16.h"
#include "dpt/core/error.h"

const dpt_backend *P_CPU, *P_GPU;
dpt_dtype P_DT;

static uint32_t pt_stream = 1000;

#define PT_MAX 512
static void *host_bufs[PT_MAX], *dev_bufs[PT_MAX];
static int nhost, ndev;

static void *track_host(void *p) {
    if (!p || nhost == PT_MAX) {
        fprintf(stderr, "parity: out of host buffers\n");
        exit(1);
    }
    return host_bufs[nhost++] = p;
}

float *pt_host(int64_t n) { return track_host(calloc((size_t)(n > 0 ? n : 1), sizeof(float))); }

void pt_free_all(void) {
    for (int i = 0; i < nhost; i++) free(host_bufs[i]);
    for (int i = 0; i < ndev; i++) P_GPU->mem_free(dev_bufs[i]);
    nhost = ndev = 0;
}

static float round_f16(float x) { return (float)(_Float16)x; }

void pt_round(float *x, int64_t n, dpt_dtype dt) {
    if (dt == DT_BF16)
        for (int64_t i = 0; i < n; i++) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
    else if (dt == DT_F16)
        for (int64_t i = 0; i < n; i++) x[i] = round_f16(x[i]);
}

float *pt_rand_f32(int64_t n, float lo, float hi) {
    float *p = pt_host(n);
    tu_fill_uniform(p, n, lo, hi, pt_stream++);
    return p;
}

float *pt_rand(int64_t n, float lo, float hi) {
    float *p = pt_rand_f32(n, lo, hi);
    pt_round(p, n, P_DT);
    return p;
}

static size_t raw_size(dpt_dtype dt) { return dtype_size(dt); }

void *pt_up(const void *host, int64_t n, dpt_dtype dt) {
    const size_t bytes = (size_t)(n > 0 ? n : 1) * raw_size(dt);
    void *d = P_GPU->mem_alloc(bytes);
    if (ndev == PT_MAX) {
        fprintf(stderr, "parity: out of device buffers\n");
        exit(1);
    }
    dev_bufs[ndev++] = d;
    if (n == 0 || !host) return d;
    if (dt == DT_BF16 || dt == DT_F16) {
        uint16_t *h = track_host(malloc((size_t)n * 2));
        const float *f = host;
        for (int64_t i = 0; i < n; i++) {
            if (dt == DT_BF16) h[i] = f32_to_bf16(f[i]);
            else {
                _Float16 v = (_Float16)f[i];
                memcpy(&h[i], &v, 2);
            }
        }
        P_GPU->copy_to_device(d, h, (size_t)n * 2);
    } else {
        P_GPU->copy_to_device(d, host, (size_t)n * raw_size(dt));
    }
    return d;
}

void *pt_nan(int64_t n, dpt_dtype dt) {
    void *d = pt_up(NULL, n, dt);
    uint8_t *ff = track_host(malloc((size_t)(n > 0 ? n : 1) * raw_size(dt)));
    memset(ff, 0xff, (size_t)(n > 0 ? n : 1) * raw_size(dt));
    P_GPU->copy_to_device(d, ff, (size_t)(n > 0 ? n : 1) * raw_size(dt));
    return d;
}

float *pt_down(const void *dev, int64_t n, dpt_dtype dt) {
    float *out = pt_host(n);
    if (dt == DT_BF16 || dt == DT_F16) {
        uint16_t *h = track_host(malloc((size_t)(n > 0 ? n : 1) * 2));
        P_GPU->copy_to_host(h, dev, (size_t)n * 2);
        for (int64_t i = 0; i < n; i++) {
            if (dt == DT_BF16) out[i] = bf16_to_f32(h[i]);
            else {
                _Float16 v;
                memcpy(&v, &h[i], 2);
                out[i] = (float)v;
            }
        }
    } else {
        DPT_CHECK(dt == DT_F32);
        P_GPU->copy_to_host(out, dev, (size_t)n * sizeof(float));
    }
    return out;
}

dpt_tensor pt_t4(void *p, dpt_dtype dt, int n, int c, int h, int w, bool dev) {
    dpt_tensor t = tensor_4d(p, dt, n, c, h, w, LAYOUT_NHWC);
    t.device = dev ? DEV_CUDA : DEV_CPU;
    return t;
}

dpt_tensor pt_t2(void *p, dpt_dtype dt, int64_t n, int64_t c, bool dev) {
    dpt_tensor t = tensor_2d(p, dt, n, c);
    t.device = dev ? DEV_CUDA : DEV_CPU;
    return t;
}

dpt_tensor pt_t1(void *p, dpt_dtype dt, int64_t c, bool dev) {
    dpt_tensor t = tensor_1d(p, dt, c);
    t.device = dev ? DEV_CUDA : DEV_CPU;
    return t;
}

static void check_tol(const char *what, const float *got, const float *want, int64_t n, double tol) {
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!isfinite(got[i]) && isfinite(want[i])) bad = i;
    TU_CHECK(bad < 0, "%s [%s]: value %lld is %g (reference %g)", what, P_GPU->name, (long long)bad,
             bad >= 0 ? got[bad] : 0.0, bad >= 0 ? want[bad] : 0.0);
    const double e = n ? tu_rel_error_ff(got, want, n) : 0.0;
    TU_CHECK(e <= tol, "%s [%s]: relative error %.3g > %.3g", what, P_GPU->name, e, tol);
    printf("  %-44s %-10s rel err %.2e (tol %.0e)\n", what, P_GPU->name, e, tol);
}

void pt_check(const char *what, const float *got, const float *want, int64_t n, double tol_f32) {
    const double tol = P_DT == DT_BF16 ? fmax(tol_f32, 2e-2) : P_DT == DT_F16 ? fmax(tol_f32, 4e-3) : tol_f32;
    check_tol(what, got, want, n, tol);
}

void pt_check32(const char *what, const float *got, const float *want, int64_t n, double tol) {
    check_tol(what, got, want, n, tol);
}

void pt_check_exact(const char *what, const float *got, const float *want, int64_t n) {
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) bad = i;
    TU_CHECK(bad < 0, "%s [%s]: value %lld is %g, expected %g", what, P_GPU->name, (long long)bad,
             bad >= 0 ? got[bad] : 0.0, bad >= 0 ? want[bad] : 0.0);
    printf("  %-44s %-10s exact\n", what, P_GPU->name);
}

/* The harness's own ops: conversion both ways and the finiteness test. */
void parity_basic(void) {
    const int64_t n = 1000;
    float *x = pt_rand(n, -3.0f, 3.0f);
    if (P_DT != DT_F32) {
        /* float32 -> activation dtype -> float32 rounds exactly as the host does. */
        float *raw = pt_rand_f32(n, -3.0f, 3.0f), *want = pt_host(n);
        memcpy(want, raw, (size_t)n * sizeof(float));
        pt_round(want, n, P_DT);
        dpt_tensor src = pt_t1(pt_up(raw, n, DT_F32), DT_F32, n, true);
        dpt_tensor mid = pt_t1(pt_nan(n, P_DT), P_DT, n, true);
        dpt_tensor back = pt_t1(pt_nan(n, DT_F32), DT_F32, n, true);
        P_GPU->convert(&mid, &src);
        P_GPU->convert(&back, &mid);
        pt_check_exact("convert f32 -> act -> f32", pt_down(back.data, n, DT_F32), want, n);
    }
    float *dx = pt_up(x, n, DT_F32);
    TU_CHECK(P_GPU->all_finite(dx, n) == 1, "all_finite of finite values [%s]", P_GPU->name);
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        float *y = pt_host(n);
        memcpy(y, x, (size_t)n * sizeof(float));
        y[(k * 397) % n] = bad[k];
        TU_CHECK(P_GPU->all_finite(pt_up(y, n, DT_F32), n) == 0, "all_finite misses %g [%s]", bad[k], P_GPU->name);
    }
    printf("  %-44s %-10s ok\n", "all_finite (NaN, +Inf, -Inf)", P_GPU->name);
}

typedef struct group {
    const char *name;
    void (*run)(void);
} group;

int main(int argc, char **argv) {
    /* argv[1]: run only the groups whose name contains it. */
    const char *only = argc > 1 ? argv[1] : NULL;
    char why[256] = "";
    if (cuda_device_count(why, sizeof why) == 0) {
        printf("SKIP: no GPU visible (%s); the CUDA parity tests run on a machine with one\n", why);
        return 77;
    }
    cuda_init(0);
    printf("CUDA back end: %s\n", backend_cuda_describe());
    P_CPU = backend_cpu();
    const group groups[] = {{"basic", parity_basic},     {"elementwise", parity_elementwise},
                            {"pool", parity_pool},       {"norm", parity_norm},
                            {"loss", parity_loss},       {"optim", parity_optim},
                            {"gan", parity_gan},         {"linear", parity_linear},
                            {"conv", parity_conv}};
    const dpt_precision precs[] = {PREC_FP32, PREC_BF16, PREC_FP16};
    for (size_t p = 0; p < DPT_ARRAY_LEN(precs); p++) {
        P_GPU = backend_cuda(precs[p]);
        P_DT = P_GPU->act_dtype;
        printf("== %s (activations %s)\n", P_GPU->name, dtype_name(P_DT));
        for (size_t g = 0; g < DPT_ARRAY_LEN(groups); g++) {
            if (only && !strstr(groups[g].name, only)) continue;
            printf("-- %s\n", groups[g].name);
            groups[g].run();
            pt_free_all();
        }
    }
    return tu_finish(argc > 0 ? argv[0] : "test_cuda_ops");
}
