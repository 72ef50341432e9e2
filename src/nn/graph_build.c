/* Layer constructors (they only record nodes) and finalize (memory plan, back-end ops). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/log.h"
#include "graph_internal.h"

static const dpt_tensor *shape_of(const nn_graph *g, int v) { return &g->values[v].t; }

int nn_finish_node(nn_graph *g, int node, int64_t c, int64_t h, int64_t w) {
    int out = nn_add_value(g, node, g->batch, c, h, w);
    g->nodes[node].out = out;
    return out;
}

bool nn_is_2d(const dpt_tensor *t) {
    return nn_is_float(t) && (t->ndim == 2 || (t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1));
}

int nn_input(nn_graph *g, int c, int h, int w) {
    DPT_CHECK_LIB("nn", g->input < 0, "nn_input", "the graph already has an image input");
    int node = nn_add_node(g, NN_INPUT, "input", -1, -1);
    g->input = nn_finish_node(g, node, c, h, w);
    return g->input;
}

int nn_input_vec(nn_graph *g, const char *name, int features) {
    DPT_CHECK_LIB("nn", features > 0, name, "an input needs at least one feature (got %d)", features);
    int node = nn_add_node(g, NN_INPUT, name, -1, -1);
    return nn_finish_node(g, node, features, 1, 1);
}

int nn_input_labels(nn_graph *g, const char *name) {
    int node = nn_add_node(g, NN_INPUT, name, -1, -1);
    dpt_tensor t = tensor_1d(NULL, DT_I32, g->batch);
    int out = nn_add_value_t(g, node, &t);
    g->nodes[node].out = out;
    return out;
}

void nn_input_requires_grad(nn_graph *g, int value) {
    DPT_CHECK(!g->finalized && value >= 0 && value < g->nvalues);
    nn_value *v = &g->values[value];
    DPT_CHECK_LIB("nn", g->nodes[v->producer].kind == NN_INPUT && nn_is_float(&v->t),
                  g->nodes[v->producer].name, "only a float input can require a gradient");
    v->requires_grad = true;
}

int nn_conv2d(nn_graph *g, const char *name, int x, int out_channels, int kernel, int stride, int pad, bool bias) {
    const dpt_tensor *s = shape_of(g, x);
    int node = nn_add_node(g, NN_CONV, name, x, -1);
    be_conv_desc *d = &g->nodes[node].a.conv;
    d->n = (int)s->shape[0];
    d->c = (int)s->shape[1];
    d->h = (int)s->shape[2];
    d->w = (int)s->shape[3];
    d->k = out_channels;
    d->r = d->s = kernel;
    d->stride = stride;
    d->pad = pad;
    d->oh = be_out_size(d->h, kernel, stride, pad);
    d->ow = be_out_size(d->w, kernel, stride, pad);
    d->bias = bias;
    DPT_CHECK_LIB("nn", d->oh > 0 && d->ow > 0, name, "convolution output would be empty (input %dx%d)", d->h, d->w);
    int64_t wshape[4] = {out_channels, d->c, kernel, kernel};
    nn_add_param(g, node, "weight", 4, wshape, INIT_KAIMING_NORMAL_FAN_OUT, false, d->c * kernel * kernel,
                 out_channels * kernel * kernel);
    if (bias) {
        int64_t bshape[1] = {out_channels};
        nn_add_param(g, node, "bias", 1, bshape, INIT_ZEROS, true, d->c * kernel * kernel, out_channels);
    }
    return nn_finish_node(g, node, out_channels, d->oh, d->ow);
}

int nn_norm_finish(nn_graph *g, int node, int x, bool relu) {
    const dpt_tensor s = *shape_of(g, x);
    DPT_CHECK_LIB("nn", s.ndim == 4 && nn_is_float(&s), g->nodes[node].name, "normalisation of a non-image value");
    nn_node *nd = &g->nodes[node];
    be_bn_desc *d = &nd->a.bn;
    d->n = (int)s.shape[0];
    d->c = (int)s.shape[1];
    d->h = (int)s.shape[2];
    d->w = (int)s.shape[3];
    d->eps = 1e-5f;     /* PyTorch's defaults (and BigGAN-PyTorch's ccbn's) */
    d->momentum = 0.1f;
    d->relu = relu;
    int c = d->c;
    nd->buffer[0] = nn_add_buffer(g, nd->name, "running_mean", c, 0.0f);
    nd->buffer[1] = nn_add_buffer(g, nd->name, "running_var", c, 1.0f);
    nd->nbuffer = 2;
    int out = nn_finish_node(g, node, c, s.shape[2], s.shape[3]);
    /* Batch statistics saved for backward: float32 in every precision, as the statistics are. */
    const dpt_tensor st = tensor_1d(NULL, DT_F32, c);
    int m = nn_add_value_t(g, node, &st), v = nn_add_value_t(g, node, &st);
    g->nodes[node].saved[0] = m;
    g->nodes[node].saved[1] = v;
    return out;
}

int nn_batchnorm(nn_graph *g, const char *name, int x, bool relu, bool zero_gamma) {
    int64_t cshape[1] = {shape_of(g, x)->shape[1]};
    int node = nn_add_node(g, NN_BATCHNORM, name, x, -1);
    nn_add_param(g, node, "weight", 1, cshape, zero_gamma ? INIT_ZEROS : INIT_ONES, true, 1, 1);
    nn_add_param(g, node, "bias", 1, cshape, INIT_ZEROS, true, 1, 1);
    return nn_norm_finish(g, node, x, relu);
}

int nn_relu(nn_graph *g, int x) {
    const dpt_tensor *s = shape_of(g, x);
    int node = nn_add_node(g, NN_RELU, "", x, -1);
    return nn_finish_node(g, node, s->shape[1], s->shape[2], s->shape[3]);
}

static int pool(nn_graph *g, int x, be_pool_kind kind, int kernel, int stride, int pad) {
    const dpt_tensor *s = shape_of(g, x);
    int node = nn_add_node(g, NN_POOL, "", x, -1);
    be_pool_desc *d = &g->nodes[node].a.pool;
    d->n = (int)s->shape[0];
    d->c = (int)s->shape[1];
    d->h = (int)s->shape[2];
    d->w = (int)s->shape[3];
    d->kind = kind;
    d->kernel = kernel;
    d->stride = stride;
    d->pad = pad;
    d->oh = kernel ? be_out_size(d->h, kernel, stride, pad) : 1;
    d->ow = kernel ? be_out_size(d->w, kernel, stride, pad) : 1;
    DPT_CHECK_LIB("nn", d->oh > 0 && d->ow > 0, "pool", "pooling output would be empty (input %dx%d)", d->h, d->w);
    return nn_finish_node(g, node, d->c, d->oh, d->ow);
}

int nn_maxpool(nn_graph *g, int x, int kernel, int stride, int pad) { return pool(g, x, POOL_MAX, kernel, stride, pad); }
int nn_avgpool(nn_graph *g, int x, int kernel, int stride, int pad) { return pool(g, x, POOL_AVG, kernel, stride, pad); }
int nn_global_pool(nn_graph *g, int x, be_pool_kind kind) { return pool(g, x, kind, 0, 1, 0); }

int nn_linear(nn_graph *g, const char *name, int x, int out_features, bool bias) {
    const dpt_tensor *s = shape_of(g, x);
    DPT_CHECK_LIB("nn", nn_is_2d(s), name,
                  "linear input must be (N, C) or (N, C, 1, 1): pool first");
    int node = nn_add_node(g, NN_LINEAR, name, x, -1);
    be_linear_desc *d = &g->nodes[node].a.linear;
    d->n = (int)s->shape[0];
    d->in = (int)s->shape[1];
    d->out = out_features;
    d->bias = bias;
    int64_t wshape[2] = {out_features, d->in};
    nn_add_param(g, node, "weight", 2, wshape, INIT_UNIFORM_FAN_IN, false, d->in, out_features);
    if (bias) {
        int64_t bshape[1] = {out_features};
        nn_add_param(g, node, "bias", 1, bshape, INIT_UNIFORM_FAN_IN, true, d->in, out_features);
    }
    return nn_finish_node(g, node, out_features, 1, 1);
}

int nn_add(nn_graph *g, int a, int b, bool relu) {
    const dpt_tensor *sa = shape_of(g, a), *sb = shape_of(g, b);
    for (int i = 0; i < 4; i++)
        DPT_CHECK_LIB("nn", sa->shape[i] == sb->shape[i], "add", "operands differ in dimension %d: %lld vs %lld",
                      i, (long long)sa->shape[i], (long long)sb->shape[i]);
    int node = nn_add_node(g, NN_ADD, "", a, b);
    g->nodes[node].a.add.relu = relu;
    return nn_finish_node(g, node, sa->shape[1], sa->shape[2], sa->shape[3]);
}

int nn_scale(nn_graph *g, int x, float alpha) {
    const dpt_tensor *s = shape_of(g, x);
    int node = nn_add_node(g, NN_SCALE, "", x, -1);
    g->nodes[node].a.scale.alpha = alpha;
    return nn_finish_node(g, node, s->shape[1], s->shape[2], s->shape[3]);
}

/* A view's output shares its input's memory (a value's producer makes it its output). */
static bool is_view(const nn_graph *g, int v) {
    const nn_node *nd = &g->nodes[g->values[v].producer];
    return nd->kind == NN_VIEW && nd->out == v;
}

static void *arena_adopt(const dpt_backend *be, dpt_arena *a) {
    a->size = dpt_align_up(a->used ? a->used : DPT_ALIGN, DPT_ALIGN);
    a->base = be->mem_alloc(a->size);
    be->fill_zero(a->base, a->size);
    return a->base;
}

dpt_status nn_graph_finalize(nn_graph *g, int logits) {
    DPT_CHECK(!g->finalized);
    if (logits < 0 || logits >= g->nvalues) return dpt_error(DPT_ERR_INTERNAL, "graph: invalid logits value");
    g->logits = logits;

    /* Which values receive a gradient: everything downstream of a parameter or of an input
     * that requires one; not labels, saved statistics or spectral-norm scratch. */
    bool *has_grad = dpt_xcalloc((size_t)g->nvalues, sizeof(bool));
    for (int i = 0; i < g->nnodes; i++) {
        nn_node *nd = &g->nodes[i];
        bool any = nd->nparam > 0 || (nd->kind == NN_INPUT && g->values[nd->out].requires_grad);
        for (int j = 0; j < nd->nin; j++) any = any || has_grad[nd->in[j]];
        has_grad[nd->out] = any;
    }
    for (int v = 0; v < g->nvalues; v++) g->values[v].needs_grad = has_grad[v];
    free(has_grad);

    /* Backward runs nodes in reverse: the first gradient to reach a value overwrites, later ones add. */
    bool *written = dpt_xcalloc((size_t)g->nvalues, sizeof(bool));
    for (int i = g->nnodes - 1; i >= 0; i--) {
        nn_node *nd = &g->nodes[i];
        for (int j = 0; j < nd->nin; j++) {
            int v = nd->in[j];
            if (!g->values[v].needs_grad) continue;
            nd->accumulate_in[j] = written[v];
            written[v] = true;
        }
    }
    free(written);

    /* Memory plan. Every activation and gradient gets its own slot: simple, and small next to
     * the compute at the batch sizes a CPU trains with. */
    for (int i = 0; i < g->nparams; i++) {
        nn_param *p = &g->params[i];
        p->offset = arena_reserve(&g->param_arena, (size_t)p->numel * sizeof(float));
        size_t goff = arena_reserve(&g->grad_arena, (size_t)p->numel * sizeof(float));
        DPT_CHECK(goff == p->offset);
    }
    for (int i = 0; i < g->nbuffers; i++)
        g->buffers[i].offset = arena_reserve(&g->buffer_arena, (size_t)g->buffers[i].numel * sizeof(float));
    for (int v = 0; v < g->nvalues; v++) {
        nn_value *val = &g->values[v];
        if (!is_view(g, v)) val->off = arena_reserve(&g->act_arena, tensor_bytes(&val->t));
        if (val->needs_grad) val->goff = arena_reserve(&g->act_arena, tensor_bytes(&val->t));
    }
    size_t loss_off = arena_reserve(&g->act_arena, (size_t)g->batch * sizeof(float));

    arena_adopt(g->be, &g->param_arena);
    arena_adopt(g->be, &g->grad_arena);
    arena_adopt(g->be, &g->buffer_arena);
    arena_adopt(g->be, &g->act_arena);
    for (int i = 0; i < g->nparams; i++) {
        g->params[i].value.data = arena_at(&g->param_arena, g->params[i].offset);
        g->params[i].grad.data = arena_at(&g->grad_arena, g->params[i].offset);
    }
    for (int i = 0; i < g->nbuffers; i++) g->buffers[i].value.data = arena_at(&g->buffer_arena, g->buffers[i].offset);
    for (int v = 0; v < g->nvalues; v++) {
        nn_value *val = &g->values[v];
        val->t.data = arena_at(&g->act_arena, val->off);
        val->grad.data = val->needs_grad ? arena_at(&g->act_arena, val->goff) : NULL;
    }
    for (int v = 0; v < g->nvalues; v++) /* in order: a view of a view sees its input's pointer */
        if (is_view(g, v)) g->values[v].t.data = g->values[g->nodes[g->values[v].producer].in[0]].t.data;
    g->losses = tensor_1d(arena_at(&g->act_arena, loss_off), DT_F32, g->batch);
    g->losses.device = g->be->device;
    if (g->be->device != DEV_CPU) {
        size_t stage = 0; /* the largest float input or output, for conversions through float32 */
        for (int v = 0; v < g->nvalues; v++)
            if (nn_is_float(&g->values[v].t)) stage = DPT_MAX(stage, (size_t)tensor_numel(&g->values[v].t) * sizeof(float));
        g->labels_dev = g->be->mem_alloc((size_t)g->batch * sizeof(int32_t));
        g->losses_host = dpt_xcalloc((size_t)g->batch, sizeof(float));
        if (g->act_dtype != DT_F32) g->stage = g->be->mem_alloc(stage);
    }

    /* Back-end ops, created once. */
    for (int i = 0; i < g->nnodes; i++) {
        nn_node *nd = &g->nodes[i];
        switch (nd->kind) {
        case NN_CONV: nd->op = g->be->conv2d_create(&nd->a.conv, g->layout); break;
        case NN_BATCHNORM:
            nd->a.bn.reduce = g->bn_reduce;
            nd->op = g->be->batchnorm_create(&nd->a.bn, g->layout);
            break;
        case NN_POOL: nd->op = g->be->pool_create(&nd->a.pool, g->layout); break;
        case NN_LINEAR: nd->op = g->be->linear_create(&nd->a.linear); break;
        case NN_CBN:
            nd->a.bn.reduce = g->bn_reduce;
            nd->op = g->be->cbn_create(&nd->a.bn, g->layout);
            break;
        default: break;
        }
    }
    g->finalized = true;
    return DPT_OK;
}
