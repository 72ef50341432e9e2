/* Training a classifier: epochs of steps (forward, loss, backward with the gradient allreduce
 * overlapped, update), evaluation each epoch, time to accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/fsutil.h"
#include "dpt/core/log.h"
#include "dpt/core/timer.h"
#include "dpt/train/train.h"
#include "train_internal.h"

/* Backward hook: the gradients of the node's parameters are final; hand them to the bucketed
 * allreduce (in decreasing parameter order, the order backward produces them). */
static void on_node_backward(void *ctx, int node) {
    run_ctx *r = ctx;
    int start = r->node_param_start[node], count = r->node_param_count[node];
    for (int k = count - 1; k >= 0; k--) comm_grad_ready(r->sync, start + k);
    comm_grad_progress(r->sync);
}

static void setup_grad_sync(run_ctx *r) {
    nn_graph *g = r->g;
    r->node_param_start = dpt_xcalloc((size_t)g->nnodes, sizeof(int));
    r->node_param_count = dpt_xcalloc((size_t)g->nnodes, sizeof(int));
    for (int i = g->nparams - 1; i >= 0; i--) {
        r->node_param_start[g->params[i].node] = i;
        r->node_param_count[g->params[i].node]++;
    }
    if (r->ci->world == 1) return; /* nothing to reduce */
    size_t *off = dpt_xmalloc((size_t)g->nparams * sizeof(size_t));
    int64_t *numel = dpt_xmalloc((size_t)g->nparams * sizeof(int64_t));
    for (int i = 0; i < g->nparams; i++) {
        off[i] = g->params[i].offset;
        numel[i] = g->params[i].numel;
    }
    size_t bucket_bytes = (size_t)(r->cfg->comm.bucket_mb * 1024.0 * 1024.0);
    r->sync = comm_grad_sync_create((float *)g->grad_arena.base, off, numel, g->nparams, bucket_bytes);
    free(off);
    free(numel);
}

/* Averages BatchNorm running statistics over ranks (each rank saw its own batches), so that
 * evaluation and saved weights do not depend on the rank. */
static void sync_buffers(run_ctx *r) {
    if (r->ci->world == 1 || r->g->nbuffers == 0) return;
    int64_t n = (int64_t)(r->g->buffer_arena.size / sizeof(float));
    float *b = (float *)r->g->buffer_arena.base;
    comm_allreduce_sum_f32(b, n);
    const float inv = 1.0f / (float)r->ci->world;
    for (int64_t i = 0; i < n; i++) b[i] *= inv;
}

static uint64_t fnv1a64(uint64_t h, const void *data, size_t bytes) {
    const uint8_t *p = data;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Every rank must hold bit-identical parameters and optimizer state after each step. */
static void verify_replicas(run_ctx *r, int64_t step) {
    uint64_t h = 14695981039346656037ull;
    h = fnv1a64(h, r->g->param_arena.base, r->g->param_arena.size);
    h = fnv1a64(h, r->sgd.velocity, r->sgd.bytes);
    uint64_t *all = dpt_xmalloc((size_t)r->ci->world * sizeof(uint64_t));
    comm_allgather_u64(h, all);
    for (int i = 1; i < r->ci->world; i++)
        DPT_CHECK_LIB("train", all[i] == all[0], "verify_replicas",
                      "after step %lld rank %d's weights (hash %016llx) differ from rank 0's (%016llx)",
                      (long long)step, i, (unsigned long long)all[i], (unsigned long long)all[0]);
    free(all);
}

static void fmt_hms(double s, char *buf, size_t size) {
    snprintf(buf, size, "%dm%04.1fs", (int)(s / 60), fmod(s, 60.0));
}

int train_classifier(const dpt_config *cfg, const char *out_dir) {
    run_ctx rc, *r = &rc;
    memset(r, 0, sizeof *r);
    snprintf(r->out_dir, sizeof r->out_dir, "%s", out_dir);
    if (!run_agree(fs_mkdirs(out_dir))) return 1;
    if (!run_agree(log_open_files(out_dir))) return 1;
    if (!run_setup_common(r, cfg, true)) {
        run_teardown(r);
        return 1;
    }
    nn_graph *g = r->g;
    const int world = r->ci->world, rank = r->ci->rank;
    r->steps_per_epoch = r->train.n / r->global_batch;
    r->total_steps = r->steps_per_epoch * cfg->train.epochs;
    if (cfg->train.max_steps > 0 && cfg->train.max_steps < r->total_steps) r->total_steps = cfg->train.max_steps;
    schedule_init(&r->sched, cfg, r->global_batch, r->steps_per_epoch, r->total_steps);
    sgd_init(&r->sgd, g, cfg);
    setup_grad_sync(r);

    dpt_status st = DPT_OK;
    if (rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/config.ini", out_dir);
        st = config_write(cfg, path);
        if (st == DPT_OK) st = runlog_open(r);
    }
    if (!run_agree(st)) {
        runlog_close(r);
        run_teardown(r);
        return 1;
    }
    run_banner(r, "train");
    if (r->sync)
        log_info("  allreduce  %d bucket(s) of <= %.3g MB, started during backward", comm_grad_num_buckets(r->sync),
                 cfg->comm.bucket_mb);
    log_info("  schedule   %s, peak lr %.4g, %lld steps (%lld per epoch), label smoothing %.3g", cfg->schedule.name,
             r->sched.peak_lr, (long long)r->total_steps, (long long)r->steps_per_epoch, cfg->train.label_smoothing);
    log_info("  run dir    %s", out_dir);

    progress prog;
    progress_init(&prog, cfg);
    double *step_time = dpt_xcalloc((size_t)r->total_steps + 1, sizeof(double));
    double t_fwd = 0, t_bwd = 0, t_comm = 0, t_upd = 0, t_data = 0;
    const float grad_scale = 1.0f / (float)r->global_batch;
    const float smoothing = (float)cfg->train.label_smoothing;

    comm_barrier();
    const double t_run0 = timer_now();
    int64_t global_step = 0, last_epoch = 0;
    double interval_loss = 0.0, interval_t0 = t_run0, last_loss = NAN;
    int64_t interval_samples = 0, interval_steps = 0;
    bool reached = false;
    double reached_at = 0.0, best_top1 = 0.0;
    int64_t reached_epoch = -1, best_epoch = -1;
    eval_result last_eval = {0};

    for (int64_t epoch = 0; epoch < cfg->train.epochs && global_step < r->total_steps; epoch++) {
        last_epoch = epoch;
        const size_phase *ph = run_phase_for_epoch(r, epoch);
        if (run_set_input_size(r, ph->h, ph->w)) { /* progressive resizing: a new graph, same weights */
            g = r->g;
            comm_grad_sync_destroy(r->sync);
            r->sync = NULL;
            free(r->node_param_start);
            free(r->node_param_count);
            setup_grad_sync(r);
            log_info("epoch %lld: input size %dx%d", (long long)epoch + 1, ph->h, ph->w);
        }
        int64_t nsteps = DPT_MIN(r->steps_per_epoch, r->total_steps - global_step);
        loader_start_train(r->train_loader, epoch, 0, nsteps, r->global_batch, rank, world);
        for (int64_t s = 0; s < nsteps; s++) {
            if (cfg->train.profile && global_step == (r->total_steps > 10 ? 5 : 0)) nn_graph_profile(g, true);
            double t0 = timer_now();
            const loader_batch *b = loader_next(r->train_loader);
            DPT_CHECK(b != NULL);
            double t1 = timer_now();
            double lr, mom;
            schedule_at(&r->sched, global_step, &lr, &mom);
            nn_forward(g, b->x, true);
            double step_loss = nn_loss(g, b->y, smoothing, grad_scale, b->n);
            interval_loss += step_loss;
            interval_samples += b->n;
            double t2 = timer_now();
            if (r->sync) comm_grad_begin(r->sync);
            nn_backward(g, false, r->sync ? on_node_backward : NULL, r);
            double t3 = timer_now();
            double exposed = r->sync ? comm_grad_wait(r->sync) : 0.0;
            double t4 = timer_now();
            sgd_step(&r->sgd, g, (float)lr, (float)mom, 1.0f);
            if (cfg->train.verify_replicas) verify_replicas(r, global_step);
            double t5 = timer_now();
            t_data += t1 - t0;
            t_fwd += t2 - t1;
            t_bwd += t3 - t2;
            t_comm += exposed;
            t_upd += t5 - t4;
            step_time[global_step] = t5 - t0;
            global_step++;
            interval_steps++;

            if (global_step % cfg->train.log_every == 0 || s == nsteps - 1) {
                double sums[2] = {interval_loss, (double)interval_samples};
                comm_allreduce_sum_f64(sums, 2);
                double now = timer_now();
                last_loss = sums[0] / sums[1];
                double img_s = (double)interval_steps * r->global_batch / (now - interval_t0);
                runlog_train(r, global_step, (double)global_step / (double)r->steps_per_epoch, last_loss, lr, mom,
                             img_s, 1e3 * exposed, now - t_run0);
                progress_step(&prog, r, epoch, s + 1, global_step, last_loss, lr, img_s);
                interval_loss = 0.0;
                interval_samples = 0;
                interval_steps = 0;
                interval_t0 = now;
            } else if (prog.bar) {
                /* Between averaged log points the bar shows rank 0's own loss of this step. */
                double img_s = r->global_batch / (t5 - t0);
                progress_step(&prog, r, epoch, s + 1, global_step, step_loss / b->n, lr, img_s);
            }
        }
        bool last = epoch == cfg->train.epochs - 1 || global_step >= r->total_steps;
        if ((epoch + 1) % cfg->train.eval_every == 0 || last) {
            sync_buffers(r);
            last_eval = run_evaluate(r);
            double elapsed = timer_now() - t_run0;
            runlog_eval(r, global_step, epoch + 1, &last_eval, elapsed);
            char hms[32];
            fmt_hms(elapsed, hms, sizeof hms);
            log_info("epoch %lld: test top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%lld samples, eval %.1fs)  elapsed %s",
                     (long long)epoch + 1, 100 * last_eval.top1, 100 * last_eval.top5, last_eval.loss,
                     (long long)last_eval.count, last_eval.seconds, hms);
            if (last_eval.top1 > best_top1) {
                best_top1 = last_eval.top1;
                best_epoch = epoch + 1;
            }
            if (cfg->train.target_accuracy > 0 && last_eval.top1 >= cfg->train.target_accuracy) {
                reached = true;
                reached_at = elapsed;
                reached_epoch = epoch + 1;
                break;
            }
        }
    }
    loader_stop(r->train_loader);
    const double total_s = timer_now() - t_run0;

    /* Throughput: median step time after the first steps (one-time set-up inside oneDNN). */
    const int64_t warm = global_step > 10 ? 5 : 0;
    double med = timer_median(step_time + warm, global_step - warm);
    double med_img_s = med > 0 ? r->global_batch / med : 0.0;
    double per = global_step > 0 ? 1e3 / (double)global_step : 0.0;
    log_info("steps: %lld  median %.1f ms (%.0f img/s)  per step: data wait %.2f ms, forward %.1f ms, backward %.1f "
             "ms, exposed comm %.2f ms, update %.2f ms",
             (long long)global_step, 1e3 * med, med_img_s, per * t_data, per * t_fwd, per * t_bwd, per * t_comm,
             per * t_upd);
    if (cfg->train.profile) nn_graph_profile_report(g, log_info);
    char hms[32];
    if (reached) {
        fmt_hms(reached_at, hms, sizeof hms);
        log_info("target %.2f%% top-1 reached at epoch %lld: time to accuracy %s (%.1f s)",
                 100 * cfg->train.target_accuracy, (long long)reached_epoch, hms, reached_at);
    } else if (cfg->train.target_accuracy > 0) {
        log_info("target %.2f%% top-1 not reached; best %.2f%% at epoch %lld", 100 * cfg->train.target_accuracy,
                 100 * best_top1, (long long)best_epoch);
    }
    fmt_hms(total_s, hms, sizeof hms);
    log_info("done: %lld epochs, %lld steps in %s; final test top-1 %.2f%%", (long long)last_epoch + 1,
             (long long)global_step, hms, 100 * last_eval.top1);

    char summary[1024];
    snprintf(summary, sizeof summary,
             "\"steps\": %lld, \"epochs\": %lld, \"time_s\": %.3f, \"final_top1\": %.6f, \"final_top5\": %.6f, "
             "\"best_top1\": %.6f, \"target\": %.6f, \"reached\": %s, \"time_to_target_s\": %s%.3f, "
             "\"median_step_ms\": %.3f, \"median_img_per_s\": %.1f, \"world\": %d, \"threads\": %d, "
             "\"forward_ms\": %.3f, \"backward_ms\": %.3f, \"comm_exposed_ms\": %.3f, \"update_ms\": %.3f, "
             "\"data_wait_ms\": %.3f",
             (long long)global_step, (long long)last_epoch + 1, total_s, last_eval.top1, last_eval.top5, best_top1,
             cfg->train.target_accuracy, reached ? "true" : "false", reached ? "" : "-", reached ? reached_at : 1.0,
             1e3 * med, med_img_s, world, r->threads, per * t_fwd, per * t_bwd, per * t_comm, per * t_upd,
             per * t_data);
    runlog_summary(r, summary);

    sync_buffers(r);
    st = DPT_OK;
    if (cfg->train.save_weights && rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/weights.h5", out_dir);
        st = weights_save(g, path, r->spec.name, global_step, last_epoch + 1);
        if (st == DPT_OK) log_info("weights: %s", path);
    }
    bool ok = run_agree(st);
    free(step_time);
    runlog_close(r);
    run_teardown(r);
    log_close_files();
    return ok ? 0 : 1;
}

int eval_classifier(const dpt_config *cfg, const char *weights_path) {
    run_ctx rc, *r = &rc;
    memset(r, 0, sizeof *r);
    if (!run_setup_common(r, cfg, false)) {
        run_teardown(r);
        return 1;
    }
    if (!run_agree(weights_load(r->g, weights_path))) {
        run_teardown(r);
        return 1;
    }
    run_banner(r, "eval");
    eval_result e = run_evaluate(r);
    log_info("%s on %s: top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%lld samples, %.1fs)", weights_path, r->test.path,
             100 * e.top1, 100 * e.top5, e.loss, (long long)e.count, e.seconds);
    run_teardown(r);
    return 0;
}
