/* The op table. nn/ calls these and nothing else to compute; a back end (backend/cpu, later
 * backend/cuda) fills the table. Conventions (as in llm.c):
 *   - arguments: outputs first, then inputs, then sizes;
 *   - activation gradients overwrite their destination unless `accumulate` is set (a tensor
 *     consumed by two layers receives the second gradient with accumulate = 1);
 *   - parameter gradients overwrite when `param_accumulate` is 0 (first micro-step) and add
 *     otherwise, so gradient accumulation over micro-steps needs no zeroing pass.
 * Ops that need per-shape state (oneDNN primitives, workspaces) are created once at graph build
 * time (`*_create`) and own that state; nothing is allocated in the step loop. */
#ifndef DPT_BACKEND_BACKEND_H
#define DPT_BACKEND_BACKEND_H

#include "dpt/core/tensor.h"

typedef struct be_op be_op; /* per-node state owned by the back end */

typedef struct be_conv_desc {
    int n, c, h, w; /* input (N, C, H, W) */
    int k;          /* output channels */
    int r, s;       /* kernel height, width */
    int stride, pad;
    int oh, ow;     /* output height, width (derived by the graph) */
    bool bias;
} be_conv_desc;

/* Sums `n` doubles in place across a group of ranks (cross-replica BatchNorm). The back end
 * knows no ranks: the caller (train/, through comm/) provides the reduction. */
typedef struct be_reduce {
    void (*fn)(void *ctx, double *buf, int n);
    void *ctx;
    /* device: fn takes device memory and queues the sum in the back end's stream order (NCCL on
     * a GPU back end), with no host round trip. The group's `ranks` ranks then each hold the same
     * number of values per channel (equal per-rank batches, as training has), so the count is
     * known and only the sums travel. Ignored by the CPU back end. */
    bool device;
    int ranks;
} be_reduce;

typedef struct be_bn_desc {
    int n, c, h, w;
    float eps;
    float momentum; /* running = (1 - momentum) * running + momentum * batch (PyTorch's convention) */
    bool relu;      /* fused ReLU after the affine transform */
    /* Cross-replica (synchronous) BatchNorm when reduce.fn is set: the batch statistics are
     * those of the whole group's batch (per-channel sums and sums of squares reduced), and
     * backward reduces its two per-channel sums so that dx is the gradient through the group's
     * statistics. dgamma and dbeta stay this rank's own sums: the gradient allreduce adds them. */
    be_reduce reduce;
} be_bn_desc;

typedef enum be_pool_kind { POOL_MAX = 0, POOL_AVG } be_pool_kind;

typedef struct be_pool_desc {
    int n, c, h, w;
    be_pool_kind kind;
    int kernel, stride, pad; /* kernel == 0: global pooling over H x W */
    int oh, ow;
} be_pool_desc;

typedef struct be_linear_desc {
    int n, in, out;
    bool bias;
} be_linear_desc;

typedef struct be_sgd_args {
    float lr, momentum, weight_decay;
    bool nesterov;
    float grad_scale; /* multiplies the gradient before anything else */
} be_sgd_args;

/* Adam as torch.optim.Adam (amsgrad off): g = s*grad + wd*w; m = b1*m + (1-b1)*g;
 * v = b2*v + (1-b2)*g^2; w -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps). */
typedef struct be_adam_args {
    float lr, beta1, beta2, eps, weight_decay;
    float grad_scale; /* multiplies the gradient before anything else */
    int64_t step;     /* 1 on the first update (bias correction) */
} be_adam_args;

/* Arithmetic of a back end's activations and products. Parameters, their gradients, optimizer
 * state and normalisation statistics are float32 in every mode (master weights).
 *   FP32: float32 storage and float32 products (the parity reference);
 *   TF32: float32 storage, convolutions and GEMMs on tensor cores with TF32 inputs;
 *   BF16: bfloat16 activations, float32 accumulation;
 *   FP16: float16 activations, float32 accumulation, with dynamic loss scaling (optim/). */
typedef enum dpt_precision { PREC_FP32 = 0, PREC_TF32, PREC_BF16, PREC_FP16 } dpt_precision;
const char *precision_name(dpt_precision p);
/* "fp32", "tf32", "bf16", "fp16" -> the mode; false for anything else. */
bool precision_parse(const char *s, dpt_precision *p);

typedef struct dpt_backend {
    const char *name;
    dpt_device device;
    dpt_layout act_layout; /* the layout this back end wants for 4-d activations */
    dpt_precision precision;
    dpt_dtype act_dtype; /* activations and their gradients (F32, BF16 or F16) */

    /* Threads for compute (CPU: OpenMP and oneDNN). */
    void (*set_threads)(int n);
    int (*get_threads)(void);

    void (*op_destroy)(be_op *op);

    /* Convolution. weight (K, C, R, S), bias (K). */
    be_op *(*conv2d_create)(const be_conv_desc *d, dpt_layout layout);
    void (*conv2d_forward)(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *weight,
                           const dpt_tensor *bias);
    /* din may be NULL (first layer). dbias may be NULL. dweight NULL: din only (no weight or bias
     * gradient), as for linear_backward. */
    void (*conv2d_backward)(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dweight,
                            dpt_tensor *dbias, bool param_accumulate, const dpt_tensor *dout,
                            const dpt_tensor *in, const dpt_tensor *weight);

    /* BatchNorm (+ optional fused ReLU). gamma, beta, running stats, saved stats: (C). */
    be_op *(*batchnorm_create)(const be_bn_desc *d, dpt_layout layout);
    /* Training: batch statistics; saves the batch mean and (biased) variance for backward;
     * updates the running statistics. */
    void (*batchnorm_forward_train)(be_op *op, dpt_tensor *out, dpt_tensor *save_mean, dpt_tensor *save_var,
                                    dpt_tensor *running_mean, dpt_tensor *running_var, const dpt_tensor *in,
                                    const dpt_tensor *gamma, const dpt_tensor *beta);
    void (*batchnorm_forward_eval)(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *gamma,
                                   const dpt_tensor *beta, const dpt_tensor *running_mean,
                                   const dpt_tensor *running_var);
    /* `out` is the forward output (needed for the fused ReLU's mask). */
    void (*batchnorm_backward)(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dgamma,
                               dpt_tensor *dbeta, bool param_accumulate, const dpt_tensor *dout,
                               const dpt_tensor *in, const dpt_tensor *out, const dpt_tensor *gamma,
                               const dpt_tensor *beta, const dpt_tensor *save_mean,
                               const dpt_tensor *save_var);

    /* Pooling (windowed or global). */
    be_op *(*pool_create)(const be_pool_desc *d, dpt_layout layout);
    void (*pool_forward)(be_op *op, dpt_tensor *out, const dpt_tensor *in);
    void (*pool_backward)(be_op *op, dpt_tensor *din, bool accumulate, const dpt_tensor *dout,
                          const dpt_tensor *in, const dpt_tensor *out);

    /* Linear: out (N, OUT) = in (N, IN) x weight (OUT, IN)^T + bias (OUT). */
    be_op *(*linear_create)(const be_linear_desc *d);
    void (*linear_forward)(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *weight,
                           const dpt_tensor *bias);
    void (*linear_backward)(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dweight,
                            dpt_tensor *dbias, bool param_accumulate, const dpt_tensor *dout,
                            const dpt_tensor *in, const dpt_tensor *weight);

    /* Elementwise, on any layout (both operands share it). */
    void (*relu_forward)(dpt_tensor *out, const dpt_tensor *in);
    void (*relu_backward)(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *out);
    /* out = a + b, then ReLU if relu. */
    void (*add_forward)(dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, bool relu);
    /* da = db = dout masked by out > 0 when relu; each may accumulate independently. */
    void (*add_backward)(dpt_tensor *da, bool accumulate_a, dpt_tensor *db, bool accumulate_b,
                         const dpt_tensor *dout, const dpt_tensor *out, bool relu);
    void (*scale_forward)(dpt_tensor *out, const dpt_tensor *in, float alpha);
    void (*scale_backward)(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, float alpha);

    /* Softmax cross-entropy with label smoothing, fused with its gradient:
     * losses (N) per sample; dlogits = grad_scale * d(loss_i)/d(logits_i). labels: int32 (N). */
    void (*softmax_xent)(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits,
                         const dpt_tensor *labels, float smoothing, float grad_scale);
    /* Counts samples (first n rows) whose label is in the top-1 / top-5 logits. */
    void (*topk_correct)(int64_t *top1, int64_t *top5, const dpt_tensor *logits, const dpt_tensor *labels,
                         int n);

    /* SGD with momentum (PyTorch's form): g = s*grad + wd*w; v = mu*v + g;
     * w -= lr * (nesterov ? g + mu*v : v). */
    void (*sgd_update)(float *w, float *v, const float *grad, int64_t n, const be_sgd_args *a);
    /* Momentum with the lr inside the velocity (LARS; a->lr already holds lr * trust ratio):
     * g = s*grad + wd*w; v = mu*v + lr*g; w -= nesterov ? mu*v + lr*g : v. */
    void (*lars_update)(float *w, float *v, const float *grad, int64_t n, const be_sgd_args *a);
    /* Sum of x[i]^2, accumulated in double (LARS norms). */
    double (*sum_squares)(const float *x, int64_t n);

    /* ---- GAN ops (BigGAN, SAGAN): cpu_gan.c ----
     * 4-d activations take the back end's act_layout (the CPU: NHWC; upsampling also NCHW). */

    /* Nearest-neighbour 2x upsampling (N, C, H, W) -> (N, C, 2H, 2W); backward sums the four
     * children of each input pixel. */
    void (*upsample2x_forward)(dpt_tensor *out, const dpt_tensor *in);
    void (*upsample2x_backward)(dpt_tensor *din, bool accumulate, const dpt_tensor *dout);
    /* tanh, any layout; backward from the output: din = dout * (1 - out^2). */
    void (*tanh_forward)(dpt_tensor *out, const dpt_tensor *in);
    void (*tanh_backward)(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *out);
    /* Class embedding: out (N, D) = table (K, D)[labels (N) int32]. A label outside [0, K) is a
     * fatal error naming the sample. Backward adds each row of dout to its label's row of dtable
     * (rows hit twice add up), overwriting the rest of dtable unless param_accumulate. */
    void (*embedding_forward)(dpt_tensor *out, const dpt_tensor *table, const dpt_tensor *labels);
    void (*embedding_backward)(dpt_tensor *dtable, bool param_accumulate, const dpt_tensor *dout,
                               const dpt_tensor *labels);

    /* Conditional BatchNorm: batch statistics exactly as batchnorm (same desc, same running
     * statistics, same cross-replica reduction), but the affine transform is per sample:
     * out = xhat * gain (N, C) + bias (N, C), then ReLU if desc->relu. BigGAN's gain = 1 +
     * linear(z, y): the "1 +" is the caller's. dgain and dbias are activation gradients
     * (overwritten unless accumulate_gb); din follows `accumulate`. */
    be_op *(*cbn_create)(const be_bn_desc *d, dpt_layout layout);
    void (*cbn_forward_train)(be_op *op, dpt_tensor *out, dpt_tensor *save_mean, dpt_tensor *save_var,
                              dpt_tensor *running_mean, dpt_tensor *running_var, const dpt_tensor *in,
                              const dpt_tensor *gain, const dpt_tensor *bias);
    void (*cbn_forward_eval)(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *gain,
                             const dpt_tensor *bias, const dpt_tensor *running_mean, const dpt_tensor *running_var);
    void (*cbn_backward)(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dgain, dpt_tensor *dbias,
                         bool accumulate_gb, const dpt_tensor *dout, const dpt_tensor *in, const dpt_tensor *out,
                         const dpt_tensor *gain, const dpt_tensor *save_mean, const dpt_tensor *save_var);

    /* Spectral normalisation of w viewed as a (rows, cols) matrix (rows = output channels), as
     * torch.nn.utils.spectral_norm: `power_iterations` times v = normalize(w^T u),
     * u = normalize(w v), with normalize(x) = x / max(|x|, eps); then sigma = u^T w v and
     * w_sn = w / sigma. u (rows) and v (cols) are persistent buffers updated in place; v is
     * stored rather than recomputed because backward and evaluation need the v of the last
     * training step, which w^T u no longer gives once u has moved. power_iterations = 0 is the
     * evaluation form: stored u and v, no update. *sigma receives sigma. */
    void (*spectral_norm_forward)(float *w_sn, float *u, float *v, float *sigma, const float *w, int rows, int cols,
                                  int power_iterations, float eps);
    /* Gradient through sigma with u, v constants (PyTorch's):
     * dw (+)= (dw_sn - sum(dw_sn * w_sn) * u v^T) / sigma, with w_sn = w / sigma. */
    void (*spectral_norm_backward)(float *dw, bool param_accumulate, const float *dw_sn, const float *w,
                                   const float *u, const float *v, float sigma, int rows, int cols);

    /* Batched matrix product (self-attention): out (B, M, N) = op(a[b]) x op(b[b]), with a stored
     * (B, M, K), or (B, K, M) when trans_a; b stored (B, K, N), or (B, N, K) when trans_b. Each
     * gradient may be NULL and accumulates independently. */
    void (*bmm_forward)(dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, bool trans_a, bool trans_b);
    void (*bmm_backward)(dpt_tensor *da, bool accumulate_a, dpt_tensor *db, bool accumulate_b,
                         const dpt_tensor *dout, const dpt_tensor *a, const dpt_tensor *b, bool trans_a,
                         bool trans_b);
    /* Softmax over the last dimension (numerically stable); backward from the output. */
    void (*softmax_rows_forward)(dpt_tensor *out, const dpt_tensor *in);
    void (*softmax_rows_backward)(dpt_tensor *din, bool accumulate, const dpt_tensor *dout, const dpt_tensor *out);

    /* Hinge losses (N), fused with their gradient like softmax_xent:
     * discriminator: loss_i = max(0, 1 - sign * d_i) (sign +1 for real, -1 for fake samples);
     * generator:     loss_i = -d_i.
     * dlogits = grad_scale * d(loss_i)/d(d_i); at the kink (1 - sign * d = 0) the gradient is 0,
     * as PyTorch's relu'(0). The mean over the batch is the caller's grad_scale (1 / batch). */
    void (*hinge_d)(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits, float sign,
                    float grad_scale);
    void (*hinge_g)(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits, float grad_scale);

    void (*adam_update)(float *w, float *m, float *v, const float *grad, int64_t n, const be_adam_args *a);
    /* Exponential moving average of the generator's weights: ema = decay * ema + (1 - decay) * w. */
    void (*ema_update)(float *ema, const float *w, int64_t n, float decay);
    /* BigGAN's off-diagonal orthogonal regularisation of w (rows, cols), with M = (w w^T) * (1 - I):
     * adds strength * 2 M w to dw and returns the penalty (strength / 2) * |M|_F^2, of which that is
     * the exact gradient. This is BigGAN-PyTorch's update (utils.ortho) for its G_ortho/D_ortho
     * value as strength. work: caller's scratch of rows * rows floats. */
    double (*ortho_reg)(float *dw, float *work, const float *w, int rows, int cols, float strength);

    /* out = in + c, any layout (BigGAN's conditional gain, 1 + linear(y)). Its backward is the
     * identity: scale_backward with alpha 1. */
    void (*add_scalar_forward)(dpt_tensor *out, const dpt_tensor *in, float c);
    /* Residual with a learnable scalar (SAGAN's attention output): out = a + gamma * b, any layout
     * (a, b, out alike), gamma a 1-element tensor on the device. Backward: da = dout,
     * db = gamma * dout (each may be NULL and accumulates independently), dgamma = sum(dout * b)
     * (summed in double), added to dgamma when param_accumulate. */
    void (*scaled_add_forward)(dpt_tensor *out, const dpt_tensor *a, const dpt_tensor *b, const dpt_tensor *gamma);
    void (*scaled_add_backward)(dpt_tensor *da, bool accumulate_a, dpt_tensor *db, bool accumulate_b,
                                dpt_tensor *dgamma, bool param_accumulate, const dpt_tensor *dout,
                                const dpt_tensor *b, const dpt_tensor *gamma);
    /* A block of columns between row-major matrices with the same number of rows (concat and slice
     * of (N, F) features): dst[:, dst_col + j] = (or += when accumulate) src[:, src_col + j] for
     * j < count. dst and src: 2-d (rows, cols) tensors; columns outside the block are untouched. */
    void (*copy_cols)(dpt_tensor *dst, int64_t dst_col, const dpt_tensor *src, int64_t src_col, int64_t count,
                      bool accumulate);

    /* Memory: device buffers for arenas; copies between host and device. */
    void *(*mem_alloc)(size_t bytes);
    void (*mem_free)(void *p);
    void (*copy_to_device)(void *dst, const void *src, size_t bytes);
    void (*copy_to_host)(void *dst, const void *src, size_t bytes);
    void (*fill_zero)(void *dst, size_t bytes);
    /* Page-locked host memory for buffers the device copies from (the loader's batches), whose
     * copies run at full bus speed; NULL on the CPU (plain memory serves). */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
    /* dst = src converted between float32 and the activation dtype (either way, same numel,
     * both on the device; equal dtypes: a copy). Graph inputs arrive as float32 from the host. */
    void (*convert)(dpt_tensor *dst, const dpt_tensor *src);
    /* 1 when every value of x[0..n) (float32, on the device) is finite, else 0: the dynamic loss
     * scaler's overflow test over the gradient arena. */
    int (*all_finite)(const float *x, int64_t n);
    /* Waits for the device's queued work (a no-op on the CPU): timers around a phase call it. */
    void (*synchronize)(void);
} dpt_backend;

const dpt_backend *backend_cpu(void);

/* "CPU: oneDNN 2.6.3 (avx512_core), OpenMP" style, for `dptrain info` and the run banner. */
const char *backend_cpu_describe(void);

/* Output size of a convolution or pooling window. */
static inline int be_out_size(int in, int kernel, int stride, int pad) {
    return (in + 2 * pad - kernel) / stride + 1;
}

#endif
