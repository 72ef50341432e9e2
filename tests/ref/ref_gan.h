/* Double-precision references of the GAN ops (backend.h, "GAN ops"), written for clarity. 4-d
 * tensors are NCHW; matrices row-major. Gradients overwrite. See ref_ops.h for the others. */
#ifndef DPT_REF_GAN_H
#define DPT_REF_GAN_H

#include "dpt/core/common.h"

/* Nearest 2x upsampling: in (N, C, H, W) -> out (N, C, 2H, 2W). */
void ref_upsample2x_forward(double *out, const double *in, int n, int c, int h, int w);
void ref_upsample2x_backward(double *din, const double *dout, int n, int c, int h, int w);

void ref_tanh_forward(double *out, const double *in, int64_t n);
void ref_tanh_backward(double *din, const double *dout, const double *out, int64_t n);

/* out (N, D) = table (K, D)[labels]; dtable = sum of dout rows per label. */
void ref_embedding_forward(double *out, const double *table, const int32_t *labels, int n, int d);
void ref_embedding_backward(double *dtable, const double *dout, const int32_t *labels, int n, int k, int d);

/* Conditional BatchNorm: xhat from the batch statistics (mean, biased var) per channel, then
 * out = gain[n, c] * xhat + bias[n, c], ReLU if relu. gain, bias (N, C). */
void ref_cbn_forward_train(double *out, double *mean, double *var, const double *in, const double *gain,
                           const double *bias, int n, int c, int h, int w, double eps, bool relu);
void ref_cbn_forward_eval(double *out, const double *in, const double *gain, const double *bias,
                          const double *rmean, const double *rvar, int n, int c, int h, int w, double eps, bool relu);
void ref_cbn_backward(double *din, double *dgain, double *dbias, const double *dout, const double *in,
                      const double *out, const double *gain, int n, int c, int h, int w, double eps, bool relu);

/* Spectral norm of w (rows, cols). Power iteration updates u (rows) and v (cols) in place. */
void ref_sn_power_iteration(double *u, double *v, const double *w, int rows, int cols, int iterations, double eps);
/* sigma = u^T w v; w_sn = w / sigma; returns sigma. */
double ref_sn_forward(double *w_sn, const double *w, const double *u, const double *v, int rows, int cols);
/* Gradient of L(w / (u^T w v)) with u, v constant, given dL/dw_sn. */
void ref_sn_backward(double *dw, const double *dw_sn, const double *w, const double *u, const double *v, int rows,
                     int cols);

/* out (B, M, N) = op(a) op(b) per batch; a stored (M, K) or (K, M) when ta, b (K, N) or (N, K)
 * when tb. Backward gives da, db in their stored shapes. */
void ref_bmm_forward(double *out, const double *a, const double *b, int batch, int m, int n, int k, bool ta, bool tb);
void ref_bmm_backward(double *da, double *db, const double *dout, const double *a, const double *b, int batch, int m,
                      int n, int k, bool ta, bool tb);

void ref_softmax_rows_forward(double *out, const double *in, int64_t rows, int64_t len);
void ref_softmax_rows_backward(double *din, const double *dout, const double *out, int64_t rows, int64_t len);

/* Hinge: discriminator loss max(0, 1 - sign*d), generator -d; dlogits = scale * dloss/dd with
 * gradient 0 at the kink. dlogits may be NULL. */
void ref_hinge_d(double *losses, double *dlogits, const double *logits, int n, double sign, double scale);
void ref_hinge_g(double *losses, double *dlogits, const double *logits, int n, double scale);

/* torch.optim.Adam, one step t (>= 1), written as its documentation's algorithm. */
void ref_adam(double *w, double *m, double *v, const double *grad, int64_t n, double lr, double beta1, double beta2,
              double eps, double weight_decay, double grad_scale, int64_t step);
void ref_ema(double *ema, const double *w, int64_t n, double decay);

/* Off-diagonal orthogonal penalty (strength / 2) |(w w^T) * (1 - I)|_F^2 of w (rows, cols);
 * returns it and writes its gradient to dw (may be NULL). */
double ref_ortho_reg(double *dw, const double *w, int rows, int cols, double strength);

/* out = a + gamma * b; backward gives da, db and dgamma = sum(dout * b). */
void ref_scaled_add_forward(double *out, const double *a, const double *b, double gamma, int64_t n);
void ref_scaled_add_backward(double *da, double *db, double *dgamma, const double *dout, const double *b, double gamma,
                             int64_t n);
/* dst[:, dst_col + j] (+)= src[:, src_col + j], j < count; ld, ls: row lengths. */
void ref_copy_cols(double *dst, int64_t ld, int64_t dst_col, const double *src, int64_t ls, int64_t src_col,
                   int64_t count, int64_t rows, bool accumulate);

#endif
