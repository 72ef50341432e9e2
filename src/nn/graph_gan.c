/* Layer constructors for BigGAN (Brock et al. 2018) and SAGAN, as ajbrock/BigGAN-PyTorch builds
 * them: spectral normalisation, class embeddings, conditional BatchNorm, self-attention, the
 * projection discriminator's inner product, and the plumbing between them (concat, slice, views,
 * upsampling). Like graph_build.c they only record nodes; graph_run.c runs them. */
#include <string.h>

#include "graph_internal.h"

static dpt_tensor shape_of(const nn_graph *g, int v) { return g->values[v].t; }

static void check_2d(const nn_graph *g, int v, const char *op) {
    char buf[64];
    DPT_CHECK_LIB("nn", nn_is_2d(&g->values[v].t), op, "needs a 2-d (N, F) float value, got %s",
                  tensor_shape_str(&g->values[v].t, buf, sizeof buf));
}

/* ---- spectral normalisation ---- */

/* Turns the node's weight (param[0]) into a spectral-normalised one: N02 init, u and v buffers,
 * scratch for W / sigma and its gradient. */
static void sn_attach(nn_graph *g, int node) {
    nn_node *nd = &g->nodes[node];
    nn_param *p = &g->params[nd->param[0]];
    p->init = INIT_NORMAL_002;
    const dpt_tensor w = p->value;
    const int rows = (int)w.shape[0], cols = (int)(tensor_numel(&w) / rows);
    int u = nn_add_buffer(g, nd->name, "weight_u", rows, 0.0f);
    int v = nn_add_buffer(g, nd->name, "weight_v", cols, 0.0f);
    g->buffers[u].unit_random = g->buffers[v].unit_random = true;
    int w_sn = nn_add_value_t(g, node, &w), dw_sn = nn_add_value_t(g, node, &w);
    nd = &g->nodes[node];
    nd->sn = (nn_sn){.on = true, .u = u, .v = v, .w_sn = w_sn, .dw_sn = dw_sn, .rows = rows, .cols = cols};
}

int nn_conv2d_sn(nn_graph *g, const char *name, int x, int out_channels, int kernel, int stride, int pad, bool bias) {
    int out = nn_conv2d(g, name, x, out_channels, kernel, stride, pad, bias);
    sn_attach(g, g->values[out].producer);
    return out;
}

int nn_linear_sn(nn_graph *g, const char *name, int x, int out_features, bool bias) {
    int out = nn_linear(g, name, x, out_features, bias);
    sn_attach(g, g->values[out].producer);
    return out;
}

int nn_embedding(nn_graph *g, const char *name, int labels, int num_classes, int dim, bool sn) {
    const dpt_tensor y = shape_of(g, labels);
    DPT_CHECK_LIB("nn", y.dtype == DT_I32 && y.ndim == 1, name, "embedding input must be int32 labels (nn_input_labels)");
    DPT_CHECK_LIB("nn", num_classes > 0 && dim > 0, name, "embedding of %d classes x %d features", num_classes, dim);
    int node = nn_add_node(g, NN_EMBEDDING, name, labels, -1);
    int64_t wshape[2] = {num_classes, dim};
    nn_add_param(g, node, "weight", 2, wshape, INIT_NORMAL_002, false, dim, num_classes);
    if (sn) sn_attach(g, node);
    return nn_finish_node(g, node, dim, 1, 1);
}

/* ---- plumbing ---- */

int nn_concat(nn_graph *g, int a, int b) {
    check_2d(g, a, "concat");
    check_2d(g, b, "concat");
    const int64_t fa = shape_of(g, a).shape[1], fb = shape_of(g, b).shape[1];
    int node = nn_add_node(g, NN_CONCAT, "", a, b);
    return nn_finish_node(g, node, fa + fb, 1, 1);
}

int nn_slice(nn_graph *g, int x, int begin, int count) {
    check_2d(g, x, "slice");
    const int64_t f = shape_of(g, x).shape[1];
    DPT_CHECK_LIB("nn", begin >= 0 && count > 0 && begin + (int64_t)count <= f, "slice",
                  "features [%d, %lld) are outside the input's %lld", begin, (long long)begin + count, (long long)f);
    int node = nn_add_node(g, NN_SLICE, "", x, -1);
    g->nodes[node].a.slice.begin = begin;
    g->nodes[node].a.slice.count = count;
    return nn_finish_node(g, node, count, 1, 1);
}

int nn_view_image(nn_graph *g, int x, int c, int h, int w) {
    check_2d(g, x, "view_image");
    const int64_t f = shape_of(g, x).shape[1];
    DPT_CHECK_LIB("nn", c > 0 && h > 0 && w > 0 && (int64_t)c * h * w == f, "view_image",
                  "%lld features cannot be seen as (%d, %d, %d)", (long long)f, c, h, w);
    int node = nn_add_node(g, NN_VIEW, "", x, -1);
    return nn_finish_node(g, node, c, h, w);
}

static int unary(nn_graph *g, nn_op_kind kind, int x, int64_t hw_factor) {
    const dpt_tensor s = shape_of(g, x);
    DPT_CHECK_LIB("nn", s.ndim == 4 && nn_is_float(&s), "layer", "needs a float (N, C, H, W) value");
    int node = nn_add_node(g, kind, "", x, -1);
    return nn_finish_node(g, node, s.shape[1], s.shape[2] * hw_factor, s.shape[3] * hw_factor);
}

int nn_upsample2x(nn_graph *g, int x) { return unary(g, NN_UPSAMPLE, x, 2); }
int nn_tanh(nn_graph *g, int x) { return unary(g, NN_TANH, x, 1); }

int nn_add_scalar(nn_graph *g, int x, float c) {
    int out = unary(g, NN_ADD_SCALAR, x, 1);
    g->nodes[g->values[out].producer].a.shift.c = c;
    return out;
}

int nn_scaled_add(nn_graph *g, const char *name, int a, int b) {
    const dpt_tensor sa = shape_of(g, a), sb = shape_of(g, b);
    DPT_CHECK_LIB("nn", sa.ndim == 4 && sb.ndim == 4 && tensor_numel(&sa) == tensor_numel(&sb), name,
                  "scaled_add operands differ in shape");
    for (int i = 0; i < 4; i++) DPT_CHECK_LIB("nn", sa.shape[i] == sb.shape[i], name, "operands differ in dimension %d", i);
    int node = nn_add_node(g, NN_SCALED_ADD, name, a, b);
    int64_t one[1] = {1};
    nn_add_param(g, node, "gamma", 1, one, INIT_ZEROS, true, 1, 1);
    return nn_finish_node(g, node, sa.shape[1], sa.shape[2], sa.shape[3]);
}

/* ---- conditional BatchNorm ---- */

int nn_cbn(nn_graph *g, const char *name, int x, int cond, bool relu) {
    const dpt_tensor s = shape_of(g, x);
    DPT_CHECK_LIB("nn", s.ndim == 4 && nn_is_float(&s), name, "conditional BatchNorm of a non-image value");
    check_2d(g, cond, name);
    const int c = (int)s.shape[1];
    nn_scope_push(g, name);
    int gain = nn_add_scalar(g, nn_linear_sn(g, "gain", cond, c, false), 1.0f);
    int bias = nn_linear_sn(g, "bias", cond, c, false);
    int node = nn_add_node(g, NN_CBN, "", x, gain);
    g->nodes[node].in[2] = bias;
    g->nodes[node].nin = 3;
    int out = nn_norm_finish(g, node, x, relu);
    nn_scope_pop(g);
    return out;
}

/* ---- self-attention and the projection's inner product ---- */

/* out = op(a) op(b) on the 3-d memory-order views of a and b (graph_run.c's mat3); out is shaped
 * like `shape`. */
static int bmm(nn_graph *g, int a, int b, bool trans_a, bool trans_b, const dpt_tensor *shape) {
    int node = nn_add_node(g, NN_BMM, "", a, b);
    g->nodes[node].a.bmm.trans_a = trans_a;
    g->nodes[node].a.bmm.trans_b = trans_b;
    int out = nn_add_value_t(g, node, shape);
    g->nodes[node].out = out;
    return out;
}

static int softmax_rows(nn_graph *g, int x) {
    int node = nn_add_node(g, NN_SOFTMAX, "", x, -1);
    int out = nn_add_value_t(g, node, &g->values[x].t);
    g->nodes[node].out = out;
    return out;
}

/* With NHWC activations an (N, K, H, W) value is the row-major (N, HW, K) matrix theta^T of
 * BigGAN-PyTorch's view(-1, K, HW); with NCHW it is (N, K, HW). The transposes follow. */
int nn_attention(nn_graph *g, const char *name, int x) {
    const dpt_tensor s = shape_of(g, x);
    DPT_CHECK_LIB("nn", s.ndim == 4 && s.shape[1] % 8 == 0 && s.shape[2] % 2 == 0 && s.shape[3] % 2 == 0, name,
                  "attention needs channels divisible by 8 and even height and width");
    const int64_t n = s.shape[0], c = s.shape[1], h = s.shape[2], w = s.shape[3], hw = h * w;
    const bool nhwc = g->layout == LAYOUT_NHWC;
    nn_scope_push(g, name);
    int theta = nn_conv2d_sn(g, "theta", x, (int)c / 8, 1, 1, 0, false);
    int phi = nn_maxpool(g, nn_conv2d_sn(g, "phi", x, (int)c / 8, 1, 1, 0, false), 2, 2, 0);
    int gv = nn_maxpool(g, nn_conv2d_sn(g, "g", x, (int)c / 2, 1, 1, 0, false), 2, 2, 0);
    int64_t sshape[3] = {n, hw, hw / 4};
    dpt_tensor scores = tensor_make(NULL, g->act_dtype, 3, sshape, LAYOUT_NCHW);
    int beta = softmax_rows(g, bmm(g, theta, phi, !nhwc, nhwc, &scores)); /* (N, HW, HW/4) */
    dpt_tensor ob = tensor_4d(NULL, g->act_dtype, n, c / 2, h, w, g->layout);
    int o = nhwc ? bmm(g, beta, gv, false, false, &ob) : bmm(g, gv, beta, false, true, &ob);
    o = nn_conv2d_sn(g, "o", o, (int)c, 1, 1, 0, false);
    int out = nn_scaled_add(g, "", x, o);
    nn_scope_pop(g);
    return out;
}

/* a (N, 1, C) times b (N, C, 1), as mat3 sees 2-d values in each layout. */
int nn_rowdot(nn_graph *g, int a, int b) {
    check_2d(g, a, "rowdot");
    check_2d(g, b, "rowdot");
    const dpt_tensor sa = shape_of(g, a), sb = shape_of(g, b);
    DPT_CHECK_LIB("nn", sa.shape[1] == sb.shape[1], "rowdot", "operands have %lld and %lld features",
                  (long long)sa.shape[1], (long long)sb.shape[1]);
    const bool nhwc = g->layout == LAYOUT_NHWC;
    dpt_tensor o = tensor_4d(NULL, g->act_dtype, g->batch, 1, 1, 1, g->layout);
    int out = bmm(g, a, b, !nhwc, nhwc, &o);
    g->nodes[g->values[out].producer].a.bmm.rowdot = true;
    return out;
}
