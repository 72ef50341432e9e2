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
    h = fnv1a64(h, r->opt.velocity, r->opt.bytes);
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

/* Steps of an epoch: full global batches of that epoch's batch phase. */
static int64_t epoch_steps(const run_ctx *r, int64_t epoch) { return r->train.n / run_batch_for_epoch(r, epoch); }

/* Total steps (train.epochs, cut by train.max_steps), the position in epochs where training
 * ends, and the steps inside the warmup. */
static void plan_steps(run_ctx *r, double *end_epochs) {
    const dpt_config *cfg = r->cfg;
    int64_t total = 0, warm = 0;
    double end = 0.0;
    for (int64_t e = 0; e < cfg->train.epochs; e++) {
        int64_t n = epoch_steps(r, e);
        if (cfg->train.max_steps > 0 && total + n >= cfg->train.max_steps) {
            int64_t k = cfg->train.max_steps - total;
            total += k;
            end = (double)e + (double)k / (double)n;
            break;
        }
        total += n;
        end = (double)(e + 1);
    }
    for (int64_t e = 0; (double)e < cfg->schedule.warmup_epochs; e++) {
        double frac = cfg->schedule.warmup_epochs - (double)e;
        warm += (int64_t)llround((frac < 1.0 ? frac : 1.0) * (double)epoch_steps(r, e));
    }
    r->total_steps = total;
    r->steps_per_epoch = epoch_steps(r, 0);
    r->warmup_steps = DPT_MIN(warm, total);
    *end_epochs = end;
}

int train_classifier(const dpt_config *cfg, const char *out_dir) {
    run_ctx rc, *r = &rc;
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->ci = comm_get();
    snprintf(r->out_dir, sizeof r->out_dir, "%s", out_dir);
    if (!run_agree(fs_mkdirs(out_dir))) return 1;
    if (!run_agree(log_open_files(out_dir))) return 1;
    /* MLPerf's init interval starts before any set-up. */
    if (!run_agree(runlog_open(r))) {
        runlog_close(r);
        return 1;
    }
    runlog_init_start(r);
    if (!run_setup_common(r, cfg, true)) {
        runlog_close(r);
        run_teardown(r);
        return 1;
    }
    nn_graph *g = r->g;
    const int world = r->ci->world, rank = r->ci->rank;
    double end_epochs;
    plan_steps(r, &end_epochs);
    schedule_init(&r->sched, cfg, end_epochs);
    optimizer_init(&r->opt, g, cfg);
    setup_grad_sync(r);

    dpt_status st = DPT_OK;
    if (rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/config.ini", out_dir);
        st = config_write(cfg, path);
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
    if (r->opt.kind == OPT_LARS)
        log_info("  optimizer  LARS, trust coefficient %.3g, momentum %.3g, weight decay %.3g%s", cfg->optim.lars_trust,
                 cfg->optim.momentum, cfg->optim.weight_decay,
                 cfg->optim.lars_exclude_bn_bias ? ", BN and bias excluded" : "");
    else
        log_info("  optimizer  SGD, momentum %.3g%s, weight decay %.3g%s", cfg->optim.momentum,
                 cfg->optim.nesterov ? " (Nesterov)" : "", cfg->optim.weight_decay,
                 cfg->optim.decay_bn_bias ? "" : " (not on BN and bias)");
    log_info("  schedule   %s, peak lr %.4g at batch %d, warmup %.3g epochs, %lld steps (%lld in epoch 1), "
             "label smoothing %.3g",
             cfg->schedule.name, schedule_peak_lr(&r->sched, r->global_batch), r->global_batch,
             cfg->schedule.warmup_epochs, (long long)r->total_steps, (long long)r->steps_per_epoch,
             cfg->train.label_smoothing);
    log_info("  run dir    %s", out_dir);
    runlog_run_start(r);

    progress prog;
    progress_init(&prog, cfg);
    double *step_time = dpt_xcalloc((size_t)r->total_steps + 1, sizeof(double));
    double *step_ips = dpt_xcalloc((size_t)r->total_steps + 1, sizeof(double)); /* images per second */
    double t_fwd = 0, t_bwd = 0, t_comm = 0, t_upd = 0, t_data = 0;
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
        const int batch = (int)run_batch_for_epoch(r, epoch), old_batch = r->global_batch;
        const int old_h = r->spec.height;
        if (run_reshape(r, batch, ph->h, ph->w)) { /* a phase change: a new graph, same weights */
            g = r->g;
            comm_grad_sync_destroy(r->sync);
            r->sync = NULL;
            free(r->node_param_start);
            free(r->node_param_count);
            setup_grad_sync(r);
            if (ph->h != old_h) log_info("epoch %lld: input size %dx%d", (long long)epoch + 1, ph->h, ph->w);
            if (batch != old_batch)
                log_info("epoch %lld: global batch %d (%d per rank), peak lr %.4g", (long long)epoch + 1, batch,
                         r->local_batch, schedule_peak_lr(&r->sched, batch));
        }
        const int64_t spe = epoch_steps(r, epoch);
        r->steps_per_epoch = spe; /* of this epoch's batch phase (progress lines) */
        int64_t nsteps = DPT_MIN(spe, r->total_steps - global_step);
        runlog_epoch(r, epoch, true);
        loader_start_train(r->train_loader, epoch, 0, nsteps, r->global_batch, rank, world);
        for (int64_t s = 0; s < nsteps; s++) {
            if (cfg->train.profile && global_step == (r->total_steps > 10 ? 5 : 0)) nn_graph_profile(g, true);
            double t0 = timer_now();
            const loader_batch *b = loader_next(r->train_loader);
            DPT_CHECK(b != NULL);
            double t1 = timer_now();
            double lr, mom;
            schedule_at(&r->sched, (double)epoch + (double)s / (double)spe, 1.0 / (double)spe, r->global_batch, &lr,
                        &mom);
            /* Gradients of the global batch's mean loss: summing across ranks averages. */
            const float grad_scale = 1.0f / (float)r->global_batch;
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
            optimizer_step(&r->opt, g, (float)lr, (float)mom, 1.0f);
            if (cfg->train.verify_replicas) verify_replicas(r, global_step);
            double t5 = timer_now();
            t_data += t1 - t0;
            t_fwd += t2 - t1;
            t_bwd += t3 - t2;
            t_comm += exposed;
            t_upd += t5 - t4;
            step_time[global_step] = t5 - t0;
            step_ips[global_step] = r->global_batch / (t5 - t0);
            global_step++;
            interval_steps++;

            if (global_step % cfg->train.log_every == 0 || s == nsteps - 1) {
                double sums[2] = {interval_loss, (double)interval_samples};
                comm_allreduce_sum_f64(sums, 2);
                double now = timer_now();
                last_loss = sums[0] / sums[1];
                double img_s = (double)interval_steps * r->global_batch / (now - interval_t0);
                runlog_train(r, global_step, (double)epoch + (double)(s + 1) / (double)spe, last_loss, lr, mom, img_s,
                             1e3 * exposed, now - t_run0);
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
        runlog_epoch(r, epoch, false);
        bool last = epoch == cfg->train.epochs - 1 || global_step >= r->total_steps;
        if ((epoch + 1) % cfg->train.eval_every == 0 || last) {
            sync_buffers(r);
            runlog_eval_start(r, epoch + 1);
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
    double med_img_s = timer_median(step_ips + warm, global_step - warm);
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
    run_result res = {.epochs = last_epoch + 1,
                      .reached = reached,
                      .reached_at_s = reached_at,
                      .final_top1 = last_eval.top1,
                      .final_top5 = last_eval.top5,
                      .best_top1 = best_top1};
    runlog_summary(r, &res, summary);

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
    free(step_ips);
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
