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

#endif
