/* Scalar math shared by the CPU and CUDA back ends: both run these exact functions. */
#ifndef DPT_BACKEND_MATH_H
#define DPT_BACKEND_MATH_H

#include <math.h>

#include "dpt/core/common.h"

DPT_HD static inline float math_relu(float x) { return x > 0.0f ? x : 0.0f; }

/* One SGD element, PyTorch's form: g = s*grad + wd*w; v = mu*v + g;
 * w -= lr * (nesterov ? g + mu*v : v). */
DPT_HD static inline void math_sgd(float *w, float *v, float grad, float s, float lr, float mu, float wd,
                                   bool nesterov) {
    float g = s * grad + wd * (*w);
    float vn = mu * (*v) + g;
    *v = vn;
    *w -= lr * (nesterov ? g + mu * vn : vn);
}

DPT_HD static inline void math_lars(float *w, float *v, float grad, float s, float lr, float mu, float wd,
                                    bool nesterov) {
    float g = lr * (s * grad + wd * (*w));
    float vn = mu * (*v) + g;
    *v = vn;
    *w -= nesterov ? mu * vn + g : vn;
}

/* Softmax cross-entropy of one row with label smoothing eps over k classes:
 * target q = (1 - eps) * onehot(label) + eps / k. Writes dlogits = scale * (softmax - q) and
 * returns the loss -sum(q * log softmax). */
DPT_HD static inline float math_softmax_xent_row(float *dlogits, const float *logits, int k, int label,
                                                 float eps, float scale) {
    float mx = logits[0];
    for (int j = 1; j < k; j++) mx = logits[j] > mx ? logits[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j < k; j++) sum += expf(logits[j] - mx);
    float lse = mx + logf(sum);
    float off = eps / (float)k, on = 1.0f - eps + off;
    float loss = 0.0f;
    for (int j = 0; j < k; j++) {
        float logp = logits[j] - lse;
        float q = j == label ? on : off;
        loss -= q * logp;
        if (dlogits) dlogits[j] = scale * (expf(logp) - q);
    }
    return loss;
}

/* ---- GAN ops ---- */

/* tanh's gradient from its output y: dy * (1 - y^2). */
DPT_HD static inline float math_tanh_grad(float dy, float y) { return dy * (1.0f - y * y); }

/* Discriminator hinge loss of one output d for a sample of sign s (+1 real, -1 fake):
 * returns max(0, 1 - s*d) and writes *grad = scale * dloss/dd, which is 0 at the kink
 * (1 - s*d == 0), as PyTorch's relu'(0) = 0. */
DPT_HD static inline float math_hinge_d(float *grad, float d, float s, float scale) {
    float margin = 1.0f - s * d;
    *grad = margin > 0.0f ? -s * scale : 0.0f;
    return margin > 0.0f ? margin : 0.0f;
}

/* One Adam element, torch.optim.Adam's arithmetic: step_size = lr / (1 - b1^t) and
 * bc2_sqrt = sqrt(1 - b2^t) are computed once per update in double by the caller. */
DPT_HD static inline void math_adam(float *w, float *m, float *v, float grad, float s, float wd, float b1, float b2,
                                    float eps, float step_size, float bc2_sqrt) {
    float g = s * grad + wd * (*w);
    float mn = b1 * (*m) + (1.0f - b1) * g;
    float vn = b2 * (*v) + (1.0f - b2) * g * g;
    *m = mn;
    *v = vn;
    *w -= step_size * mn / (sqrtf(vn) / bc2_sqrt + eps);
}

#endif
