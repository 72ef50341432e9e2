/* Checkpoints: everything an exact resume needs, one HDF5 file per checkpoint, written by rank 0.
 *
 *   /params/<name>              float32, the parameters (identical on every rank)
 *   /buffers/<name>             float32, the buffers averaged over the ranks (what evaluation uses)
 *   /rank_buffers/<name>        float32 (world, ...): each rank's own buffers (BatchNorm running
 *                               statistics follow each rank's batches until an evaluation averages them)
 *   /optimizer/momentum/<name>  float32, the optimizer's velocity of each parameter
 *   attributes of /             the position (step, epoch, step_in_epoch), the run state and the
 *                               resolved config; see README "Checkpoints"
 *
 * Randomness is counter-based (core/rng.h): augmentation and shuffling are functions of (seed,
 * epoch, sample), so seed and position are the whole random state. Every dataset carries a
 * Fletcher-32 checksum and the file format's object headers carry their own, so a flipped bit is
 * an error on reading, not a silently different model. Files are written to a temporary name in
 * the same directory, fsynced and renamed, then the directory is fsynced (h5_commit_file). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/core/fsutil.h"
#include "dpt/core/log.h"
#include "dpt/core/timer.h"
#include "dpt/data/h5io.h"
#include "train_internal.h"

#define CKPT_FORMAT "dptrain-checkpoint"
#define CKPT_FORMAT_VERSION 2 /* 2: the loss scaler's state */

/* Integer and floating attributes of the root group, in the order of ckpt_meta's fields. */
static const char *const meta_i64_names[] = {"step",          "epoch",       "step_in_epoch",  "global_batch",
                                             "world_size",    "seed",        "skipped_steps",  "best_epoch",
                                             "reached_epoch", "finished",    "reached",        "loss_scale_good"};
static const char *const meta_f64_names[] = {"elapsed_s", "best_top1", "reached_at_s", "lr",
                                             "momentum",  "last_top1", "last_top5", "loss_scale"};

static int64_t *meta_i64(ckpt_meta *m, int k) {
    int64_t *f[] = {&m->step,       &m->epoch,       &m->step_in_epoch, &m->global_batch,
                    &m->world,      &m->seed,        &m->skipped_steps, &m->best_epoch,
                    &m->reached_epoch, &m->finished, &m->reached, &m->loss_scale_good};
    return f[k];
}
static double *meta_f64(ckpt_meta *m, int k) {
    double *f[] = {&m->elapsed_s, &m->best_top1, &m->reached_at_s, &m->lr, &m->momentum, &m->last_top1, &m->last_top5,
                  &m->loss_scale};
    return f[k];
}
#define N_I64 (int)(sizeof meta_i64_names / sizeof meta_i64_names[0])
#define N_F64 (int)(sizeof meta_f64_names / sizeof meta_f64_names[0])

void ckpt_dir(const run_ctx *r, char *buf, size_t size) { snprintf(buf, size, "%s/checkpoints", r->out_dir); }

void ckpt_step_path(const run_ctx *r, int64_t step, char *buf, size_t size) {
    snprintf(buf, size, "%s/checkpoints/step_%08lld.h5", r->out_dir, (long long)step);
}

/* step_<digits>.h5 -> the step; -1 for any other name. */
static int64_t step_of_name(const char *name) {
    if (strncmp(name, "step_", 5) != 0) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(name + 5, &end, 10);
    if (end == name + 5 || errno || v < 0 || strcmp(end, ".h5") != 0) return -1;
    return v;
}

static int cmp_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int ckpt_list(const run_ctx *r, int64_t **steps) {
    char dir[1200];
    ckpt_dir(r, dir, sizeof dir);
    *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t s = step_of_name(e->d_name);
        if (s < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            *steps = dpt_xrealloc(*steps, (size_t)cap * sizeof(int64_t));
        }
        (*steps)[n++] = s;
    }
    closedir(d);
    if (n) qsort(*steps, (size_t)n, sizeof(int64_t), cmp_desc);
    return n;
}

/* Deletes all but the newest `keep` step checkpoints, and temporary files a killed writer left. */
void ckpt_rotate(const run_ctx *r, int64_t keep) {
    int64_t *steps;
    int n = ckpt_list(r, &steps);
    for (int i = (int)keep; i < n; i++) {
        char path[1300];
        ckpt_step_path(r, steps[i], path, sizeof path);
        if (unlink(path) != 0) log_warn("cannot delete old checkpoint %s: %s", path, strerror(errno));
    }
    free(steps);
}

dpt_status ckpt_check_fresh(const run_ctx *r) {
    if (r->ci->rank != 0) return DPT_OK;
    int64_t *steps;
    int n = ckpt_list(r, &steps);
    int64_t newest = n ? steps[0] : 0;
    free(steps);
    if (n == 0) return DPT_OK;
    return dpt_error(DPT_ERR_ARG, "%s/checkpoints holds %d checkpoint(s) of an earlier run (newest: step %lld): "
                                  "pass --resume auto to go on with it, or choose another --out",
                     r->out_dir, n, (long long)newest);
}

void ckpt_remove_temporaries(const run_ctx *r) {
    char dir[1200];
    ckpt_dir(r, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".h5.tmp.")) continue;
        char path[1500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) log_info("removed %s (an unfinished checkpoint write)", path);
    }
    closedir(d);
}

/* ------------------------------------------------------------------------------------------ */
/* Writing (rank 0) */

static void write_tensor(hid_t f, const char *group, const char *name, const float *data, int ndim,
                         const int64_t *shape) {
    char key[NN_NAME_MAX + 96];
    snprintf(key, sizeof key, "%s/%s", group, name);
    h5_write_f32_checksummed(f, key, data, ndim, shape);
}

/* all_buffers: world rows of the buffer arena, one per rank. */
static dpt_status write_file(run_ctx *r, const ckpt_meta *m, const float *all_buffers, const char *path) {
    const nn_graph *g = r->g;
    const dpt_backend *be = g->be;
    h5_quiet();
    char tmp[1300];
    hid_t f = h5_create_file_atomic_checksummed(path, tmp, sizeof tmp);
    if (f < 0) return dpt_error(DPT_ERR_IO, "%s: cannot create %s", path, tmp);
    float *host = dpt_xmalloc(DPT_MAX(g->param_arena.size, (size_t)4));
    be->copy_to_host(host, g->param_arena.base, g->param_arena.size);
    for (int i = 0; i < g->nparams; i++) {
        const nn_param *p = &g->params[i];
        write_tensor(f, "params", p->name, host + p->offset / sizeof(float), p->value.ndim, p->value.shape);
    }
    be->copy_to_host(host, r->opt.velocity, r->opt.bytes);
    for (int i = 0; i < g->nparams; i++) {
        const nn_param *p = &g->params[i];
        write_tensor(f, "optimizer/momentum", p->name, host + p->offset / sizeof(float), p->value.ndim,
                     p->value.shape);
    }
    free(host);
    const int world = r->ci->world;
    const int64_t nb = (int64_t)(g->buffer_arena.size / sizeof(float));
    for (int i = 0; i < g->nbuffers; i++) {
        const nn_buffer *b = &g->buffers[i];
        const int64_t off = (int64_t)(b->offset / sizeof(float));
        float *mean = dpt_xcalloc((size_t)DPT_MAX(b->numel, 1), sizeof(float));
        float *rows = dpt_xmalloc((size_t)DPT_MAX(b->numel, 1) * (size_t)world * sizeof(float));
        for (int k = 0; k < world; k++) {
            const float *src = all_buffers + (int64_t)k * nb + off;
            memcpy(rows + (int64_t)k * b->numel, src, (size_t)b->numel * sizeof(float));
            for (int64_t j = 0; j < b->numel; j++) mean[j] += src[j];
        }
        for (int64_t j = 0; j < b->numel; j++) mean[j] /= (float)world;
        write_tensor(f, "buffers", b->name, mean, b->value.ndim, b->value.shape);
        int64_t shape[9] = {world};
        for (int d = 0; d < b->value.ndim; d++) shape[d + 1] = b->value.shape[d];
        write_tensor(f, "rank_buffers", b->name, rows, b->value.ndim + 1, shape);
        free(mean);
        free(rows);
    }
    ckpt_meta mm = *m;
    h5_write_attr_string(f, "format", CKPT_FORMAT);
    h5_write_attr_i64(f, "format_version", CKPT_FORMAT_VERSION);
    h5_write_attr_string(f, "model", r->spec.name);
    h5_write_attr_string(f, "optimizer", r->cfg->optim.name);
    h5_write_attr_string(f, "schedule", r->cfg->schedule.name);
    h5_write_attr_string(f, "dptrain_version", DPT_VERSION);
    h5_write_attr_string(f, "rng", "philox4x32-10, counter-based: every draw is a function of (seed, purpose, "
                                    "epoch, sample); seed and position are the whole state");
    for (int k = 0; k < N_I64; k++) h5_write_attr_i64(f, meta_i64_names[k], *meta_i64(&mm, k));
    for (int k = 0; k < N_F64; k++) h5_write_attr_f64s(f, meta_f64_names[k], meta_f64(&mm, k), 1);
    char *cfg = config_write_string(r->cfg);
    h5_write_attr_string(f, "config", cfg);
    free(cfg);
    if (fault_at("crash_ckpt", m->step, r->ci->rank)) { /* test hook: die before the rename */
        H5Fflush(f, H5F_SCOPE_GLOBAL);
        log_info("fault injection: killing rank %d while checkpoint %s is written", r->ci->rank, tmp);
        raise(SIGKILL);
    }
    return h5_commit_file(f, tmp, path);
}

dpt_status ckpt_save(run_ctx *r, const ckpt_meta *m, const char *path) {
    const double t0 = timer_now();
    const nn_graph *g = r->g;
    const int64_t nb = (int64_t)(g->buffer_arena.size / sizeof(float));
    float *mine = dpt_xmalloc((size_t)DPT_MAX(nb, 1) * sizeof(float));
    if (nb) g->be->copy_to_host(mine, g->buffer_arena.base, (size_t)nb * sizeof(float));
    float *all = r->ci->rank == 0 ? dpt_xmalloc((size_t)DPT_MAX(nb, 1) * (size_t)r->ci->world * sizeof(float)) : NULL;
    if (nb) comm_gather_f32(mine, nb, all, 0);
    dpt_status st = DPT_OK;
    char dir[1200];
    ckpt_dir(r, dir, sizeof dir);
    if (r->ci->rank == 0) {
        st = fs_mkdirs(dir);
        if (st == DPT_OK) st = write_file(r, m, all, path);
    }
    free(mine);
    free(all);
    /* Rank 0's outcome is everybody's: the others wait here while it writes. */
    int64_t code = st;
    comm_bcast(&code, sizeof code, 0);
    if (r->ci->rank == 0 && code == DPT_OK) {
        struct stat sb;
        double mb = stat(path, &sb) == 0 ? (double)sb.st_size / 1e6 : 0.0;
        log_info("checkpoint %s (%.1f MB, %.2f s)", path, mb, timer_now() - t0);
    }
    return (dpt_status)code;
}

dpt_status ckpt_save_step(run_ctx *r, const ckpt_meta *m, char *path, size_t size) {
    ckpt_step_path(r, m->step, path, size);
    dpt_status st = ckpt_save(r, m, path);
    if (st == DPT_OK && r->ci->rank == 0) ckpt_rotate(r, r->cfg->train.keep_checkpoints);
    return st;
}

/* best.h5 as a second name of a checkpoint just written (no second copy). Rank 0. */
static dpt_status link_best(const char *src, const char *best) {
    char tmp[1400];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", best, (int)getpid());
    unlink(tmp);
    if (link(src, tmp) != 0) return dpt_error(DPT_ERR_IO, "cannot link %s to %s: %s", src, tmp, strerror(errno));
    if (rename(tmp, best) != 0) {
        unlink(tmp);
        return dpt_error(DPT_ERR_IO, "cannot rename %s to %s: %s", tmp, best, strerror(errno));
    }
    return DPT_OK;
}

dpt_status ckpt_save_best(run_ctx *r, const ckpt_meta *m, const char *just_written) {
    char best[1200];
    snprintf(best, sizeof best, "%s/checkpoints/best.h5", r->out_dir);
    if (just_written) {
        int64_t code = r->ci->rank == 0 ? link_best(just_written, best) : DPT_OK;
        comm_bcast(&code, sizeof code, 0);
        if (code == DPT_OK) {
            log_info("best.h5: %s (top-1 %.2f%%)", just_written, 100 * m->best_top1);
            return DPT_OK;
        }
        if (r->ci->rank == 0) log_warn("%s; writing a copy instead", dpt_error_message());
    }
    return ckpt_save(r, m, best);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading (rank 0) */

typedef struct ckpt_data {
    ckpt_meta m;
    float *params, *velocity; /* laid out like the parameter arena */
    float *buffers;           /* the mean, laid out like the buffer arena */
    float *rank_buffers;      /* m.world rows of the buffer arena */
} ckpt_data;

static void data_free(ckpt_data *d) {
    free(d->params);
    free(d->velocity);
    free(d->buffers);
    free(d->rank_buffers);
    memset(d, 0, sizeof *d);
}

static dpt_status count_members(hid_t f, const char *path, const char *group, int want) {
    H5G_info_t info;
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0 || H5Gget_info_by_name(f, group, &info, H5P_DEFAULT) < 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: group '%s' missing", path, group);
    if ((int)info.nlinks != want)
        return dpt_error(DPT_ERR_FORMAT, "%s: '%s' holds %d tensors, this model has %d (a checkpoint of another model?)",
                         path, group, (int)info.nlinks, want);
    return DPT_OK;
}

static dpt_status read_string_attr(hid_t f, const char *path, const char *name, char *out, size_t size) {
    char **s;
    int n;
    dpt_status st = h5_read_attr_strings(f, path, name, &s, &n);
    if (st != DPT_OK) return st;
    snprintf(out, size, "%s", s[0]);
    h5_free_strings(s, n);
    return DPT_OK;
}

static dpt_status read_meta(hid_t f, const char *path, ckpt_meta *m) {
    for (int k = 0; k < N_I64; k++) DPT_TRY(h5_read_attr_i64(f, path, meta_i64_names[k], meta_i64(m, k)));
    for (int k = 0; k < N_F64; k++) {
        int n = 0;
        DPT_TRY(h5_read_attr_f64s(f, path, meta_f64_names[k], meta_f64(m, k), 1, &n));
        if (n != 1) return dpt_error(DPT_ERR_FORMAT, "%s: attribute '%s' must be one number", path, meta_f64_names[k]);
    }
    DPT_TRY(read_string_attr(f, path, "model", m->model, sizeof m->model));
    DPT_TRY(read_string_attr(f, path, "optimizer", m->optimizer, sizeof m->optimizer));
    return DPT_OK;
}

static dpt_status read_file_open(run_ctx *r, hid_t f, const char *path, ckpt_data *d) {
    const nn_graph *g = r->g;
    const dpt_config *cfg = r->cfg;
    char format[64] = "";
    if (read_string_attr(f, path, "format", format, sizeof format) != DPT_OK || strcmp(format, CKPT_FORMAT) != 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: not a dptrain checkpoint (no format=\"%s\" attribute; a weight file "
                                         "starts a run through train.init_weights)", path, CKPT_FORMAT);
    int64_t version = 0;
    DPT_TRY(h5_read_attr_i64(f, path, "format_version", &version));
    if (version != CKPT_FORMAT_VERSION)
        return dpt_error(DPT_ERR_FORMAT, "%s: checkpoint format version %lld, this dptrain reads version %d", path,
                         (long long)version, CKPT_FORMAT_VERSION);
    if (read_meta(f, path, &d->m) != DPT_OK) return dpt_error(DPT_ERR_IO, "%s (corrupt file)", dpt_error_message());
    const ckpt_meta *m = &d->m;
    if (strcmp(m->model, r->spec.name) != 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: a checkpoint of model '%s', this run builds '%s' (model.name)", path,
                         m->model, r->spec.name);
    if (strcmp(m->optimizer, cfg->optim.name) != 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: written with optim.name = %s, this run uses %s: its state does not carry "
                                         "over", path, m->optimizer, cfg->optim.name);
    if (m->seed != cfg->train.seed)
        return dpt_error(DPT_ERR_FORMAT, "%s: written with train.seed = %lld, this run has %lld: the sample order "
                                         "would change", path, (long long)m->seed, (long long)cfg->train.seed);
    if (m->world < 1 || m->epoch < 0 || m->step < 0 || m->step_in_epoch < 0)
        return dpt_error(DPT_ERR_IO, "%s: position attributes out of range (corrupt file)", path);
    const int64_t batch = run_batch_for_epoch(r, m->epoch);
    if (m->global_batch != batch)
        return dpt_error(DPT_ERR_FORMAT, "%s: written at global batch %lld in epoch %lld, this run's train.batch_size "
                                         "gives %lld there: resuming keeps the global batch", path,
                         (long long)m->global_batch, (long long)m->epoch + 1, (long long)batch);
    DPT_TRY(count_members(f, path, "params", g->nparams));
    DPT_TRY(count_members(f, path, "optimizer/momentum", g->nparams));
    d->params = dpt_xcalloc(1, DPT_MAX(g->param_arena.size, (size_t)4));
    d->velocity = dpt_xcalloc(1, DPT_MAX(g->param_arena.size, (size_t)4));
    for (int i = 0; i < g->nparams; i++) {
        const nn_param *p = &g->params[i];
        DPT_TRY(weights_read_tensor(f, path, "params", p->name, p->value.ndim, p->value.shape,
                            d->params + p->offset / sizeof(float)));
        DPT_TRY(weights_read_tensor(f, path, "optimizer/momentum", p->name, p->value.ndim, p->value.shape,
                            d->velocity + p->offset / sizeof(float)));
    }
    const int64_t nb = (int64_t)(g->buffer_arena.size / sizeof(float));
    d->buffers = dpt_xcalloc((size_t)DPT_MAX(nb, 1), sizeof(float));
    d->rank_buffers = dpt_xcalloc((size_t)DPT_MAX(nb, 1) * (size_t)m->world, sizeof(float));
    if (g->nbuffers) {
        DPT_TRY(count_members(f, path, "buffers", g->nbuffers));
        DPT_TRY(count_members(f, path, "rank_buffers", g->nbuffers));
    }
    for (int i = 0; i < g->nbuffers; i++) {
        const nn_buffer *b = &g->buffers[i];
        const int64_t off = (int64_t)(b->offset / sizeof(float));
        DPT_TRY(weights_read_tensor(f, path, "buffers", b->name, b->value.ndim, b->value.shape, d->buffers + off));
        int64_t shape[9] = {m->world};
        for (int k = 0; k < b->value.ndim; k++) shape[k + 1] = b->value.shape[k];
        float *rows = dpt_xmalloc((size_t)DPT_MAX(b->numel, 1) * (size_t)m->world * sizeof(float));
        dpt_status st = weights_read_tensor(f, path, "rank_buffers", b->name, b->value.ndim + 1, shape, rows);
        for (int64_t k = 0; st == DPT_OK && k < m->world; k++)
            memcpy(d->rank_buffers + k * nb + off, rows + k * b->numel, (size_t)b->numel * sizeof(float));
        free(rows);
        DPT_TRY(st);
    }
    return DPT_OK;
}

static dpt_status read_file(run_ctx *r, const char *path, ckpt_data *d) {
    memset(d, 0, sizeof *d);
    h5_quiet();
    struct stat sb;
    if (stat(path, &sb) != 0) return dpt_error(DPT_ERR_IO, "%s: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0) return dpt_error(DPT_ERR_IO, "%s: not a readable HDF5 file (truncated or corrupt)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char msg[256];
        h5_last_error(msg, sizeof msg);
        return dpt_error(DPT_ERR_IO, "%s: cannot open (%s; truncated or corrupt)", path, msg);
    }
    dpt_status st = read_file_open(r, f, path, d);
    if (H5Fclose(f) < 0 && st == DPT_OK) st = dpt_error(DPT_ERR_IO, "%s: cannot close (corrupt file)", path);
    if (st != DPT_OK) data_free(d);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Resuming (collective) */

typedef struct wire_meta { /* ckpt_meta without its strings, for the broadcast */
    int64_t i64[N_I64];
    double f64[N_F64];
} wire_meta;

int ckpt_resume(run_ctx *r, const char *spec, ckpt_meta *m, char *used, size_t used_size) {
    const nn_graph *g = r->g;
    const bool is_auto = !strcmp(spec, "auto");
    ckpt_data d;
    memset(&d, 0, sizeof d);
    int64_t head[2] = {DPT_OK, 0}; /* status, found */
    if (r->ci->rank == 0) {
        ckpt_remove_temporaries(r);
        int64_t *steps = NULL;
        int n = 0;
        if (is_auto) {
            n = ckpt_list(r, &steps);
            if (n == 0) {
                char dir[1200];
                ckpt_dir(r, dir, sizeof dir);
                log_info("resume: no checkpoint in %s, starting from step 0", dir);
            }
        }
        int tries = is_auto ? n : 1;
        char path[1300];
        for (int i = 0; i < tries; i++) {
            if (is_auto)
                ckpt_step_path(r, steps[i], path, sizeof path);
            else
                snprintf(path, sizeof path, "%s", spec);
            dpt_status st = read_file(r, path, &d);
            head[0] = st;
            if (st == DPT_OK) {
                head[1] = 1;
                snprintf(used, used_size, "%s", path);
                break;
            }
            if (!is_auto || st != DPT_ERR_IO) break;
            if (i + 1 < tries)
                log_warn("%s; falling back to the previous checkpoint", dpt_error_message());
            else
                dpt_error(DPT_ERR_IO, "%s; no older checkpoint is left to resume from (remove the damaged files to "
                                      "start again from step 0)", dpt_error_message());
        }
        free(steps);
        if (head[0] != DPT_OK) log_error("%s", dpt_error_message());
    }
    comm_bcast(head, sizeof head, 0);
    if (head[0] != DPT_OK) return -1;
    if (!head[1]) return 0;
    wire_meta w;
    char strings[2][64];
    if (r->ci->rank == 0) {
        for (int k = 0; k < N_I64; k++) w.i64[k] = *meta_i64(&d.m, k);
        for (int k = 0; k < N_F64; k++) w.f64[k] = *meta_f64(&d.m, k);
        memcpy(strings[0], d.m.model, 64);
        memcpy(strings[1], d.m.optimizer, 64);
    }
    comm_bcast(&w, sizeof w, 0);
    comm_bcast(strings, sizeof strings, 0);
    comm_bcast(used, used_size, 0);
    memset(m, 0, sizeof *m);
    for (int k = 0; k < N_I64; k++) *meta_i64(m, k) = w.i64[k];
    for (int k = 0; k < N_F64; k++) *meta_f64(m, k) = w.f64[k];
    memcpy(m->model, strings[0], 64);
    memcpy(m->optimizer, strings[1], 64);

    const size_t pbytes = g->param_arena.size;
    const int64_t nb = (int64_t)(g->buffer_arena.size / sizeof(float));
    if (r->ci->rank != 0) {
        d.params = dpt_xcalloc(1, DPT_MAX(pbytes, (size_t)4));
        d.velocity = dpt_xcalloc(1, DPT_MAX(pbytes, (size_t)4));
        d.buffers = dpt_xcalloc((size_t)DPT_MAX(nb, 1), sizeof(float));
    }
    comm_bcast(d.params, pbytes, 0);
    comm_bcast(d.velocity, pbytes, 0);
    float *mine = dpt_xcalloc((size_t)DPT_MAX(nb, 1), sizeof(float));
    if (nb && m->world == r->ci->world) {
        /* The same ranks: each continues with its own BatchNorm running statistics. */
        comm_scatter_f32(d.rank_buffers, mine, nb, 0);
    } else if (nb) {
        /* Another world size: every rank starts from the average over the old ranks. */
        comm_bcast(d.buffers, (size_t)nb * sizeof(float), 0);
        memcpy(mine, d.buffers, (size_t)nb * sizeof(float));
    }
    g->be->copy_to_device(g->param_arena.base, d.params, pbytes);
    g->be->copy_to_device(r->opt.velocity, d.velocity, r->opt.bytes);
    if (nb) g->be->copy_to_device(g->buffer_arena.base, mine, (size_t)nb * sizeof(float));
    free(mine);
    data_free(&d);
    return 1;
}
