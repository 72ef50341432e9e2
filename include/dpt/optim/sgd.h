/* SGD with momentum (PyTorch's form, optional Nesterov). Weight decay is added to the gradient,
 * except for BatchNorm parameters and biases unless optim.decay_bn_bias. The velocity lives in
 * one arena laid out like the parameters. */
#ifndef DPT_OPTIM_SGD_H
#define DPT_OPTIM_SGD_H

#include "dpt/core/config.h"
#include "dpt/nn/graph.h"

typedef struct dpt_sgd {
    float *velocity; /* like the parameter arena */
    size_t bytes;
    float weight_decay;
    bool nesterov;
    bool decay_bn_bias;
    const dpt_backend *be;
} dpt_sgd;

void sgd_init(dpt_sgd *o, const nn_graph *g, const dpt_config *cfg);
void sgd_free(dpt_sgd *o);
/* grad_scale multiplies every gradient first (1 when the loss already averages). */
void sgd_step(dpt_sgd *o, nn_graph *g, float lr, float momentum, float grad_scale);
/* The weight decay a parameter receives. */
float sgd_param_decay(const dpt_sgd *o, const nn_param *p);

#endif
