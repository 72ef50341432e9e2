/* Double-precision reference ops (see ref_ops.h). Plain loops in the order of the definitions,
 * so that each function can be checked by reading it; speed does not matter here. */
#include "ref/ref_ops.h"

#include <math.h>
#include <string.h>

/* Index of element (i, ch, y, x) of an (N, C, H, W) tensor. */
static inline int64_t at4(int i, int ch, int y, int x, int c, int h, int w) {
    return (((int64_t)i * c + ch) * h + y) * w + x;
}

static void zero(double *p, int64_t n) {
    if (p) memset(p, 0, (size_t)n * sizeof *p);
}

/* ---- convolution ---- */

void ref_conv2d_forward(double *out, const double *in, const double *w, const double *bias, int n, int c, int h,
                        int wd, int k, int r, int s, int stride, int pad, int oh, int ow) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < k; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double sum = bias ? bias[o] : 0.0;
                    for (int ch = 0; ch < c; ch++)
                        for (int ky = 0; ky < r; ky++)
                            for (int kx = 0; kx < s; kx++) {
                                int y = oy * stride - pad + ky, x = ox * stride - pad + kx;
                                if (y < 0 || y >= h || x < 0 || x >= wd) continue;
                                sum += in[at4(i, ch, y, x, c, h, wd)] * w[at4(o, ch, ky, kx, c, r, s)];
                            }
                    out[at4(i, o, oy, ox, k, oh, ow)] = sum;
                }
}

void ref_conv2d_backward(double *din, double *dw, double *dbias, const double *dout, const double *in,
                         const double *w, int n, int c, int h, int wd, int k, int r, int s, int stride, int pad,
                         int oh, int ow) {
    zero(din, (int64_t)n * c * h * wd);
    zero(dw, (int64_t)k * c * r * s);
    zero(dbias, k);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < k; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double g = dout[at4(i, o, oy, ox, k, oh, ow)];
                    if (dbias) dbias[o] += g;
                    for (int ch = 0; ch < c; ch++)
                        for (int ky = 0; ky < r; ky++)
                            for (int kx = 0; kx < s; kx++) {
                                int y = oy * stride - pad + ky, x = ox * stride - pad + kx;
                                if (y < 0 || y >= h || x < 0 || x >= wd) continue;
                                int64_t xi = at4(i, ch, y, x, c, h, wd), wi = at4(o, ch, ky, kx, c, r, s);
                                dw[wi] += g * in[xi];
                                if (din) din[xi] += g * w[wi];
                            }
                }
}

/* ---- batch normalization ---- */

void ref_bn_stats(double *mean, double *var, const double *in, int ch, int n, int c, int h, int w) {
    const double m = (double)n * h * w;
    double sum = 0.0, sq = 0.0;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) sum += in[at4(i, ch, y, x, c, h, w)];
    *mean = sum / m;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double d = in[at4(i, ch, y, x, c, h, w)] - *mean;
                sq += d * d;
            }
    *var = sq / m;
}

void ref_bn_apply(double *out, const double *in, const double *gamma, const double *beta, const double *mean,
                  const double *var, int n, int c, int h, int w, double eps, bool relu, bool per_sample) {
    const int stride = per_sample ? c : 0; /* gamma[i * stride + ch] */
    for (int ch = 0; ch < c; ch++) {
        double inv_std = 1.0 / sqrt(var[ch] + eps);
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int64_t j = at4(i, ch, y, x, c, h, w);
                    double v = gamma[i * stride + ch] * (in[j] - mean[ch]) * inv_std + beta[i * stride + ch];
                    out[j] = relu && v < 0.0 ? 0.0 : v;
                }
    }
}

void ref_bn_forward_train(double *out, double *mean, double *var, const double *in, const double *gamma,
                          const double *beta, int n, int c, int h, int w, double eps, bool relu) {
    for (int ch = 0; ch < c; ch++) ref_bn_stats(&mean[ch], &var[ch], in, ch, n, c, h, w);
    ref_bn_apply(out, in, gamma, beta, mean, var, n, c, h, w, eps, relu, false);
}

void ref_bn_forward_eval(double *out, const double *in, const double *gamma, const double *beta,
                         const double *rmean, const double *rvar, int n, int c, int h, int w, double eps, bool relu) {
    ref_bn_apply(out, in, gamma, beta, rmean, rvar, n, c, h, w, eps, relu, false);
}

/* With g = dL/dy (masked by the ReLU) and xhat = (x - mean) * inv_std over the M = N*H*W values
 * of a channel: dbeta = sum g, dgamma = sum g*xhat,
 * dx = gamma * inv_std / M * (M*g - dbeta - xhat*dgamma). */
void ref_bn_backward(double *din, double *dgamma, double *dbeta, const double *dout, const double *in,
                     const double *out, const double *gamma, int n, int c, int h, int w, double eps, bool relu) {
    const double m = (double)n * h * w;
    for (int ch = 0; ch < c; ch++) {
        double mean, var;
        ref_bn_stats(&mean, &var, in, ch, n, c, h, w);
        const double inv_std = 1.0 / sqrt(var + eps);
        double sum_g = 0.0, sum_gx = 0.0;
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int64_t j = at4(i, ch, y, x, c, h, w);
                    double g = relu && !(out[j] > 0.0) ? 0.0 : dout[j];
                    sum_g += g;
                    sum_gx += g * (in[j] - mean) * inv_std;
                }
        dbeta[ch] = sum_g;
        dgamma[ch] = sum_gx;
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int64_t j = at4(i, ch, y, x, c, h, w);
                    double g = relu && !(out[j] > 0.0) ? 0.0 : dout[j];
                    double xhat = (in[j] - mean) * inv_std;
                    din[j] = gamma[ch] * inv_std / m * (m * g - sum_g - xhat * sum_gx);
                }
    }
}

/* ---- pooling ---- */

/* Window geometry: global pooling is one window of the whole plane, stride 1, no padding. */
static void pool_geometry(int *kh, int *kw, int *st, int *pd, int h, int w, int kernel, int stride, int pad) {
    *kh = kernel ? kernel : h;
    *kw = kernel ? kernel : w;
    *st = kernel ? stride : 1;
    *pd = kernel ? pad : 0;
}

/* Input index of the first maximum of the window at (oy, ox) in scan order (rows, then columns);
 * padded cells never win. */
static int64_t pool_argmax(const double *in, int i, int ch, int oy, int ox, int c, int h, int w, int kh, int kw,
                           int st, int pd) {
    int64_t best = -1;
    for (int ky = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++) {
            int y = oy * st - pd + ky, x = ox * st - pd + kx;
            if (y < 0 || y >= h || x < 0 || x >= w) continue;
            int64_t j = at4(i, ch, y, x, c, h, w);
            if (best < 0 || in[j] > in[best]) best = j;
        }
    return best;
}

void ref_pool_forward(double *out, const double *in, int n, int c, int h, int w, bool is_max, int kernel, int stride,
                      int pad, int oh, int ow) {
    int kh, kw, st, pd;
    pool_geometry(&kh, &kw, &st, &pd, h, w, kernel, stride, pad);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double v;
                    if (is_max) {
                        v = in[pool_argmax(in, i, ch, oy, ox, c, h, w, kh, kw, st, pd)];
                    } else {
                        double sum = 0.0;
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++) {
                                int y = oy * st - pd + ky, x = ox * st - pd + kx;
                                if (y >= 0 && y < h && x >= 0 && x < w) sum += in[at4(i, ch, y, x, c, h, w)];
                            }
                        v = sum / ((double)kh * kw);
                    }
                    out[at4(i, ch, oy, ox, c, oh, ow)] = v;
                }
}

void ref_pool_backward(double *din, const double *dout, const double *in, int n, int c, int h, int w, bool is_max,
                       int kernel, int stride, int pad, int oh, int ow) {
    int kh, kw, st, pd;
    pool_geometry(&kh, &kw, &st, &pd, h, w, kernel, stride, pad);
    zero(din, (int64_t)n * c * h * w);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double g = dout[at4(i, ch, oy, ox, c, oh, ow)];
                    if (is_max) {
                        din[pool_argmax(in, i, ch, oy, ox, c, h, w, kh, kw, st, pd)] += g;
                        continue;
                    }
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            int y = oy * st - pd + ky, x = ox * st - pd + kx;
                            if (y >= 0 && y < h && x >= 0 && x < w)
                                din[at4(i, ch, y, x, c, h, w)] += g / ((double)kh * kw);
                        }
                }
}

/* ---- linear ---- */

void ref_linear_forward(double *out, const double *in, const double *w, const double *bias, int n, int in_f,
                        int out_f) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out_f; o++) {
            double sum = bias ? bias[o] : 0.0;
            for (int j = 0; j < in_f; j++) sum += in[(int64_t)i * in_f + j] * w[(int64_t)o * in_f + j];
            out[(int64_t)i * out_f + o] = sum;
        }
}

void ref_linear_backward(double *din, double *dw, double *dbias, const double *dout, const double *in,
                         const double *w, int n, int in_f, int out_f) {
    zero(din, (int64_t)n * in_f);
    zero(dw, (int64_t)out_f * in_f);
    zero(dbias, out_f);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out_f; o++) {
            double g = dout[(int64_t)i * out_f + o];
            if (dbias) dbias[o] += g;
            for (int j = 0; j < in_f; j++) {
                dw[(int64_t)o * in_f + j] += g * in[(int64_t)i * in_f + j];
                if (din) din[(int64_t)i * in_f + j] += g * w[(int64_t)o * in_f + j];
            }
        }
}

/* ---- loss ---- */

/* dlogits may be NULL (loss only). */
void ref_softmax_xent(double *losses, double *dlogits, const double *logits, const int32_t *labels, int n, int k,
                      double eps, double scale) {
    for (int i = 0; i < n; i++) {
        const double *x = logits + (int64_t)i * k;
        double mx = x[0];
        for (int j = 1; j < k; j++) mx = x[j] > mx ? x[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < k; j++) sum += exp(x[j] - mx);
        const double lse = mx + log(sum);
        double loss = 0.0;
        for (int j = 0; j < k; j++) {
            double q = (j == labels[i] ? 1.0 - eps : 0.0) + eps / k;
            loss -= q * (x[j] - lse);
            if (dlogits) dlogits[(int64_t)i * k + j] = scale * (exp(x[j] - lse) - q);
        }
        losses[i] = loss;
    }
}
