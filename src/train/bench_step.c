/* dptrain bench step: training steps of the config's model on synthetic data (no data files, no
 * loader): forward, loss, backward and the optimizer update on this rank's device, timed per
 * phase with the device waited for at each boundary. Medians over --steps after --warmup. With
 * --profile, the per-layer table of the graph profiler (which serialises the device, so its
 * total exceeds the step time). On several ranks each rank steps on its own batch of
 * train.batch_size and the gradients go through the bucketed allreduce training uses (its wait
 * counted in backward), or not at all with --no-comm: communication on against off at the same
 * contention (ranks sharing a GPU or a node). The reported times are the slowest rank's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/backend/cuda.h"
#include "dpt/core/log.h"
#include "dpt/core/rng.h"
#include "dpt/core/timer.h"
#include "dpt/train/train.h"
#include "train_internal.h"

int bench_step(const dpt_config *cfg, const bench_step_opts *o) {
    run_ctx rc, *r = &rc;
    memset(r, 0, sizeof *r);
    run_setup_threads(r, cfg);
    if (!run_agree(run_select_backend(r, cfg))) return 1;
    if (!run_agree(run_open_device_comm(r, cfg))) return 1;
    const int world = r->ci->world;
    const int batch = (int)cfg->train.batch_size.value[0];
    const model_spec spec = {.name = cfg->model.name,
                             .in_channels = o->channels,
                             .height = o->size,
                             .width = o->size,
                             .num_classes = o->classes,
                             .width_base = (int)cfg->model.width,
                             .batchnorm = strcmp(cfg->model.norm, "batch") == 0,
                             .zero_init_residual = cfg->model.zero_init_residual};
    nn_graph *g = nn_graph_create(r->be, batch);
    int logits = -1;
    dpt_status st = model_build(g, &spec, &logits);
    if (st == DPT_OK) st = nn_graph_finalize(g, logits);
    if (st != DPT_OK) {
        log_error("%s", dpt_error_message());
        nn_graph_destroy(g);
        return 1;
    }
    nn_init_params(g, (uint64_t)cfg->train.seed);
    dpt_optimizer opt;
    optimizer_init(&opt, g, cfg);
    grad_sync gs;
    grad_sync_init(&gs, g, o->no_comm ? 1 : world, cfg);

    /* Synthetic batch: uniform pixels in the back end's layout (values do not matter for time). */
    const int64_t px = (int64_t)batch * o->channels * o->size * o->size;
    float *x = dpt_xmalloc((size_t)px * sizeof(float));
    for (int64_t i = 0; i < px; i++) x[i] = (float)(i % 255) / 127.5f - 1.0f;
    int32_t *y = dpt_xmalloc((size_t)batch * sizeof(int32_t));
    for (int i = 0; i < batch; i++) y[i] = i % o->classes;

    char comm[400] = "one rank";
    if (world > 1 && o->no_comm)
        snprintf(comm, sizeof comm, "%d ranks, no gradient allreduce (--no-comm)", world);
    else if (world > 1)
        snprintf(comm, sizeof comm, "%d ranks, gradient allreduce in %d bucket(s) of <= %g MB as %s over %s", world,
                 comm_grad_num_buckets(gs.sync), cfg->comm.bucket_mb, cfg->comm.grad_dtype,
                 comm_dev_get() != COMM_DEV_NONE ? comm_dev_describe() : "MPI, host buffers");
    log_info("bench step: %s, batch %d per rank, %dx%dx%d synthetic, %s (%s), %lld parameters, %d warm-up + %d timed "
             "steps; %s",
             spec.name, batch, o->channels, o->size, o->size, r->be->name,
             r->gpu >= 0 ? backend_cuda_describe() : backend_cpu_describe(), (long long)nn_param_count(g), o->warmup,
             o->steps, comm);
    double *t_step = dpt_xcalloc((size_t)o->steps, sizeof(double)), *t_fwd = dpt_xcalloc((size_t)o->steps, sizeof(double));
    double *t_bwd = dpt_xcalloc((size_t)o->steps, sizeof(double)), *t_upd = dpt_xcalloc((size_t)o->steps, sizeof(double));
    double loss = 0.0;
    for (int s = 0; s < o->warmup + o->steps; s++) {
        if (o->profile && s == o->warmup) nn_graph_profile(g, true);
        r->be->synchronize();
        const double t0 = timer_now();
        nn_forward(g, x, true);
        loss = nn_loss(g, y, 0.0f, 1.0f / (float)batch, batch);
        r->be->synchronize();
        const double t1 = timer_now();
        if (gs.sync) comm_grad_begin(gs.sync);
        nn_backward(g, false, gs.sync ? grad_sync_hook : NULL, &gs);
        if (gs.sync) comm_grad_wait(gs.sync);
        r->be->synchronize();
        const double t2 = timer_now();
        optimizer_step(&opt, g, 0.01f, 0.9f, 1.0f);
        r->be->synchronize();
        const double t3 = timer_now();
        if (s >= o->warmup) {
            const int k = s - o->warmup;
            t_step[k] = t3 - t0;
            t_fwd[k] = t1 - t0;
            t_bwd[k] = t2 - t1;
            t_upd[k] = t3 - t2;
        }
    }
    /* Medians per rank; the slowest rank's (a step ends when the last rank's does). */
    double med[4] = {timer_median(t_step, o->steps), timer_median(t_fwd, o->steps), timer_median(t_bwd, o->steps),
                     timer_median(t_upd, o->steps)};
    comm_allreduce_max_f64(med, 4);
    const double ms = 1e3 * med[0];
    const int images = batch * world;
    log_info("step: median %.2f ms, %.1f img/s over %d rank(s) (forward+loss %.2f ms, backward%s %.2f ms, update "
             "%.2f ms); last loss %.4f",
             ms, 1e3 * images / ms, world, 1e3 * med[1], gs.sync ? " with the allreduce" : "", 1e3 * med[2],
             1e3 * med[3], loss / batch);
    if (r->ci->rank == 0)
        printf("RESULT bench_step model=%s batch=%d size=%d backend=%s ranks=%d comm=%s median_ms=%.3f img_s=%.2f\n",
               spec.name, batch, o->size, r->be->name, world, gs.sync ? "on" : "off", ms, 1e3 * images / ms);
    if (o->profile) nn_graph_profile_report(g, log_info);
    free(t_step);
    free(t_fwd);
    free(t_bwd);
    free(t_upd);
    free(x);
    free(y);
    grad_sync_free(&gs);
    optimizer_free(&opt);
    nn_graph_destroy(g);
    comm_dev_finalize();
    return 0;
}
