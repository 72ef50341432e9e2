/* Pieces of BigGAN training (src/train/gan_sample.c) in one process:
 *  - latents and labels are a function of (seed, draw, global sample index): a batch drawn in two
 *    slices equals the batch drawn at once, draws and seeds differ, z looks standard normal,
 *    truncation bounds every element, labels cover the classes;
 *  - standing statistics: every BatchNorm's running mean becomes the average over the forwards of
 *    the batch means the forwards themselves computed (read from the node's saved statistics),
 *    and the SN vectors are left as the forwards made them;
 *  - generation in batches: n samples in batches of 3 equal the same samples one batch at a time;
 *  - nn_backward_inputs (the G step's pass through D): the input gradient of a full backward, no
 *    convolution or linear weight gradient written. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/train/gan_internal.h"
#include "testutil.h"

static const gan_spec SPEC = {32, 8, 32, 16, true, 10, 16, 1};

static void test_draw(void) {
    enum { N = 64, DZ = 32 };
    float *a = malloc(N * DZ * sizeof(float)), *b = malloc(N * DZ * sizeof(float));
    int32_t ya[N], yb[N];
    gan_draw(a, ya, N, DZ, 10, 7, 3, 0, 0.0f);
    gan_draw(b, yb, 20, DZ, 10, 7, 3, 0, 0.0f);
    gan_draw(b + 20 * DZ, yb + 20, N - 20, DZ, 10, 7, 3, 20, 0.0f);
    TU_CHECK(!memcmp(a, b, N * DZ * sizeof(float)) && !memcmp(ya, yb, sizeof ya), "slices differ from the whole batch");
    double s = 0, s2 = 0;
    for (int i = 0; i < N * DZ; i++) s += a[i], s2 += (double)a[i] * a[i];
    const double mean = s / (N * DZ), var = s2 / (N * DZ) - mean * mean;
    TU_CHECK(fabs(mean) < 0.1 && fabs(var - 1.0) < 0.15, "z: mean %.3f, variance %.3f", mean, var);
    int seen[10] = {0};
    for (int i = 0; i < N; i++) {
        TU_CHECK(ya[i] >= 0 && ya[i] < 10, "label %d", ya[i]);
        seen[ya[i]]++;
    }
    int classes = 0;
    for (int c = 0; c < 10; c++) classes += seen[c] > 0;
    TU_CHECK(classes >= 8, "only %d of 10 classes in 64 labels", classes);
    gan_draw(b, yb, N, DZ, 10, 7, 4, 0, 0.0f);
    TU_CHECK(memcmp(a, b, N * DZ * sizeof(float)) != 0, "another draw gives the same z");
    gan_draw(b, yb, N, DZ, 10, 8, 3, 0, 0.0f);
    TU_CHECK(memcmp(a, b, N * DZ * sizeof(float)) != 0, "another seed gives the same z");
    gan_draw(b, NULL, N, DZ, 10, 7, 3, 0, 0.5f);
    int same = 0;
    for (int i = 0; i < N * DZ; i++) {
        TU_CHECK(fabsf(b[i]) <= 0.5f, "truncated z[%d] = %g", i, b[i]);
        same += b[i] == a[i];
    }
    /* Elements already inside the bound are kept (the first draw), the others redrawn. */
    int inside = 0;
    for (int i = 0; i < N * DZ; i++) inside += fabsf(a[i]) <= 0.5f;
    TU_CHECK(same == inside, "truncation kept %d elements, %d were inside", same, inside);
    free(a);
    free(b);
}

static void test_standing_stats(void) {
    enum { B = 8, K = 3 };
    gan_io io;
    dpt_status st;
    nn_graph *G = gan_build(&SPEC, true, B, NULL, 5, &io, &st);
    TU_CHECK(G && st == DPT_OK, "build: %s", dpt_error_message());
    /* The reference: K training forwards on the same draws, each node's batch mean averaged. */
    const int64_t nb = (int64_t)(G->buffer_arena.size / sizeof(float));
    float *start = malloc((size_t)nb * sizeof(float));
    memcpy(start, G->buffer_arena.base, (size_t)nb * sizeof(float));
    float *z = malloc((size_t)B * SPEC.dim_z * sizeof(float));
    int32_t y[B];
    double *want = calloc((size_t)nb, sizeof(double));
    int nbn = 0;
    for (int k = 0; k < K; k++) {
        gan_draw(z, y, B, SPEC.dim_z, SPEC.num_classes, 1, 0x57A0, (int64_t)k * B, 0.0f);
        nn_set_input(G, io.z, z);
        nn_set_input(G, io.labels, y);
        nn_forward(G, NULL, true);
        nbn = 0;
        for (int i = 0; i < G->nnodes; i++) {
            const nn_node *nd = &G->nodes[i];
            if (nd->kind != NN_CBN && nd->kind != NN_BATCHNORM) continue;
            const nn_buffer *rm = &G->buffers[nd->buffer[0]];
            const float *m = nn_value_tensor(G, nd->saved[0])->data;
            for (int64_t j = 0; j < rm->numel; j++) want[rm->offset / sizeof(float) + j] += m[j] / K;
            nbn++;
        }
    }
    float *after_forwards = malloc((size_t)nb * sizeof(float));
    memcpy(after_forwards, G->buffer_arena.base, (size_t)nb * sizeof(float));
    memcpy(G->buffer_arena.base, start, (size_t)nb * sizeof(float));
    gan_standing_stats(G, &io, &SPEC, K, 1, 0x57A0);
    double worst = 0;
    int checked = 0, sn_same = 0, sn = 0;
    for (int i = 0; i < G->nbuffers; i++) {
        const nn_buffer *b = &G->buffers[i];
        const float *got = (const float *)b->value.data;
        const int64_t off = (int64_t)(b->offset / sizeof(float));
        if (strstr(b->name, ".running_mean")) {
            for (int64_t j = 0; j < b->numel; j++)
                worst = fmax(worst, fabs(got[j] - want[off + j]) / (1e-3 + fabs(want[off + j])));
            checked++;
        } else if (strstr(b->name, "weight_u") || strstr(b->name, "weight_v")) {
            sn++;
            sn_same += !memcmp(got, after_forwards + off, (size_t)b->numel * sizeof(float));
        }
    }
    TU_CHECK(nbn > 0 && checked == nbn, "%d BatchNorm nodes, %d running means", nbn, checked);
    TU_CHECK(worst < 1e-4, "standing running means off by %.3g (relative) from the average batch means", worst);
    TU_CHECK(sn > 0 && sn_same == sn, "%d of %d SN vectors differ from those of K training forwards", sn - sn_same, sn);
    printf("standing statistics: %d BatchNorm layers, running means within %.2g of the mean of %d batch means\n", checked,
           worst, K);
    free(start);
    free(after_forwards);
    free(want);
    free(z);
    nn_graph_destroy(G);
}

static void test_generate_batches(void) {
    enum { N = 7 };
    gan_io io3, io1;
    dpt_status st;
    nn_graph *G3 = gan_build(&SPEC, true, 3, NULL, 9, &io3, &st);
    nn_graph *G1 = gan_build(&SPEC, true, 1, NULL, 9, &io1, &st);
    float z[N * 32];
    int32_t y[N];
    gan_draw(z, y, N, SPEC.dim_z, SPEC.num_classes, 2, 1, 0, 0.0f);
    const int px = 32 * 32;
    float *a = malloc(N * px * sizeof(float)), *b = malloc(N * px * sizeof(float));
    gan_generate(G3, &io3, z, y, N, false, a);
    gan_generate(G1, &io1, z, y, N, false, b);
    double e = tu_rel_error_ff(a, b, N * px);
    TU_CHECK(e < 1e-5, "7 samples in batches of 3 and of 1 differ by %.3g", e);
    float lo = 1, hi = -1;
    for (int i = 0; i < N * px; i++) lo = fminf(lo, a[i]), hi = fmaxf(hi, a[i]);
    TU_CHECK(lo >= -1.0f && hi <= 1.0f && hi > lo, "images span [%g, %g]", lo, hi);
    free(a);
    free(b);
    nn_graph_destroy(G3);
    nn_graph_destroy(G1);
}

/* nn_backward_inputs: D's input gradient equals a full backward's bit for bit, and convolution
 * and linear weight gradients are not written. */
static void test_backward_inputs(void) {
    enum { B = 4 };
    gan_io io;
    dpt_status st;
    nn_graph *D = gan_build(&SPEC, false, B, NULL, 3, &io, &st);
    TU_CHECK(D && st == DPT_OK, "build D: %s", dpt_error_message());
    const int64_t px = 32 * 32, nx = B * px;
    float *x = malloc((size_t)nx * sizeof(float)), *full = malloc((size_t)nx * sizeof(float));
    tu_fill_uniform(x, nx, -1.0f, 1.0f, 4);
    int32_t y[B] = {0, 3, 9, 3};
    nn_set_input(D, io.labels, y);
    nn_graph_set_sn(D, 0, 1e-12f);
    float *dout = nn_output_grad(D)->data;
    for (int i = 0; i < B; i++) dout[i] = 0.25f * (float)(i + 1);
    nn_forward(D, x, true);
    nn_backward(D, false, NULL, NULL);
    memcpy(full, nn_value_grad(D, io.x)->data, (size_t)nx * sizeof(float));
    const int64_t ng = (int64_t)(D->grad_arena.size / sizeof(float));
    float *g = (float *)D->grad_arena.base;
    for (int64_t i = 0; i < ng; i++) g[i] = 12345.0f;
    nn_forward(D, x, true);
    for (int i = 0; i < B; i++) dout[i] = 0.25f * (float)(i + 1);
    nn_backward_inputs(D);
    TU_CHECK(!memcmp(full, nn_value_grad(D, io.x)->data, (size_t)nx * sizeof(float)),
             "the input gradient differs from a full backward's");
    int weights = 0, untouched = 0;
    for (int i = 0; i < D->nparams; i++) {
        const nn_param *p = &D->params[i];
        const nn_node *nd = &D->nodes[p->node];
        if (nd->kind != NN_CONV && nd->kind != NN_LINEAR) continue;
        weights++;
        const float *d = (const float *)p->grad.data;
        bool same = true;
        for (int64_t k = 0; k < p->numel; k++) same &= d[k] == 12345.0f;
        untouched += same;
    }
    TU_CHECK(weights > 10 && untouched == weights, "%d of %d convolution/linear gradients written", weights - untouched,
             weights);
    free(x);
    free(full);
    nn_graph_destroy(D);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    backend_cpu()->set_threads(1);
    test_draw();
    test_standing_stats();
    test_generate_batches();
    test_backward_inputs();
    int rc = tu_finish("test_gan_train");
    comm_finalize();
    return rc;
}
