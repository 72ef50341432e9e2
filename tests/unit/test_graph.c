/* Whole-graph gradient checks. The graph's backward walk (reverse order, gradient fan-out
 * accumulation, a value consumed twice, residual adds, loss scaling, parameter gradients
 * mapped to their tensors) is checked against central finite differences of the loss, one
 * parameter tensor at a time. The graph is smooth (BatchNorm without ReLU, average pooling)
 * so that finite differences are exact up to float rounding: ReLU and max-pool kinks are
 * checked op by op in test_ops, and whole ResNets against PyTorch in torch_parity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/nn/graph.h"
#include "testutil.h"

#define B 4

static double loss_at(nn_graph *g, const float *x, const int32_t *y, float smoothing) {
    nn_forward(g, x, true);
    return nn_loss(g, y, smoothing, 1.0f / B, B) / B;
}

/* Directional derivative along a random direction supported on parameter p. */
static void check_param(nn_graph *g, int p, const float *x, const int32_t *y, const float *grad, float smoothing) {
    nn_param *pr = &g->params[p];
    int64_t n = pr->numel;
    float *w = pr->value.data;
    float *v = malloc(n * sizeof(float)), *w0 = malloc(n * sizeof(float));
    tu_fill_uniform(v, n, -1, 1, 100 + (uint32_t)p);
    memcpy(w0, w, n * sizeof(float));
    double analytic = 0.0;
    const float *gp = grad + pr->offset / sizeof(float);
    for (int64_t i = 0; i < n; i++) analytic += (double)gp[i] * v[i];
    const double h = 1e-3;
    for (int64_t i = 0; i < n; i++) w[i] = w0[i] + (float)h * v[i];
    double lp = loss_at(g, x, y, smoothing);
    for (int64_t i = 0; i < n; i++) w[i] = w0[i] - (float)h * v[i];
    double lm = loss_at(g, x, y, smoothing);
    memcpy(w, w0, n * sizeof(float));
    double numeric = (lp - lm) / (2 * h);
    double err = fabs(numeric - analytic) / fmax(fabs(analytic), 1e-2);
    TU_CHECK(err < 1e-2, "%s: d/dv numeric %.6g analytic %.6g (rel %.3g)", pr->name, numeric, analytic, err);
    TU_CHECK(fabs(analytic) > 1e-4, "%s: gradient is (almost) zero, the check would prove nothing", pr->name);
    free(v);
    free(w0);
}

static int hook_calls[256], hook_n;
static void hook(void *ctx, int node) {
    (void)ctx;
    if (hook_n < 256) hook_calls[hook_n++] = node;
}

int main(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), B);
    int x = nn_input(g, 2, 8, 8);
    x = nn_conv2d(g, "c1", x, 4, 3, 1, 1, false); /* a bias before BatchNorm has no gradient */
    int a = nn_batchnorm(g, "bn1", x, false, false); /* consumed by the branch and the add */
    nn_scope_push(g, "branch");
    int r = nn_conv2d(g, "c2", a, 4, 3, 1, 1, false);
    r = nn_batchnorm(g, "bn2", r, false, false);
    r = nn_scale(g, r, 0.5f);
    nn_scope_pop(g);
    x = nn_add(g, a, r, false);
    x = nn_avgpool(g, x, 2, 2, 0);
    x = nn_conv2d(g, "c3", x, 8, 1, 2, 0, true); /* 1x1, stride 2 */
    x = nn_add(g, x, x, false);                  /* the same value twice */
    x = nn_conv2d(g, "c4", x, 8, 3, 1, 1, true);
    x = nn_global_pool(g, x, POOL_AVG);
    x = nn_linear(g, "fc", x, 5, true);
    int logits = nn_scale(g, x, 0.125f);
    TU_CHECK(nn_graph_finalize(g, logits) == DPT_OK, "finalize");
    nn_init_params(g, 11);
    /* Non-trivial BatchNorm affine parameters. */
    for (int p = 0; p < g->nparams; p++)
        if (strstr(g->params[p].name, "bn")) tu_fill_uniform(g->params[p].value.data, g->params[p].numel, 0.5f, 1.5f, 40 + p);

    float xin[B * 2 * 8 * 8];
    tu_fill_uniform(xin, B * 2 * 8 * 8, -2, 2, 7);
    int32_t y[B] = {0, 3, 4, 1};
    for (int pass = 0; pass < 2; pass++) {
        float smoothing = pass ? 0.1f : 0.0f;
        loss_at(g, xin, y, smoothing);
        nn_backward(g, false, NULL, NULL);
        size_t gbytes = g->grad_arena.size;
        float *grad = malloc(gbytes);
        memcpy(grad, g->grad_arena.base, gbytes);
        for (int p = 0; p < g->nparams; p++) check_param(g, p, xin, y, grad, smoothing);

        /* param_accumulate adds: a second backward doubles every gradient. */
        loss_at(g, xin, y, smoothing);
        nn_backward(g, true, NULL, NULL);
        const float *g2 = (const float *)g->grad_arena.base;
        double worst = 0.0;
        for (size_t i = 0; i < gbytes / sizeof(float); i++) worst = fmax(worst, fabs(g2[i] - 2.0f * grad[i]));
        TU_CHECK(worst < 1e-6, "accumulated gradient is not twice the gradient (max diff %g)", worst);
        free(grad);
    }

    /* The backward hook sees every node once, in reverse order. */
    loss_at(g, xin, y, 0.0f);
    nn_backward(g, false, hook, NULL);
    bool order = hook_n == g->nnodes;
    for (int i = 0; order && i < hook_n; i++) order = hook_calls[i] == g->nnodes - 1 - i;
    TU_CHECK(order, "hook called %d times for %d nodes, or out of reverse order", hook_n, g->nnodes);
    nn_graph_destroy(g);
    return tu_finish("test_graph");
}
