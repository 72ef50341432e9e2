/* Cross-replica BatchNorm: N ranks with statistics groups of G ranks compute what one process
 * computes with plain BatchNorm on each group's concatenated batch.
 *   syncbn_check GLOBAL_BATCH GROUP [--local]
 * A small network (conv, BN+ReLU, conv, BN, global pool, linear) runs one training forward and
 * backward on rank r's slice of a fixed global batch. Rank 0 compares against references built
 * in the same process with plain BatchNorm, one per group, on the group's samples:
 *   forward output (logits) of every sample, parameter gradients summed over ranks (what the
 *   gradient allreduce produces), and the running statistics (every rank of a group holds the
 *   group's). --local runs the ranks without cross-replica statistics: the comparison must then
 *   fail (the check can tell the two apart). Exit 0 when everything agrees to 1e-5 relative. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/comm/comm.h"
#include "dpt/models/models.h"
#include "testutil.h"

enum { C_IN = 3, H = 6, W = 5, CLASSES = 4 };

static void reduce_fn(void *ctx, double *buf, int n) { comm_group_allreduce_sum_f64(ctx, buf, n); }

static nn_graph *build(int batch, comm_group *grp) {
    nn_graph *g = nn_graph_create(backend_cpu(), batch);
    if (grp) nn_graph_set_bn_reduce(g, (be_reduce){.fn = reduce_fn, .ctx = grp});
    int x = nn_input(g, C_IN, H, W);
    x = nn_conv2d(g, "conv1", x, 8, 3, 1, 1, false);
    x = nn_batchnorm(g, "bn1", x, true, false);
    x = nn_conv2d(g, "conv2", x, 6, 3, 2, 1, false);
    x = nn_batchnorm(g, "bn2", x, false, false);
    x = nn_global_pool(g, x, POOL_AVG);
    x = nn_linear(g, "fc", x, CLASSES, true);
    DPT_CHECK(nn_graph_finalize(g, x) == DPT_OK);
    nn_init_params(g, 7);
    /* gamma and beta away from 1 and 0, so that their gradients and uses are all exercised */
    for (int i = 0; i < g->nparams; i++)
        if (strstr(g->params[i].name, "bn")) tu_fill_uniform(g->params[i].value.data, g->params[i].numel, 0.5f, 1.5f, 40 + i);
    return g;
}

/* One forward (train) and backward on samples [first, first + n) of the global batch. */
static void step(nn_graph *g, const float *x_all, const int32_t *y_all, int first, int n, int global) {
    const int64_t per = (int64_t)C_IN * H * W;
    nn_forward(g, x_all + first * per, true);
    nn_loss(g, y_all + first, 0.0f, 1.0f / (float)global, n);
    nn_backward(g, false, NULL, NULL);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    const comm_info *ci = comm_get();
    if (argc < 3) {
        fprintf(stderr, "usage: syncbn_check GLOBAL_BATCH GROUP [--local]\n");
        comm_abort(2);
    }
    const int global = atoi(argv[1]), group = atoi(argv[2]) > 0 ? atoi(argv[2]) : ci->world;
    const bool local = argc > 3 && !strcmp(argv[3], "--local");
    const int world = ci->world, rank = ci->rank, per_rank = global / world;
    DPT_CHECK(global % world == 0 && world % group == 0);
    backend_cpu()->set_threads(1);

    /* The global batch, NHWC (the CPU back end's layout), channel means far from zero. */
    const int64_t per = (int64_t)C_IN * H * W;
    float *x = dpt_xmalloc((size_t)(global * per) * sizeof(float));
    int32_t *y = dpt_xmalloc((size_t)global * sizeof(int32_t));
    tu_fill_uniform(x, global * per, 2.0f, 6.0f, 1);
    for (int i = 0; i < global; i++) y[i] = (i * 7 + 3) % CLASSES;

    comm_group *grp = comm_group_create(group);
    nn_graph *g = build(per_rank, local ? NULL : grp);
    step(g, x, y, rank * per_rank, per_rank, global);

    /* Everyone's logits to rank 0; gradients summed (the allreduce); running stats of every rank. */
    const int64_t nlog = (int64_t)per_rank * CLASSES;
    float *logits = dpt_xcalloc((size_t)(global * CLASSES), sizeof(float));
    memcpy(logits + rank * nlog, nn_value_tensor(g, g->logits)->data, (size_t)nlog * sizeof(float));
    comm_allreduce_sum_f32(logits, global * CLASSES);
    comm_allreduce_sum_f32((float *)g->grad_arena.base, (int64_t)(g->grad_arena.size / sizeof(float)));
    const int64_t nbuf = (int64_t)(g->buffer_arena.size / sizeof(float));
    float *bufs = dpt_xcalloc((size_t)(nbuf * world), sizeof(float));
    memcpy(bufs + rank * nbuf, g->buffer_arena.base, (size_t)nbuf * sizeof(float));
    comm_allreduce_sum_f32(bufs, nbuf * world);

    int bad = 0;
    if (rank == 0) {
        /* References: plain BatchNorm, one graph per group on the group's concatenated samples. */
        const int gbatch = per_rank * group, ngroups = world / group;
        const int64_t ngrad = (int64_t)(g->grad_arena.size / sizeof(float));
        float *ref_logits = dpt_xcalloc((size_t)(global * CLASSES), sizeof(float));
        float *ref_grad = dpt_xcalloc((size_t)ngrad, sizeof(float));
        double worst_log = 0, worst_buf = 0;
        for (int k = 0; k < ngroups; k++) {
            nn_graph *ref = build(gbatch, NULL);
            step(ref, x, y, k * gbatch, gbatch, global);
            memcpy(ref_logits + (int64_t)k * gbatch * CLASSES, nn_value_tensor(ref, ref->logits)->data,
                   (size_t)gbatch * CLASSES * sizeof(float));
            const float *rg = (const float *)ref->grad_arena.base;
            for (int64_t i = 0; i < ngrad; i++) ref_grad[i] += rg[i];
            for (int r = k * group; r < (k + 1) * group; r++)
                worst_buf = fmax(worst_buf, tu_rel_error_ff(bufs + r * nbuf, (const float *)ref->buffer_arena.base, nbuf));
            nn_graph_destroy(ref);
        }
        worst_log = tu_rel_error_ff(logits, ref_logits, global * CLASSES);
        double worst_grad = 0;
        const char *worst_name = "";
        for (int i = 0; i < g->nparams; i++) {
            const nn_param *p = &g->params[i];
            double e = tu_rel_error_ff((const float *)g->grad_arena.base + p->offset / sizeof(float),
                           ref_grad + p->offset / sizeof(float), p->numel);
            if (e > worst_grad) {
                worst_grad = e;
                worst_name = p->name;
            }
        }
        const double tol = 1e-5;
        bad = !(worst_log <= tol && worst_grad <= tol && worst_buf <= tol);
        printf("syncbn_check: %d ranks, groups of %d, global batch %d%s: logits %.2e, gradients %.2e (worst %s), "
               "running stats %.2e -> %s\n",
               world, group, global, local ? " (per-rank BN)" : "", worst_log, worst_grad, worst_name, worst_buf,
               bad ? "DIFFERENT" : "equal");
        free(ref_logits);
        free(ref_grad);
    }
    comm_bcast(&bad, sizeof bad, 0);
    nn_graph_destroy(g);
    comm_group_destroy(grp);
    free(x);
    free(y);
    free(logits);
    free(bufs);
    comm_finalize();
    return bad ? 1 : 0;
}
