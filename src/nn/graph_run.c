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
static float *buf_data(nn_graph *g, int b) { return g->buffers[b].value.data; }

/* (N, C, 1, 1) seen as (N, C) for the linear layer. */
static dpt_tensor flat(const dpt_tensor *t) {
    dpt_tensor f = tensor_2d(t->data, t->dtype, t->shape[0], t->ndim > 1 ? t->shape[1] : 1);
    f.device = t->device;
    return f;
}

/* A value as the row-major 3-d matrix batch its memory holds: (N, H*W, C) for NHWC activations,
 * (N, C, H*W) for NCHW ones; 3-d values as they are. */
static dpt_tensor mat3(const dpt_tensor *t) {
    if (t->ndim == 3) return *t;
    const int64_t n = t->shape[0], c = t->shape[1], hw = t->shape[2] * t->shape[3];
    int64_t shape[3] = {n, t->layout == LAYOUT_NHWC ? hw : c, t->layout == LAYOUT_NHWC ? c : hw};
    dpt_tensor m = tensor_make(t->data, t->dtype, 3, shape, LAYOUT_NCHW);
    m.device = t->device;
    return m;
}

/* ---- spectral normalisation around a node's weight ---- */

/* The weight the node computes with: W, or W / sigma into the node's scratch (training
 * forwards advance u and v by g->sn_iterations power iterations; evaluation uses them as they
 * are). */
static const dpt_tensor *sn_weight(nn_graph *g, nn_node *nd, bool train) {
    if (!nd->sn.on) return pval(g, nd, 0);
    const nn_sn *sn = &nd->sn;
    dpt_tensor *w_sn = val(g, sn->w_sn);
    g->be->spectral_norm_forward(w_sn->data, buf_data(g, sn->u), buf_data(g, sn->v), &nd->sn.sigma,
                                 pval(g, nd, 0)->data, sn->rows, sn->cols, train ? g->sn_iterations : 0, g->sn_eps);
    return w_sn;
}

/* Where the layer's backward writes its weight gradient: the parameter's, or (SN) the scratch
 * for dW_sn, cleared when the layer's other parameter gradients are to accumulate. */
static dpt_tensor *sn_dweight(nn_graph *g, const nn_node *nd, bool param_accumulate) {
    if (!nd->sn.on) return pgrad(g, nd, 0);
    dpt_tensor *d = val(g, nd->sn.dw_sn);
    if (param_accumulate) g->be->fill_zero(d->data, tensor_bytes(d));
    return d;
}

/* dW (+)= the gradient through W / sigma of dW_sn, u and v constant. */
static void sn_backward(nn_graph *g, const nn_node *nd, bool param_accumulate) {
    if (!nd->sn.on) return;
    const nn_sn *sn = &nd->sn;
    g->be->spectral_norm_backward(pgrad(g, nd, 0)->data, param_accumulate, val(g, sn->dw_sn)->data,
                                  pval(g, nd, 0)->data, buf_data(g, sn->u), buf_data(g, sn->v), sn->sigma, sn->rows,
                                  sn->cols);
}

void nn_set_input(nn_graph *g, int value, const void *data) {
    DPT_CHECK(g->finalized && value >= 0 && value < g->nvalues && data);
    nn_value *v = &g->values[value];
    DPT_CHECK_LIB("nn", g->nodes[v->producer].kind == NN_INPUT, g->nodes[v->producer].name,
                  "nn_set_input on a value that is not an input");
    if (g->be->device == DEV_CPU) {
        v->t.data = (void *)data; /* the caller's buffer; no copy */
    } else if (nn_is_float(&v->t) && v->t.dtype != DT_F32) {
        /* float32 from the host, through the staging buffer into the activation dtype */
        dpt_tensor st = v->t;
        st.data = g->stage;
        st.dtype = DT_F32;
        g->be->copy_to_device(g->stage, data, tensor_bytes(&st));
        g->be->convert(&v->t, &st);
    } else {
        g->be->copy_to_device(v->t.data, data, tensor_bytes(&v->t));
    }
    v->fed = true;
}

dpt_tensor *nn_output_grad(nn_graph *g) {
    DPT_CHECK(g->finalized);
    DPT_CHECK_LIB("nn", g->values[g->logits].needs_grad, "nn_output_grad",
                  "the output has no gradient: no parameter or input requiring one is upstream");
    return &g->values[g->logits].grad;
}

/* Inputs set, views pointed at their inputs' memory (which nn_set_input may have moved). */
static void forward_prepare(nn_graph *g, const float *x) {
    if (x) {
        DPT_CHECK_LIB("nn", g->input >= 0, "nn_forward", "an image was given but the graph has no image input");
        nn_set_input(g, g->input, x);
    }
    for (int i = 0; i < g->nnodes; i++) {
        const nn_node *nd = &g->nodes[i];
        if (nd->kind == NN_INPUT)
            DPT_CHECK_LIB("nn", g->values[nd->out].fed, nd->name[0] ? nd->name : "input",
                          "input has no data: pass it to nn_forward or nn_set_input first");
        if (nd->kind == NN_VIEW) val(g, nd->out)->data = val(g, nd->in[0])->data;
    }
}

/* The GAN layers' forward (graph_gan.c's nodes). */
static void forward_gan(nn_graph *g, nn_node *nd, dpt_tensor *out, bool train) {
    const dpt_backend *be = g->be;
    dpt_tensor *x = val(g, nd->in[0]);
    switch (nd->kind) {
    case NN_UPSAMPLE: be->upsample2x_forward(out, x); break;
    case NN_TANH: be->tanh_forward(out, x); break;
    case NN_EMBEDDING: {
        dpt_tensor y2 = flat(out);
        be->embedding_forward(&y2, sn_weight(g, nd, train), x);
        break;
    }
    case NN_CONCAT: {
        dpt_tensor a2 = flat(x), b2 = flat(val(g, nd->in[1])), y2 = flat(out);
        be->copy_cols(&y2, 0, &a2, 0, a2.shape[1], false);
        be->copy_cols(&y2, a2.shape[1], &b2, 0, b2.shape[1], false);
        break;
    }
    case NN_SLICE: {
        dpt_tensor x2 = flat(x), y2 = flat(out);
        be->copy_cols(&y2, 0, &x2, nd->a.slice.begin, nd->a.slice.count, false);
        break;
    }
    case NN_VIEW: break; /* aliases its input (forward_prepare) */
    case NN_CBN: {
        dpt_tensor gain = flat(val(g, nd->in[1])), bias = flat(val(g, nd->in[2]));
        if (train)
            be->cbn_forward_train(nd->op, out, val(g, nd->saved[0]), val(g, nd->saved[1]), buf(g, nd, 0),
                                  buf(g, nd, 1), x, &gain, &bias);
        else
            be->cbn_forward_eval(nd->op, out, x, &gain, &bias, buf(g, nd, 0), buf(g, nd, 1));
        break;
    }
    case NN_ADD_SCALAR: be->add_scalar_forward(out, x, nd->a.shift.c); break;
    case NN_BMM: {
        dpt_tensor a3 = mat3(x), b3 = mat3(val(g, nd->in[1])), y3 = mat3(out);
        be->bmm_forward(&y3, &a3, &b3, nd->a.bmm.trans_a, nd->a.bmm.trans_b);
        break;
    }
    case NN_SOFTMAX: be->softmax_rows_forward(out, x); break;
    case NN_SCALED_ADD: be->scaled_add_forward(out, x, val(g, nd->in[1]), pval(g, nd, 0)); break;
    default: DPT_CHECK(!"unknown node kind");
    }
}

/* The clock of the per-node profile: a device's queued work is waited for first, so that each
 * node is charged its own time (profiling serialises the GPU). */
static double prof_clock(const nn_graph *g) {
    g->be->synchronize();
    return timer_now();
}

void nn_forward(nn_graph *g, const float *x, bool train) {
    const dpt_backend *be = g->be;
    forward_prepare(g, x);
    if (g->profile && train) g->prof_steps++;
    for (int i = 0; i < g->nnodes; i++) {
        nn_node *nd = &g->nodes[i];
        dpt_tensor *out = val(g, nd->out);
        double t0 = g->profile && train ? prof_clock(g) : 0.0;
        switch (nd->kind) {
        case NN_INPUT: break;
        case NN_CONV: be->conv2d_forward(nd->op, out, val(g, nd->in[0]), sn_weight(g, nd, train), pval(g, nd, 1)); break;
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
            be->linear_forward(nd->op, &y2, &x2, sn_weight(g, nd, train), pval(g, nd, 1));
            break;
        }
        case NN_ADD: be->add_forward(out, val(g, nd->in[0]), val(g, nd->in[1]), nd->a.add.relu); break;
        case NN_SCALE: be->scale_forward(out, val(g, nd->in[0]), nd->a.scale.alpha); break;
        default: forward_gan(g, nd, out, train); break;
        }
        if (g->profile && train) g->t_fwd[i] += prof_clock(g) - t0;
    }
}

/* Labels where the back end reads them: the caller's host array on the CPU, a device copy
 * otherwise. */
static dpt_tensor device_labels(nn_graph *g, const int32_t *labels) {
    dpt_tensor lab = tensor_1d((void *)labels, DT_I32, g->batch);
    if (g->labels_dev) {
        g->be->copy_to_device(g->labels_dev, labels, (size_t)g->batch * sizeof(int32_t));
        lab.data = g->labels_dev;
        lab.device = g->be->device;
    }
    return lab;
}

void nn_read_value(nn_graph *g, int value, float *dst) {
    DPT_CHECK(g->finalized && value >= 0 && value < g->nvalues);
    const dpt_tensor *t = &g->values[value].t;
    DPT_CHECK_LIB("nn", nn_is_float(t), "nn_read_value", "value %d is not a float value", value);
    if (t->dtype == DT_F32) {
        g->be->copy_to_host(dst, t->data, tensor_bytes(t));
        return;
    }
    dpt_tensor st = *t;
    st.data = g->stage;
    st.dtype = DT_F32;
    g->be->convert(&st, t);
    g->be->copy_to_host(dst, g->stage, tensor_bytes(&st));
}

double nn_loss(nn_graph *g, const int32_t *labels, float smoothing, float grad_scale, int n) {
    dpt_tensor logits = flat(val(g, g->logits));
    dpt_tensor dlogits = flat(&g->values[g->logits].grad);
    dpt_tensor lab = device_labels(g, labels);
    g->be->softmax_xent(&g->losses, &dlogits, &logits, &lab, smoothing, grad_scale);
    const float *l = g->losses.data;
    if (g->losses_host) {
        g->be->copy_to_host(g->losses_host, g->losses.data, (size_t)n * sizeof(float));
        l = g->losses_host;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += l[i];
    return sum;
}

void nn_accuracy(nn_graph *g, const int32_t *labels, int n, int64_t *top1, int64_t *top5) {
    dpt_tensor logits = flat(val(g, g->logits));
    dpt_tensor lab = device_labels(g, labels);
    g->be->topk_correct(top1, top5, &logits, &lab, n);
}

/* dx (+)= the block of dout that a slice took; the rest of dx is zero unless accumulating. */
static void slice_backward(nn_graph *g, const nn_node *nd, const dpt_tensor *dout) {
    dpt_tensor *dx = grad(g, nd->in[0]);
    if (!dx) return;
    if (!nd->accumulate_in[0]) g->be->fill_zero(dx->data, tensor_bytes(dx));
    dpt_tensor dx2 = flat(dx), dy2 = flat(dout);
    g->be->copy_cols(&dx2, nd->a.slice.begin, &dy2, 0, nd->a.slice.count, true);
}

static void concat_backward(nn_graph *g, const nn_node *nd, const dpt_tensor *dout) {
    dpt_tensor *da = grad(g, nd->in[0]), *db = grad(g, nd->in[1]), dy2 = flat(dout);
    const int64_t fa = val(g, nd->in[0])->shape[1], fb = val(g, nd->in[1])->shape[1];
    if (da) {
        dpt_tensor da2 = flat(da);
        g->be->copy_cols(&da2, 0, &dy2, 0, fa, nd->accumulate_in[0]);
    }
    if (db) {
        dpt_tensor db2 = flat(db);
        g->be->copy_cols(&db2, 0, &dy2, fa, fb, nd->accumulate_in[1]);
    }
}

/* gain and bias are made for this node alone (nn_cbn), so both overwrite or both add. */
static void cbn_backward(nn_graph *g, const nn_node *nd, const dpt_tensor *dout) {
    const int x = nd->in[0];
    dpt_tensor *dx = grad(g, x);
    DPT_CHECK_LIB("nn", dx != NULL, nd->name, "conditional BatchNorm directly on an input is not supported");
    DPT_CHECK(nd->accumulate_in[1] == nd->accumulate_in[2]);
    dpt_tensor gain = flat(val(g, nd->in[1])), dgain = flat(grad(g, nd->in[1])), dbias = flat(grad(g, nd->in[2]));
    g->be->cbn_backward(nd->op, dx, nd->accumulate_in[0], &dgain, &dbias, nd->accumulate_in[1], dout, val(g, x),
                        val(g, nd->out), &gain, val(g, nd->saved[0]), val(g, nd->saved[1]));
}

static void bmm_backward(nn_graph *g, const nn_node *nd, const dpt_tensor *dout) {
    dpt_tensor *da = grad(g, nd->in[0]), *db = grad(g, nd->in[1]);
    dpt_tensor a3 = mat3(val(g, nd->in[0])), b3 = mat3(val(g, nd->in[1])), dy3 = mat3(dout), da3, db3;
    if (da) da3 = mat3(da);
    if (db) db3 = mat3(db);
    g->be->bmm_backward(da ? &da3 : NULL, nd->accumulate_in[0], db ? &db3 : NULL, nd->accumulate_in[1], &dy3, &a3,
                        &b3, nd->a.bmm.trans_a, nd->a.bmm.trans_b);
}

static void embedding_backward(nn_graph *g, const nn_node *nd, const dpt_tensor *dout, bool param_accumulate) {
    dpt_tensor dy2 = flat(dout);
    /* The table's gradient has no other part: scratch for SN is overwritten. */
    dpt_tensor *dw = nd->sn.on ? val(g, nd->sn.dw_sn) : pgrad(g, nd, 0);
    g->be->embedding_backward(dw, nd->sn.on ? false : param_accumulate, &dy2, val(g, nd->in[0]));
    sn_backward(g, nd, param_accumulate);
}

/* The GAN layers' backward (graph_gan.c's nodes). */
static void backward_gan(nn_graph *g, nn_node *nd, const dpt_tensor *dout, bool param_accumulate) {
    const dpt_backend *be = g->be;
    dpt_tensor *dx = grad(g, nd->in[0]);
    const bool acc0 = nd->accumulate_in[0];
    switch (nd->kind) {
    case NN_UPSAMPLE:
        if (dx) be->upsample2x_backward(dx, acc0, dout);
        break;
    case NN_TANH:
        if (dx) be->tanh_backward(dx, acc0, dout, val(g, nd->out));
        break;
    case NN_VIEW: /* same memory order: the gradient is copied through */
    case NN_ADD_SCALAR:
        if (dx) be->scale_backward(dx, acc0, dout, 1.0f);
        break;
    case NN_EMBEDDING: embedding_backward(g, nd, dout, param_accumulate); break;
    case NN_CONCAT: concat_backward(g, nd, dout); break;
    case NN_SLICE: slice_backward(g, nd, dout); break;
    case NN_CBN: cbn_backward(g, nd, dout); break;
    case NN_BMM: bmm_backward(g, nd, dout); break;
    case NN_SOFTMAX:
        if (dx) be->softmax_rows_backward(dx, acc0, dout, val(g, nd->out));
        break;
    case NN_SCALED_ADD:
        be->scaled_add_backward(dx, acc0, grad(g, nd->in[1]), nd->accumulate_in[1], pgrad(g, nd, 0), param_accumulate,
                                dout, val(g, nd->in[1]), pval(g, nd, 0));
        break;
    default: DPT_CHECK(!"unknown node kind");
    }
}

/* weights false: convolutions and linear layers skip their weight and bias gradients. */
static void backward(nn_graph *g, bool param_accumulate, nn_backward_hook hook, void *ctx, bool weights) {
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
        double t0 = g->profile ? prof_clock(g) : 0.0;
        bool acc0 = nd->accumulate_in[0];
        switch (nd->kind) {
        case NN_INPUT: break;
        case NN_CONV:
            be->conv2d_backward(nd->op, grad(g, x), acc0, weights ? sn_dweight(g, nd, param_accumulate) : NULL,
                                pgrad(g, nd, 1), param_accumulate, dout, val(g, x),
                                nd->sn.on ? val(g, nd->sn.w_sn) : pval(g, nd, 0));
            if (weights) sn_backward(g, nd, param_accumulate);
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
            be->linear_backward(nd->op, dxp, acc0, weights ? sn_dweight(g, nd, param_accumulate) : NULL,
                                pgrad(g, nd, 1), param_accumulate, &dy2, &x2,
                                nd->sn.on ? val(g, nd->sn.w_sn) : pval(g, nd, 0));
            if (weights) sn_backward(g, nd, param_accumulate);
            break;
        }
        case NN_ADD:
            be->add_backward(grad(g, nd->in[0]), acc0, grad(g, nd->in[1]), nd->accumulate_in[1], dout, out,
                             nd->a.add.relu);
            break;
        case NN_SCALE:
            if (grad(g, x)) be->scale_backward(grad(g, x), acc0, dout, nd->a.scale.alpha);
            break;
        default: backward_gan(g, nd, dout, param_accumulate); break;
        }
        if (g->profile) g->t_bwd[i] += prof_clock(g) - t0;
        if (hook) hook(ctx, i);
    }
}

void nn_backward(nn_graph *g, bool param_accumulate, nn_backward_hook hook, void *ctx) {
    backward(g, param_accumulate, hook, ctx, true);
}

void nn_backward_inputs(nn_graph *g) { backward(g, false, NULL, NULL, false); }
