/* Stand-ins for cuDNN and cuBLAS in the emulated back end (see cuda_internal.h): plain loops on
 * the host with the same contracts, so that the ops built on them (linear, bmm, the orthogonal
 * regulariser, convolution) and whole graphs run in CI. They check the callers' strides and
 * operand order, not cuDNN's or cuBLAS's own behaviour, which only a GPU run checks. */
#include <vector>

#include "cuda_internal.h"

static float load(const void *p, dpt_dtype dt, int64_t i) {
    switch (dt) {
    case DT_F32: return ((const float *)p)[i];
    case DT_BF16: return cu_f(((const bf16_t *)p)[i]);
    case DT_F16: return cu_f(((const f16_t *)p)[i]);
    default: cu_bad_dtype("cu_gemm / conv operand", dt);
    }
}

static void store(void *p, dpt_dtype dt, int64_t i, float v) {
    switch (dt) {
    case DT_F32: ((float *)p)[i] = v; break;
    case DT_BF16: ((bf16_t *)p)[i] = cu_t<bf16_t>(v); break;
    case DT_F16: ((f16_t *)p)[i] = cu_t<f16_t>(v); break;
    default: cu_bad_dtype("cu_gemm / conv result", dt);
    }
}

void cu_gemm(dpt_dtype ab, dpt_dtype c, bool ta, bool tb, int m, int n, int k, float alpha, const void *a, int lda,
             int64_t sa, const void *b, int ldb, int64_t sb, float beta, void *cm, int ldc, int64_t sc, int batch) {
    for (int bt = 0; bt < batch; bt++)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float acc = 0.0f;
                for (int p = 0; p < k; p++) {
                    const int64_t ia = bt * sa + (ta ? (int64_t)p * lda + i : (int64_t)i * lda + p);
                    const int64_t ib = bt * sb + (tb ? (int64_t)j * ldb + p : (int64_t)p * ldb + j);
                    acc += load(a, ab, ia) * load(b, ab, ib);
                }
                const int64_t ic = bt * sc + (int64_t)i * ldc + j;
                /* beta 0 ignores C (it may hold NaN), as cuBLAS does. */
                store(cm, c, ic, beta == 0.0f ? alpha * acc : alpha * acc + beta * load(cm, c, ic));
            }
}

/* ---- convolution: stand-ins for cuDNN's three convolution calls ----
 * These naive loops replace cudnnConvolutionForward, cudnnConvolutionBackwardData and
 * cudnnConvolutionBackwardFilter; everything else of the convolution op (weight transpose and
 * conversion to KRSC, bias kernels, the overwrite/accumulate contract, the float32 KCRS weight
 * gradient) is cuda_conv.cu itself, included below. They see what cuDNN sees: NHWC activations
 * and a KRSC filter, both in the activation dtype dt, float accumulation, results rounded to dt
 * (the weight gradient included, as cuDNN writes it in the filter's dtype). They check the op's
 * layouts and contracts, not cuDNN's algorithms, which only a GPU run checks. */

/* Calls f(n, oh, ow, ih, iw, r, s) for every (output pixel, kernel tap) pair inside the input. */
template <typename F> static void conv_terms(const be_conv_desc *d, F f) {
    for (int n = 0; n < d->n; n++)
        for (int oh = 0; oh < d->oh; oh++)
            for (int ow = 0; ow < d->ow; ow++)
                for (int r = 0; r < d->r; r++) {
                    const int ih = oh * d->stride - d->pad + r;
                    if (ih < 0 || ih >= d->h) continue;
                    for (int s = 0; s < d->s; s++) {
                        const int iw = ow * d->stride - d->pad + s;
                        if (iw < 0 || iw >= d->w) continue;
                        f(n, oh, ow, ih, iw, r, s);
                    }
                }
}

static int64_t x_at(const be_conv_desc *d, int n, int ih, int iw) { return (((int64_t)n * d->h + ih) * d->w + iw) * d->c; }
static int64_t y_at(const be_conv_desc *d, int n, int oh, int ow) {
    return (((int64_t)n * d->oh + oh) * d->ow + ow) * d->k;
}
static int64_t w_at(const be_conv_desc *d, int k, int r, int s) { return (((int64_t)k * d->r + r) * d->s + s) * d->c; }

/* n values of dtype dt as floats (the loops below then run on plain floats). */
static std::vector<float> to_floats(const void *p, dpt_dtype dt, int64_t n) {
    std::vector<float> f((size_t)n);
    for (int64_t i = 0; i < n; i++) f[(size_t)i] = load(p, dt, i);
    return f;
}

static int64_t conv_nx(const be_conv_desc *d) { return (int64_t)d->n * d->h * d->w * d->c; }
static int64_t conv_ny(const be_conv_desc *d) { return (int64_t)d->n * d->oh * d->ow * d->k; }
static int64_t conv_nw(const be_conv_desc *d) { return (int64_t)d->k * d->r * d->s * d->c; }

void emu_conv_forward(const be_conv_desc *d, dpt_dtype dt, void *y, const void *x, const void *w) {
    const std::vector<float> xf = to_floats(x, dt, conv_nx(d)), wf = to_floats(w, dt, conv_nw(d));
    std::vector<float> acc((size_t)conv_ny(d), 0.0f);
    conv_terms(d, [&](int n, int oh, int ow, int ih, int iw, int r, int s) {
        const float *xp = &xf[(size_t)x_at(d, n, ih, iw)];
        float *yp = &acc[(size_t)y_at(d, n, oh, ow)];
        for (int k = 0; k < d->k; k++) {
            const float *wp = &wf[(size_t)w_at(d, k, r, s)];
            float sum = 0.0f;
            for (int c = 0; c < d->c; c++) sum += xp[c] * wp[c];
            yp[k] += sum;
        }
    });
    for (size_t i = 0; i < acc.size(); i++) store(y, dt, (int64_t)i, acc[i]);
}

void emu_conv_backward_data(const be_conv_desc *d, dpt_dtype dt, void *dx, bool accumulate, const void *dy,
                            const void *w) {
    const std::vector<float> gf = to_floats(dy, dt, conv_ny(d)), wf = to_floats(w, dt, conv_nw(d));
    std::vector<float> acc((size_t)conv_nx(d), 0.0f);
    conv_terms(d, [&](int n, int oh, int ow, int ih, int iw, int r, int s) {
        float *xp = &acc[(size_t)x_at(d, n, ih, iw)];
        const float *gp = &gf[(size_t)y_at(d, n, oh, ow)];
        for (int k = 0; k < d->k; k++) {
            const float g = gp[k], *wp = &wf[(size_t)w_at(d, k, r, s)];
            for (int c = 0; c < d->c; c++) xp[c] += g * wp[c];
        }
    });
    /* beta 0 ignores dx's content (it may hold NaN), as cuDNN does. */
    for (size_t i = 0; i < acc.size(); i++)
        store(dx, dt, (int64_t)i, accumulate ? load(dx, dt, (int64_t)i) + acc[i] : acc[i]);
}

void emu_conv_backward_filter(const be_conv_desc *d, dpt_dtype dt, void *dw, const void *x, const void *dy) {
    const std::vector<float> xf = to_floats(x, dt, conv_nx(d)), gf = to_floats(dy, dt, conv_ny(d));
    std::vector<float> acc((size_t)conv_nw(d), 0.0f);
    conv_terms(d, [&](int n, int oh, int ow, int ih, int iw, int r, int s) {
        const float *xp = &xf[(size_t)x_at(d, n, ih, iw)], *gp = &gf[(size_t)y_at(d, n, oh, ow)];
        for (int k = 0; k < d->k; k++) {
            const float g = gp[k];
            float *wp = &acc[(size_t)w_at(d, k, r, s)];
            for (int c = 0; c < d->c; c++) wp[c] += g * xp[c];
        }
    });
    for (size_t i = 0; i < acc.size(); i++) store(dw, dt, (int64_t)i, acc[i]);
}

/* The convolution op itself (cu_fill_conv), with the stand-ins above in place of cuDNN. */
#include "cuda_conv.cu"
