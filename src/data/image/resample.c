/* Separable antialiased resampling, PIL's bilinear filter: for each output pixel the source
 * pixels within `support` of its centre (support 1 when enlarging, the downscale factor when
 * shrinking) are weighted by a triangle and the weights normalised. The horizontal pass runs
 * over the source rows the vertical pass needs, into float rows; the vertical pass combines
 * whole rows (contiguous, vectorised) and writes uint8 or normalised floats. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/data/image.h"

void img_scratch_free(img_scratch *s) {
    free(s->f);
    free(s->i);
    memset(s, 0, sizeof *s);
}

static float *scratch_f(img_scratch *s, size_t n) {
    if (s->fcap < n) {
        free(s->f);
        s->fcap = n + n / 4;
        s->f = dpt_xmalloc(s->fcap * sizeof(float));
    }
    return s->f;
}

static int32_t *scratch_i(img_scratch *s, size_t n) {
    if (s->icap < n) {
        free(s->i);
        s->icap = n + n / 4;
        s->i = dpt_xmalloc(s->icap * sizeof(int32_t));
    }
    return s->i;
}

/* Most taps any output pixel can have for this scale. */
static int max_taps(double in_size, int out_size) {
    double scale = in_size / out_size;
    double support = scale > 1.0 ? scale : 1.0;
    return (int)ceil(support) * 2 + 1;
}

/* Coefficients for one axis, as PIL's precompute_coeffs: first[o], count[o], and taps weights
 * per output at w[o * taps]. */
static void coeffs(double box0, double box_size, int in_size, int out_size, int taps, int32_t *first, int32_t *count,
                   float *w) {
    const double scale = box_size / out_size;
    const double filterscale = scale > 1.0 ? scale : 1.0;
    const double support = filterscale; /* triangle: support 1, widened when shrinking */
    const double ss = 1.0 / filterscale;
    for (int o = 0; o < out_size; o++) {
        double center = box0 + (o + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        if (n > taps) n = taps;
        double sum = 0.0, tmp[64];
        double *ww = taps <= 64 ? tmp : NULL;
        float *wo = w + (size_t)o * taps;
        for (int k = 0; k < n; k++) {
            double d = fabs((k + lo - center + 0.5) * ss);
            double v = d < 1.0 ? 1.0 - d : 0.0;
            if (ww) ww[k] = v;
            else wo[k] = (float)v;
            sum += v;
        }
        if (sum <= 0.0) { /* cannot happen for boxes inside the image; keep the nearest pixel */
            int c = (int)center;
            lo = c < 0 ? 0 : c >= in_size ? in_size - 1 : c;
            n = 1;
            wo[0] = 1.0f;
        } else {
            for (int k = 0; k < n; k++) wo[k] = (float)((ww ? ww[k] : wo[k]) / sum);
        }
        for (int k = n; k < taps; k++) wo[k] = 0.0f;
        first[o] = lo;
        count[o] = n;
    }
}

/* Shared first half: coefficients and the horizontal pass. Returns the rows of horizontally
 * resampled source, interleaved (rows, out_w, c) floats, for source rows [*row0, *row0 + rows). */
typedef struct plan {
    int taps_x, taps_y;
    int32_t *fx, *cx, *fy, *cy;
    float *wx, *wy;
    float *rows; /* (nrows, out_w * c) */
    int row0, nrows;
    float *acc; /* out_w * c */
} plan;

static void make_plan(const img_view *src, double x0, double y0, double bw, double bh, int out_w, int out_h,
                      img_scratch *s, plan *p) {
    const int c = src->c;
    p->taps_x = max_taps(bw, out_w);
    p->taps_y = max_taps(bh, out_h);
    int32_t *iv = scratch_i(s, 2 * (size_t)out_w + 2 * (size_t)out_h);
    p->fx = iv;
    p->cx = iv + out_w;
    p->fy = iv + 2 * out_w;
    p->cy = iv + 2 * out_w + out_h;
    /* Float scratch: weights, then the row block, then one accumulator row. Sizes first. */
    size_t nwx = (size_t)out_w * p->taps_x, nwy = (size_t)out_h * p->taps_y;
    /* Rows needed: computed from the y coefficients, which need their own space first. */
    size_t row_len = (size_t)out_w * c;
    size_t max_rows = (size_t)src->h;
    float *fv = scratch_f(s, nwx + nwy + (max_rows + 1) * row_len);
    p->wx = fv;
    p->wy = fv + nwx;
    coeffs(x0, bw, src->w, out_w, p->taps_x, p->fx, p->cx, p->wx);
    coeffs(y0, bh, src->h, out_h, p->taps_y, p->fy, p->cy, p->wy);
    p->row0 = p->fy[0];
    int last = p->fy[out_h - 1] + p->cy[out_h - 1];
    for (int o = 0; o < out_h; o++) {
        if (p->fy[o] < p->row0) p->row0 = p->fy[o];
        if (p->fy[o] + p->cy[o] > last) last = p->fy[o] + p->cy[o];
    }
    p->nrows = last - p->row0;
    p->rows = fv + nwx + nwy;
    p->acc = p->rows + (size_t)p->nrows * row_len;

    /* Horizontal pass. */
    const int tx = p->taps_x;
    for (int r = 0; r < p->nrows; r++) {
        const uint8_t *line = src->data + (ptrdiff_t)(p->row0 + r) * src->sy;
        float *dst = p->rows + (size_t)r * row_len;
        if (c == 3 && src->sc == 1 && src->sx == 3) { /* interleaved RGB: the decoder's output */
            for (int o = 0; o < out_w; o++) {
                const uint8_t *q = line + (ptrdiff_t)p->fx[o] * 3;
                const float *w = p->wx + (size_t)o * tx;
                float a0 = 0.f, a1 = 0.f, a2 = 0.f;
                for (int k = 0; k < p->cx[o]; k++) {
                    a0 += w[k] * q[3 * k];
                    a1 += w[k] * q[3 * k + 1];
                    a2 += w[k] * q[3 * k + 2];
                }
                dst[3 * o] = a0;
                dst[3 * o + 1] = a1;
                dst[3 * o + 2] = a2;
            }
        } else {
            for (int ch = 0; ch < c; ch++) {
                const uint8_t *plane = line + (ptrdiff_t)ch * src->sc;
                for (int o = 0; o < out_w; o++) {
                    const uint8_t *q = plane + (ptrdiff_t)p->fx[o] * src->sx;
                    const float *w = p->wx + (size_t)o * tx;
                    float a = 0.f;
                    for (int k = 0; k < p->cx[o]; k++) a += w[k] * q[(ptrdiff_t)k * src->sx];
                    dst[(size_t)o * c + ch] = a;
                }
            }
        }
    }
}

/* Vertical pass for output row o into p->acc (out_w * c floats, interleaved). */
static void vertical_row(const plan *p, int o, size_t row_len) {
    const float *w = p->wy + (size_t)o * p->taps_y;
    const int n = p->cy[o];
    const float *r0 = p->rows + (size_t)(p->fy[o] - p->row0) * row_len;
    float *acc = p->acc;
    const float w0 = w[0];
    for (size_t j = 0; j < row_len; j++) acc[j] = w0 * r0[j];
    for (int k = 1; k < n; k++) {
        const float wk = w[k];
        const float *rk = r0 + (size_t)k * row_len;
        for (size_t j = 0; j < row_len; j++) acc[j] += wk * rk[j];
    }
}

void img_resample_u8(const img_view *src, double x0, double y0, double bw, double bh, uint8_t *out, int out_w,
                     int out_h, img_scratch *s) {
    plan p;
    make_plan(src, x0, y0, bw, bh, out_w, out_h, s, &p);
    const size_t row_len = (size_t)out_w * src->c;
    for (int o = 0; o < out_h; o++) {
        vertical_row(&p, o, row_len);
        uint8_t *dst = out + (size_t)o * row_len;
        for (size_t j = 0; j < row_len; j++) {
            float v = p.acc[j] + 0.5f;
            dst[j] = v <= 0.f ? 0 : v >= 255.f ? 255 : (uint8_t)v;
        }
    }
}

void img_resample_norm(const img_view *src, double x0, double y0, double bw, double bh, int out_w, int out_h,
                       bool flip, const float *scale, const float *shift, bool nhwc, float *out, img_scratch *s) {
    plan p;
    make_plan(src, x0, y0, bw, bh, out_w, out_h, s, &p);
    const int c = src->c;
    const size_t row_len = (size_t)out_w * c;
    for (int o = 0; o < out_h; o++) {
        vertical_row(&p, o, row_len);
        const float *a = p.acc;
        if (nhwc) {
            float *dst = out + (size_t)o * row_len;
            if (c == 3) {
                const float s0 = scale[0], s1 = scale[1], s2 = scale[2], h0 = shift[0], h1 = shift[1], h2 = shift[2];
                for (int x = 0; x < out_w; x++) {
                    const float *q = a + 3 * (size_t)(flip ? out_w - 1 - x : x);
                    dst[3 * x] = q[0] * s0 + h0;
                    dst[3 * x + 1] = q[1] * s1 + h1;
                    dst[3 * x + 2] = q[2] * s2 + h2;
                }
            } else {
                for (int x = 0; x < out_w; x++) {
                    const float *q = a + (size_t)c * (flip ? out_w - 1 - x : x);
                    for (int ch = 0; ch < c; ch++) dst[(size_t)x * c + ch] = q[ch] * scale[ch] + shift[ch];
                }
            }
        } else {
            for (int ch = 0; ch < c; ch++) {
                float *dst = out + ((size_t)ch * out_h + o) * out_w;
                const float sc = scale[ch], sh = shift[ch];
                for (int x = 0; x < out_w; x++) dst[x] = a[(size_t)c * (flip ? out_w - 1 - x : x) + ch] * sc + sh;
            }
        }
    }
}
