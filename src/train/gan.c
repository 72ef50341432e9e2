/* BigGAN training across ranks (Brock et al. 2018, as BigGAN-PyTorch's train.py and
 * train_fns.GAN_training_function run it). One training step: gan.d_steps D steps, each on this
 * rank's slice of a real global batch and of a fresh batch of G(z, y) with its own z and
 * uniform labels; then one G step on fresh z. Hinge losses, Adam, gradients summed across ranks
 * (scaled by 1 / global batch: the mean) by the bucketed allreduce that overlaps the backward
 * that completes them (D's fake half, G's backward), cross-replica BatchNorm in G (model.bn_group), one
 * power iteration of every spectral norm per D and G forward as BigGAN-PyTorch does (the second
 * D forward of a D step reuses the first's u and v: its one forward of the concatenated batch),
 * BigGAN's off-diagonal orthogonal regularisation of G, an EMA of G's weights. Samples and
 * metrics come from the EMA generator after standing statistics. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/fsutil.h"
#include "dpt/core/log.h"
#include "dpt/core/timer.h"
#include "dpt/train/train.h"
#include "gan_internal.h"

/* Draw numbers: every D and G step of a training step takes its own (seed, draw) stream. */
#define DRAW_FIXED_GRID 0xF1D0u  /* sample grids: the same z at every step */
#define DRAW_STANDING 0x57A0u     /* standing statistics */
#define DRAW_METRICS 0xE7A1u      /* FID/IS samples: the same z at every evaluation */

typedef struct gan_run {
    run_ctx r; /* data, loaders, banner and run directory; r.g is G */
    gan_spec spec;
    gan_io gi, di, ei;
    gan_state s;
    grad_sync dsync, gsync; /* the overlapped gradient allreduce of D and of G */
    double exposed;         /* seconds waited for it after backward, this log interval */
    int per, global;
    int64_t spe; /* real global batches per epoch */
    bool loader_running;
    float *z;
    int32_t *y;
    float *ortho_work; /* rows x rows of G's largest matrix */
    featnet fn;
    bool metrics;
    double *mu_real, *sig_real;
    FILE *metrics_file;
    gan_meta m;
} gan_run;

static int64_t nfloats(const dpt_arena *a) { return (int64_t)(a->size / sizeof(float)); }
static float *fl(const dpt_arena *a) { return (float *)a->base; }

static dpt_status check_config(const run_ctx *r) {
    const dpt_config *cfg = r->cfg;
    if (cfg->train.max_steps <= 0)
        return dpt_error(DPT_ERR_CONFIG, "model.name = biggan: train.max_steps must give the number of training steps "
                                         "(each gan.d_steps D steps and one G step)");
    if (cfg->train.batch_size.n != 1)
        return dpt_error(DPT_ERR_CONFIG, "model.name = biggan: train.batch_size must be one size (no phases)");
    /* The CUDA op table has every GAN op (and the parity tests check them), but this loop still
     * hands host buffers between G and D and reads losses on the host. */
    if (!strcmp(cfg->train.device, "cuda") || (strcmp(cfg->train.precision, "auto") && strcmp(cfg->train.precision, "fp32")))
        return dpt_error(DPT_ERR_CONFIG, "model.name = biggan trains on the CPU back end in fp32 in this version "
                                         "(train.device = %s, train.precision = %s)",
                         cfg->train.device, cfg->train.precision);
    if (cfg->train.batch_size.value[0] % r->ci->world != 0)
        return dpt_error(DPT_ERR_CONFIG, "train.batch_size = %lld is not divisible by the %d ranks",
                         (long long)cfg->train.batch_size.value[0], r->ci->world);
    if (cfg->train.accum_steps != 1)
        return dpt_error(DPT_ERR_CONFIG, "model.name = biggan: train.accum_steps must be 1");
    const int64_t group = cfg->model.bn_group;
    if (group > 1 && r->ci->world > 1 && r->ci->world % group != 0)
        return dpt_error(DPT_ERR_CONFIG, "model.bn_group = %lld does not divide the %d ranks", (long long)group,
                         r->ci->world);
    return DPT_OK;
}

static dpt_status open_data(gan_run *G) {
    run_ctx *r = &G->r;
    const dpt_config *cfg = r->cfg;
    dataset_opts dopt = {.subset = cfg->data.train_subset,
                         .max_bytes = cfg->data.max_memory_mb << 20,
                         .cache_bytes = cfg->data.cache_mb << 20};
    DPT_TRY(dataset_open_opts(&r->train, cfg->data.train, &dopt));
    if (r->train.n < G->global)
        return dpt_error(DPT_ERR_CONFIG, "%s: %lld training samples are fewer than train.batch_size = %d",
                         r->train.path, (long long)r->train.n, G->global);
    if (cfg->gan.fid_weights[0]) {
        dopt.subset = cfg->gan.fid_real_samples ? cfg->gan.fid_real_samples : cfg->data.test_subset;
        DPT_TRY(dataset_open_opts(&r->test, cfg->data.test, &dopt));
        DPT_TRY(dataset_check_compatible(&r->train, &r->test, true));
    }
    /* GAN images live in [-1, 1]: (pixel / 255 - 0.5) / 0.5. */
    for (int k = 0; k < DATASET_MAX_CHANNELS; k++) {
        r->train.mean[k] = r->test.mean[k] = 0.5f;
        r->train.std[k] = r->test.std[k] = 0.5f;
    }
    return gan_spec_from_config(cfg, r->train.c, r->train.num_classes, &G->spec);
}

static bool build_models(gan_run *G) {
    run_ctx *r = &G->r;
    const uint64_t seed = (uint64_t)r->cfg->train.seed;
    dpt_status st = DPT_OK;
    G->s.G = gan_build(&G->spec, true, G->per, r->bn_comm, seed, &G->gi, &st);
    if (st == DPT_OK) G->s.D = gan_build(&G->spec, false, G->per, NULL, seed, &G->di, &st);
    if (st == DPT_OK) G->s.E = gan_build(&G->spec, true, G->per, NULL, seed, &G->ei, &st);
    if (!run_agree(st)) return false;
    /* Replicas start identical (they are: initialisation is counter-based), the EMA as G. */
    comm_bcast(G->s.G->param_arena.base, G->s.G->param_arena.size, 0);
    comm_bcast(G->s.D->param_arena.base, G->s.D->param_arena.size, 0);
    memcpy(G->s.E->param_arena.base, G->s.G->param_arena.base, G->s.G->param_arena.size);
    memcpy(G->s.E->buffer_arena.base, G->s.G->buffer_arena.base, G->s.G->buffer_arena.size);
    G->s.mg = dpt_xcalloc(1, DPT_MAX(G->s.G->grad_arena.size, (size_t)4));
    G->s.vg = dpt_xcalloc(1, DPT_MAX(G->s.G->grad_arena.size, (size_t)4));
    G->s.md = dpt_xcalloc(1, DPT_MAX(G->s.D->grad_arena.size, (size_t)4));
    G->s.vd = dpt_xcalloc(1, DPT_MAX(G->s.D->grad_arena.size, (size_t)4));
    grad_sync_init(&G->dsync, G->s.D, r->ci->world, r->cfg);
    grad_sync_init(&G->gsync, G->s.G, r->ci->world, r->cfg);
    G->z = dpt_xmalloc((size_t)G->per * (size_t)G->spec.dim_z * sizeof(float));
    G->y = dpt_xmalloc((size_t)G->per * sizeof(int32_t));
    int64_t rows = 1;
    for (int i = 0; i < G->s.G->nparams; i++)
        if (G->s.G->params[i].value.ndim >= 2) rows = DPT_MAX(rows, G->s.G->params[i].value.shape[0]);
    G->ortho_work = dpt_xmalloc((size_t)(rows * rows) * sizeof(float));
    r->g = G->s.G;
    return true;
}

/* The next real batch of the endless sequence of epochs: batch k of the run is step k % spe of
 * epoch k / spe, so a resume knows where to go on from the count alone. */
static const loader_batch *next_real(gan_run *G) {
    run_ctx *r = &G->r;
    for (;;) {
        if (!G->loader_running) {
            const int64_t epoch = G->m.d_batches / G->spe, first = G->m.d_batches % G->spe;
            loader_start_train(r->train_loader, epoch, first, G->spe - first, G->global, r->ci->rank, r->ci->world);
            G->loader_running = true;
        }
        const loader_batch *b = loader_next(r->train_loader);
        if (b) {
            G->m.d_batches++;
            return b;
        }
        G->loader_running = false;
    }
}

static void adam(const gan_run *G, nn_graph *g, float *m, float *v, float lr, int64_t t) {
    const dpt_config *cfg = G->r.cfg;
    const be_adam_args a = {.lr = lr,
                            .beta1 = (float)cfg->gan.beta1,
                            .beta2 = (float)cfg->gan.beta2,
                            .eps = (float)cfg->gan.adam_eps,
                            .grad_scale = 1.0f,
                            .step = t};
    g->be->adam_update(fl(&g->param_arena), m, v, fl(&g->grad_arena), nfloats(&g->param_arena), &a);
}

/* Hinge loss of D's last forward (sign +1 real, -1 fake; 0: G's loss); its sum over this rank's samples. */
static double hinge(nn_graph *D, float sign, int global) {
    dpt_tensor *out = (dpt_tensor *)nn_value_tensor(D, D->logits), *dout = nn_output_grad(D);
    dpt_tensor losses = tensor_1d(D->losses.data, DT_F32, D->batch);
    dpt_tensor o2 = tensor_1d(out->data, DT_F32, D->batch), d2 = tensor_1d(dout->data, DT_F32, D->batch);
    if (sign != 0.0f) D->be->hinge_d(&losses, &d2, &o2, sign, 1.0f / (float)global);
    else D->be->hinge_g(&losses, &d2, &o2, 1.0f / (float)global);
    double s = 0;
    for (int i = 0; i < D->batch; i++) s += ((const float *)D->losses.data)[i];
    return s;
}

static const float *generate_train(gan_run *G, uint64_t draw) {
    gan_draw(G->z, G->y, G->per, G->spec.dim_z, G->spec.num_classes, (uint64_t)G->r.cfg->train.seed, draw,
             (int64_t)G->r.ci->rank * G->per, 0.0f);
    nn_set_input(G->s.G, G->gi.z, G->z);
    nn_set_input(G->s.G, G->gi.labels, G->y);
    nn_forward(G->s.G, NULL, true);
    return nn_value_tensor(G->s.G, G->gi.out)->data;
}

/* One D step; returns this rank's summed real and fake hinge losses. */
static void d_step(gan_run *G, uint64_t draw, int64_t t, double *loss_real, double *loss_fake) {
    nn_graph *D = G->s.D;
    const float eps = D->sn_eps;
    const loader_batch *b = next_real(G);
    DPT_CHECK(b->n == G->per);
    nn_graph_set_sn(D, 1, eps);
    nn_set_input(D, G->di.labels, b->y);
    nn_forward(D, b->x, true);
    *loss_real += hinge(D, 1.0f, G->global);
    nn_backward(D, false, NULL, NULL);
    const float *fake = generate_train(G, draw);
    nn_graph_set_sn(D, 0, eps); /* the same u, v as the real half: BigGAN's one forward of both */
    nn_set_input(D, G->di.labels, G->y);
    nn_forward(D, fake, true);
    *loss_fake += hinge(D, -1.0f, G->global);
    /* The second backward completes D's gradients: its hook starts their allreduce. */
    if (G->dsync.sync) comm_grad_begin(G->dsync.sync);
    nn_backward(D, true, G->dsync.sync ? grad_sync_hook : NULL, &G->dsync);
    if (G->dsync.sync) G->exposed += comm_grad_wait(G->dsync.sync);
    nn_graph_set_sn(D, 1, eps);
    adam(G, D, G->s.md, G->s.vd, (float)G->r.cfg->gan.d_lr, t);
}

/* Off-diagonal orthogonal regularisation of G's matrices and convolutions (not the shared class
 * embedding, as BigGAN-PyTorch's blacklist), added to the summed gradients: every rank adds the
 * same, since the weights are the same. */
static void ortho(gan_run *G) {
    const float strength = (float)G->r.cfg->gan.ortho;
    if (strength <= 0.0f) return;
    nn_graph *g = G->s.G;
    for (int i = 0; i < g->nparams; i++) {
        const nn_param *p = &g->params[i];
        if (p->value.ndim < 2 || !strncmp(p->name, "shared.", 7)) continue;
        const int rows = (int)p->value.shape[0], cols = (int)(p->numel / rows);
        g->be->ortho_reg(p->grad.data, G->ortho_work, p->value.data, rows, cols, strength);
    }
}

static double g_step(gan_run *G, uint64_t draw, int64_t t) {
    nn_graph *D = G->s.D, *Gg = G->s.G;
    const float *fake = generate_train(G, draw);
    nn_set_input(D, G->di.labels, G->y);
    nn_forward(D, fake, true);
    const double loss = hinge(D, 0.0f, G->global);
    nn_backward_inputs(D); /* D's weight gradients are not needed here */
    const dpt_tensor *dx = nn_value_grad(D, G->di.x);
    memcpy(nn_output_grad(Gg)->data, dx->data, tensor_bytes(dx));
    if (G->gsync.sync) comm_grad_begin(G->gsync.sync);
    nn_backward(Gg, false, G->gsync.sync ? grad_sync_hook : NULL, &G->gsync);
    if (G->gsync.sync) G->exposed += comm_grad_wait(G->gsync.sync);
    ortho(G);
    adam(G, Gg, G->s.mg, G->s.vg, (float)G->r.cfg->gan.g_lr, t);
    return loss;
}

/* EMA of G's parameters and buffers (BigGAN-PyTorch's ema over the state dict); before
 * gan.ema_start a copy. */
static void ema_update(gan_run *G, int64_t step) {
    const float decay = step < G->r.cfg->gan.ema_start ? 0.0f : (float)G->r.cfg->gan.ema_decay;
    nn_graph *E = G->s.E, *Gg = G->s.G;
    E->be->ema_update(fl(&E->param_arena), fl(&Gg->param_arena), nfloats(&E->param_arena), decay);
    E->be->ema_update(fl(&E->buffer_arena), fl(&Gg->buffer_arena), nfloats(&E->buffer_arena), decay);
}

/* Standing statistics on the EMA generator for sampling and metrics; returns its buffers to put
 * back afterwards (training goes on with the EMA's own). Collective. */
static float *ema_for_eval(gan_run *G) {
    nn_graph *E = G->s.E;
    float *saved = dpt_xmalloc(DPT_MAX(E->buffer_arena.size, (size_t)4));
    memcpy(saved, E->buffer_arena.base, E->buffer_arena.size);
    gan_standing_stats(E, &G->ei, &G->spec, (int)G->r.cfg->gan.standing_batches, (uint64_t)G->r.cfg->train.seed,
                       DRAW_STANDING);
    return saved;
}

static void ema_restore(gan_run *G, float *saved) {
    memcpy(G->s.E->buffer_arena.base, saved, G->s.E->buffer_arena.size);
    free(saved);
}

static void sum_reduce(void *ctx, double *buf, int64_t n) {
    (void)ctx;
    for (int64_t off = 0; off < n; off += 1 << 28) comm_allreduce_sum_f64(buf + off, (int)DPT_MIN(n - off, (int64_t)1 << 28));
}

/* Reference statistics of the real test images, as the loader gives them to D ([-1, 1] at the
 * GAN's resolution), sharded across ranks. Collective. */
static bool real_stats(gan_run *G) {
    run_ctx *r = &G->r;
    const double t0 = timer_now();
    fid_stats fs;
    if (!run_agree(fid_stats_init(&fs, G->fn.features))) return false;
    const int64_t n = r->test.n, per_rank = (n + r->ci->world - 1) / r->ci->world;
    const int64_t begin = DPT_MIN(n, r->ci->rank * per_rank), end = DPT_MIN(n, begin + per_rank);
    dpt_status st = DPT_OK;
    if (end > begin) {
        loader_start_eval(r->eval_loader, begin, end);
        const loader_batch *b;
        while ((b = loader_next(r->eval_loader)) != NULL) {
            featnet_run(&G->fn, b->x, b->n, G->spec.resolution, G->s.G->layout);
            if (st == DPT_OK) st = fid_stats_add(&fs, G->fn.feat, b->n);
        }
    }
    if (!run_agree(st)) {
        fid_stats_free(&fs);
        return false;
    }
    fid_stats_reduce(&fs, (gm_reduce){sum_reduce, NULL});
    const int d = G->fn.features;
    G->mu_real = dpt_xmalloc((size_t)d * sizeof(double));
    G->sig_real = dpt_xmalloc((size_t)d * d * sizeof(double));
    st = fid_stats_finalize(&fs, G->mu_real, G->sig_real);
    fid_stats_free(&fs);
    if (!run_agree(st)) return false;
    log_info("FID-%s reference: %lld real images of %s through %s's %d features (%.1f s)", G->fn.name, (long long)n,
             r->test.path, G->fn.name, d, timer_now() - t0);
    return true;
}

/* FID and IS of gan.fid_samples images of the EMA generator (standing statistics), shared out
 * across ranks with the same z at every evaluation. Collective. */
static bool evaluate(gan_run *G, int64_t step, double *fid, double *is_mean, double *is_std) {
    run_ctx *r = &G->r;
    const double t0 = timer_now();
    float *saved = ema_for_eval(G);
    const int64_t total = r->cfg->gan.fid_samples, world = r->ci->world;
    const int64_t per_rank = (total + world - 1) / world;
    const int64_t begin = DPT_MIN(total, r->ci->rank * per_rank), end = DPT_MIN(total, begin + per_rank);
    const int B = G->s.E->batch, d = G->fn.features;
    fid_stats fs;
    iscore_stats is;
    dpt_status st = fid_stats_init(&fs, d);
    if (st == DPT_OK) st = iscore_init(&is, G->fn.classes, (int)DPT_MIN((int64_t)ISCORE_DEFAULT_SPLITS, total), total);
    const int64_t px = (int64_t)G->spec.image_channels * G->spec.resolution * G->spec.resolution;
    float *img = dpt_xmalloc((size_t)B * (size_t)px * sizeof(float));
    float *z = dpt_xmalloc((size_t)B * G->spec.dim_z * sizeof(float));
    int32_t *y = dpt_xmalloc((size_t)B * sizeof(int32_t));
    for (int64_t first = begin; first < end && st == DPT_OK; first += B) {
        const int k = (int)DPT_MIN((int64_t)B, end - first);
        gan_draw(z, y, k, G->spec.dim_z, G->spec.num_classes, (uint64_t)r->cfg->train.seed, DRAW_METRICS, first, 0.0f);
        gan_generate(G->s.E, &G->ei, z, y, k, false, img);
        featnet_run(&G->fn, img, k, G->spec.resolution, G->s.E->layout);
        st = fid_stats_add(&fs, G->fn.feat, k);
        if (st == DPT_OK) st = iscore_add(&is, G->fn.prob, k, first);
    }
    free(img);
    free(z);
    free(y);
    ema_restore(G, saved);
    bool ok = run_agree(st);
    if (ok) {
        fid_stats_reduce(&fs, (gm_reduce){sum_reduce, NULL});
        iscore_reduce(&is, (gm_reduce){sum_reduce, NULL});
        double *mu = dpt_xmalloc((size_t)d * sizeof(double)), *sig = dpt_xmalloc((size_t)d * d * sizeof(double));
        st = fid_stats_finalize(&fs, mu, sig);
        if (st == DPT_OK) st = fid_distance(mu, sig, G->mu_real, G->sig_real, d, fid);
        if (st == DPT_OK) st = iscore_finalize(&is, is_mean, is_std);
        free(mu);
        free(sig);
        ok = run_agree(st);
    }
    fid_stats_free(&fs);
    iscore_free(&is);
    if (ok) {
        log_info("step %lld: FID-%s %.3f  IS-%s %.3f +- %.3f  (%lld samples of G_ema, %.1f s)", (long long)step,
                 G->fn.name, *fid, G->fn.name, *is_mean, *is_std, (long long)total, timer_now() - t0);
        if (G->metrics_file) {
            fprintf(G->metrics_file,
                    "{\"type\": \"metrics\", \"step\": %lld, \"fid\": %.6f, \"is\": %.6f, \"is_std\": %.6f, "
                    "\"network\": \"%s\", \"samples\": %lld, \"elapsed_s\": %.3f}\n",
                    (long long)step, *fid, *is_mean, *is_std, G->fn.name, (long long)total, G->m.elapsed_s);
            fflush(G->metrics_file);
        }
    }
    return ok;
}

static bool write_grid(gan_run *G, int64_t step, bool final) {
    float *saved = ema_for_eval(G);
    dpt_status st = DPT_OK;
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s/samples", G->r.out_dir);
    if (G->r.ci->rank == 0) {
        st = fs_mkdirs(dir);
        snprintf(path, sizeof path, "%s/step_%08lld.png", dir, (long long)step);
        if (st == DPT_OK) st = gan_write_samples(G->s.E, &G->ei, &G->spec, (uint64_t)G->r.cfg->train.seed, path);
        if (st == DPT_OK && final) {
            snprintf(path, sizeof path, "%s/interp_step_%08lld.png", dir, (long long)step);
            st = gan_write_interp(G->s.E, &G->ei, &G->spec, (uint64_t)G->r.cfg->train.seed, path);
        }
    }
    ema_restore(G, saved);
    if (st != DPT_OK) log_warn("samples not written: %s", dpt_error_message());
    return st == DPT_OK;
}

static dpt_status save_step(gan_run *G, char *path, size_t size) {
    run_ctx *r = &G->r;
    ckpt_step_path(r, G->m.step, path, size);
    const double t0 = timer_now();
    dpt_status st = gan_ckpt_save(r, &G->s, &G->m, path);
    if (st == DPT_OK && r->ci->rank == 0) {
        log_info("checkpoint %s (%.2f s)", path, timer_now() - t0);
        ckpt_rotate(r, r->cfg->train.keep_checkpoints);
    }
    return st;
}

/* A checkpoint of this run's seed and global batch (latents and the real-batch order depend on them). */
static dpt_status check_meta(const gan_run *G, const char *path) {
    const dpt_config *cfg = G->r.cfg;
    if (G->m.seed != cfg->train.seed)
        return dpt_error(DPT_ERR_FORMAT, "%s: written with train.seed = %lld, this run has %lld", path,
                         (long long)G->m.seed, (long long)cfg->train.seed);
    if (G->m.global_batch != G->global)
        return dpt_error(DPT_ERR_FORMAT, "%s: written at global batch %lld, this run has train.batch_size = %d", path,
                         (long long)G->m.global_batch, G->global);
    return DPT_OK;
}

/* --resume: "auto" (the newest step checkpoint that reads back whole, falling back past damaged
 * ones with a warning, as classifier runs do; none: a fresh start) or a file. Every rank reads it. */
static bool resume_from(gan_run *G, const char *resume) {
    run_ctx *r = &G->r;
    char path[1300];
    int64_t *steps = NULL;
    int n = 1;
    const bool is_auto = !strcmp(resume, "auto");
    if (is_auto) {
        if (r->ci->rank == 0) ckpt_remove_temporaries(r);
        comm_barrier();
        n = ckpt_list(r, &steps);
        if (n == 0) {
            free(steps);
            log_info("resume: no checkpoint in %s/checkpoints, starting from step 0", r->out_dir);
            return true;
        }
    }
    dpt_status st = DPT_OK;
    for (int i = 0; i < n; i++) {
        if (is_auto) ckpt_step_path(r, steps[i], path, sizeof path);
        else snprintf(path, sizeof path, "%s", resume);
        st = gan_ckpt_load(&G->s, &G->m, path, false);
        if (st == DPT_OK) st = check_meta(G, path);
        /* The worst status over the ranks (they read the same file). */
        int64_t worst = -(int64_t)st;
        comm_allreduce_min_i64(&worst, 1);
        if (worst == 0) break;
        if (!is_auto || -worst != DPT_ERR_IO || i + 1 == n) {
            if (st == DPT_OK) st = dpt_error((dpt_status)-worst, "%s: unreadable on another rank", path);
            break;
        }
        if (r->ci->rank == 0)
            log_warn("%s; falling back to the previous checkpoint", st != DPT_OK ? dpt_error_message() : path);
        st = DPT_OK;
    }
    free(steps);
    if (!run_agree(st)) return false;
    log_info("resumed from %s: step %lld, %lld real batches used, %.1f s of training so far", path,
             (long long)G->m.step, (long long)G->m.d_batches, G->m.elapsed_s);
    if (G->m.world != r->ci->world)
        log_info("  written by %lld rank(s), resumed on %d: the same global batch and latents; BatchNorm statistics "
                 "start from their average", (long long)G->m.world, r->ci->world);
    return true;
}

static void banner(const gan_run *G) {
    const run_ctx *r = &G->r;
    const dpt_config *cfg = r->cfg;
    run_banner(r, "train (BigGAN)");
    const gan_spec *s = &G->spec;
    log_info("  G          %lld parameters; D %lld parameters (resolution %d, ch %d, dim_z %d%s, shared %d, "
             "attention %s)", (long long)nn_param_count(G->s.G), (long long)nn_param_count(G->s.D), s->resolution,
             s->ch, s->dim_z, s->hier ? " hierarchical" : "", s->shared_dim, s->attention ? "on" : "off");
    if (s->attention) log_info("             self-attention after the %dx%d block", s->attention, s->attention);
    log_info("  gan        %lld D step(s) per G step; Adam G lr %.3g, D lr %.3g, betas (%.3g, %.3g), eps %.3g; "
             "hinge loss; ortho %.3g; EMA decay %.5g from step %lld; %lld training steps",
             (long long)cfg->gan.d_steps, cfg->gan.g_lr, cfg->gan.d_lr, cfg->gan.beta1, cfg->gan.beta2,
             cfg->gan.adam_eps, cfg->gan.ortho, cfg->gan.ema_decay, (long long)cfg->gan.ema_start,
             (long long)cfg->train.max_steps);
    if (G->dsync.sync)
        log_info("  allreduce  D %d, G %d bucket(s) of <= %.3g MB, started during the backward that completes them",
                 comm_grad_num_buckets(G->dsync.sync), comm_grad_num_buckets(G->gsync.sync), cfg->comm.bucket_mb);
    log_info("  run dir    %s (samples/, checkpoints/, metrics.jsonl)", r->out_dir);
}

static void teardown(gan_run *G) {
    run_ctx *r = &G->r;
    r->g = NULL; /* G is freed below */
    run_teardown(r);
    grad_sync_free(&G->dsync);
    grad_sync_free(&G->gsync);
    nn_graph_destroy(G->s.G);
    nn_graph_destroy(G->s.D);
    nn_graph_destroy(G->s.E);
    free(G->s.mg);
    free(G->s.vg);
    free(G->s.md);
    free(G->s.vd);
    free(G->z);
    free(G->y);
    free(G->ortho_work);
    featnet_close(&G->fn);
    free(G->mu_real);
    free(G->sig_real);
    if (G->metrics_file) fclose(G->metrics_file);
}

static bool setup(gan_run *G, const dpt_config *cfg, const char *out_dir, const char *resume) {
    run_ctx *r = &G->r;
    run_setup_threads(r, cfg);
    if (!run_agree(check_config(r))) return false;
    G->global = (int)cfg->train.batch_size.value[0];
    G->per = G->global / r->ci->world;
    r->global_batch = G->global;
    r->local_batch = r->micro_batch = G->per;
    r->accum = 1;
    const int64_t group = cfg->model.bn_group == 0 ? r->ci->world : cfg->model.bn_group;
    r->bn_group = (int)DPT_MIN(group, (int64_t)r->ci->world);
    if (r->bn_group > 1) r->bn_comm = comm_group_create(r->bn_group);
    if (!run_agree(open_data(G))) return false;
    G->spe = r->train.n / G->global;
    const int res = G->spec.resolution;
    r->phases[0] = (size_phase){0, res, res};
    r->nphases = 1;
    r->spec = (model_spec){.name = "biggan", .in_channels = r->train.c, .height = res, .width = res,
                           .num_classes = r->train.num_classes, .batchnorm = true};
    if (!build_models(G)) return false;
    run_make_loaders(r, true);
    if (cfg->gan.fid_weights[0]) {
        if (!featnet_open(&G->fn, cfg, G->per, G->spec.image_channels)) return false;
        G->metrics = true;
    }
    G->m = (gan_meta){.world = r->ci->world, .seed = cfg->train.seed, .global_batch = G->global,
                      .last_fid = NAN, .best_fid = NAN, .first_fid = NAN};
    if (resume && !resume_from(G, resume)) return false;
    G->m.world = r->ci->world;
    dpt_status st = DPT_OK;
    if (r->ci->rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/config.ini", out_dir);
        st = config_write(cfg, path);
        snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
        if (st == DPT_OK && !(G->metrics_file = fopen(path, resume ? "a" : "w")))
            st = dpt_error(DPT_ERR_IO, "cannot write %s", path);
    }
    return run_agree(st);
}

int train_gan(const dpt_config *cfg, const char *out_dir, const char *resume) {
    gan_run run, *G = &run;
    memset(G, 0, sizeof *G);
    run_ctx *r = &G->r;
    r->cfg = cfg;
    r->ci = comm_get();
    snprintf(r->out_dir, sizeof r->out_dir, "%s", out_dir);
    stop_signals_install();
    if (!run_agree(fs_mkdirs(out_dir)) || !run_agree(log_open_files(out_dir))) return 1;
    if (!resume && !run_agree(ckpt_check_fresh(r))) return 1;
    bool ok = setup(G, cfg, out_dir, resume);
    if (!ok) {
        teardown(G);
        log_close_files();
        return 1;
    }
    banner(G);
    const int64_t total = cfg->train.max_steps, d_steps = cfg->gan.d_steps;
    const int rank = r->ci->rank;
    if (G->metrics) ok = real_stats(G);
    double fid = NAN, is_m = 0, is_s = 0;
    if (ok && G->metrics && G->m.step == 0) {
        ok = evaluate(G, 0, &fid, &is_m, &is_s);
        G->m.first_fid = G->m.last_fid = G->m.best_fid = fid;
    }
    if (ok && G->m.step == 0) write_grid(G, 0, false);

    comm_barrier();
    const double t_run0 = timer_now() - G->m.elapsed_s;
    double *step_time = dpt_xcalloc((size_t)total + 1, sizeof(double));
    int64_t timed = 0, interval = 0;
    double sums[3] = {0, 0, 0}; /* D real, D fake, G hinge losses, summed over samples */
    double interval_t0 = timer_now();
    int stop_sig = 0;
    char ckpt_path[1300] = "";
    const int64_t every = cfg->train.checkpoint_every;
    while (ok && G->m.step < total) {
        const int64_t step = G->m.step + 1;
        comm_set_step(step);
        if (fault_at("kill", step, rank)) raise(SIGKILL);
        if (fault_at("term", step, rank)) raise(SIGTERM);
        const double t0 = timer_now();
        const uint64_t base = (uint64_t)step * (uint64_t)(d_steps + 1);
        for (int64_t d = 0; d < d_steps; d++)
            d_step(G, base + (uint64_t)d, (step - 1) * d_steps + d + 1, &sums[0], &sums[1]);
        sums[2] += g_step(G, base + (uint64_t)d_steps, step);
        ema_update(G, step);
        G->m.step = step;
        step_time[timed++] = timer_now() - t0;
        interval++;
        if (step % cfg->train.log_every == 0 || step == total) {
            double all[3] = {sums[0], sums[1], sums[2]};
            comm_allreduce_sum_f64(all, 3);
            const double n = (double)interval * G->global;
            const double dr = all[0] / (n * d_steps), df = all[1] / (n * d_steps), gl = all[2] / n;
            const double now = timer_now();
            G->m.elapsed_s = now - t_run0;
            log_info("step %lld/%lld  D loss real %.4f fake %.4f  G loss %.4f  %.2f s/step (exposed comm %.1f ms)  "
                     "elapsed %.0f s", (long long)step, (long long)total, dr, df, gl,
                     (now - interval_t0) / (double)interval, 1e3 * G->exposed / (double)interval, G->m.elapsed_s);
            if (G->metrics_file) {
                fprintf(G->metrics_file,
                        "{\"type\": \"train\", \"step\": %lld, \"d_loss_real\": %.6f, \"d_loss_fake\": %.6f, "
                        "\"g_loss\": %.6f, \"step_s\": %.4f, \"comm_exposed_ms\": %.3f, \"elapsed_s\": %.3f}\n",
                        (long long)step, dr, df, gl, (now - interval_t0) / (double)interval,
                        1e3 * G->exposed / (double)interval, G->m.elapsed_s);
                fflush(G->metrics_file);
            }
            if (!isfinite(dr) || !isfinite(df) || !isfinite(gl)) {
                log_error("step %lld: the losses are not finite (D real %g, fake %g, G %g): training diverged; "
                          "the last checkpoint holds an earlier state", (long long)step, dr, df, gl);
                ok = false;
                break;
            }
            sums[0] = sums[1] = sums[2] = 0;
            G->exposed = 0;
            interval = 0;
            interval_t0 = now;
        }
        if (cfg->gan.sample_every > 0 && step % cfg->gan.sample_every == 0 && step < total) write_grid(G, step, false);
        if (G->metrics && cfg->gan.fid_every > 0 && step % cfg->gan.fid_every == 0 && step < total) {
            ok = evaluate(G, step, &fid, &is_m, &is_s);
            G->m.last_fid = fid;
            G->m.last_fid_step = step;
            if (!(fid >= G->m.best_fid)) G->m.best_fid = fid;
        }
        /* Every rank sees the same verdict on a pending stop signal. */
        int64_t sig = -(int64_t)stop_signal_pending();
        comm_allreduce_min_i64(&sig, 1);
        stop_sig = (int)-sig;
        if (ok && (stop_sig || (every > 0 && step % every == 0 && step < total))) {
            G->m.elapsed_s = timer_now() - t_run0;
            if (save_step(G, ckpt_path, sizeof ckpt_path) != DPT_OK) {
                if (rank == 0) log_warn("checkpoint not written: %s", dpt_error_message());
                if (stop_sig) ok = false;
            }
        }
        if (stop_sig) break;
    }
    comm_set_step(-1);
    loader_stop(r->train_loader);
    if (ok && stop_sig) {
        log_info("stopped by a signal at step %lld with checkpoint %s (go on with --resume auto)", (long long)G->m.step,
                 ckpt_path);
    } else if (ok) {
        G->m.elapsed_s = timer_now() - t_run0;
        const int64_t warm = timed > 10 ? 2 : 0;
        log_info("steps: %lld  median %.3f s per step (%lld D steps and 1 G step at global batch %d)", (long long)timed,
                 timer_median(step_time + warm, timed - warm), (long long)d_steps, G->global);
        write_grid(G, G->m.step, true);
        if (G->metrics) {
            ok = evaluate(G, G->m.step, &fid, &is_m, &is_s);
            G->m.last_fid = fid;
            G->m.last_fid_step = G->m.step;
            if (!(fid >= G->m.best_fid)) G->m.best_fid = fid;
        }
        if (ok && save_step(G, ckpt_path, sizeof ckpt_path) != DPT_OK) ok = false;
        if (ok && G->metrics)
            log_info("done: %lld steps in %.1f s; FID-%s %.3f at step 0, %.3f now (best %.3f)", (long long)G->m.step,
                     G->m.elapsed_s, G->fn.name, G->m.first_fid, G->m.last_fid, G->m.best_fid);
        else if (ok)
            log_info("done: %lld steps in %.1f s (no metrics: gan.fid_weights is not set)", (long long)G->m.step,
                     G->m.elapsed_s);
    }
    free(step_time);
    teardown(G);
    log_close_files();
    stop_signals_restore();
    return ok ? 0 : 1;
}
