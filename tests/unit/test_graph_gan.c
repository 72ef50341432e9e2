/* Gradient checks of the graph's BigGAN layers (graph_gan.c), test_graph.c's method: analytic
 * gradients from nn_backward against central finite differences of L = sum(out * R), R fixed and
 * random and given to backward through nn_output_grad, along a random direction per parameter
 * tensor and per input that requires a gradient. Every new node is checked on its own, then a
 * mini BigGAN generator and a mini projection discriminator as wholes (every parameter, and the
 * discriminator's input gradient).
 *
 * Spectral norm: the analytic gradients come from a training forward that runs a power iteration;
 * the finite differences from training forwards with nn_graph_set_sn(g, 0, ...), which use the
 * u, v that iteration left (backward holds them constant, as PyTorch) while BatchNorm still uses
 * batch statistics.
 *
 * Precision: the graph computes in float32; L is summed in double. The step is 1e-3 of the
 * parameter tensor's rms (of 0.02 for tensors near zero, as zero-initialised biases): SN-normalised
 * weights are scale-free, so an absolute step would be large for N(0, 0.02^2) weights and tiny
 * for O(1) ones. Smooth graphs then show errors of 1e-6..1e-3 (truncation O(1e-6), float rounding
 * of L over the step the rest). Graphs with ReLU or max-pool have kinks: a step moves a few of the
 * thousands of pre-activations across zero, and each adds an error of the size of one element's
 * contribution, while a random direction's derivative is only ~sqrt(n) such contributions;
 * smaller steps trade that for rounding noise (measured on the mini generator: 7% at steps of 1e-2
 * and 1e-4, 1e-2 at best). There the direction is v = g / rms(g) + r (g the analytic gradient, r
 * random): the derivative grows to ~n contributions, so kinks and rounding shrink relative to it,
 * and the random part still sees errors orthogonal to g, though diluted. Largest errors measured
 * so: 6e-3; TOL = 1e-2. A wrong term (missing 1/sigma, dropped accumulation, a wrong transpose)
 * gives 1e-1 and up, as the nodes' own checks, with pure random directions, show at 1e-3 and below.
 * The largest error per checked tensor is printed at the end. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/nn/graph.h"
#include "testutil.h"

#define B 4
#define TOL 1e-2
#define CLASSES 5

static int32_t labels[B] = {3, 0, 3, 4}; /* 3 twice: the embedding's rows add up */

/* ---- the largest error per checked tensor ---- */

static char note_name[128][96];
static double note_err[128];
static int nnotes;

static void note(const char *what, double e) {
    for (int i = 0; i < nnotes; i++)
        if (!strcmp(note_name[i], what)) {
            note_err[i] = fmax(note_err[i], e);
            return;
        }
    if (nnotes == 128) return;
    snprintf(note_name[nnotes], sizeof note_name[0], "%s", what);
    note_err[nnotes++] = e;
}

/* ---- finite differences ---- */

static double loss(nn_graph *g, const float *R) {
    nn_forward(g, NULL, true);
    const dpt_tensor *o = nn_value_tensor(g, g->logits);
    const float *y = o->data;
    double l = 0.0;
    for (int64_t i = 0; i < tensor_numel(o); i++) l += (double)y[i] * R[i];
    return l;
}

/* Graphs with kinks (ReLU, max-pool) take directions v = g / rms(g) + r instead of r: see the
 * top comment. */
static bool along_grad;

/* d/dh L(w + h*v) against sum(grad * v), r random in [-1, 1]. */
static void check_dir(const char *case_name, const char *what, nn_graph *g, float *w, int64_t n, const float *grad,
                      const float *R, uint32_t stream) {
    float *v = malloc((size_t)n * sizeof(float)), *w0 = malloc((size_t)n * sizeof(float));
    tu_fill_uniform(v, n, -1, 1, stream);
    memcpy(w0, w, (size_t)n * sizeof(float));
    double analytic = 0.0, sq = 0.0, gsq = 0.0;
    for (int64_t i = 0; i < n; i++) gsq += (double)grad[i] * grad[i];
    const double gscale = gsq > 0.0 && along_grad ? 1.0 / sqrt(gsq / (double)n) : 0.0;
    for (int64_t i = 0; i < n; i++) {
        v[i] += (float)(gscale * grad[i]);
        analytic += (double)grad[i] * v[i];
        sq += (double)w0[i] * w0[i];
    }
    const double h = 1e-3 * fmax(sqrt(sq / (double)n), 0.02);
    for (int64_t i = 0; i < n; i++) w[i] = w0[i] + (float)h * v[i];
    const double lp = loss(g, R);
    for (int64_t i = 0; i < n; i++) w[i] = w0[i] - (float)h * v[i];
    const double lm = loss(g, R);
    memcpy(w, w0, (size_t)n * sizeof(float));
    const double numeric = (lp - lm) / (2.0 * h);
    const double err = fabs(numeric - analytic) / fmax(fabs(analytic), 1e-6);
    char label[96];
    snprintf(label, sizeof label, "%s: %s", case_name, what);
    note(label, err);
    TU_CHECK(err < TOL, "%s: d/dv numeric %.8g analytic %.8g (rel %.3g)", label, numeric, analytic, err);
    TU_CHECK(fabs(analytic) > 1e-6, "%s: gradient is (almost) zero, the check would prove nothing", label);
    free(v);
    free(w0);
}

/* Analytic gradients from one training forward (with a power iteration) and backward, then
 * finite differences of every parameter tensor and every input that requires a gradient. */
static void check_graph(const char *case_name, nn_graph *g) {
    const dpt_tensor *o = nn_value_tensor(g, g->logits);
    const int64_t nout = tensor_numel(o);
    float *R = malloc((size_t)nout * sizeof(float));
    tu_fill_uniform(R, nout, -1, 1, 77);
    nn_graph_set_sn(g, 1, 1e-12f);
    nn_forward(g, NULL, true);
    memcpy(nn_output_grad(g)->data, R, (size_t)nout * sizeof(float));
    nn_backward(g, false, NULL, NULL);
    const size_t gbytes = g->grad_arena.size;
    float *grad = malloc(gbytes);
    memcpy(grad, g->grad_arena.base, gbytes);
    float *igrad[8];
    int ninputs = 0, inputs[8];
    for (int v = 0; v < g->nvalues && ninputs < 8; v++)
        if (g->values[v].requires_grad) {
            const dpt_tensor *gt = nn_value_grad(g, v);
            igrad[ninputs] = malloc(tensor_bytes(gt));
            memcpy(igrad[ninputs], gt->data, tensor_bytes(gt));
            inputs[ninputs++] = v;
        }
    nn_graph_set_sn(g, 0, 1e-12f);
    for (int p = 0; p < g->nparams; p++) {
        nn_param *pr = &g->params[p];
        check_dir(case_name, pr->name, g, pr->value.data, pr->numel, grad + pr->offset / sizeof(float), R,
                  100 + (uint32_t)p);
    }
    for (int i = 0; i < ninputs; i++) {
        const dpt_tensor *t = nn_value_tensor(g, inputs[i]);
        check_dir(case_name, g->nodes[g->values[inputs[i]].producer].name, g, t->data, tensor_numel(t), igrad[i], R,
                  200 + (uint32_t)i);
        free(igrad[i]);
    }
    nn_graph_set_sn(g, 1, 1e-12f);
    free(grad);
    free(R);
}

/* ---- inputs ---- */

static float *inputs_buf[16];
static int ninputs_buf;

/* Gives a float input uniform data from `stream` (freed by free_inputs). */
static float *feed(nn_graph *g, int v, float lo, float hi, uint32_t stream) {
    const dpt_tensor *t = nn_value_tensor(g, v);
    float *x = malloc(tensor_bytes(t));
    tu_fill_uniform(x, tensor_numel(t), lo, hi, stream);
    nn_set_input(g, v, x);
    if (ninputs_buf < 16) inputs_buf[ninputs_buf++] = x;
    return x;
}

static void free_inputs(void) {
    for (int i = 0; i < ninputs_buf; i++) free(inputs_buf[i]);
    ninputs_buf = 0;
}

static int image_rg(nn_graph *g, const char *name, int c, int h, int w) {
    int x = nn_input_vec(g, name, c * h * w);
    nn_input_requires_grad(g, x);
    return nn_view_image(g, x, c, h, w);
}

static int vec_rg(nn_graph *g, const char *name, int f) {
    int x = nn_input_vec(g, name, f);
    nn_input_requires_grad(g, x);
    return x;
}

static void set_param(nn_graph *g, const char *name, float lo, float hi, uint32_t stream) {
    int p = nn_find_param(g, name);
    TU_CHECK(p >= 0, "no parameter %s", name);
    if (p >= 0) tu_fill_uniform(g->params[p].value.data, g->params[p].numel, lo, hi, stream);
}

/* Finalizes, initialises, feeds every float input uniformly and the labels, runs check_graph. */
static nn_graph *run_case(const char *name, nn_graph *g, int out) {
    TU_CHECK(nn_graph_finalize(g, out) == DPT_OK, "%s: finalize", name);
    nn_init_params(g, 5);
    for (int i = 0; i < g->nnodes; i++) {
        const nn_node *nd = &g->nodes[i];
        if (nd->kind != NN_INPUT) continue;
        if (g->values[nd->out].t.dtype == DT_I32) nn_set_input(g, nd->out, labels);
        else feed(g, nd->out, -1.0f, 1.0f, 300 + (uint32_t)i);
    }
    return g;
}

static void finish_case(const char *name, nn_graph *g) {
    check_graph(name, g);
    nn_graph_destroy(g);
    free_inputs();
}

/* ---- every node on its own ---- */

static void test_nodes(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    finish_case("upsample2x", run_case("upsample2x", g, nn_upsample2x(g, image_rg(g, "x", 3, 3, 2))));

    g = nn_graph_create(backend_cpu(), B);
    finish_case("tanh", run_case("tanh", g, nn_tanh(g, image_rg(g, "x", 2, 3, 3))));

    for (int sn = 0; sn < 2; sn++) {
        g = nn_graph_create(backend_cpu(), B);
        int y = nn_input_labels(g, "y");
        finish_case(sn ? "embedding+sn" : "embedding", run_case("embedding", g, nn_embedding(g, "emb", y, CLASSES, 6, sn)));
    }

    g = nn_graph_create(backend_cpu(), B);
    int a = vec_rg(g, "a", 3), b = vec_rg(g, "b", 4);
    finish_case("concat", run_case("concat", g, nn_concat(g, a, nn_concat(g, b, b)))); /* b consumed twice */

    g = nn_graph_create(backend_cpu(), B);
    a = vec_rg(g, "a", 7);
    finish_case("slice", run_case("slice", g, nn_concat(g, nn_slice(g, a, 2, 3), a))); /* a sliced and used whole */

    g = nn_graph_create(backend_cpu(), B);
    a = vec_rg(g, "a", 3 * 2 * 2);
    finish_case("view_image", run_case("view", g, nn_conv2d(g, "c", nn_view_image(g, a, 3, 2, 2), 2, 3, 1, 1, true)));

    g = nn_graph_create(backend_cpu(), B);
    finish_case("conv_sn", run_case("conv_sn", g, nn_conv2d_sn(g, "c", image_rg(g, "x", 3, 5, 5), 4, 3, 1, 1, true)));

    g = nn_graph_create(backend_cpu(), B);
    finish_case("linear_sn", run_case("linear_sn", g, nn_linear_sn(g, "fc", vec_rg(g, "x", 6), 5, true)));

    g = nn_graph_create(backend_cpu(), B);
    a = vec_rg(g, "a", 5);
    finish_case("rowdot", run_case("rowdot", g, nn_rowdot(g, a, nn_linear(g, "fc", a, 5, false))));

    g = nn_graph_create(backend_cpu(), B);
    a = image_rg(g, "a", 2, 3, 3);
    int out = nn_scaled_add(g, "sa", a, nn_tanh(g, a));
    run_case("scaled_add", g, out);
    set_param(g, "sa.gamma", 0.5f, 1.0f, 9);
    finish_case("scaled_add", g);

    for (int relu = 0; relu < 2; relu++) {
        g = nn_graph_create(backend_cpu(), B);
        int x = image_rg(g, "x", 4, 3, 3), cond = vec_rg(g, "cond", 5);
        run_case("cbn", g, nn_cbn(g, "cbn", x, cond, relu));
        along_grad = relu;
        finish_case(relu ? "cbn+relu" : "cbn", g);
    }

    g = nn_graph_create(backend_cpu(), B);
    out = nn_attention(g, "attn", image_rg(g, "x", 16, 4, 4));
    run_case("attention", g, out);
    set_param(g, "attn.gamma", 0.5f, 1.0f, 10);
    along_grad = true;
    finish_case("attention", g);
    along_grad = false;
}

/* ---- composite graphs ---- */

/* z (12) in three chunks: one to the linear layer, one into each conditional BatchNorm's
 * condition with the shared class embedding, as BigGAN's hierarchical z. */
static nn_graph *mini_generator(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    int z = nn_input_vec(g, "z", 12), y = nn_input_labels(g, "y");
    int shared = nn_embedding(g, "shared", y, CLASSES, 8, false);
    int cond1 = nn_concat(g, shared, nn_slice(g, z, 4, 4)), cond2 = nn_concat(g, shared, nn_slice(g, z, 8, 4));
    int x = nn_linear_sn(g, "linear", nn_slice(g, z, 0, 4), 16 * 4 * 4, true);
    x = nn_view_image(g, x, 16, 4, 4);
    nn_scope_push(g, "block0");
    x = nn_cbn(g, "bn0", x, cond1, true);
    x = nn_upsample2x(g, x);
    x = nn_conv2d_sn(g, "conv0", x, 16, 3, 1, 1, false); /* a bias before BatchNorm has no gradient */
    x = nn_cbn(g, "bn1", x, cond2, true);
    nn_scope_pop(g);
    x = nn_attention(g, "attn", x);
    x = nn_batchnorm(g, "output_bn", x, true, false);
    x = nn_conv2d_sn(g, "output_conv", x, 3, 3, 1, 1, true);
    return run_case("G", g, nn_tanh(g, x));
}

/* A BigGAN discriminator block (conv_sn, relu, conv_sn, avgpool; shortcut conv1x1_sn + avgpool)
 * and the projection head: linear_sn(h) + <embed_sn(y), h>, h = ReLU then global sum pooling. */
static nn_graph *mini_discriminator(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    int x = nn_input(g, 3, 8, 8), y = nn_input_labels(g, "y");
    nn_input_requires_grad(g, x);
    nn_scope_push(g, "block0");
    int h = nn_conv2d_sn(g, "conv1", x, 8, 3, 1, 1, true);
    h = nn_relu(g, h);
    h = nn_conv2d_sn(g, "conv2", h, 8, 3, 1, 1, true);
    h = nn_avgpool(g, h, 2, 2, 0);
    int sc = nn_avgpool(g, nn_conv2d_sn(g, "conv_sc", x, 8, 1, 1, 0, true), 2, 2, 0);
    h = nn_add(g, h, sc, true);
    nn_scope_pop(g);
    h = nn_scale(g, nn_global_pool(g, h, POOL_AVG), 4.0f * 4.0f); /* global sum */
    int out = nn_linear_sn(g, "linear", h, 1, true);
    int proj = nn_rowdot(g, nn_embedding(g, "embed", y, CLASSES, 8, true), h);
    return run_case("D", g, nn_add(g, out, proj, false));
}

/* param_accumulate adds (the SN scratch path clears and accumulates): twice the gradient. */
static void check_accumulate(const char *name, nn_graph *g) {
    const int64_t nout = tensor_numel(nn_value_tensor(g, g->logits));
    float *R = malloc((size_t)nout * sizeof(float));
    tu_fill_uniform(R, nout, -1, 1, 78);
    nn_graph_set_sn(g, 0, 1e-12f); /* the same u, v both times */
    nn_forward(g, NULL, true);
    memcpy(nn_output_grad(g)->data, R, (size_t)nout * sizeof(float));
    nn_backward(g, false, NULL, NULL);
    const size_t n = g->grad_arena.size / sizeof(float);
    float *g1 = malloc(n * sizeof(float));
    memcpy(g1, g->grad_arena.base, n * sizeof(float));
    nn_forward(g, NULL, true);
    memcpy(nn_output_grad(g)->data, R, (size_t)nout * sizeof(float));
    nn_backward(g, true, NULL, NULL);
    const float *g2 = (const float *)g->grad_arena.base;
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(g2[i] - 2.0 * g1[i]));
        scale = fmax(scale, fabs(g1[i]));
    }
    TU_CHECK(worst <= 1e-5 * scale, "%s: accumulated gradient is not twice the gradient (max diff %g of %g)", name, worst,
             scale);
    nn_graph_set_sn(g, 1, 1e-12f);
    free(g1);
    free(R);
}

static void test_composites(void) {
    along_grad = true;
    nn_graph *g = mini_generator();
    set_param(g, "attn.gamma", 0.5f, 1.0f, 11);
    check_graph("G", g);
    check_accumulate("G", g);
    nn_graph_destroy(g);
    free_inputs();

    g = mini_discriminator();
    check_graph("D", g);
    check_accumulate("D", g);
    /* nn_forward's image argument and nn_set_input feed the same input. */
    const dpt_tensor *o = nn_value_tensor(g, g->logits);
    float *x = nn_value_tensor(g, g->input)->data, before[B], after[B];
    nn_graph_set_sn(g, 0, 1e-12f);
    nn_forward(g, NULL, true);
    memcpy(before, o->data, sizeof before);
    float *copy = malloc(tensor_bytes(nn_value_tensor(g, g->input)));
    memcpy(copy, x, tensor_bytes(nn_value_tensor(g, g->input)));
    nn_forward(g, copy, true);
    memcpy(after, o->data, sizeof after);
    TU_CHECK(!memcmp(before, after, sizeof before), "D: nn_forward(x) differs from nn_set_input(x)");
    free(copy);
    nn_graph_destroy(g);
    free_inputs();
    along_grad = false;
}

/* ---- spectral norm's state ---- */

static void test_sn_state(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    int x = nn_input(g, 3, 4, 4);
    int out = nn_conv2d_sn(g, "c", x, 5, 3, 1, 1, false);
    TU_CHECK(nn_graph_finalize(g, out) == DPT_OK, "finalize");
    nn_init_params(g, 5);
    int bu = nn_find_buffer(g, "c.weight_u"), bv = nn_find_buffer(g, "c.weight_v");
    TU_CHECK(bu >= 0 && bv >= 0, "c.weight_u / c.weight_v are not in the buffer list");
    if (bu < 0 || bv < 0) return;
    TU_CHECK(g->buffers[bu].numel == 5 && g->buffers[bv].numel == 3 * 3 * 3, "u has %lld, v %lld elements",
             (long long)g->buffers[bu].numel, (long long)g->buffers[bv].numel);
    const float *u = g->buffers[bu].value.data, *v = g->buffers[bv].value.data;
    double nu = 0.0, nv = 0.0;
    for (int i = 0; i < 5; i++) nu += (double)u[i] * u[i];
    for (int i = 0; i < 27; i++) nv += (double)v[i] * v[i];
    TU_CHECK(fabs(nu - 1.0) < 1e-6 && fabs(nv - 1.0) < 1e-6, "u, v not unit vectors (%g, %g)", nu, nv);
    float u0[5], v0[27], u1[5];
    memcpy(u0, u, sizeof u0);
    memcpy(v0, v, sizeof v0);
    nn_init_params(g, 5);
    TU_CHECK(!memcmp(u0, u, sizeof u0), "u is not a function of (seed, name)");
    TU_CHECK(memcmp(u0, v, sizeof u0) != 0, "u and v drawn alike");

    float *xin = malloc(B * 3 * 4 * 4 * sizeof(float)), ytrain[B * 5 * 16];
    tu_fill_uniform(xin, B * 3 * 4 * 4, -1, 1, 3);
    nn_forward(g, xin, false);
    TU_CHECK(!memcmp(u0, u, sizeof u0) && !memcmp(v0, v, sizeof v0), "an evaluation forward moved u or v");
    nn_forward(g, xin, true);
    TU_CHECK(memcmp(u0, u, sizeof u0) != 0 && memcmp(v0, v, sizeof v0) != 0, "a training forward left u, v");
    memcpy(u1, u, sizeof u1);
    memcpy(ytrain, nn_value_tensor(g, out)->data, sizeof ytrain);
    nn_forward(g, xin, false);
    TU_CHECK(!memcmp(u1, u, sizeof u1), "an evaluation forward moved u");
    /* Evaluation uses u^T W v with the stored vectors: the training forward's sigma. */
    TU_CHECK(tu_rel_error_ff(nn_value_tensor(g, out)->data, ytrain, B * 5 * 16) < 1e-5,
             "evaluation after training differs from training's output");
    nn_graph_set_sn(g, 0, 1e-12f);
    nn_forward(g, xin, true);
    TU_CHECK(!memcmp(u1, u, sizeof u1), "a training forward with 0 power iterations moved u");
    /* Many iterations: sigma converges to W's largest singular value, so W_sn's is 1. */
    nn_graph_set_sn(g, 1, 1e-12f);
    for (int i = 0; i < 200; i++) nn_forward(g, xin, true);
    const nn_node *nd = &g->nodes[g->values[out].producer];
    const float *w = g->params[nn_find_param(g, "c.weight")].value.data, *wsn = nn_value_tensor(g, nd->sn.w_sn)->data;
    TU_CHECK(fabsf(w[7] / nd->sn.sigma - wsn[7]) < 1e-6f, "W_sn is not W / sigma");
    free(xin);
    nn_graph_destroy(g);
}

/* ---- inputs and views ---- */

static void test_inputs(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    int z = nn_input_vec(g, "z", 12), y = nn_input_labels(g, "y");
    int img = nn_view_image(g, z, 3, 2, 2);
    int e = nn_embedding(g, "e", y, CLASSES, 3, false);
    TU_CHECK(nn_value_tensor(g, y)->dtype == DT_I32 && nn_value_tensor(g, y)->ndim == 1, "labels are not int32 (N)");
    TU_CHECK(nn_graph_finalize(g, e) == DPT_OK, "finalize");
    nn_init_params(g, 1);
    float zin[B * 12];
    tu_fill_uniform(zin, B * 12, -1, 1, 4);
    nn_set_input(g, z, zin);
    nn_set_input(g, y, labels);
    nn_forward(g, NULL, true);
    TU_CHECK(nn_value_tensor(g, img)->data == (void *)zin, "the view does not alias its input");
    TU_CHECK(nn_value_grad(g, z)->data == NULL && nn_value_grad(g, y)->data == NULL, "inputs got gradients");
    const float *table = g->params[nn_find_param(g, "e.weight")].value.data, *o = nn_value_tensor(g, e)->data;
    bool rows = true;
    for (int i = 0; i < B; i++) rows = rows && !memcmp(o + i * 3, table + labels[i] * 3, 3 * sizeof(float));
    TU_CHECK(rows, "embedding rows do not follow the labels set with nn_set_input");
    nn_graph_destroy(g);
}

/* ---- misuse: a clear message and a non-zero exit ---- */

typedef void (*misuse_fn)(void);

static void bad_slice(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    nn_slice(g, nn_input_vec(g, "z", 8), 6, 4);
}
static void bad_concat(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    nn_concat(g, nn_input(g, 3, 4, 4), nn_input_vec(g, "z", 8));
}
static void bad_view(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    nn_view_image(g, nn_input_vec(g, "z", 20), 3, 2, 3);
}
static void unset_input(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    int z = nn_input_vec(g, "z", 4);
    nn_graph_finalize(g, nn_linear(g, "fc", z, 2, false));
    nn_forward(g, NULL, false);
}

static void run_misuse(void *fn) { ((misuse_fn)fn)(); }

static void check_misuse(const char *what, misuse_fn fn, const char *want) {
    char msg[2048];
    TU_CHECK(tu_expect_death(run_misuse, (void *)fn, msg, sizeof msg), "%s: the process carried on", what);
    TU_CHECK(tu_contains(msg, want), "%s: message lacks \"%s\": %s", what, want, msg);
}

int main(void) {
    test_nodes();
    test_composites();
    test_sn_state();
    test_inputs();
    check_misuse("slice out of range", bad_slice, "features [6, 10) are outside the input's 8");
    check_misuse("concat of an image", bad_concat, "needs a 2-d (N, F) float value");
    check_misuse("view of the wrong size", bad_view, "20 features cannot be seen as (3, 2, 3)");
    check_misuse("input never set", unset_input, "input has no data");
    printf("largest relative finite-difference error per tensor (directional derivative):\n");
    for (int i = 0; i < nnotes; i++) printf("  %-48s %.2e\n", note_name[i], note_err[i]);
    return tu_finish("test_graph_gan");
}
