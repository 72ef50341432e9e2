/* dptrain bench loader: how many images per second the loader delivers from the training
 * split with the config's augmentation, with nothing else running. Rank 0 only when launched
 * with several ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/log.h"
#include "dpt/core/timer.h"
#include "train_internal.h"

int bench_loader(const dpt_config *cfg, int batches, int repeats) {
    run_ctx rc, *r = &rc;
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->ci = comm_get();
    r->be = backend_cpu(); /* the loader alone: plain batch memory */
    if (r->ci->rank != 0) return 0;
    dataset_opts dopt = {.subset = cfg->data.train_subset,
                         .max_bytes = cfg->data.max_memory_mb << 20,
                         .cache_bytes = cfg->data.cache_mb << 20};
    dpt_status st = dataset_open_opts(&r->train, cfg->data.train, &dopt);
    const bool raw = r->train.storage == DS_RAW;
    if (st == DPT_OK) st = parse_size_phases(&cfg->data.image_size, raw ? r->train.h : 0, raw ? r->train.w : 0,
                                             r->phases, &r->nphases);
    r->local_batch = (int)cfg->train.batch_size.value[0];
    const int64_t warm = 2, per_pass = warm + batches;
    if (st == DPT_OK && r->train.n < per_pass * r->local_batch)
        batches = (int)(r->train.n / r->local_batch - warm);
    if (st == DPT_OK && batches < 1)
        st = dpt_error(DPT_ERR_CONFIG, "%s: %lld samples are too few for batches of %d", r->train.path,
                       (long long)r->train.n, r->local_batch);
    if (st != DPT_OK) {
        log_error("%s", dpt_error_message());
        dataset_close(&r->train);
        return 1;
    }
    char why[128];
    int cores = run_rank_cores(r->ci, why, sizeof why);
    r->workers = cfg->data.workers > 0 ? (int)cfg->data.workers : cores;
    snprintf(r->workers_why, sizeof r->workers_why, "%s", cfg->data.workers > 0 ? "data.workers" : why);
    run_make_loaders(r, true);
    const size_phase *ph = &r->phases[r->nphases - 1];
    loader_set_size(r->train_loader, ph->h, ph->w);
    log_info("bench loader: %s, %lld %s, batch %d, output %dx%d, %s, %d worker thread(s) (%s)", r->train.path,
             (long long)r->train.n, raw ? "raw images" : "JPEGs", r->local_batch, ph->h, ph->w,
             cfg->data.random_resized_crop ? "random-resized crop" : "no random-resized crop", r->workers,
             r->workers_why);

    double *rates = dpt_xcalloc((size_t)repeats, sizeof(double));
    double total_s = 0.0;
    for (int rep = 0; rep < repeats; rep++) {
        loader_start_train(r->train_loader, rep, 0, warm + batches, r->local_batch, 0, 1);
        double t0 = 0.0;
        for (int64_t k = 0; k < warm + batches; k++) {
            if (k == warm) t0 = timer_now();
            const loader_batch *b = loader_next(r->train_loader);
            DPT_CHECK(b != NULL);
        }
        double s = timer_now() - t0;
        loader_stop(r->train_loader);
        rates[rep] = (double)batches * r->local_batch / s;
        total_s += s;
        log_info("  repeat %d: %d batches in %.3f s: %.0f img/s", rep + 1, batches, s, rates[rep]);
    }
    double med = timer_median(rates, repeats);
    log_info("median %.0f img/s with %d worker thread(s): %.0f img/s per worker", med, r->workers, med / r->workers);
    printf("RESULT images=%lld seconds=%.3f workers=%d img_s=%.1f img_s_per_worker=%.1f\n",
           (long long)batches * r->local_batch * repeats, total_s, r->workers, med, med / r->workers);
    fflush(stdout);
    free(rates);
    loader_destroy(r->train_loader);
    dataset_close(&r->train);
    return 0;
}
