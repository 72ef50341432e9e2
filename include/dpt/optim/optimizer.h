/* Optimizers over a graph's parameters. State (the velocity) lives in one arena laid out like
 * the parameters. Weight decay is added to the gradient, except for BatchNorm parameters and
 * biases unless optim.decay_bn_bias (Goyal et al.).
 *   sgd:  PyTorch's momentum SGD, optional Nesterov:  g = s*grad + wd*w;  v = mu*v + g;
 *         w -= lr * (nesterov ? g + mu*v : v)
 *   lars: You et al. 2017, in the form of MLPerf's reference: per parameter tensor a trust ratio
 *         t = eta * |w| / (|s*grad| + wd*|w| + eps) (1 when |w| or |grad| is 0, and for BN
 *         parameters and biases when optim.lars_exclude_bn_bias); then  g = s*grad + wd*w;
 *         v = mu*v + lr*t*g;  w -= nesterov ? mu*v + lr*t*g : v. The lr sits inside the velocity
 *         because t changes every step. */
#ifndef DPT_OPTIM_OPTIMIZER_H
#define DPT_OPTIM_OPTIMIZER_H

#include "dpt/core/config.h"
#include "dpt/nn/graph.h"

typedef enum opt_kind { OPT_SGD = 0, OPT_LARS } opt_kind;

typedef struct dpt_optimizer {
    opt_kind kind;
    float *velocity; /* like the parameter arena */
    size_t bytes;
    float weight_decay;
    bool nesterov;
    bool decay_bn_bias;
    float lars_trust, lars_eps;
    bool lars_exclude_bn_bias;
    float *trust; /* LARS: each parameter's trust ratio at the last step (one per parameter) */
    const dpt_backend *be;
} dpt_optimizer;

void optimizer_init(dpt_optimizer *o, const nn_graph *g, const dpt_config *cfg);
void optimizer_free(dpt_optimizer *o);
/* One update of every parameter. grad_scale multiplies every gradient first (1 when the loss
 * already averages). */
void optimizer_step(dpt_optimizer *o, nn_graph *g, float lr, float momentum, float grad_scale);
/* The weight decay a parameter receives. */
float optimizer_param_decay(const dpt_optimizer *o, const nn_param *p);
/* LARS: whether the parameter's step is scaled by its trust ratio. */
bool optimizer_lars_adapts(const dpt_optimizer *o, const nn_param *p);

#endif
