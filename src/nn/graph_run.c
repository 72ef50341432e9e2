/* Forward, loss, backward and accuracy: walks of the recorded nodes. */
#include "dpt/core/timer.h"
#include "graph_internal.h"

static dpt_tensor *val(nn_graph *g, int v) { return &g->values[v].t; }
static dpt_tensor *grad(nn_graph *g, int v) { return g->values[v].needs_grad ? &g->values[v].grad : NULL; }
static dpt_tensor *pval(nn_graph *g, const nn_node *nd, int k) {
    return k < nd->nparam ? &g->params[nd->param[k]].value : NULL;
}
static dpt_tensor *pgrad(nn_graph *g, const nn_node *nd, int k) {
    return k < nd->nparam ? &g->params[nd->param[k]].grad : NULL;
}
static dpt_tensor *buf(nn_graph *g, const nn_node *nd, int k) { return &g->buffers[nd->buffer[k]].value; }

/* (N, C, 1, 1) seen as (N, C) for the linear layer. */
static dpt_tensor flat(const dpt_tensor *t) {
    dpt_tensor f = tensor_2d(t->data, t->dtype, t->shape[0], t->ndim > 1 ? t->shape[1] : 1);
    f.device = t->device;
    return f;
}

void nn_forward(nn_graph *g, const float *x, bool train) {
    const dpt_backend *be = g->be;
    dpt_tensor *in = val(g, g->input);
    if (be->device == DEV_CPU) in->data = (void *)x; /* the loader's buffer; no copy */
    else be->copy_to_device(in->data, x, tensor_bytes(in));
    if (g->profile && train) g->prof_steps++;
    for (int i = 0; i < g->nnodes; i++) {
        nn_node *nd = &g->nodes[i];
        dpt_tensor *out = val(g, nd->out);
        double t0 = g->profile && train ? timer_now() : 0.0;
        switch (nd->kind) {
        case NN_INPUT: break;
        case NN_CONV: be->conv2d_forward(nd->op, out, val(g, nd->in[0]), pval(g, nd, 0), pval(g, nd, 1)); break;
        case NN_BATCHNORM:
            if (train)
                be->batchnorm_forward_train(nd->op, out, val(g, nd->saved[0]), val(g, nd->saved[1]), buf(g, nd, 0),
                                            buf(g, nd, 1), val(g, nd->in[0]), pval(g, nd, 0), pval(g, nd, 1));
            else
                be->batchnorm_forward_eval(nd->op, out, val(g, nd->in[0]), pval(g, nd, 0), pval(g, nd, 1),
                                           buf(g, nd, 0), buf(g, nd, 1));
            break;
        case NN_RELU: be->relu_forward(out, val(g, nd->in[0])); break;
        case NN_POOL: be->pool_forward(nd->op, out, val(g, nd->in[0])); break;
        case NN_LINEAR: {
            dpt_tensor x2 = flat(val(g, nd->in[0])), y2 = flat(out);
            be->linear_forward(nd->op, &y2, &x2, pval(g, nd, 0), pval(g, nd, 1));
            break;
        }
        case NN_ADD: be->add_forward(out, val(g, nd->in[0]), val(g, nd->in[1]), nd->a.add.relu); break;
        case NN_SCALE: be->scale_forward(out, val(g, nd->in[0]), nd->a.scale.alpha); break;
        }
        if (g->profile && train) g->t_fwd[i] += timer_now() - t0;
    }
}

double nn_loss(nn_graph *g, const int32_t *labels, float smoothing, float grad_scale, int n) {
    dpt_tensor logits = flat(val(g, g->logits));
    dpt_tensor dlogits = flat(&g->values[g->logits].grad);
    dpt_tensor lab = tensor_1d((void *)labels, DT_I32, g->batch);
    g->be->softmax_xent(&g->losses, &dlogits, &logits, &lab, smoothing, grad_scale);
    const float *l = g->losses.data;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += l[i];
    return sum;
}

void nn_accuracy(nn_graph *g, const int32_t *labels, int n, int64_t *top1, int64_t *top5) {
    dpt_tensor logits = flat(val(g, g->logits));
    dpt_tensor lab = tensor_1d((void *)labels, DT_I32, g->batch);
    g->be->topk_correct(top1, top5, &logits, &lab, n);
}

void nn_backward(nn_graph *g, bool param_accumulate, nn_backward_hook hook, void *ctx) {
    const dpt_backend *be = g->be;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        nn_node *nd = &g->nodes[i];
        dpt_tensor *dout = grad(g, nd->out);
        if (nd->kind == NN_INPUT || !dout) {
            if (hook) hook(ctx, i);
            continue;
        }
        dpt_tensor *out = val(g, nd->out);
        int x = nd->nin > 0 ? nd->in[0] : -1;
        double t0 = g->profile ? timer_now() : 0.0;
        bool acc0 = nd->accumulate_in[0];
        switch (nd->kind) {
        case NN_INPUT: break;
        case NN_CONV:
            be->conv2d_backward(nd->op, grad(g, x), acc0, pgrad(g, nd, 0), pgrad(g, nd, 1), param_accumulate, dout,
                                val(g, x), pval(g, nd, 0));
            break;
        case NN_BATCHNORM: {
            /* The back end needs somewhere to write even when no gradient flows further. */
            dpt_tensor *dx = grad(g, x);
            DPT_CHECK_LIB("nn", dx != NULL, nd->name, "BatchNorm directly on the input is not supported");
            be->batchnorm_backward(nd->op, dx, acc0, pgrad(g, nd, 0), pgrad(g, nd, 1), param_accumulate, dout,
                                   val(g, x), out, pval(g, nd, 0), pval(g, nd, 1), val(g, nd->saved[0]),
                                   val(g, nd->saved[1]));
            break;
        }
        case NN_RELU:
            if (grad(g, x)) be->relu_backward(grad(g, x), acc0, dout, out);
            break;
        case NN_POOL:
            if (grad(g, x)) be->pool_backward(nd->op, grad(g, x), acc0, dout, val(g, x), out);
            break;
        case NN_LINEAR: {
            dpt_tensor x2 = flat(val(g, x)), dy2 = flat(dout), dx2;
            dpt_tensor *dxp = NULL;
            if (grad(g, x)) {
                dx2 = flat(grad(g, x));
                dxp = &dx2;
            }
            be->linear_backward(nd->op, dxp, acc0, pgrad(g, nd, 0), pgrad(g, nd, 1), param_accumulate, &dy2, &x2,
                                pval(g, nd, 0));
            break;
        }
        case NN_ADD:
            be->add_backward(grad(g, nd->in[0]), acc0, grad(g, nd->in[1]), nd->accumulate_in[1], dout, out,
                             nd->a.add.relu);
            break;
        case NN_SCALE:
            if (grad(g, x)) be->scale_backward(grad(g, x), acc0, dout, nd->a.scale.alpha);
            break;
        }
        if (g->profile) g->t_bwd[i] += timer_now() - t0;
        if (hook) hook(ctx, i);
    }
}
