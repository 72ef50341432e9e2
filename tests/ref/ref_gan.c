/* Double-precision references of the GAN ops (see ref_gan.h): plain loops in the order of the
 * definitions, so that each can be checked by reading it. */
#include "ref/ref_gan.h"

#include <math.h>
#include <string.h>

#include "ref/ref_ops.h"

static inline int64_t at4(int i, int ch, int y, int x, int c, int h, int w) {
    return (((int64_t)i * c + ch) * h + y) * w + x;
}

static void zero(double *p, int64_t n) {
    if (p) memset(p, 0, (size_t)n * sizeof *p);
}

/* ---- upsampling, tanh, embedding ---- */

void ref_upsample2x_forward(double *out, const double *in, int n, int c, int h, int w) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < 2 * h; y++)
                for (int x = 0; x < 2 * w; x++)
                    out[at4(i, ch, y, x, c, 2 * h, 2 * w)] = in[at4(i, ch, y / 2, x / 2, c, h, w)];
}

void ref_upsample2x_backward(double *din, const double *dout, int n, int c, int h, int w) {
    zero(din, (int64_t)n * c * h * w);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < 2 * h; y++)
                for (int x = 0; x < 2 * w; x++)
                    din[at4(i, ch, y / 2, x / 2, c, h, w)] += dout[at4(i, ch, y, x, c, 2 * h, 2 * w)];
}

void ref_tanh_forward(double *out, const double *in, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = tanh(in[i]);
}

void ref_tanh_backward(double *din, const double *dout, const double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) din[i] = dout[i] * (1.0 - out[i] * out[i]);
}

void ref_embedding_forward(double *out, const double *table, const int32_t *labels, int n, int d) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) out[(int64_t)i * d + j] = table[(int64_t)labels[i] * d + j];
}

void ref_embedding_backward(double *dtable, const double *dout, const int32_t *labels, int n, int k, int d) {
    zero(dtable, (int64_t)k * d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) dtable[(int64_t)labels[i] * d + j] += dout[(int64_t)i * d + j];
}

/* ---- conditional BatchNorm ---- */

void ref_cbn_forward_train(double *out, double *mean, double *var, const double *in, const double *gain,
                           const double *bias, int n, int c, int h, int w, double eps, bool relu) {
    for (int ch = 0; ch < c; ch++) ref_bn_stats(&mean[ch], &var[ch], in, ch, n, c, h, w);
    ref_bn_apply(out, in, gain, bias, mean, var, n, c, h, w, eps, relu, true);
}

void ref_cbn_forward_eval(double *out, const double *in, const double *gain, const double *bias,
                          const double *rmean, const double *rvar, int n, int c, int h, int w, double eps, bool relu) {
    ref_bn_apply(out, in, gain, bias, rmean, rvar, n, c, h, w, eps, relu, true);
}

/* With g = dL/dy (masked by the ReLU), xhat as in forward, over the M = N*H*W values of a channel:
 * dbias[i] = sum over sample i of g, dgain[i] = sum over sample i of g*xhat; the input sees
 * dxhat = gain[i] * g, and dx = inv_std / M * (M*dxhat - sum dxhat - xhat * sum dxhat*xhat). */
void ref_cbn_backward(double *din, double *dgain, double *dbias, const double *dout, const double *in,
                      const double *out, const double *gain, int n, int c, int h, int w, double eps, bool relu) {
    const double m = (double)n * h * w;
    for (int ch = 0; ch < c; ch++) {
        double mean, var;
        ref_bn_stats(&mean, &var, in, ch, n, c, h, w);
        const double inv_std = 1.0 / sqrt(var + eps);
        double sum_d = 0.0, sum_dx = 0.0;
        for (int i = 0; i < n; i++) {
            double sg = 0.0, sgx = 0.0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int64_t j = at4(i, ch, y, x, c, h, w);
                    double g = relu && !(out[j] > 0.0) ? 0.0 : dout[j], xhat = (in[j] - mean) * inv_std;
                    sg += g;
                    sgx += g * xhat;
                    sum_d += gain[i * c + ch] * g;
                    sum_dx += gain[i * c + ch] * g * xhat;
                }
            dbias[i * c + ch] = sg;
            dgain[i * c + ch] = sgx;
        }
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int64_t j = at4(i, ch, y, x, c, h, w);
                    double g = relu && !(out[j] > 0.0) ? 0.0 : dout[j], xhat = (in[j] - mean) * inv_std;
                    din[j] = inv_std / m * (m * gain[i * c + ch] * g - sum_d - xhat * sum_dx);
                }
    }
}

/* ---- spectral normalisation ---- */

static void normalize(double *x, int n, double eps) {
    double sq = 0.0;
    for (int i = 0; i < n; i++) sq += x[i] * x[i];
    const double d = fmax(sqrt(sq), eps);
    for (int i = 0; i < n; i++) x[i] /= d;
}

void ref_sn_power_iteration(double *u, double *v, const double *w, int rows, int cols, int iterations, double eps) {
    for (int it = 0; it < iterations; it++) {
        for (int j = 0; j < cols; j++) {
            v[j] = 0.0;
            for (int i = 0; i < rows; i++) v[j] += w[(int64_t)i * cols + j] * u[i];
        }
        normalize(v, cols, eps);
        for (int i = 0; i < rows; i++) {
            u[i] = 0.0;
            for (int j = 0; j < cols; j++) u[i] += w[(int64_t)i * cols + j] * v[j];
        }
        normalize(u, rows, eps);
    }
}

double ref_sn_forward(double *w_sn, const double *w, const double *u, const double *v, int rows, int cols) {
    double sigma = 0.0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) sigma += u[i] * w[(int64_t)i * cols + j] * v[j];
    for (int64_t i = 0; i < (int64_t)rows * cols; i++) w_sn[i] = w[i] / sigma;
    return sigma;
}

/* w_sn = w / sigma, dsigma/dw = u v^T: dw = dw_sn / sigma - sum(dw_sn * w) / sigma^2 * u v^T. */
void ref_sn_backward(double *dw, const double *dw_sn, const double *w, const double *u, const double *v, int rows,
                     int cols) {
    double sigma = 0.0, dot = 0.0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            sigma += u[i] * w[(int64_t)i * cols + j] * v[j];
            dot += dw_sn[(int64_t)i * cols + j] * w[(int64_t)i * cols + j];
        }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            dw[(int64_t)i * cols + j] = dw_sn[(int64_t)i * cols + j] / sigma - dot / (sigma * sigma) * u[i] * v[j];
}

/* ---- batched matrix product, row softmax ---- */

/* Element (r, q) of op(x) where x is stored (r, q), or (q, r) when transposed; cols = stored row length. */
static inline int64_t mat_at(int r, int q, int cols, bool t) {
    return t ? (int64_t)q * cols + r : (int64_t)r * cols + q;
}

void ref_bmm_forward(double *out, const double *a, const double *b, int batch, int m, int n, int k, bool ta, bool tb) {
    for (int bi = 0; bi < batch; bi++) {
        const double *ab = a + (int64_t)bi * m * k, *bb = b + (int64_t)bi * k * n;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0.0;
                for (int l = 0; l < k; l++) s += ab[mat_at(i, l, ta ? m : k, ta)] * bb[mat_at(l, j, tb ? k : n, tb)];
                out[((int64_t)bi * m + i) * n + j] = s;
            }
    }
}

void ref_bmm_backward(double *da, double *db, const double *dout, const double *a, const double *b, int batch, int m,
                      int n, int k, bool ta, bool tb) {
    zero(da, (int64_t)batch * m * k);
    zero(db, (int64_t)batch * k * n);
    for (int bi = 0; bi < batch; bi++) {
        const double *ab = a + (int64_t)bi * m * k, *bb = b + (int64_t)bi * k * n;
        double *dab = da + (int64_t)bi * m * k, *dbb = db + (int64_t)bi * k * n;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                const double g = dout[((int64_t)bi * m + i) * n + j];
                for (int l = 0; l < k; l++) {
                    const int64_t ia = mat_at(i, l, ta ? m : k, ta), ib = mat_at(l, j, tb ? k : n, tb);
                    dab[ia] += g * bb[ib];
                    dbb[ib] += g * ab[ia];
                }
            }
    }
}

void ref_softmax_rows_forward(double *out, const double *in, int64_t rows, int64_t len) {
    for (int64_t r = 0; r < rows; r++) {
        const double *x = in + r * len;
        double mx = x[0], sum = 0.0;
        for (int64_t j = 1; j < len; j++) mx = fmax(mx, x[j]);
        for (int64_t j = 0; j < len; j++) sum += exp(x[j] - mx);
        for (int64_t j = 0; j < len; j++) out[r * len + j] = exp(x[j] - mx) / sum;
    }
}

/* din_j = sum_i dout_i * dy_i/dx_j = y_j * (dout_j - sum_i dout_i y_i). */
void ref_softmax_rows_backward(double *din, const double *dout, const double *out, int64_t rows, int64_t len) {
    for (int64_t r = 0; r < rows; r++) {
        double dot = 0.0;
        for (int64_t j = 0; j < len; j++) dot += dout[r * len + j] * out[r * len + j];
        for (int64_t j = 0; j < len; j++) din[r * len + j] = out[r * len + j] * (dout[r * len + j] - dot);
    }
}

/* ---- losses, optimizer, regularisation ---- */

void ref_hinge_d(double *losses, double *dlogits, const double *logits, int n, double sign, double scale) {
    for (int i = 0; i < n; i++) {
        const double margin = 1.0 - sign * logits[i];
        losses[i] = margin > 0.0 ? margin : 0.0;
        if (dlogits) dlogits[i] = margin > 0.0 ? -sign * scale : 0.0;
    }
}

void ref_hinge_g(double *losses, double *dlogits, const double *logits, int n, double scale) {
    for (int i = 0; i < n; i++) {
        losses[i] = -logits[i];
        if (dlogits) dlogits[i] = -scale;
    }
}

void ref_adam(double *w, double *m, double *v, const double *grad, int64_t n, double lr, double beta1, double beta2,
              double eps, double weight_decay, double grad_scale, int64_t step) {
    const double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    for (int64_t i = 0; i < n; i++) {
        const double g = grad_scale * grad[i] + weight_decay * w[i];
        m[i] = beta1 * m[i] + (1.0 - beta1) * g;
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
        w[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
    }
}

void ref_ema(double *ema, const double *w, int64_t n, double decay) {
    for (int64_t i = 0; i < n; i++) ema[i] = decay * ema[i] + (1.0 - decay) * w[i];
}

/* R = s/2 sum_{i != j} G_ij^2 with G = w w^T; dG_ij/dw_kl = [i == k] w_jl + [j == k] w_il, so
 * dR/dw_kl = s (sum_{j != k} G_kj w_jl + sum_{i != k} G_ik w_il). */
double ref_ortho_reg(double *dw, const double *w, int rows, int cols, double strength) {
    double r = 0.0;
    zero(dw, (int64_t)rows * cols);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < rows; j++) {
            if (i == j) continue;
            double g = 0.0;
            for (int l = 0; l < cols; l++) g += w[(int64_t)i * cols + l] * w[(int64_t)j * cols + l];
            r += 0.5 * strength * g * g;
            if (!dw) continue;
            for (int l = 0; l < cols; l++) {
                dw[(int64_t)i * cols + l] += strength * g * w[(int64_t)j * cols + l];
                dw[(int64_t)j * cols + l] += strength * g * w[(int64_t)i * cols + l];
            }
        }
    return r;
}

/* ---- graph plumbing: gated residual, column blocks ---- */

void ref_scaled_add_forward(double *out, const double *a, const double *b, double gamma, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + gamma * b[i];
}

void ref_scaled_add_backward(double *da, double *db, double *dgamma, const double *dout, const double *b, double gamma,
                             int64_t n) {
    *dgamma = 0.0;
    for (int64_t i = 0; i < n; i++) {
        da[i] = dout[i];
        db[i] = gamma * dout[i];
        *dgamma += dout[i] * b[i];
    }
}

void ref_copy_cols(double *dst, int64_t ld, int64_t dst_col, const double *src, int64_t ls, int64_t src_col,
                   int64_t count, int64_t rows, bool accumulate) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < count; j++) {
            double *d = &dst[r * ld + dst_col + j];
            *d = (accumulate ? *d : 0.0) + src[r * ls + src_col + j];
        }
}
