/* Graph bookkeeping: creation, scopes, registration of values, parameters and buffers,
 * initialisation, queries. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/rng.h"
#include "graph_internal.h"

#define GROW(arr, count, cap)                                          \
    do {                                                               \
        if ((count) == (cap)) {                                        \
            (cap) = (cap) ? 2 * (cap) : 64;                            \
            (arr) = dpt_xrealloc((arr), (size_t)(cap) * sizeof *(arr)); \
        }                                                              \
    } while (0)

nn_graph *nn_graph_create(const dpt_backend *be, int batch) {
    nn_graph *g = dpt_xcalloc(1, sizeof *g);
    g->be = be;
    g->batch = batch;
    g->layout = be->act_layout;
    g->act_dtype = be->act_dtype;
    g->input = g->logits = -1;
    g->sn_iterations = 1;
    g->sn_eps = 1e-12f;
    arena_init(&g->param_arena, "parameters");
    arena_init(&g->grad_arena, "gradients");
    arena_init(&g->buffer_arena, "buffers");
    arena_init(&g->act_arena, "activations");
    return g;
}

void nn_graph_set_bn_reduce(nn_graph *g, be_reduce reduce) {
    DPT_CHECK(!g->finalized);
    g->bn_reduce = reduce;
}

void nn_graph_set_sn(nn_graph *g, int power_iterations, float eps) {
    DPT_CHECK(power_iterations >= 0 && eps > 0.0f);
    g->sn_iterations = power_iterations;
    g->sn_eps = eps;
}

void nn_graph_destroy(nn_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op) g->be->op_destroy(g->nodes[i].op);
    if (g->finalized) {
        g->be->mem_free(g->param_arena.base);
        g->be->mem_free(g->grad_arena.base);
        g->be->mem_free(g->buffer_arena.base);
        g->be->mem_free(g->act_arena.base);
        if (g->labels_dev) g->be->mem_free(g->labels_dev);
        if (g->stage) g->be->mem_free(g->stage);
    }
    free(g->losses_host);
    free(g->t_fwd);
    free(g->t_bwd);
    free(g->nodes);
    free(g->values);
    free(g->params);
    free(g->buffers);
    free(g);
}

void nn_scope_push(nn_graph *g, const char *name) {
    DPT_CHECK(g->scope_depth < 16);
    size_t len = strlen(g->scope);
    g->scope_len[g->scope_depth++] = (int)len;
    snprintf(g->scope + len, sizeof g->scope - len, "%s%s", len ? "." : "", name);
}

void nn_scope_pop(nn_graph *g) {
    DPT_CHECK(g->scope_depth > 0);
    g->scope[g->scope_len[--g->scope_depth]] = '\0';
}

void nn_scoped_name(const nn_graph *g, const char *name, char *out, size_t size) {
    int n;
    if (g->scope[0] && name && name[0]) n = snprintf(out, size, "%s.%s", g->scope, name);
    else if (name && name[0]) n = snprintf(out, size, "%s", name);
    else n = snprintf(out, size, "%s", g->scope);
    DPT_CHECK_LIB("nn", n >= 0 && (size_t)n < size, name ? name : "", "layer name longer than %zu characters", size - 1);
}

int nn_add_value(nn_graph *g, int producer, int64_t n, int64_t c, int64_t h, int64_t w) {
    dpt_tensor t = tensor_4d(NULL, g->act_dtype, n, c, h, w, g->layout);
    return nn_add_value_t(g, producer, &t);
}

int nn_add_value_t(nn_graph *g, int producer, const dpt_tensor *shape) {
    GROW(g->values, g->nvalues, g->cap_values);
    nn_value *v = &g->values[g->nvalues];
    memset(v, 0, sizeof *v);
    v->t = *shape;
    v->t.data = NULL;
    v->t.device = g->be->device;
    v->grad = v->t;
    v->producer = producer;
    return g->nvalues++;
}

int nn_add_node(nn_graph *g, nn_op_kind kind, const char *name, int in0, int in1) {
    DPT_CHECK(!g->finalized);
    GROW(g->nodes, g->nnodes, g->cap_nodes);
    nn_node *nd = &g->nodes[g->nnodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nn_scoped_name(g, name, nd->name, sizeof nd->name);
    nd->in[0] = in0;
    nd->in[1] = in1;
    nd->in[2] = -1;
    nd->nin = (in0 >= 0) + (in1 >= 0);
    nd->out = -1;
    nd->saved[0] = nd->saved[1] = -1;
    return g->nnodes++;
}

int nn_add_param(nn_graph *g, int node, const char *leaf, int ndim, const int64_t *shape, nn_init init,
                 bool no_decay, int fan_in, int fan_out) {
    GROW(g->params, g->nparams, g->cap_params);
    nn_param *p = &g->params[g->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", g->nodes[node].name, leaf);
    p->value = tensor_make(NULL, DT_F32, ndim, shape, LAYOUT_NCHW);
    p->value.device = g->be->device;
    p->grad = p->value;
    p->numel = tensor_numel(&p->value);
    p->init = init;
    p->no_decay = no_decay;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    p->node = node;
    nn_node *nd = &g->nodes[node];
    nd->param[nd->nparam++] = g->nparams;
    return g->nparams++;
}

int nn_add_buffer(nn_graph *g, const char *prefix, const char *leaf, int64_t c, float init_value) {
    GROW(g->buffers, g->nbuffers, g->cap_buffers);
    nn_buffer *b = &g->buffers[g->nbuffers];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s.%s", prefix, leaf);
    b->value = tensor_1d(NULL, DT_F32, c);
    b->value.device = g->be->device;
    b->numel = c;
    b->init_value = init_value;
    return g->nbuffers++;
}

/* A constant, or a random unit vector keyed by (seed, name) like a parameter (PyTorch draws
 * spectral norm's u and v as normalised Gaussians). */
static void init_buffer(nn_graph *g, nn_buffer *b, uint64_t seed) {
    float *host = dpt_xmalloc((size_t)b->numel * sizeof(float));
    const uint32_t key = rng_hash_name(b->name);
    double sq = 0.0;
    for (int64_t j = 0; j < b->numel; j++) {
        if (!b->unit_random) {
            host[j] = b->init_value;
            continue;
        }
        uint32_t r[4];
        rng_block(seed, RNG_PARAM_INIT, (uint64_t)j, key, r);
        host[j] = rng_normal(r[0], r[1]);
        sq += (double)host[j] * host[j];
    }
    if (b->unit_random)
        for (int64_t j = 0; j < b->numel; j++) host[j] = (float)(host[j] / sqrt(sq));
    g->be->copy_to_device(b->value.data, host, (size_t)b->numel * sizeof(float));
    free(host);
}

void nn_init_params(nn_graph *g, uint64_t seed) {
    DPT_CHECK(g->finalized);
    for (int i = 0; i < g->nparams; i++) {
        nn_param *p = &g->params[i];
        float *host = dpt_xmalloc((size_t)p->numel * sizeof(float));
        uint32_t key = rng_hash_name(p->name);
        for (int64_t j = 0; j < p->numel; j++) {
            uint32_t r[4];
            switch (p->init) {
            case INIT_ZEROS: host[j] = 0.0f; break;
            case INIT_ONES: host[j] = 1.0f; break;
            case INIT_KAIMING_NORMAL_FAN_OUT:
                rng_block(seed, RNG_PARAM_INIT, (uint64_t)j, key, r);
                host[j] = rng_normal(r[0], r[1]) * sqrtf(2.0f / (float)p->fan_out);
                break;
            case INIT_UNIFORM_FAN_IN:
                rng_block(seed, RNG_PARAM_INIT, (uint64_t)j, key, r);
                host[j] = (2.0f * rng_u01(r[0]) - 1.0f) / sqrtf((float)p->fan_in);
                break;
            case INIT_NORMAL_002:
                rng_block(seed, RNG_PARAM_INIT, (uint64_t)j, key, r);
                host[j] = 0.02f * rng_normal(r[0], r[1]);
                break;
            }
        }
        g->be->copy_to_device(p->value.data, host, (size_t)p->numel * sizeof(float));
        free(host);
    }
    for (int i = 0; i < g->nbuffers; i++) init_buffer(g, &g->buffers[i], seed);
}

int64_t nn_param_count(const nn_graph *g) {
    int64_t n = 0;
    for (int i = 0; i < g->nparams; i++) n += g->params[i].numel;
    return n;
}

const dpt_tensor *nn_value_tensor(const nn_graph *g, int v) { return &g->values[v].t; }
const dpt_tensor *nn_value_grad(const nn_graph *g, int v) { return &g->values[v].grad; }

int nn_find_param(const nn_graph *g, const char *name) {
    for (int i = 0; i < g->nparams; i++)
        if (strcmp(g->params[i].name, name) == 0) return i;
    return -1;
}

int nn_find_buffer(const nn_graph *g, const char *name) {
    for (int i = 0; i < g->nbuffers; i++)
        if (strcmp(g->buffers[i].name, name) == 0) return i;
    return -1;
}

static const char *const kind_names[NN_KIND_COUNT] = {
    "input", "conv", "batchnorm", "relu", "pool", "linear", "add", "scale", "upsample2x", "tanh", "embedding",
    "concat", "slice", "view", "cbn", "add_scalar", "bmm", "softmax", "scaled_add"};

static const char *kind_name(const nn_node *nd) {
    switch (nd->kind) {
    case NN_INPUT: return "input";
    case NN_CONV: return nd->sn.on ? "conv+sn" : "conv";
    case NN_BATCHNORM: return nd->a.bn.relu ? "bn+relu" : "bn";
    case NN_RELU: return "relu";
    case NN_POOL:
        if (nd->a.pool.kernel == 0) return nd->a.pool.kind == POOL_MAX ? "global max pool" : "global avg pool";
        return nd->a.pool.kind == POOL_MAX ? "max pool" : "avg pool";
    case NN_LINEAR: return nd->sn.on ? "linear+sn" : "linear";
    case NN_ADD: return nd->a.add.relu ? "add+relu" : "add";
    case NN_EMBEDDING: return nd->sn.on ? "embedding+sn" : "embedding";
    case NN_CBN: return nd->a.bn.relu ? "cbn+relu" : "cbn";
    case NN_BMM: return nd->a.bmm.rowdot ? "rowdot" : "bmm";
    default: return kind_names[nd->kind];
    }
}

void nn_graph_profile(nn_graph *g, bool on) {
    g->profile = on;
    if (on && !g->t_fwd) {
        g->t_fwd = dpt_xcalloc((size_t)g->nnodes, sizeof(double));
        g->t_bwd = dpt_xcalloc((size_t)g->nnodes, sizeof(double));
    }
}

void nn_graph_profile_report(const nn_graph *g, void (*print)(const char *fmt, ...)) {
    if (!g->t_fwd || g->prof_steps == 0) return;
    const double per = 1e3 / (double)g->prof_steps;
    int *order = dpt_xmalloc((size_t)g->nnodes * sizeof(int));
    for (int i = 0; i < g->nnodes; i++) order[i] = i;
    for (int i = 1; i < g->nnodes; i++) /* insertion sort by total time, slowest first */
        for (int j = i; j > 0 && g->t_fwd[order[j]] + g->t_bwd[order[j]] > g->t_fwd[order[j - 1]] + g->t_bwd[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    double total = 0.0, by_kind_f[NN_KIND_COUNT] = {0}, by_kind_b[NN_KIND_COUNT] = {0};
    for (int i = 0; i < g->nnodes; i++) {
        total += g->t_fwd[i] + g->t_bwd[i];
        by_kind_f[g->nodes[i].kind] += g->t_fwd[i];
        by_kind_b[g->nodes[i].kind] += g->t_bwd[i];
    }
    print("per-layer time per step (ms), %lld steps:", (long long)g->prof_steps);
    print("  %-4s %-28s %-16s %-20s %9s %9s %6s", "#", "layer", "op", "output (N,C,H,W)", "forward", "backward", "share");
    for (int k = 0; k < g->nnodes; k++) {
        int i = order[k];
        const nn_node *nd = &g->nodes[i];
        if (nd->kind == NN_INPUT) continue;
        char shape[64];
        tensor_shape_str(&g->values[nd->out].t, shape, sizeof shape);
        print("  %-4d %-28s %-16s %-20s %9.3f %9.3f %5.1f%%", i, nd->name[0] ? nd->name : "-", kind_name(nd), shape,
              per * g->t_fwd[i], per * g->t_bwd[i], total > 0 ? 100.0 * (g->t_fwd[i] + g->t_bwd[i]) / total : 0.0);
    }
    for (int k = 1; k < NN_KIND_COUNT; k++)
        if (by_kind_f[k] + by_kind_b[k] > 0)
            print("  total %-10s forward %9.3f backward %9.3f  (%.1f%%)", kind_names[k], per * by_kind_f[k], per * by_kind_b[k],
                  100.0 * (by_kind_f[k] + by_kind_b[k]) / total);
    free(order);
}

void nn_graph_summary(const nn_graph *g, void (*print)(const char *fmt, ...)) {
    print("%-4s %-28s %-16s %-20s %12s", "#", "layer", "op", "output (N,C,H,W)", "params");
    for (int i = 0; i < g->nnodes; i++) {
        const nn_node *nd = &g->nodes[i];
        const dpt_tensor *t = &g->values[nd->out].t;
        int64_t np = 0;
        for (int k = 0; k < nd->nparam; k++) np += g->params[nd->param[k]].numel;
        char shape[64];
        tensor_shape_str(t, shape, sizeof shape);
        print("%-4d %-28s %-16s %-20s %12lld", i, nd->name[0] ? nd->name : "-", kind_name(nd), shape,
              (long long)np);
    }
    print("parameters: %lld in %d tensors; buffers: %d tensors", (long long)nn_param_count(g), g->nparams,
          g->nbuffers);
}
