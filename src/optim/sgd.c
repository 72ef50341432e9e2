#include "dpt/optim/sgd.h"

void sgd_init(dpt_sgd *o, const nn_graph *g, const dpt_config *cfg) {
    o->be = g->be;
    o->bytes = g->param_arena.size;
    o->velocity = g->be->mem_alloc(o->bytes);
    g->be->fill_zero(o->velocity, o->bytes);
    o->weight_decay = (float)cfg->optim.weight_decay;
    o->nesterov = cfg->optim.nesterov;
    o->decay_bn_bias = cfg->optim.decay_bn_bias;
}

void sgd_free(dpt_sgd *o) {
    if (o->velocity) o->be->mem_free(o->velocity);
    o->velocity = NULL;
}

float sgd_param_decay(const dpt_sgd *o, const nn_param *p) {
    return p->no_decay && !o->decay_bn_bias ? 0.0f : o->weight_decay;
}

void sgd_step(dpt_sgd *o, nn_graph *g, float lr, float momentum, float grad_scale) {
    for (int i = 0; i < g->nparams; i++) {
        nn_param *p = &g->params[i];
        be_sgd_args a = {.lr = lr,
                         .momentum = momentum,
                         .weight_decay = sgd_param_decay(o, p),
                         .nesterov = o->nesterov,
                         .grad_scale = grad_scale};
        float *v = (float *)((char *)o->velocity + p->offset);
        o->be->sgd_update(p->value.data, v, p->grad.data, p->numel, &a);
    }
}
