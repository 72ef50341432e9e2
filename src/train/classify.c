/* Training a classifier: epochs of steps (forward, loss, backward with the gradient allreduce
 * overlapped, update), evaluation each epoch, time to accuracy. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/fsutil.h"
#include "dpt/core/log.h"
#include "dpt/core/timer.h"
#include "dpt/optim/loss_scale.h"
#include "dpt/train/train.h"
#include "train_internal.h"

/* Averages BatchNorm running statistics over ranks (each rank saw its own batches), so that
 * evaluation and saved weights do not depend on the rank. */
static void sync_buffers(run_ctx *r) {
    if (r->ci->world == 1 || r->g->nbuffers == 0) return;
    const size_t bytes = r->g->buffer_arena.size;
    const int64_t n = (int64_t)(bytes / sizeof(float));
    float *b = run_host_copy(r->be, r->g->buffer_arena.base, bytes);
    comm_allreduce_sum_f32(b, n);
    const float inv = 1.0f / (float)r->ci->world;
    for (int64_t i = 0; i < n; i++) b[i] *= inv;
    r->be->copy_to_device(r->g->buffer_arena.base, b, bytes);
    free(b);
}

static uint64_t fnv1a64(uint64_t h, const void *data, size_t bytes) {
    const uint8_t *p = data;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* fnv1a64 of back-end memory: in place on the CPU, through a host copy from a device. */
static uint64_t hash_mem(const dpt_backend *be, uint64_t h, const void *p, size_t bytes) {
    if (be->device == DEV_CPU) return fnv1a64(h, p, bytes);
    void *c = run_host_copy(be, p, bytes);
    h = fnv1a64(h, c, bytes);
    free(c);
    return h;
}

/* Every rank must hold bit-identical parameters and optimizer state after each step. */
static void verify_replicas(run_ctx *r, int64_t step) {
    uint64_t h = 14695981039346656037ull;
    h = hash_mem(r->be, h, r->g->param_arena.base, r->g->param_arena.size);
    h = hash_mem(r->be, h, r->opt.velocity, r->opt.bytes);
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

/* Where a run stands, what a checkpoint stores besides tensors. */
typedef struct loop_state {
    int64_t global_step, skipped, in_a_row;
    bool reached;
    double reached_at, best_top1, t_run0;
    int64_t reached_epoch, best_epoch;
    eval_result last_eval;
    double lr, mom;
    loss_scaler scaler;
} loop_state;

static ckpt_meta make_meta(const run_ctx *r, const loop_state *ls, int64_t epoch, int64_t step_in_epoch,
                           bool finished) {
    ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.step = ls->global_step;
    m.epoch = epoch;
    m.step_in_epoch = step_in_epoch;
    m.global_batch = run_batch_for_epoch(r, epoch);
    m.world = r->ci->world;
    m.seed = r->cfg->train.seed;
    m.skipped_steps = ls->skipped;
    m.loss_scale = loss_scaler_scale(&ls->scaler);
    m.loss_scale_good = ls->scaler.good;
    m.best_epoch = ls->best_epoch;
    m.reached_epoch = ls->reached_epoch;
    m.finished = finished;
    m.reached = ls->reached;
    m.elapsed_s = timer_now() - ls->t_run0;
    m.best_top1 = ls->best_top1;
    m.reached_at_s = ls->reached_at;
    m.lr = ls->lr;
    m.momentum = ls->mom;
    m.last_top1 = ls->last_eval.top1;
    m.last_top5 = ls->last_eval.top5;
    return m;
}

/* The per-step agreement, one small allreduce after the gradients': the step number (a rank that
 * missed a collective is named instead of corrupting the sums), the lowest rank with a
 * non-finite loss, whether the summed gradient is finite, and a pending stop signal. */
typedef struct step_verdict {
    bool skip;
    int64_t bad_rank; /* lowest rank whose loss was not finite, -1: none */
    bool bad_grad;
    int stop_signal;
} step_verdict;

static step_verdict agree_step(run_ctx *r, int64_t step_no, double loss) {
    const nn_graph *g = r->g;
    const int finite = g->be->all_finite((const float *)g->grad_arena.base, (int64_t)(g->grad_arena.size / sizeof(float)));
    int64_t ctl[5] = {step_no, -step_no, isfinite(loss) ? INT64_MAX : r->ci->rank, finite,
                      -(int64_t)stop_signal_pending()};
    comm_allreduce_min_i64(ctl, 5);
    DPT_CHECK_LIB("comm", ctl[0] == -ctl[1], "step agreement",
                  "ranks disagree on the step (from %lld to %lld): one of them skipped a collective", (long long)ctl[0],
                  (long long)-ctl[1]);
    step_verdict v = {.bad_rank = ctl[2] == INT64_MAX ? -1 : ctl[2], .bad_grad = ctl[3] == 0,
                      .stop_signal = (int)-ctl[4]};
    v.skip = v.bad_rank >= 0 || v.bad_grad;
    return v;
}

static const char *signal_name(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : sig == SIGINT ? "SIGINT" : "a signal";
}

/* Starts from the checkpoint `resume` names (or none); fills the loop state. Returns false on an
 * error (printed once). */
static bool start_or_resume(run_ctx *r, const char *resume, loop_state *ls, int64_t *epoch, int64_t *step_in_epoch,
                            bool *finished) {
    memset(ls, 0, sizeof *ls);
    ls->reached_epoch = ls->best_epoch = -1;
    const dpt_config *cfg = r->cfg;
    const bool scaling = !strcmp(cfg->train.loss_scale, "dynamic") ||
                         (!strcmp(cfg->train.loss_scale, "auto") && r->be->precision == PREC_FP16);
    loss_scaler_init(&ls->scaler, scaling, cfg->train.loss_scale_init, cfg->train.loss_scale_window);
    *epoch = *step_in_epoch = 0;
    *finished = false;
    if (!resume) return true;
    ckpt_meta m;
    char used[1300] = "";
    const double t0 = timer_now();
    int rc = ckpt_resume(r, resume, &m, used, sizeof used);
    if (rc < 0) return false;
    if (rc == 0) return true;
    ls->global_step = m.step;
    ls->skipped = m.skipped_steps;
    if (ls->scaler.on) { /* a resume without scaling starts from its own configuration */
        ls->scaler.scale = m.loss_scale;
        ls->scaler.good = m.loss_scale_good;
    }
    ls->reached = m.reached;
    ls->reached_at = m.reached_at_s;
    ls->reached_epoch = m.reached_epoch;
    ls->best_top1 = m.best_top1;
    ls->best_epoch = m.best_epoch;
    ls->last_eval.top1 = m.last_top1;
    ls->last_eval.top5 = m.last_top5;
    ls->t_run0 = -m.elapsed_s; /* made absolute when the clock starts */
    *epoch = m.epoch;
    *step_in_epoch = m.step_in_epoch;
    *finished = m.finished;
    log_info("resumed from %s: step %lld, epoch %lld, %lld of its steps done, %.1f s of training so far (loaded in "
             "%.2f s)", used, (long long)m.step, (long long)m.epoch + 1, (long long)m.step_in_epoch, m.elapsed_s,
             timer_now() - t0);
    if (m.world != r->ci->world)
        log_info("  written by %lld rank(s), resumed on %d: global batch %lld kept (%lld per rank), same sample order; "
                 "BatchNorm running statistics start from their average over the old ranks",
                 (long long)m.world, r->ci->world, (long long)m.global_batch, (long long)m.global_batch / r->ci->world);
    runlog_resume(r, m.step, used);
    return true;
}

/* <out>/timeline.tsv (train.profile, rank 0): one row per step, milliseconds. Appended to on a
 * resume; the header goes into a new file. */
static FILE *open_timeline(const char *out_dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/timeline.tsv", out_dir);
    FILE *f = fopen(path, "a");
    if (!f) {
        log_warn("cannot write %s: no timeline", path);
        return NULL;
    }
    if (ftell(f) == 0)
        fprintf(f, "step\tdata_ms\tforward_ms\tbackward_ms\tpolling_ms\tallreduce_in_flight_ms\texposed_comm_ms\t"
                   "agreement_ms\tupdate_ms\tstep_ms\n");
    return f;
}

int train_classifier(const dpt_config *cfg, const char *out_dir, const char *resume) {
    run_ctx rc, *r = &rc;
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->ci = comm_get();
    snprintf(r->out_dir, sizeof r->out_dir, "%s", out_dir);
    stop_signals_install();
    if (!run_agree(fs_mkdirs(out_dir))) return 1;
    if (!run_agree(log_open_files(out_dir))) return 1;
    /* Before any file of the run directory is rewritten. */
    if (!resume && !run_agree(ckpt_check_fresh(r))) return 1;
    /* MLPerf's init interval starts before any set-up. */
    if (!run_agree(runlog_open(r, resume != NULL))) {
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
    grad_sync_init(&r->gsync, g, world, cfg);

    loop_state ls;
    int64_t start_epoch, start_step;
    bool finished;
    bool ok = start_or_resume(r, resume, &ls, &start_epoch, &start_step, &finished);
    dpt_status st = DPT_OK;
    if (ok && rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/config.ini", out_dir);
        st = config_write(cfg, path);
    }
    if (!ok || !run_agree(st)) {
        runlog_close(r);
        run_teardown(r);
        return 1;
    }
    if (finished) {
        log_info("the run in %s had already finished at step %lld: nothing to do", out_dir, (long long)ls.global_step);
        runlog_close(r);
        run_teardown(r);
        log_close_files();
        return 0;
    }
    run_banner(r, "train");
    if (r->gsync.sync)
        log_info("  allreduce  %d bucket(s) of <= %.3g MB, started during backward", comm_grad_num_buckets(r->gsync.sync),
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
    const int64_t every = cfg->train.checkpoint_every;
    if (every >= 0)
        log_info("  checkpoint %s into %s/checkpoints, newest %lld kept, and best.h5",
                 every == 0 ? "each epoch" : "every N steps", out_dir, (long long)cfg->train.keep_checkpoints);
    log_info("  run dir    %s", out_dir);
    runlog_run_start(r);

    progress prog;
    progress_init(&prog, cfg);
    double *step_time = dpt_xcalloc((size_t)r->total_steps + 1, sizeof(double));
    double *step_ips = dpt_xcalloc((size_t)r->total_steps + 1, sizeof(double)); /* images per second */
    int64_t timed = 0;                                                          /* steps run by this process */
    double t_fwd = 0, t_bwd = 0, t_comm = 0, t_agree = 0, t_upd = 0, t_data = 0;
    const float smoothing = (float)cfg->train.label_smoothing;
    const size_t buf_bytes = g->buffer_arena.size;
    /* The buffers before the step, which a skip restores; in the back end's memory, so that
     * taking the snapshot costs the GPU no host round trip per step. */
    void *buf_snapshot = buf_bytes ? g->be->mem_alloc(buf_bytes) : NULL;
    FILE *timeline = cfg->train.profile && rank == 0 ? open_timeline(out_dir) : NULL;
    double t_in_flight = 0.0;

    comm_barrier();
    ls.t_run0 += timer_now();
    const double t_start = timer_now();
    int64_t last_epoch = start_epoch;
    double interval_loss = 0.0, interval_t0 = t_start;
    int64_t interval_samples = 0, interval_steps = 0;
    int stop_sig = 0;
    bool failed = false;
    char ckpt_path[1300] = ""; /* the newest checkpoint this process wrote */

    for (int64_t epoch = start_epoch; epoch < cfg->train.epochs && ls.global_step < r->total_steps; epoch++) {
        last_epoch = epoch;
        const size_phase *ph = run_phase_for_epoch(r, epoch);
        const int batch = (int)run_batch_for_epoch(r, epoch), old_batch = r->global_batch;
        const int old_h = r->spec.height;
        if (run_reshape(r, batch, ph->h, ph->w)) { /* a phase change: a new graph, same weights */
            g = r->g;
            grad_sync_free(&r->gsync);
            grad_sync_init(&r->gsync, g, r->ci->world, cfg);
            if (ph->h != old_h) log_info("epoch %lld: input size %dx%d", (long long)epoch + 1, ph->h, ph->w);
            if (batch != old_batch)
                log_info("epoch %lld: global batch %d (%d per rank), peak lr %.4g", (long long)epoch + 1, batch,
                         r->local_batch, schedule_peak_lr(&r->sched, batch));
        }
        const int64_t spe = epoch_steps(r, epoch);
        r->steps_per_epoch = spe; /* of this epoch's batch phase (progress lines) */
        const int64_t first = epoch == start_epoch ? DPT_MIN(start_step, spe) : 0;
        const int64_t nsteps = DPT_MAX((int64_t)0, DPT_MIN(spe - first, r->total_steps - ls.global_step));
        runlog_epoch(r, epoch, true);
        if (nsteps > 0) loader_start_train(r->train_loader, epoch, first, nsteps, r->global_batch, rank, world);
        const int64_t sample = (int64_t)r->spec.in_channels * r->spec.height * r->spec.width; /* floats */
        for (int64_t s = first; s < first + nsteps; s++) {
            const int64_t step_no = ls.global_step + 1; /* as the logs count */
            comm_set_step(step_no);
            if (fault_at("kill", step_no, rank)) raise(SIGKILL);
            if (fault_at("stop", step_no, rank)) raise(SIGSTOP);
            if (fault_at("term", step_no, rank)) raise(SIGTERM);
            if (cfg->train.profile && ls.global_step == (r->total_steps > 10 ? 5 : 0)) nn_graph_profile(g, true);
            double t0 = timer_now();
            const loader_batch *b = loader_next(r->train_loader);
            DPT_CHECK(b != NULL);
            if (fault_at("nan", step_no, rank)) b->x[0] = NAN; /* the loader's batch is host memory */
            double t1 = timer_now();
            schedule_at(&r->sched, (double)epoch + (double)s / (double)spe, 1.0 / (double)spe, r->global_batch, &ls.lr,
                        &ls.mom);
            if (buf_snapshot) run_copy_floats(g->be, buf_snapshot, g->buffer_arena.base, buf_bytes);
            /* Gradients of the global batch's mean loss (summing across ranks averages), times the
             * loss scale S, which the update divides out again. */
            const double S = loss_scaler_scale(&ls.scaler);
            const float grad_scale = (float)(S / (double)r->global_batch);
            double step_loss = 0.0, fwd = 0.0, bwd = 0.0;
            DPT_CHECK(b->n == r->local_batch);
            for (int k = 0; k < r->accum; k++) {
                /* Micro-step k: its slice of the batch; gradients accumulate after the first, and
                 * only the last one's backward hands them to the allreduce. */
                const bool last_micro = k == r->accum - 1;
                const double ta = timer_now();
                nn_forward(g, b->x + (int64_t)k * r->micro_batch * sample, true);
                step_loss += nn_loss(g, b->y + (int64_t)k * r->micro_batch, smoothing, grad_scale, r->micro_batch);
                const double tb = timer_now();
                if (last_micro && r->gsync.sync) comm_grad_begin(r->gsync.sync);
                nn_backward(g, k > 0, last_micro && r->gsync.sync ? grad_sync_hook : NULL, &r->gsync);
                fwd += tb - ta;
                bwd += timer_now() - tb;
            }
            double exposed = r->gsync.sync ? comm_grad_wait(r->gsync.sync) : 0.0;
            if (fault_at("inf_grad", step_no, rank)) {
                const float inf = INFINITY;
                g->be->copy_to_device(g->grad_arena.base, &inf, sizeof inf);
            }
            double t4 = timer_now();
            step_verdict v = agree_step(r, step_no, step_loss);
            double t4b = timer_now();
            if (v.skip) {
                /* Every rank reached the same verdict: nobody updates, the BatchNorm running
                 * statistics the bad batch touched are put back. */
                if (buf_snapshot) run_copy_floats(g->be, g->buffer_arena.base, buf_snapshot, buf_bytes);
                ls.skipped++;
            }
            if (v.skip && v.bad_rank < 0 && loss_scaler_is_overflow(&ls.scaler, !v.bad_grad)) {
                /* The scaled gradient overflowed: not a bad step, a too-large S. */
                loss_scaler_update(&ls.scaler, true);
                log_info("step %lld: the scaled gradient overflowed; step skipped, loss scale %g -> %g",
                         (long long)step_no, S, loss_scaler_scale(&ls.scaler));
            } else if (v.skip) {
                ls.in_a_row++;
                char who[64];
                if (v.bad_rank >= 0)
                    snprintf(who, sizeof who, "loss on rank %lld", (long long)v.bad_rank);
                else
                    snprintf(who, sizeof who, "summed gradient");
                log_warn("step %lld: non-finite %s; step skipped on every rank (%lld in a row, %lld in all)",
                         (long long)step_no, who, (long long)ls.in_a_row, (long long)ls.skipped);
                if (ls.in_a_row >= cfg->train.max_skipped_steps) {
                    if (rank == 0)
                        log_error("stopping: %lld steps in a row had a non-finite loss or gradient "
                                  "(train.max_skipped_steps = %lld); the last checkpoint holds the state before them",
                                  (long long)ls.in_a_row, (long long)cfg->train.max_skipped_steps);
                    failed = true;
                }
            } else {
                optimizer_step(&r->opt, g, (float)ls.lr, (float)ls.mom, (float)(1.0 / S));
                if (loss_scaler_update(&ls.scaler, false))
                    log_info("step %lld: %lld good steps in a row, loss scale %g -> %g", (long long)step_no,
                             (long long)ls.scaler.window, S, loss_scaler_scale(&ls.scaler));
                ls.in_a_row = 0;
                interval_loss += step_loss;
                interval_samples += b->n;
            }
            if (cfg->train.verify_replicas) verify_replicas(r, ls.global_step);
            double t5 = timer_now();
            t_data += t1 - t0;
            t_fwd += fwd;
            t_bwd += bwd;
            if (timeline) {
                comm_grad_times ct = r->gsync.sync ? comm_grad_last_times(r->gsync.sync) : (comm_grad_times){0};
                t_in_flight += ct.in_flight;
                fprintf(timeline, "%lld\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n", (long long)step_no,
                        1e3 * (t1 - t0), 1e3 * fwd, 1e3 * bwd, 1e3 * ct.polling, 1e3 * ct.in_flight, 1e3 * exposed,
                        1e3 * (t4b - t4), 1e3 * (t5 - t4b), 1e3 * (t5 - t0));
            }
            t_comm += exposed;
            t_agree += t4b - t4;
            t_upd += t5 - t4b;
            step_time[timed] = t5 - t0;
            step_ips[timed] = r->global_batch / (t5 - t0);
            timed++;
            ls.global_step++;
            interval_steps++;
            if (failed) break;

            if (ls.global_step % cfg->train.log_every == 0 || s == first + nsteps - 1) {
                double sums[2] = {interval_loss, (double)interval_samples};
                comm_allreduce_sum_f64(sums, 2);
                double now = timer_now();
                double loss = sums[1] > 0 ? sums[0] / sums[1] : NAN;
                double img_s = (double)interval_steps * r->global_batch / (now - interval_t0);
                runlog_train(r, ls.global_step, (double)epoch + (double)(s + 1) / (double)spe, loss, ls.lr, ls.mom,
                             img_s, 1e3 * exposed, now - ls.t_run0);
                progress_step(&prog, r, epoch, s + 1, ls.global_step, loss, ls.lr, img_s);
                interval_loss = 0.0;
                interval_samples = 0;
                interval_steps = 0;
                interval_t0 = now;
            } else if (prog.bar) {
                /* Between averaged log points the bar shows rank 0's own loss of this step. */
                double img_s = r->global_batch / (t5 - t0);
                progress_step(&prog, r, epoch, s + 1, ls.global_step, step_loss / b->n, ls.lr, img_s);
            }
            stop_sig = v.stop_signal;
            /* The last step's checkpoint is the end-of-run one, written after the evaluation. */
            if (stop_sig || (every > 0 && ls.global_step % every == 0 && ls.global_step < r->total_steps)) {
                ckpt_meta m = make_meta(r, &ls, epoch, s + 1, false);
                st = ckpt_save_step(r, &m, ckpt_path, sizeof ckpt_path);
                if (st != DPT_OK) {
                    if (rank == 0) log_warn("checkpoint not written: %s", dpt_error_message());
                    if (stop_sig) failed = true;
                }
            }
            if (stop_sig) break;
        }
        comm_set_step(-1);
        if (stop_sig || failed) break;
        runlog_epoch(r, epoch, false);
        bool last = epoch == cfg->train.epochs - 1 || ls.global_step >= r->total_steps;
        bool improved = false;
        if ((epoch + 1) % cfg->train.eval_every == 0 || last) {
            sync_buffers(r);
            runlog_eval_start(r, epoch + 1);
            ls.last_eval = run_evaluate(r);
            double elapsed = timer_now() - ls.t_run0;
            runlog_eval(r, ls.global_step, epoch + 1, &ls.last_eval, elapsed);
            char hms[32];
            fmt_hms(elapsed, hms, sizeof hms);
            log_info("epoch %lld: test top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%lld samples, eval %.1fs)  elapsed %s",
                     (long long)epoch + 1, 100 * ls.last_eval.top1, 100 * ls.last_eval.top5, ls.last_eval.loss,
                     (long long)ls.last_eval.count, ls.last_eval.seconds, hms);
            if (ls.last_eval.top1 > ls.best_top1) {
                ls.best_top1 = ls.last_eval.top1;
                ls.best_epoch = epoch + 1;
                improved = every >= 0;
            }
            if (cfg->train.target_accuracy > 0 && ls.last_eval.top1 >= cfg->train.target_accuracy) {
                ls.reached = true;
                ls.reached_at = elapsed;
                ls.reached_epoch = epoch + 1;
                last = true;
            }
        }
        /* After the evaluation: a resume goes on with the next epoch. The end of the run has its
         * own checkpoint below. */
        const char *written = NULL;
        ckpt_meta m = make_meta(r, &ls, epoch + 1, 0, last);
        if (every >= 0 && (every == 0 || last)) {
            st = ckpt_save_step(r, &m, ckpt_path, sizeof ckpt_path);
            if (st == DPT_OK) written = ckpt_path;
            else if (rank == 0) log_warn("checkpoint not written: %s", dpt_error_message());
        }
        if (improved && ckpt_save_best(r, &m, written) != DPT_OK && rank == 0)
            log_warn("best.h5 not written: %s", dpt_error_message());
        if (last) break;
    }
    loader_stop(r->train_loader);
    if (buf_snapshot) g->be->mem_free(buf_snapshot);
    if (timeline) fclose(timeline);
    const double total_s = timer_now() - ls.t_run0;
    const int64_t global_step = ls.global_step;

    if (stop_sig || failed) {
        if (stop_sig && !failed)
            log_info("%s: stopped at step %lld with checkpoint %s; exiting (go on with --resume auto)",
                     signal_name(stop_sig), (long long)global_step, ckpt_path);
        ok = !failed;
        goto done; /* no summary, no weights: the run is not over */
    }

    /* Throughput: median step time after the first steps (one-time set-up inside oneDNN). */
    const int64_t warm = timed > 10 ? 5 : 0;
    double med = timer_median(step_time + warm, timed - warm);
    double med_img_s = timer_median(step_ips + warm, timed - warm);
    double per = timed > 0 ? 1e3 / (double)timed : 0.0;
    log_info("steps: %lld  median %.1f ms (%.0f img/s)  per step: data wait %.2f ms, forward %.1f ms, backward %.1f "
             "ms, exposed comm %.2f ms, agreement %.2f ms, update %.2f ms",
             (long long)timed, 1e3 * med, med_img_s, per * t_data, per * t_fwd, per * t_bwd, per * t_comm,
             per * t_agree, per * t_upd);
    if (ls.skipped)
        log_info("skipped steps: %lld (%lld of them overflows of the loss-scaled gradient)", (long long)ls.skipped,
                 (long long)ls.scaler.overflows);
    if (cfg->train.profile) {
        nn_graph_profile_report(g, log_info);
        if (timeline && r->gsync.sync && timed > 0)
            log_info("timeline: %s/timeline.tsv; per step: allreduce in flight %.2f ms, exposed %.2f ms (%.0f%% hidden "
                     "behind backward)",
                     out_dir, per * t_in_flight, per * t_comm,
                     t_in_flight > 0 ? 100.0 * (1.0 - t_comm / t_in_flight) : 0.0);
    }
    char hms[32];
    if (ls.reached) {
        fmt_hms(ls.reached_at, hms, sizeof hms);
        log_info("target %.2f%% top-1 reached at epoch %lld: time to accuracy %s (%.1f s)",
                 100 * cfg->train.target_accuracy, (long long)ls.reached_epoch, hms, ls.reached_at);
    } else if (cfg->train.target_accuracy > 0) {
        log_info("target %.2f%% top-1 not reached; best %.2f%% at epoch %lld", 100 * cfg->train.target_accuracy,
                 100 * ls.best_top1, (long long)ls.best_epoch);
    }
    fmt_hms(total_s, hms, sizeof hms);
    log_info("done: %lld epochs, %lld steps in %s; final test top-1 %.2f%%", (long long)last_epoch + 1,
             (long long)global_step, hms, 100 * ls.last_eval.top1);

    char summary[1200];
    snprintf(summary, sizeof summary,
             "\"steps\": %lld, \"epochs\": %lld, \"time_s\": %.3f, \"final_top1\": %.6f, \"final_top5\": %.6f, "
             "\"best_top1\": %.6f, \"target\": %.6f, \"reached\": %s, \"time_to_target_s\": %s%.3f, "
             "\"median_step_ms\": %.3f, \"median_img_per_s\": %.1f, \"world\": %d, \"threads\": %d, "
             "\"forward_ms\": %.3f, \"backward_ms\": %.3f, \"comm_exposed_ms\": %.3f, \"update_ms\": %.3f, "
             "\"data_wait_ms\": %.3f, \"agree_ms\": %.3f, \"skipped_steps\": %lld, \"resumed\": %s, "
             "\"accum_steps\": %d, \"collectives\": %llu",
             (long long)global_step, (long long)last_epoch + 1, total_s, ls.last_eval.top1, ls.last_eval.top5,
             ls.best_top1, cfg->train.target_accuracy, ls.reached ? "true" : "false", ls.reached ? "" : "-",
             ls.reached ? ls.reached_at : 1.0, 1e3 * med, med_img_s, world, r->threads, per * t_fwd, per * t_bwd,
             per * t_comm, per * t_upd, per * t_data, per * t_agree, (long long)ls.skipped, start_epoch || start_step ? "true" : "false",
             r->accum, (unsigned long long)comm_sequence());
    run_result res = {.epochs = last_epoch + 1,
                      .reached = ls.reached,
                      .reached_at_s = ls.reached_at,
                      .final_top1 = ls.last_eval.top1,
                      .final_top5 = ls.last_eval.top5,
                      .best_top1 = ls.best_top1};
    runlog_summary(r, &res, summary);

    sync_buffers(r);
    st = DPT_OK;
    if (cfg->train.save_weights && rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/weights.h5", out_dir);
        st = weights_save(g, path, r->spec.name, global_step, last_epoch + 1);
        if (st == DPT_OK) log_info("weights: %s", path);
    }
    ok = run_agree(st);
done:
    free(step_time);
    free(step_ips);
    runlog_close(r);
    run_teardown(r);
    log_close_files();
    stop_signals_restore();
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
