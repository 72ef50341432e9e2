/* GAN checkpoints, one HDF5 file per checkpoint, written atomically by rank 0:
 *
 *   /G/params/<name>, /G/buffers/<name>            the generator (BatchNorm statistics averaged
 *                                                  over the ranks; SN vectors u, v)
 *   /D/params/<name>, /D/buffers/<name>            the discriminator (SN vectors)
 *   /G_ema/params/<name>, /G_ema/buffers/<name>    the EMA generator, which samples and metrics use
 *   /optimizer/{G,D}/{m,v}/<name>                  Adam's moments
 *   attributes of /                                format, step, d_batches, world_size, seed,
 *                                                  global_batch, elapsed_s, FID history, config
 *
 * Every dataset carries a Fletcher-32 checksum, as classifier checkpoints do. Latents, labels
 * and the real-batch order are counter-based functions of (seed, step), so the step and the
 * number of real batches consumed are the whole random state: a resume on the same number of
 * ranks continues bit for bit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dpt/core/fsutil.h"
#include "dpt/core/log.h"
#include "dpt/data/h5io.h"
#include "gan_internal.h"

#define GAN_FORMAT "dptrain-gan-checkpoint"
#define GAN_FORMAT_VERSION 1

static const char *const i64_names[] = {"step", "d_batches", "world_size", "seed", "global_batch", "last_fid_step"};
static const char *const f64_names[] = {"elapsed_s", "last_fid", "best_fid", "first_fid"};

static int64_t *i64_field(gan_meta *m, int k) {
    int64_t *f[] = {&m->step, &m->d_batches, &m->world, &m->seed, &m->global_batch, &m->last_fid_step};
    return f[k];
}
static double *f64_field(gan_meta *m, int k) {
    double *f[] = {&m->elapsed_s, &m->last_fid, &m->best_fid, &m->first_fid};
    return f[k];
}

static void write_arena(hid_t f, const char *group, const nn_graph *g, const float *base, bool buffers) {
    char key[NN_NAME_MAX + 96];
    const int n = buffers ? g->nbuffers : g->nparams;
    for (int i = 0; i < n; i++) {
        const char *name = buffers ? g->buffers[i].name : g->params[i].name;
        const dpt_tensor *t = buffers ? &g->buffers[i].value : &g->params[i].value;
        const size_t off = buffers ? g->buffers[i].offset : g->params[i].offset;
        snprintf(key, sizeof key, "%s/%s", group, name);
        h5_write_f32_checksummed(f, key, base + off / sizeof(float), t->ndim, t->shape);
    }
}

/* BatchNorm statistics averaged over the ranks (collective); SN vectors are the same on every rank. */
static float *mean_buffers(const nn_graph *g) {
    const int64_t n = (int64_t)(g->buffer_arena.size / sizeof(float));
    float *b = dpt_xmalloc((size_t)DPT_MAX(n, 1) * sizeof(float));
    memcpy(b, g->buffer_arena.base, (size_t)n * sizeof(float));
    const int world = comm_get()->world;
    if (world > 1 && n > 0) {
        comm_allreduce_sum_f32(b, n);
        for (int64_t i = 0; i < n; i++) b[i] /= (float)world;
    }
    return b;
}

dpt_status gan_ckpt_save(const run_ctx *r, const gan_state *s, const gan_meta *m, const char *path) {
    float *bufs[3] = {mean_buffers(s->G), mean_buffers(s->D), mean_buffers(s->E)};
    dpt_status st = DPT_OK;
    if (r->ci->rank == 0) {
        h5_quiet();
        char dir[1200], tmp[1300];
        ckpt_dir(r, dir, sizeof dir);
        st = fs_mkdirs(dir);
        hid_t f = st == DPT_OK ? h5_create_file_atomic_checksummed(path, tmp, sizeof tmp) : -1;
        if (st == DPT_OK && f < 0) st = dpt_error(DPT_ERR_IO, "%s: cannot create %s", path, tmp);
        if (st == DPT_OK) {
            const nn_graph *gs[3] = {s->G, s->D, s->E};
            const char *names[3] = {"G", "D", "G_ema"};
            char group[64];
            for (int k = 0; k < 3; k++) {
                snprintf(group, sizeof group, "%s/params", names[k]);
                write_arena(f, group, gs[k], (const float *)gs[k]->param_arena.base, false);
                snprintf(group, sizeof group, "%s/buffers", names[k]);
                write_arena(f, group, gs[k], bufs[k], true);
            }
            write_arena(f, "optimizer/G/m", s->G, s->mg, false);
            write_arena(f, "optimizer/G/v", s->G, s->vg, false);
            write_arena(f, "optimizer/D/m", s->D, s->md, false);
            write_arena(f, "optimizer/D/v", s->D, s->vd, false);
            h5_write_attr_string(f, "format", GAN_FORMAT);
            h5_write_attr_i64(f, "format_version", GAN_FORMAT_VERSION);
            h5_write_attr_string(f, "model", "biggan");
            h5_write_attr_string(f, "dptrain_version", DPT_VERSION);
            gan_meta mm = *m;
            for (int k = 0; k < (int)DPT_ARRAY_LEN(i64_names); k++) h5_write_attr_i64(f, i64_names[k], *i64_field(&mm, k));
            for (int k = 0; k < (int)DPT_ARRAY_LEN(f64_names); k++) h5_write_attr_f64s(f, f64_names[k], f64_field(&mm, k), 1);
            char *cfg = config_write_string(r->cfg);
            h5_write_attr_string(f, "config", cfg);
            free(cfg);
            st = h5_commit_file(f, tmp, path);
        }
    }
    for (int k = 0; k < 3; k++) free(bufs[k]);
    int64_t code = st;
    comm_bcast(&code, sizeof code, 0);
    if (code != DPT_OK && r->ci->rank != 0) dpt_error((dpt_status)code, "checkpoint %s not written (see rank 0)", path);
    return (dpt_status)code;
}

static dpt_status read_arena(hid_t f, const char *path, const char *group, const nn_graph *g, float *base,
                             bool buffers) {
    const int n = buffers ? g->nbuffers : g->nparams;
    for (int i = 0; i < n; i++) {
        const char *name = buffers ? g->buffers[i].name : g->params[i].name;
        const dpt_tensor *t = buffers ? &g->buffers[i].value : &g->params[i].value;
        const size_t off = buffers ? g->buffers[i].offset : g->params[i].offset;
        DPT_TRY(weights_read_tensor(f, path, group, name, t->ndim, t->shape, base + off / sizeof(float)));
    }
    return DPT_OK;
}

static dpt_status load_open(hid_t f, const char *path, gan_state *s, gan_meta *m, bool only_ema) {
    char **fmt = NULL;
    int nf = 0;
    if (h5_read_attr_strings(f, path, "format", &fmt, &nf) != DPT_OK || nf < 1 || strcmp(fmt[0], GAN_FORMAT) != 0) {
        if (fmt) h5_free_strings(fmt, nf);
        return dpt_error(DPT_ERR_FORMAT, "%s: not a dptrain GAN checkpoint (no format=\"%s\" attribute)", path,
                         GAN_FORMAT);
    }
    h5_free_strings(fmt, nf);
    int64_t version = 0;
    DPT_TRY(h5_read_attr_i64(f, path, "format_version", &version));
    if (version != GAN_FORMAT_VERSION)
        return dpt_error(DPT_ERR_FORMAT, "%s: GAN checkpoint format version %lld, this dptrain reads version %d", path,
                         (long long)version, GAN_FORMAT_VERSION);
    memset(m, 0, sizeof *m);
    for (int k = 0; k < (int)DPT_ARRAY_LEN(i64_names); k++) DPT_TRY(h5_read_attr_i64(f, path, i64_names[k], i64_field(m, k)));
    for (int k = 0; k < (int)DPT_ARRAY_LEN(f64_names); k++) {
        int n = 0;
        DPT_TRY(h5_read_attr_f64s(f, path, f64_names[k], f64_field(m, k), 1, &n));
    }
    DPT_TRY(read_arena(f, path, "G_ema/params", s->E, (float *)s->E->param_arena.base, false));
    DPT_TRY(read_arena(f, path, "G_ema/buffers", s->E, (float *)s->E->buffer_arena.base, true));
    if (only_ema) return DPT_OK;
    DPT_TRY(read_arena(f, path, "G/params", s->G, (float *)s->G->param_arena.base, false));
    DPT_TRY(read_arena(f, path, "G/buffers", s->G, (float *)s->G->buffer_arena.base, true));
    DPT_TRY(read_arena(f, path, "D/params", s->D, (float *)s->D->param_arena.base, false));
    DPT_TRY(read_arena(f, path, "D/buffers", s->D, (float *)s->D->buffer_arena.base, true));
    DPT_TRY(read_arena(f, path, "optimizer/G/m", s->G, s->mg, false));
    DPT_TRY(read_arena(f, path, "optimizer/G/v", s->G, s->vg, false));
    DPT_TRY(read_arena(f, path, "optimizer/D/m", s->D, s->md, false));
    DPT_TRY(read_arena(f, path, "optimizer/D/v", s->D, s->vd, false));
    return DPT_OK;
}

dpt_status gan_ckpt_load(gan_state *s, gan_meta *m, const char *path, bool only_ema) {
    h5_quiet();
    struct stat sb;
    if (stat(path, &sb) != 0) return dpt_error(DPT_ERR_IO, "%s: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0) return dpt_error(DPT_ERR_IO, "%s: not a readable HDF5 file (truncated or corrupt)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return dpt_error(DPT_ERR_IO, "%s: cannot open (truncated or corrupt)", path);
    dpt_status st = load_open(f, path, s, m, only_ema);
    if (H5Fclose(f) < 0 && st == DPT_OK) st = dpt_error(DPT_ERR_IO, "%s: cannot close (corrupt file)", path);
    return st;
}
