/* One BigGAN D step and one G step on N ranks equal the same steps in one process.
 *   gan_step_check GLOBAL_BATCH [--local]
 * A small 32 px BigGAN (1 channel, ch 8, hierarchical latent, attention at 16) with
 * cross-replica BatchNorm in G over all ranks. Rank r takes its slice of a fixed global batch of
 * real images, labels and z. D step: hinge loss on D(real) and D(G(z)), gradients summed over
 * ranks (the gradient allreduce), Adam (lr 4e-4, betas 0, 0.999). G step: hinge loss on
 * D(G(z)) through D's input gradient, G's gradients summed, Adam (lr 1e-4). Rank 0 repeats both
 * steps with the whole batch in one process (plain BatchNorm) and compares D's and G's summed
 * gradients of each step, the parameters after both updates and G's running statistics.
 * --local runs G's BatchNorm per rank: the check must then fail. Exit 0 when all agree to 1e-3
 * relative. Typical differences are 4e-7 (gradients) and 1e-8 (parameters); now and then a
 * ReLU input within rounding of 0 flips with the summation order and moves G's gradients by up to
 * 1e-4 (seen: 2 ranks at batch 16). Per-rank statistics differ by 1e-2 to 3e-1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/comm/comm.h"
#include "dpt/models/models.h"
#include "testutil.h"

static const gan_spec SPEC = {32, 8, 32, 16, true, 10, 16, 1};

static void reduce_fn(void *ctx, double *buf, int n) { comm_group_allreduce_sum_f64(ctx, buf, n); }

typedef struct gan_pair {
    nn_graph *G, *D;
    gan_io gi, di;
    float *mg, *vg, *md, *vd; /* Adam state */
} gan_pair;

static nn_graph *finalize(nn_graph *g, int out, uint64_t seed) {
    DPT_CHECK(nn_graph_finalize(g, out) == DPT_OK);
    nn_init_params(g, seed);
    return g;
}

static void build(gan_pair *p, int batch, comm_group *grp) {
    memset(p, 0, sizeof *p);
    p->G = nn_graph_create(backend_cpu(), batch);
    if (grp) nn_graph_set_bn_reduce(p->G, (be_reduce){.fn = reduce_fn, .ctx = grp});
    DPT_CHECK(biggan_generator(p->G, &SPEC, &p->gi) == DPT_OK);
    finalize(p->G, p->gi.out, 11);
    p->D = nn_graph_create(backend_cpu(), batch);
    DPT_CHECK(biggan_discriminator(p->D, &SPEC, &p->di) == DPT_OK);
    nn_input_requires_grad(p->D, p->di.x);
    finalize(p->D, p->di.out, 12);
    /* Attention's gamma away from 0, so that its branch has gradients. */
    for (int i = 0; i < p->G->nparams; i++)
        if (strstr(p->G->params[i].name, "gamma")) ((float *)p->G->params[i].value.data)[0] = 0.3f;
    for (int i = 0; i < p->D->nparams; i++)
        if (strstr(p->D->params[i].name, "gamma")) ((float *)p->D->params[i].value.data)[0] = 0.3f;
    const size_t ng = p->G->grad_arena.size, nd = p->D->grad_arena.size;
    p->mg = dpt_xcalloc(ng, 1);
    p->vg = dpt_xcalloc(ng, 1);
    p->md = dpt_xcalloc(nd, 1);
    p->vd = dpt_xcalloc(nd, 1);
}

static void destroy(gan_pair *p) {
    nn_graph_destroy(p->G);
    nn_graph_destroy(p->D);
    free(p->mg);
    free(p->vg);
    free(p->md);
    free(p->vd);
}

static int64_t nfloats(const dpt_arena *a) { return (int64_t)(a->size / sizeof(float)); }
static float *fl(const dpt_arena *a) { return (float *)a->base; }

static void adam(nn_graph *g, float *m, float *v, float lr) {
    const be_adam_args a = {.lr = lr, .beta1 = 0.0f, .beta2 = 0.999f, .eps = 1e-8f, .grad_scale = 1.0f, .step = 1};
    g->be->adam_update(fl(&g->param_arena), m, v, fl(&g->grad_arena), nfloats(&g->param_arena), &a);
}

/* D's output gradient from the hinge loss of its last forward (sign +1 real, -1 fake, 0: G's). */
static void hinge(nn_graph *D, float sign, int global) {
    dpt_tensor *out = (dpt_tensor *)nn_value_tensor(D, D->logits), *dout = nn_output_grad(D);
    dpt_tensor losses = tensor_1d(D->losses.data, DT_F32, D->batch);
    dpt_tensor o2 = tensor_1d(out->data, DT_F32, D->batch), d2 = tensor_1d(dout->data, DT_F32, D->batch);
    if (sign != 0.0f) D->be->hinge_d(&losses, &d2, &o2, sign, 1.0f / (float)global);
    else D->be->hinge_g(&losses, &d2, &o2, 1.0f / (float)global);
}

/* G(z, y) for samples [first, first + n) of the global batch. */
static const float *generate(gan_pair *p, const float *z, const int32_t *y, int first) {
    nn_set_input(p->G, p->gi.z, z + (int64_t)first * SPEC.dim_z);
    nn_set_input(p->G, p->gi.labels, y + first);
    nn_forward(p->G, NULL, true);
    return nn_value_tensor(p->G, p->gi.out)->data;
}

typedef void (*sum_fn)(float *buf, int64_t n);

/* The D step; its summed gradients are left in D's gradient arena. */
static void d_step(gan_pair *p, const float *real, const float *z, const int32_t *y, int first, int global,
                   sum_fn sum) {
    const int64_t px = (int64_t)SPEC.resolution * SPEC.resolution * SPEC.image_channels;
    nn_set_input(p->D, p->di.labels, y + first);
    nn_forward(p->D, real + first * px, true);
    hinge(p->D, 1.0f, global);
    nn_backward(p->D, false, NULL, NULL);
    const float *fake = generate(p, z, y, first);
    nn_forward(p->D, fake, true);
    hinge(p->D, -1.0f, global);
    nn_backward(p->D, true, NULL, NULL);
    if (sum) sum(fl(&p->D->grad_arena), nfloats(&p->D->grad_arena));
}

/* The G step through D's input gradient; G's summed gradients are left in its gradient arena. */
static void g_step(gan_pair *p, const float *z, const int32_t *y, int first, int global, sum_fn sum) {
    const float *fake = generate(p, z, y, first);
    nn_set_input(p->D, p->di.labels, y + first);
    nn_forward(p->D, fake, true);
    hinge(p->D, 0.0f, global);
    nn_backward(p->D, false, NULL, NULL);
    const dpt_tensor *dx = nn_value_grad(p->D, p->di.x);
    memcpy(nn_output_grad(p->G)->data, dx->data, tensor_bytes(dx));
    nn_backward(p->G, false, NULL, NULL);
    if (sum) sum(fl(&p->G->grad_arena), nfloats(&p->G->grad_arena));
}

/* Biases whose per-channel shift reaches BatchNorm only through linear paths (G's conv1 biases
 * feed conditional BatchNorm directly; after the attention block, every conv bias of the last
 * block ends in the output BatchNorm) get a zero gradient, computed as rounding noise, which Adam
 * (lr * sign) then turns into full steps in either direction. Such tensors are recognised by
 * their reference gradient (rms below 1e-5 of the median tensor's) and left out. */
static bool *null_space;

static double rms(const float *p, int64_t n) {
    double s = 0;
    for (int64_t k = 0; k < n; k++) s += (double)p[k] * p[k];
    return sqrt(s / (double)(n > 0 ? n : 1));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Marks g's null-space tensors from its gradients; returns how many. */
static int find_null_space(const nn_graph *g) {
    const float *d = (const float *)g->grad_arena.base;
    double *r = dpt_xcalloc((size_t)g->nparams, sizeof(double)), *sorted = dpt_xcalloc((size_t)g->nparams, sizeof(double));
    for (int i = 0; i < g->nparams; i++) sorted[i] = r[i] = rms(d + g->params[i].offset / sizeof(float), g->params[i].numel);
    qsort(sorted, (size_t)g->nparams, sizeof(double), cmp_double);
    const double median = sorted[g->nparams / 2];
    null_space = dpt_xcalloc((size_t)g->nparams, sizeof(bool));
    int count = 0;
    for (int i = 0; i < g->nparams; i++) count += null_space[i] = r[i] < 1e-5 * median;
    free(r);
    free(sorted);
    return count;
}

/* Relative difference of a and b over g's parameters outside the null space; the worst tensor. */
static double compare(const nn_graph *g, const float *a, const float *b, const char **worst) {
    double num = 0, den = 0, w = 0;
    *worst = "";
    for (int i = 0; i < g->nparams; i++) {
        const nn_param *q = &g->params[i];
        if (null_space[i]) continue;
        const float *pa = a + q->offset / sizeof(float), *pb = b + q->offset / sizeof(float);
        for (int64_t k = 0; k < q->numel; k++) {
            num += ((double)pa[k] - pb[k]) * ((double)pa[k] - pb[k]);
            den += (double)pb[k] * pb[k];
        }
        double e = tu_rel_error_ff(pa, pb, q->numel);
        if (e > w) {
            w = e;
            *worst = q->name;
        }
    }
    return sqrt(num) / fmax(sqrt(den), 1e-30);
}

static float *copy_arena(const dpt_arena *a) {
    float *c = dpt_xmalloc(a->size);
    memcpy(c, a->base, a->size);
    return c;
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    const comm_info *ci = comm_get();
    if (argc < 2) {
        fprintf(stderr, "usage: gan_step_check GLOBAL_BATCH [--local]\n");
        comm_abort(2);
    }
    const int global = atoi(argv[1]), world = ci->world, rank = ci->rank, per = global / world;
    const bool local = argc > 2 && !strcmp(argv[2], "--local");
    DPT_CHECK(global % world == 0);
    backend_cpu()->set_threads(1);

    const int64_t px = (int64_t)SPEC.resolution * SPEC.resolution * SPEC.image_channels;
    float *real = dpt_xmalloc((size_t)(global * px) * sizeof(float));
    float *z = dpt_xmalloc((size_t)global * SPEC.dim_z * sizeof(float));
    int32_t *y = dpt_xmalloc((size_t)global * sizeof(int32_t));
    tu_fill_uniform(real, global * px, -1.0f, 1.0f, 1);
    tu_fill_uniform(z, (int64_t)global * SPEC.dim_z, -2.0f, 2.0f, 2);
    for (int i = 0; i < global; i++) y[i] = (i * 7 + 3) % SPEC.num_classes;

    comm_group *grp = comm_group_create(0);
    gan_pair p;
    build(&p, per, local ? NULL : grp);
    d_step(&p, real, z, y, rank * per, global, comm_allreduce_sum_f32);
    float *dgrad = copy_arena(&p.D->grad_arena);
    adam(p.D, p.md, p.vd, 4e-4f);
    g_step(&p, z, y, rank * per, global, comm_allreduce_sum_f32);
    float *ggrad = copy_arena(&p.G->grad_arena);
    adam(p.G, p.mg, p.vg, 1e-4f);

    int bad = 0;
    if (rank == 0) {
        gan_pair r;
        build(&r, global, NULL);
        d_step(&r, real, z, y, 0, global, NULL);
        const double e_dg = tu_rel_error_ff(dgrad, fl(&r.D->grad_arena), nfloats(&r.D->grad_arena));
        adam(r.D, r.md, r.vd, 4e-4f);
        g_step(&r, z, y, 0, global, NULL);
        const char *w_gg, *w_gp, *w_dp;
        const int nnull = find_null_space(r.G);
        const double e_gg = compare(r.G, ggrad, fl(&r.G->grad_arena), &w_gg);
        adam(r.G, r.mg, r.vg, 1e-4f);
        const double e_dp = tu_rel_error_ff(fl(&p.D->param_arena), fl(&r.D->param_arena), nfloats(&r.D->param_arena));
        (void)w_dp;
        const double e_gp = compare(r.G, fl(&p.G->param_arena), fl(&r.G->param_arena), &w_gp);
        const double e_gb = tu_rel_error_ff(fl(&p.G->buffer_arena), fl(&r.G->buffer_arena), nfloats(&r.G->buffer_arena));
        const double tol = 1e-3;
        bad = !(e_dg <= tol && e_gg <= tol && e_dp <= tol && e_gp <= tol && e_gb <= tol && nnull <= 5);
        printf("gan_step_check: %d ranks, global batch %d%s: D gradients %.2e, G gradients %.2e (worst %s), "
               "D parameters %.2e, G parameters %.2e (worst %s), G buffers %.2e; %d of G's %d tensors left out "
               "(gradient zero by construction) -> %s\n",
               world, global, local ? " (per-rank BatchNorm in G)" : "", e_dg, e_gg, w_gg, e_dp, e_gp, w_gp, e_gb,
               nnull, r.G->nparams, bad ? "DIFFERENT" : "equal");
        for (int i = 0; i < r.G->nparams; i++)
            if (null_space[i]) printf("gan_step_check:   left out: %s\n", r.G->params[i].name);
        free(null_space);
        destroy(&r);
    }
    comm_bcast(&bad, sizeof bad, 0);
    destroy(&p);
    comm_group_destroy(grp);
    free(dgrad);
    free(ggrad);
    free(real);
    free(z);
    free(y);
    comm_finalize();
    return bad ? 1 : 0;
}
