/* Double-precision reference implementations of every op of the back-end table, written for
 * clarity, not speed. All 4-d tensors here are NCHW. The CPU back end (and any later back end)
 * is tested against these; these are tested against finite differences. Conventions as in
 * backend.h: outputs first; gradients overwrite. */
#ifndef DPT_REF_OPS_H
#define DPT_REF_OPS_H

#include "dpt/core/common.h"

/* Convolution: in (N, C, H, W), w (K, C, R, S), bias (K) or NULL, out (N, K, OH, OW). */
void ref_conv2d_forward(double *out, const double *in, const double *w, const double *bias, int n, int c, int h,
                        int wd, int k, int r, int s, int stride, int pad, int oh, int ow);
void ref_conv2d_backward(double *din /* may be NULL */, double *dw, double *dbias /* may be NULL */,
                         const double *dout, const double *in, const double *w, int n, int c, int h, int wd, int k,
                         int r, int s, int stride, int pad, int oh, int ow);

/* BatchNorm, training mode: batch mean and biased variance per channel; y = gamma * xhat + beta,
 * then max(0, y) when relu. mean/var receive the batch statistics. */
void ref_bn_forward_train(double *out, double *mean, double *var, const double *in, const double *gamma,
                          const double *beta, int n, int c, int h, int w, double eps, bool relu);
void ref_bn_forward_eval(double *out, const double *in, const double *gamma, const double *beta,
                         const double *rmean, const double *rvar, int n, int c, int h, int w, double eps, bool relu);
/* out is the forward output (for the ReLU mask). */
void ref_bn_backward(double *din, double *dgamma, double *dbeta, const double *dout, const double *in,
                     const double *out, const double *gamma, int n, int c, int h, int w, double eps, bool relu);
/* The pieces of BatchNorm, shared with conditional BatchNorm (ref_gan.c). Mean and biased variance
 * of channel ch over (N, H, W): */
void ref_bn_stats(double *mean, double *var, const double *in, int ch, int n, int c, int h, int w);
/* out = gamma * (in - mean) / sqrt(var + eps) + beta, then ReLU if relu, for given per-channel
 * statistics; gamma, beta (C), or (N, C) (one pair per sample and channel) when per_sample. */
void ref_bn_apply(double *out, const double *in, const double *gamma, const double *beta, const double *mean,
                  const double *var, int n, int c, int h, int w, double eps, bool relu, bool per_sample);

/* Pooling; kernel == 0 means global. Max pooling breaks ties towards the first element. Average
 * pooling divides by kernel*kernel (padding counted). */
void ref_pool_forward(double *out, const double *in, int n, int c, int h, int w, bool is_max, int kernel, int stride,
                      int pad, int oh, int ow);
void ref_pool_backward(double *din, const double *dout, const double *in, int n, int c, int h, int w, bool is_max,
                       int kernel, int stride, int pad, int oh, int ow);

/* Linear: out (N, OUT) = in (N, IN) w^T + bias. */
void ref_linear_forward(double *out, const double *in, const double *w, const double *bias, int n, int in_f,
                        int out_f);
void ref_linear_backward(double *din, double *dw, double *dbias, const double *dout, const double *in,
                         const double *w, int n, int in_f, int out_f);

/* Softmax cross-entropy with label smoothing eps over k classes; returns per-sample losses and
 * dlogits = scale * d loss_i / d logits_i. */
void ref_softmax_xent(double *losses, double *dlogits, const double *logits, const int32_t *labels, int n, int k,
                      double eps, double scale);

#endif
