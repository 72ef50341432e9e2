#include "dpt/optim/optimizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void optimizer_init(dpt_optimizer *o, const nn_graph *g, const dpt_config *cfg) {
    memset(o, 0, sizeof *o);
    o->kind = strcmp(cfg->optim.name, "lars") == 0 ? OPT_LARS : OPT_SGD;
    o->be = g->be;
    o->bytes = g->param_arena.size;
    o->velocity = g->be->mem_alloc(o->bytes);
    g->be->fill_zero(o->velocity, o->bytes);
    o->weight_decay = (float)cfg->optim.weight_decay;
    o->nesterov = cfg->optim.nesterov;
    o->decay_bn_bias = cfg->optim.decay_bn_bias;
    o->lars_trust = (float)cfg->optim.lars_trust;
    o->lars_eps = (float)cfg->optim.lars_eps;
    o->lars_exclude_bn_bias = cfg->optim.lars_exclude_bn_bias;
    o->trust = dpt_xcalloc((size_t)g->nparams, sizeof(float));
    for (int i = 0; i < g->nparams; i++) o->trust[i] = 1.0f;
}

void optimizer_free(dpt_optimizer *o) {
    if (o->velocity) o->be->mem_free(o->velocity);
    free(o->trust);
    o->velocity = NULL;
    o->trust = NULL;
}

float optimizer_param_decay(const dpt_optimizer *o, const nn_param *p) {
    return p->no_decay && !o->decay_bn_bias ? 0.0f : o->weight_decay;
}

bool optimizer_lars_adapts(const dpt_optimizer *o, const nn_param *p) {
    return o->kind == OPT_LARS && !(p->no_decay && o->lars_exclude_bn_bias);
}

void optimizer_step(dpt_optimizer *o, nn_graph *g, float lr, float momentum, float grad_scale) {
    const dpt_backend *be = o->be;
    for (int i = 0; i < g->nparams; i++) {
        nn_param *p = &g->params[i];
        be_sgd_args a = {.lr = lr,
                         .momentum = momentum,
                         .weight_decay = optimizer_param_decay(o, p),
                         .nesterov = o->nesterov,
                         .grad_scale = grad_scale};
        float *v = (float *)((char *)o->velocity + p->offset);
        if (o->kind == OPT_SGD) {
            be->sgd_update(p->value.data, v, p->grad.data, p->numel, &a);
            continue;
        }
        float t = 1.0f;
        if (optimizer_lars_adapts(o, p)) {
            double wn = sqrt(be->sum_squares(p->value.data, p->numel));
            double gn = fabs((double)grad_scale) * sqrt(be->sum_squares(p->grad.data, p->numel));
            if (wn > 0.0 && gn > 0.0)
                t = (float)(o->lars_trust * wn / (gn + (double)a.weight_decay * wn + (double)o->lars_eps));
        }
        o->trust[i] = t;
        a.lr = lr * t;
        be->lars_update(p->value.data, v, p->grad.data, p->numel, &a);
    }
}
