/* Max and average pooling (windowed or global) of the CUDA back end, own kernels, NHWC.
 * Semantics of the CPU back end (cpu_pool.c, oneDNN):
 *   - windows in floor mode, padding `pad` on the top and left (the last window may stop short);
 *   - max: padded cells never win; the argmax is the first maximum in window order (rows, then
 *     columns: a later equal value does not replace it), and backward sends each output's
 *     gradient to that one input;
 *   - average: padded cells count (dnnl_pooling_avg_include_padding, PyTorch's
 *     count_include_pad=True): the divisor is always kernel * kernel;
 *   - global pooling (kernel 0): one window of H x W.
 * Backward is a gather (each input pixel sums over the windows covering it): no atomics, the
 * same result on every run. Max backward recomputes the argmax of every window from `in` into a
 * buffer owned by the op (one int per output), so it does not depend on a forward workspace. */
#include <stdlib.h>

#include "cuda_internal.h"

namespace {

struct pool_geom {
    int n, c, h, w, oh, ow;
    int kh, kw, sh, sw, pad;
};

typedef struct cu_pool_op {
    be_op base;
    be_pool_desc d;
    pool_geom g;
    int *arg; /* (N, OH, OW, C) argmax (y * W + x of the input) of each max window, or -1 */
} cu_pool_op;

/* Forward over outputs (N, OH, OW, C), channel fastest: max writes y and/or arg (either may be
 * NULL), average writes y. */
template <typename T> __global__ void pool_fwd_kernel(T *y, int *arg, const T *x, pool_geom g, bool is_max) {
    const int64_t total = (int64_t)g.n * g.oh * g.ow * g.c;
    const float area = (float)(g.kh * g.kw);
    CU_FOR(i, total) {
        int t = (int)i;
        const int c = t % g.c;
        t /= g.c;
        const int ox = t % g.ow;
        t /= g.ow;
        const int oy = t % g.oh;
        const int n = t / g.oh;
        const int y0 = oy * g.sh - g.pad, x0 = ox * g.sw - g.pad;
        const int ya = y0 > 0 ? y0 : 0, yb = y0 + g.kh < g.h ? y0 + g.kh : g.h;
        const int xa = x0 > 0 ? x0 : 0, xb = x0 + g.kw < g.w ? x0 + g.kw : g.w;
        const T *xn = x + (int64_t)n * g.h * g.w * g.c + c;
        if (is_max) {
            float m = -INFINITY;
            int a = -1;
            for (int yy = ya; yy < yb; yy++)
                for (int xx = xa; xx < xb; xx++) {
                    const int p = yy * g.w + xx;
                    const float v = cu_f(xn[(int64_t)p * g.c]);
                    if (v > m) {
                        m = v;
                        a = p;
                    }
                }
            if (y) y[i] = cu_t<T>(m);
            if (arg) arg[i] = a;
        } else {
            float s = 0.0f;
            for (int yy = ya; yy < yb; yy++)
                for (int xx = xa; xx < xb; xx++) s += cu_f(xn[(int64_t)(yy * g.w + xx) * g.c]);
            y[i] = cu_t<T>(s / area);
        }
    }
}

/* Backward over inputs (N, H, W, C): the sum over the windows (oy, ox) covering the pixel of
 * dy (max: only where the window's argmax is this pixel; average: divided by the area). */
template <typename T>
__global__ void pool_bwd_kernel(T *dx, const T *dy, const int *arg, pool_geom g, bool is_max, bool acc) {
    const int64_t total = (int64_t)g.n * g.h * g.w * g.c;
    const float area = (float)(g.kh * g.kw);
    CU_FOR(i, total) {
        int t = (int)i;
        const int c = t % g.c;
        t /= g.c;
        const int xx = t % g.w;
        t /= g.w;
        const int yy = t % g.h;
        const int n = t / g.h;
        /* Windows with o * s - pad <= p < o * s - pad + k. */
        const int ty = yy + g.pad, tx = xx + g.pad;
        int oya = ty - g.kh + 1, oxa = tx - g.kw + 1;
        oya = oya <= 0 ? 0 : (oya + g.sh - 1) / g.sh;
        oxa = oxa <= 0 ? 0 : (oxa + g.sw - 1) / g.sw;
        int oyb = ty / g.sh, oxb = tx / g.sw;
        oyb = oyb < g.oh - 1 ? oyb : g.oh - 1;
        oxb = oxb < g.ow - 1 ? oxb : g.ow - 1;
        const int pix = yy * g.w + xx;
        float s = 0.0f;
        for (int oy = oya; oy <= oyb; oy++)
            for (int ox = oxa; ox <= oxb; ox++) {
                const int64_t o = ((int64_t)(n * g.oh + oy) * g.ow + ox) * g.c + c;
                if (!is_max) s += cu_f(dy[o]);
                else if (arg[o] == pix) s += cu_f(dy[o]);
            }
        if (!is_max) s /= area;
        dx[i] = cu_t<T>(acc ? cu_f(dx[i]) + s : s);
    }
}

void pool_destroy(be_op *op) {
    cu_pool_op *o = (cu_pool_op *)op;
    cu_buffer_free(o->arg);
    free(o);
}

be_op *pool_create(const be_pool_desc *d, dpt_layout layout) {
    DPT_CHECK_LIB("CUDA back end", layout == LAYOUT_NHWC, "pool_create", "layout %s: the CUDA pooling is NHWC",
                  layout == LAYOUT_NCHW ? "NCHW" : "?");
    DPT_CHECK_LIB("CUDA back end", d->kind == POOL_MAX || d->kind == POOL_AVG, "pool_create", "pool kind %d",
                  (int)d->kind);
    pool_geom g;
    g.n = d->n;
    g.c = d->c;
    g.h = d->h;
    g.w = d->w;
    g.kh = d->kernel ? d->kernel : d->h;
    g.kw = d->kernel ? d->kernel : d->w;
    g.sh = g.sw = d->kernel ? d->stride : 1;
    g.pad = d->kernel ? d->pad : 0;
    DPT_CHECK_LIB("CUDA back end", g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.pad >= 0 && g.pad < g.kh && g.pad < g.kw,
                  "pool_create", "kernel %d, stride %d, pad %d", d->kernel, d->stride, d->pad);
    g.oh = be_out_size(g.h, g.kh, g.sh, g.pad);
    g.ow = be_out_size(g.w, g.kw, g.sw, g.pad);
    DPT_CHECK_LIB("CUDA back end", g.oh >= 1 && g.ow >= 1, "pool_create", "a %dx%d window does not fit %dx%d",
                  g.kh, g.kw, g.h, g.w);
    DPT_CHECK_LIB("CUDA back end", d->oh == g.oh && d->ow == g.ow, "pool_create",
                  "output %dx%d, the window gives %dx%d", d->oh, d->ow, g.oh, g.ow);
    DPT_CHECK_LIB("CUDA back end", (int64_t)g.n * g.c * g.h * g.w < INT32_MAX, "pool_create",
                  "%d x %d x %d x %d values: too many for int indices", g.n, g.c, g.h, g.w);
    cu_pool_op *o = (cu_pool_op *)dpt_xcalloc(1, sizeof *o);
    o->base.destroy = pool_destroy;
    o->d = *d;
    o->g = g;
    if (d->kind == POOL_MAX) o->arg = (int *)cu_buffer((size_t)g.n * g.c * g.oh * g.ow * sizeof(int));
    return &o->base;
}

void check_shapes(const char *what, const cu_pool_op *o, const dpt_tensor *big, const dpt_tensor *small) {
    const pool_geom &g = o->g;
    DPT_CHECK_LIB("CUDA back end", big->layout == LAYOUT_NHWC && small->layout == LAYOUT_NHWC, what,
                  "NHWC tensors expected");
    DPT_CHECK_LIB("CUDA back end",
                  tensor_numel(big) == (int64_t)g.n * g.c * g.h * g.w &&
                      tensor_numel(small) == (int64_t)g.n * g.c * g.oh * g.ow,
                  what, "tensor sizes differ from the op's (%d, %d, %d, %d) -> (%d, %d)", g.n, g.c, g.h, g.w, g.oh,
                  g.ow);
}

void pool_forward(be_op *op, dpt_tensor *out, const dpt_tensor *in) {
    cu_pool_op *o = (cu_pool_op *)op;
    check_shapes("pool_forward", o, in, out);
    cu_same_dtype("pool_forward", in->dtype, out);
    const int64_t total = tensor_numel(out);
    if (total == 0) return;
    const bool is_max = o->d.kind == POOL_MAX;
    CU_DISPATCH(in->dtype, "pool_forward",
                CU_LAUNCH(pool_fwd_kernel<T>, cu_blocks(total, CU_THREADS), CU_THREADS, cu_stream(),
                          (T *)out->data, (int *)nullptr, (const T *)in->data, o->g, is_max));
}

void pool_backward(be_op *op, dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *in,
                   const dpt_tensor *out) {
    cu_pool_op *o = (cu_pool_op *)op;
    check_shapes("pool_backward", o, din, dout);
    const bool is_max = o->d.kind == POOL_MAX;
    cu_same_dtype("pool_backward", din->dtype, dout, is_max ? in : nullptr);
    (void)out; /* the argmax is recomputed from `in` alone: the first maximum, as the forward's */
    const int64_t nout = tensor_numel(dout), total = tensor_numel(din);
    if (total == 0) return;
    CU_DISPATCH(din->dtype, "pool_backward", {
        if (is_max && nout > 0)
            CU_LAUNCH(pool_fwd_kernel<T>, cu_blocks(nout, CU_THREADS), CU_THREADS, cu_stream(), (T *)nullptr, o->arg,
                      (const T *)in->data, o->g, true);
        CU_LAUNCH(pool_bwd_kernel<T>, cu_blocks(total, CU_THREADS), CU_THREADS, cu_stream(), (T *)din->data,
                  (const T *)dout->data, (const int *)o->arg, o->g, is_max, accumulate);
    });
}

} // namespace

void cu_fill_pool(dpt_backend *be) {
    be->pool_create = pool_create;
    be->pool_forward = pool_forward;
    be->pool_backward = pool_backward;
}
