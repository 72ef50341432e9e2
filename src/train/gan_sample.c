/* BigGAN pieces shared by training and `dptrain sample`: building G and D from the config, latent
 * draws, generation, standing statistics, sample grids and the sample command. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/fsutil.h"
#include "dpt/core/log.h"
#include "dpt/core/rng.h"
#include "dpt/data/png.h"
#include "dpt/train/train.h"
#include "gan_internal.h"

dpt_status gan_spec_from_config(const dpt_config *cfg, int image_channels, int num_classes, gan_spec *s) {
    const int64_t res = cfg->gan.resolution;
    if (res != 32 && res != 64 && res != 128)
        return dpt_error(DPT_ERR_CONFIG, "gan.resolution = %lld: BigGAN is defined for 32, 64 and 128", (long long)res);
    *s = (gan_spec){.resolution = (int)res,
                    .ch = (int)cfg->gan.ch,
                    .dim_z = (int)cfg->gan.dim_z,
                    .shared_dim = (int)cfg->gan.shared_dim,
                    .hier = cfg->gan.hier,
                    .num_classes = num_classes,
                    .attention = (int)cfg->gan.attention,
                    .image_channels = image_channels};
    return DPT_OK;
}

static void bn_reduce_fn(void *ctx, double *buf, int n) { comm_group_allreduce_sum_f64(ctx, buf, n); }

nn_graph *gan_build(const gan_spec *s, bool generator, int batch, comm_group *bn, uint64_t seed, gan_io *io,
                    dpt_status *st) {
    nn_graph *g = nn_graph_create(backend_cpu(), batch);
    if (generator && bn) nn_graph_set_bn_reduce(g, (be_reduce){.fn = bn_reduce_fn, .ctx = bn});
    *st = generator ? biggan_generator(g, s, io) : biggan_discriminator(g, s, io);
    if (*st == DPT_OK && !generator) nn_input_requires_grad(g, io->x);
    if (*st == DPT_OK) *st = nn_graph_finalize(g, io->out);
    if (*st != DPT_OK) {
        nn_graph_destroy(g);
        return NULL;
    }
    /* G and D take different streams of the same seed. */
    nn_init_params(g, seed * 2 + (generator ? 0 : 1));
    return g;
}

void gan_draw(float *z, int32_t *y, int n, int dim_z, int num_classes, uint64_t seed, uint64_t draw, int64_t first,
              float truncation) {
    for (int i = 0; i < n; i++) {
        const uint64_t sample = (uint64_t)(first + i);
        for (int j = 0; j < dim_z; j += 2) {
            /* One Philox block gives the pair (j, j + 1); a truncated element is redrawn with a
             * retry count in the counter's high bits. */
            for (int e = 0; e < 2 && j + e < dim_z; e++) {
                float v = 0.0f;
                for (uint64_t retry = 0;; retry++) {
                    uint32_t b[4];
                    rng_block(seed, RNG_GAN_LATENT, (sample * (uint64_t)dim_z + (uint64_t)j) | (retry << 48),
                              (uint32_t)draw, b);
                    v = rng_normal(b[2 * e], b[2 * e + 1]);
                    if (!(truncation > 0.0f) || fabsf(v) <= truncation || retry == 1000) break;
                }
                z[(int64_t)i * dim_z + j + e] = truncation > 0.0f ? fmaxf(-truncation, fminf(truncation, v)) : v;
            }
        }
        if (y) {
            uint32_t b[4];
            rng_block(seed, RNG_GAN_LABEL, sample, (uint32_t)draw, b);
            y[i] = (int32_t)rng_below(b[0], (uint32_t)num_classes);
        }
    }
}

void gan_generate(nn_graph *G, const gan_io *io, const float *z, const int32_t *y, int n, bool train, float *out) {
    const int B = G->batch;
    const dpt_tensor *o = nn_value_tensor(G, io->out);
    const int64_t px = o->shape[1] * o->shape[2] * o->shape[3];
    const int64_t dim_z = nn_value_tensor(G, io->z)->shape[1];
    float *zb = dpt_xcalloc((size_t)B * (size_t)dim_z, sizeof(float));
    int32_t *yb = dpt_xcalloc((size_t)B, sizeof(int32_t));
    nn_set_input(G, io->z, zb);
    nn_set_input(G, io->labels, yb);
    for (int first = 0; first < n; first += B) {
        const int k = DPT_MIN(B, n - first);
        memset(zb, 0, (size_t)B * (size_t)dim_z * sizeof(float));
        memset(yb, 0, (size_t)B * sizeof(int32_t));
        memcpy(zb, z + (int64_t)first * dim_z, (size_t)k * (size_t)dim_z * sizeof(float));
        memcpy(yb, y + first, (size_t)k * sizeof(int32_t));
        nn_forward(G, NULL, train);
        G->be->copy_to_host(out + (int64_t)first * px, o->data, (size_t)k * (size_t)px * sizeof(float));
    }
    free(zb);
    free(yb);
}

/* The nodes that keep running statistics (buffers 0 and 1: running mean and variance). */
static bool is_norm(const nn_node *nd) { return nd->kind == NN_BATCHNORM || nd->kind == NN_CBN; }

void gan_standing_stats(nn_graph *G, const gan_io *io, const gan_spec *s, int batches, uint64_t seed, uint64_t draw) {
    if (batches <= 0) return;
    const comm_info *ci = comm_get();
    const int B = G->batch;
    float *z = dpt_xmalloc((size_t)B * (size_t)s->dim_z * sizeof(float));
    int32_t *y = dpt_xmalloc((size_t)B * sizeof(int32_t));
    const int64_t nb = (int64_t)(G->buffer_arena.size / sizeof(float));
    double *sum = dpt_xcalloc((size_t)nb, sizeof(double));
    for (int k = 0; k < batches; k++) {
        /* From zeroed statistics one forward leaves momentum * (the batch's statistics) behind
         * (running = (1 - m) running + m batch). */
        for (int i = 0; i < G->nnodes; i++)
            for (int j = 0; is_norm(&G->nodes[i]) && j < 2; j++) {
                const nn_buffer *b = &G->buffers[G->nodes[i].buffer[j]];
                G->be->fill_zero(b->value.data, (size_t)b->numel * sizeof(float));
            }
        const int64_t first = ((int64_t)k * ci->world + ci->rank) * B;
        gan_draw(z, y, B, s->dim_z, s->num_classes, seed, draw, first, 0.0f);
        nn_set_input(G, io->z, z);
        nn_set_input(G, io->labels, y);
        nn_forward(G, NULL, true);
        for (int i = 0; i < G->nnodes; i++)
            for (int j = 0; is_norm(&G->nodes[i]) && j < 2; j++) {
                const nn_buffer *b = &G->buffers[G->nodes[i].buffer[j]];
                const float *v = b->value.data, m = G->nodes[i].a.bn.momentum;
                double *acc = sum + b->offset / sizeof(float);
                for (int64_t e = 0; e < b->numel; e++) acc[e] += v[e] / m;
            }
    }
    comm_allreduce_sum_f64(sum, (int)nb);
    const double count = (double)batches * ci->world;
    for (int i = 0; i < G->nnodes; i++)
        for (int j = 0; is_norm(&G->nodes[i]) && j < 2; j++) {
            const nn_buffer *b = &G->buffers[G->nodes[i].buffer[j]];
            float *v = b->value.data;
            const double *acc = sum + b->offset / sizeof(float);
            for (int64_t e = 0; e < b->numel; e++) v[e] = (float)(acc[e] / count);
        }
    free(sum);
    free(z);
    free(y);
}

/* ------------------------------------------------------------------------------------------ */
/* dptrain sample */

typedef struct sample_opts {
    const char *checkpoint, *out, *classes;
    double truncation;
    int per_class;
    int64_t seed;
    bool interp;
} sample_opts;

static dpt_status parse_classes(const char *text, int num_classes, int32_t *out, int *n) {
    *n = 0;
    if (!text) {
        for (int c = 0; c < DPT_MIN(num_classes, 10); c++) out[(*n)++] = c;
        return DPT_OK;
    }
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ','))
            return dpt_error(DPT_ERR_ARG, "--classes '%s': a comma-separated list of class indices", text);
        if (v < 0 || v >= num_classes)
            return dpt_error(DPT_ERR_ARG, "--classes: class %ld is out of range (the model has %d classes, 0 .. %d)", v,
                             num_classes, num_classes - 1);
        if (*n == 64) return dpt_error(DPT_ERR_ARG, "--classes: at most 64 classes");
        out[(*n)++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) return dpt_error(DPT_ERR_ARG, "--classes: empty list");
    return DPT_OK;
}

/* The grid of rows (one per class) x cols samples, or with interp the interpolation sheet: each
 * row a class, its columns z moving linearly from one draw to another. */
static dpt_status sample_grid(nn_graph *G, const gan_io *io, const gan_spec *s, const int32_t *classes, int rows,
                              int cols, bool interp, uint64_t seed, float truncation, const char *path) {
    const int n = rows * cols;
    float *z = dpt_xmalloc((size_t)n * (size_t)s->dim_z * sizeof(float));
    int32_t *y = dpt_xmalloc((size_t)n * sizeof(int32_t));
    float *ends = dpt_xmalloc((size_t)2 * (size_t)rows * (size_t)s->dim_z * sizeof(float));
    if (interp) gan_draw(ends, NULL, 2 * rows, s->dim_z, s->num_classes, seed, 1, 0, truncation);
    else gan_draw(z, NULL, n, s->dim_z, s->num_classes, seed, 0, 0, truncation);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const int i = r * cols + c;
            y[i] = classes[r];
            if (!interp) continue;
            const float t = cols > 1 ? (float)c / (float)(cols - 1) : 0.0f;
            const float *a = ends + (int64_t)(2 * r) * s->dim_z, *b = a + s->dim_z;
            for (int j = 0; j < s->dim_z; j++) z[(int64_t)i * s->dim_z + j] = (1.0f - t) * a[j] + t * b[j];
        }
    const int64_t px = (int64_t)s->image_channels * s->resolution * s->resolution;
    float *img = dpt_xmalloc((size_t)n * (size_t)px * sizeof(float));
    gan_generate(G, io, z, y, n, false, img);
    dpt_status st = png_write_grid(path, img, n, s->image_channels, s->resolution, s->resolution, G->layout, cols, 2,
                                   -1.0f, 1.0f);
    free(img);
    free(z);
    free(y);
    free(ends);
    return st;
}

dpt_status gan_write_samples(nn_graph *G, const gan_io *io, const gan_spec *s, uint64_t seed, const char *path) {
    int32_t classes[64];
    int rows;
    DPT_TRY(parse_classes(NULL, s->num_classes, classes, &rows));
    return sample_grid(G, io, s, classes, rows, 8, false, seed, 0.0f, path);
}

dpt_status gan_write_interp(nn_graph *G, const gan_io *io, const gan_spec *s, uint64_t seed, const char *path) {
    int32_t classes[64];
    int rows;
    DPT_TRY(parse_classes(NULL, s->num_classes, classes, &rows));
    return sample_grid(G, io, s, classes, rows, 10, true, seed, 0.0f, path);
}

static dpt_status sample_run(const dpt_config *cfg, const sample_opts *o) {
    dpt_dataset d;
    memset(&d, 0, sizeof d);
    /* The data give the image channels and the classes, as in training. */
    DPT_TRY(dataset_open(&d, cfg->data.train, 1, 0));
    gan_spec s;
    dpt_status st = gan_spec_from_config(cfg, d.c, d.num_classes, &s);
    dataset_close(&d);
    DPT_TRY(st);
    int32_t classes[64];
    int rows;
    DPT_TRY(parse_classes(o->classes, s.num_classes, classes, &rows));
    gan_io io;
    nn_graph *G = gan_build(&s, true, DPT_MIN(rows * o->per_class, 64), NULL, 0, &io, &st);
    DPT_TRY(st);
    gan_state gs = {.E = G};
    gan_meta m;
    st = gan_ckpt_load(&gs, &m, o->checkpoint, true);
    if (st == DPT_OK)
        st = sample_grid(G, &io, &s, classes, rows, o->per_class, o->interp, (uint64_t)o->seed, (float)o->truncation,
                         o->out);
    if (st == DPT_OK)
        log_info("%s: %s of %d class(es) x %d from %s (step %lld, G_ema%s)", o->out,
                 o->interp ? "interpolation sheet" : "sample grid", rows, o->per_class, o->checkpoint,
                 (long long)m.step, o->truncation > 0 ? ", truncated z" : "");
    nn_graph_destroy(G);
    return st;
}

int sample_gan(const dpt_config *cfg, int argc, char **argv) {
    sample_opts o = {.per_class = 8, .truncation = 0.0};
    dpt_status st = DPT_OK;
    for (int i = 0; i < argc && st == DPT_OK; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--interp")) {
            o.interp = true;
            continue;
        }
        if (!v) {
            st = dpt_error(DPT_ERR_ARG, "sample: %s needs a value", a);
            break;
        }
        i++;
        char *end;
        if (!strcmp(a, "--checkpoint")) o.checkpoint = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--classes")) o.classes = v;
        else if (!strcmp(a, "--truncation")) {
            o.truncation = strtod(v, &end);
            if (*end || !(o.truncation >= 0.0) || o.truncation > 100)
                st = dpt_error(DPT_ERR_ARG, "--truncation '%s': a threshold > 0 (e.g. 0.5), or 0 for none", v);
        } else if (!strcmp(a, "--per-class")) {
            o.per_class = (int)strtol(v, &end, 10);
            if (*end || o.per_class < 1 || o.per_class > 64)
                st = dpt_error(DPT_ERR_ARG, "--per-class '%s': 1 .. 64 samples per class", v);
        } else if (!strcmp(a, "--seed")) {
            o.seed = strtoll(v, &end, 10);
            if (*end || o.seed < 0) st = dpt_error(DPT_ERR_ARG, "--seed '%s': a non-negative integer", v);
        } else st = dpt_error(DPT_ERR_ARG, "sample: unknown option '%s' (see dptrain help)", a);
    }
    if (st == DPT_OK && !o.checkpoint) st = dpt_error(DPT_ERR_ARG, "sample: missing --checkpoint FILE");
    if (st == DPT_OK && !o.out) st = dpt_error(DPT_ERR_ARG, "sample: missing -o FILE.png");
    if (st == DPT_OK && strcmp(cfg->model.name, "biggan") != 0)
        st = dpt_error(DPT_ERR_ARG, "sample: model.name = %s is a classifier; sample needs a biggan config",
                       cfg->model.name);
    /* Rank 0 draws the grid; under mpirun every rank exits with its outcome. */
    if (st == DPT_OK && comm_get()->rank == 0) st = sample_run(cfg, &o);
    const int bad = comm_agree(st);
    if (bad == comm_get()->rank) log_error("%s", dpt_error_message());
    int64_t code = st;
    if (bad >= 0) comm_bcast(&code, sizeof code, bad);
    return bad < 0 ? 0 : code == DPT_ERR_ARG ? 2 : 1;
}
