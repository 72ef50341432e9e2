/* Convolution parity (conv2d_create/forward/backward) against the CPU back end: the ResNet shapes
 * (3x3 stride 1 and 2, the 1x1 stride-2 downsample, the 7x7 stride-2 stem on 3 channels), with
 * and without bias, overwriting and accumulating gradients, no input gradient (first layer) and
 * no weight gradient. On a GPU this tests cuDNN (algorithms, NHWC descriptors, the KRSC weight
 * copy, bias kernels); in the emulator, the naive stand-in for cuDNN's three calls plus every
 * own kernel and the accumulate contract of cuda_conv.cu. */
#include <stdio.h>
#include <string.h>

#include "parity.h"

typedef struct conv_case {
    const char *name;
    int n, c, h, w, k, r, s, stride, pad;
    bool bias;
    bool accumulate;       /* din accumulates into a prefilled buffer */
    bool param_accumulate; /* dweight, dbias accumulate */
    bool with_din;         /* false: din NULL (first layer) */
    bool with_dweight;     /* false: dweight NULL (input gradient only) */
} conv_case;

/* The float32 (K, C, R, S) weight as nn/ passes it. */
static dpt_tensor weight_t(void *p, const be_conv_desc *d, bool dev) {
    dpt_tensor t = tensor_4d(p, DT_F32, d->k, d->c, d->r, d->s, LAYOUT_NCHW);
    t.device = dev ? DEV_CUDA : DEV_CPU;
    return t;
}

static void run_case(const conv_case *cc) {
    be_conv_desc d = {.n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k, .r = cc->r, .s = cc->s,
                      .stride = cc->stride, .pad = cc->pad, .bias = cc->bias};
    d.oh = be_out_size(d.h, d.r, d.stride, d.pad);
    d.ow = be_out_size(d.w, d.s, d.stride, d.pad);
    const int64_t nx = (int64_t)d.n * d.c * d.h * d.w, ny = (int64_t)d.n * d.k * d.oh * d.ow;
    const int64_t nw = (int64_t)d.k * d.c * d.r * d.s;
    char what[128];

    /* Inputs rounded to the activation dtype; the weight too, so that the GPU's conversion of the
     * float32 weight into its activation-dtype copy is exact and both sides multiply the same
     * values (the bias is added in float32 on both sides: not rounded). */
    float *x = pt_rand(nx, -1.0f, 1.0f), *wt = pt_rand(nw, -0.5f, 0.5f);
    float *b = pt_rand_f32(d.k, -0.5f, 0.5f), *dy = pt_rand(ny, -1.0f, 1.0f);
    float *dx_pre = pt_rand(nx, -1.0f, 1.0f), *dw_pre = pt_rand_f32(nw, -1.0f, 1.0f);
    float *db_pre = pt_rand_f32(d.k, -1.0f, 1.0f);

    /* CPU reference. */
    float *y_ref = pt_host(ny), *dx_ref = pt_host(nx), *dw_ref = pt_host(nw), *db_ref = pt_host(d.k);
    memcpy(dx_ref, dx_pre, (size_t)nx * sizeof(float));
    memcpy(dw_ref, dw_pre, (size_t)nw * sizeof(float));
    memcpy(db_ref, db_pre, (size_t)d.k * sizeof(float));
    be_op *cop = P_CPU->conv2d_create(&d, LAYOUT_NHWC);
    {
        dpt_tensor tx = pt_t4(x, DT_F32, d.n, d.c, d.h, d.w, false), ty = pt_t4(y_ref, DT_F32, d.n, d.k, d.oh, d.ow, false);
        dpt_tensor tw = weight_t(wt, &d, false), tb = pt_t1(b, DT_F32, d.k, false);
        dpt_tensor tdy = pt_t4(dy, DT_F32, d.n, d.k, d.oh, d.ow, false);
        dpt_tensor tdx = pt_t4(dx_ref, DT_F32, d.n, d.c, d.h, d.w, false), tdw = weight_t(dw_ref, &d, false);
        dpt_tensor tdb = pt_t1(db_ref, DT_F32, d.k, false);
        P_CPU->conv2d_forward(cop, &ty, &tx, &tw, d.bias ? &tb : NULL);
        P_CPU->conv2d_backward(cop, cc->with_din ? &tdx : NULL, cc->accumulate, cc->with_dweight ? &tdw : NULL,
                               d.bias ? &tdb : NULL, cc->param_accumulate, &tdy, &tx, &tw);
    }
    P_CPU->op_destroy(cop);

    /* CUDA: outputs that must be overwritten start as NaN; accumulated ones hold the prefill. */
    be_op *gop = P_GPU->conv2d_create(&d, LAYOUT_NHWC);
    dpt_tensor gx = pt_t4(pt_up(x, nx, P_DT), P_DT, d.n, d.c, d.h, d.w, true);
    dpt_tensor gy = pt_t4(pt_nan(ny, P_DT), P_DT, d.n, d.k, d.oh, d.ow, true);
    dpt_tensor gw = weight_t(pt_up(wt, nw, DT_F32), &d, true), gb = pt_t1(pt_up(b, d.k, DT_F32), DT_F32, d.k, true);
    dpt_tensor gdy = pt_t4(pt_up(dy, ny, P_DT), P_DT, d.n, d.k, d.oh, d.ow, true);
    dpt_tensor gdx = pt_t4(cc->accumulate ? pt_up(dx_pre, nx, P_DT) : pt_nan(nx, P_DT), P_DT, d.n, d.c, d.h, d.w, true);
    dpt_tensor gdw = weight_t(cc->param_accumulate ? pt_up(dw_pre, nw, DT_F32) : pt_nan(nw, DT_F32), &d, true);
    dpt_tensor gdb =
        pt_t1(cc->param_accumulate ? pt_up(db_pre, d.k, DT_F32) : pt_nan(d.k, DT_F32), DT_F32, d.k, true);
    P_GPU->conv2d_forward(gop, &gy, &gx, &gw, d.bias ? &gb : NULL);
    P_GPU->conv2d_backward(gop, cc->with_din ? &gdx : NULL, cc->accumulate, cc->with_dweight ? &gdw : NULL,
                           d.bias ? &gdb : NULL, cc->param_accumulate, &gdy, &gx, &gw);
    P_GPU->synchronize();

    snprintf(what, sizeof what, "conv %s: y", cc->name);
    pt_check(what, pt_down(gy.data, ny, P_DT), y_ref, ny, 1e-5);
    if (cc->with_din) {
        snprintf(what, sizeof what, "conv %s: dx%s", cc->name, cc->accumulate ? " (+=)" : "");
        pt_check(what, pt_down(gdx.data, nx, P_DT), dx_ref, nx, 1e-5);
    }
    if (cc->with_dweight) {
        /* dweight is float32, but cuDNN writes the weight gradient in the filter's dtype (the
         * activation dtype) before the op converts it: one rounding to bf16/f16, hence the
         * activation dtype's tolerance. The inputs are identical on both sides, so in F32 only
         * the summation order differs. */
        const double tol_dw = P_DT == DT_BF16 ? 2e-2 : P_DT == DT_F16 ? 4e-3 : 1e-5;
        snprintf(what, sizeof what, "conv %s: dweight%s", cc->name, cc->param_accumulate ? " (+=)" : "");
        pt_check32(what, pt_down(gdw.data, nw, DT_F32), dw_ref, nw, tol_dw);
        if (d.bias) {
            /* dbias: summed in float from the same (rounded) dy on both sides. */
            snprintf(what, sizeof what, "conv %s: dbias%s", cc->name, cc->param_accumulate ? " (+=)" : "");
            pt_check32(what, pt_down(gdb.data, d.k, DT_F32), db_ref, d.k, 1e-5);
        }
    } else {
        /* dweight NULL: neither the weight nor the bias gradient is touched. */
        snprintf(what, sizeof what, "conv %s: dweight/dbias untouched", cc->name);
        float *nan_w = pt_host(nw), *nan_b = pt_host(d.k);
        memset(nan_w, 0xff, (size_t)nw * sizeof(float));
        memset(nan_b, 0xff, (size_t)d.k * sizeof(float));
        float *gotw = pt_down(gdw.data, nw, DT_F32), *gotb = pt_down(gdb.data, d.k, DT_F32);
        if (cc->param_accumulate) {
            pt_check_exact(what, gotw, dw_pre, nw);
            pt_check_exact(what, gotb, db_pre, d.k);
        } else {
            pt_check_exact(what, gotw, nan_w, nw);
            pt_check_exact(what, gotb, nan_b, d.k);
        }
    }
    P_GPU->op_destroy(gop);
    pt_free_all();
}

void parity_conv(void) {
    static const conv_case cases[] = {
        /* name                     n  c   h   w   k  r  s st pad bias   acc    pacc   din    dweight */
        {"3x3 s1 p1 bias",          2, 8,  8,  8,  40, 3, 3, 1, 1, true,  false, false, true,  true},
        {"3x3 s1 p1 bias acc",      2, 8,  8,  8,  40, 3, 3, 1, 1, true,  true,  true,  true,  true},
        {"3x3 s1 p1 many rows",     4, 4,  32, 32, 12, 3, 3, 1, 1, true,  false, true,  true,  true},
        {"3x3 s2 p1",               2, 8,  9,  9,  12, 3, 3, 2, 1, false, false, false, true,  true},
        {"3x3 s2 p1 acc",           2, 8,  10, 10, 12, 3, 3, 2, 1, false, true,  true,  true,  true},
        {"1x1 s2 p0 downsample",    2, 16, 8,  8,  32, 1, 1, 2, 0, false, false, false, true,  true},
        {"1x1 s2 p0 downsample acc",2, 16, 7,  7,  32, 1, 1, 2, 0, false, true,  true,  true,  true},
        {"7x7 s2 p3 stem no din",   2, 3,  16, 16, 8,  7, 7, 2, 3, false, false, false, false, true},
        {"7x7 s2 p3 stem bias",     2, 3,  15, 15, 8,  7, 7, 2, 3, true,  false, true,  false, true},
        {"3x3 s1 p1 din only",      2, 8,  8,  8,  16, 3, 3, 1, 1, true,  true,  false, true,  false},
        {"3x3 s1 p1 din only pacc", 2, 8,  6,  6,  16, 3, 3, 1, 1, true,  false, true,  true,  false},
    };
    for (size_t i = 0; i < DPT_ARRAY_LEN(cases); i++) run_case(&cases[i]);
}
