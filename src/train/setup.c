/* Set-up shared by training and evaluation: threads, data, model, loaders. */
#include <hdf5.h>
#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/backend/cuda.h"
#include "dpt/comm/comm_device.h"
#include "dpt/comm/topology.h"
#include "dpt/core/log.h"
#include "train_internal.h"

bool run_agree(dpt_status st) {
    int bad = comm_agree(st);
    if (bad < 0) return true;
    if (bad == comm_get()->rank) log_error("%s", dpt_error_message());
    return false;
}

/* The cores this rank may run on (its affinity mask, set by a launcher's binding) as "0-3,8",
 * and their count; 0 when the mask cannot be read. */
static int rank_cpus(char *text, size_t size) {
    cpu_set_t set;
    text[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    size_t len = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        int end = c;
        while (end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, &set)) end++;
        if (len < size) {
            len += (size_t)snprintf(text + len, size - len, end > c ? "%s%d-%d" : "%s%d", len ? "," : "", c, end);
            if (len >= size) snprintf(text + size - 4, 4, "...");
        }
        c = end;
    }
    return CPU_COUNT(&set);
}

/* Compute threads per rank, from the first of: train.threads, OMP_NUM_THREADS,
 * SLURM_CPUS_PER_TASK (srun --cpus-per-task), the cores this rank is bound to (the launcher's
 * binding), the node's cores shared among its ranks. */
static int resolve_threads(const dpt_config *cfg, const comm_info *ci, char *why, size_t size) {
    if (cfg->train.threads > 0) {
        snprintf(why, size, "train.threads");
        return (int)cfg->train.threads;
    }
    static const char *vars[] = {"OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"};
    for (int k = 0; k < 2; k++) {
        const char *env = getenv(vars[k]);
        if (env && atoi(env) > 0) {
            snprintf(why, size, "%s", vars[k]);
            return atoi(env);
        }
    }
    char cpus[64];
    int allowed = rank_cpus(cpus, sizeof cpus);
    int online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (allowed > 0 && allowed < online) {
        snprintf(why, size, "cores bound to this rank: %s", cpus);
        return allowed;
    }
    int n = (online > 0 ? online : 1) / (ci->local_size > 0 ? ci->local_size : 1);
    snprintf(why, size, "%d cores / %d ranks on this node", online, ci->local_size);
    return n > 0 ? n : 1;
}

dpt_status parse_size_phases(const cfg_phases *p, int stored_h, int stored_w, size_phase *out, int *n) {
    *n = 0;
    if (p->n == 0) {
        if (stored_h <= 0)
            return dpt_error(DPT_ERR_CONFIG, "data.image_size must be set for JPEG splits (e.g. 224, or 128,10:224)");
        out[0] = (size_phase){0, stored_h, stored_w};
        *n = 1;
        return DPT_OK;
    }
    for (int k = 0; k < p->n; k++) out[k] = (size_phase){p->epoch[k], (int)p->value[k], (int)p->value[k]};
    *n = p->n;
    return DPT_OK;
}

const size_phase *run_phase_for_epoch(const run_ctx *r, int64_t epoch) {
    /* r->phases mirrors data.image_size (one stored-size phase when it is unset). */
    return &r->phases[cfg_phase_index(&r->cfg->data.image_size, epoch)];
}

static dpt_status check_data_config(const dpt_config *cfg) {
    const cfg_list *s = &cfg->data.rrc_scale, *q = &cfg->data.rrc_ratio;
    if (s->n != 2 || s->v[0] > s->v[1] || s->v[1] <= 0)
        return dpt_error(DPT_ERR_CONFIG, "data.rrc_scale needs two values min,max with 0 < max and min <= max");
    if (q->n != 2 || q->v[0] > q->v[1])
        return dpt_error(DPT_ERR_CONFIG, "data.rrc_ratio needs two values min,max with min <= max");
    return DPT_OK;
}

/* Loader threads: data.workers, else one per 16 compute threads (plus one): on the CPU back
 * end the compute threads already use the rank's cores. */
static int resolve_workers(const dpt_config *cfg, int threads, char *why, size_t size) {
    if (cfg->data.workers > 0) {
        snprintf(why, size, "data.workers");
        return (int)cfg->data.workers;
    }
    snprintf(why, size, "automatic: 1 + compute threads / 16");
    return 1 + threads / 16;
}

int run_rank_cores(const comm_info *ci, char *why, size_t size) {
    dpt_config none;
    memset(&none, 0, sizeof none);
    return resolve_threads(&none, ci, why, size);
}

static dpt_status check_batch(const run_ctx *r) {
    const cfg_phases *b = &r->cfg->train.batch_size;
    for (int k = 0; k < b->n; k++)
        if (b->value[k] % r->ci->world != 0) {
            if (b->n == 1)
                return dpt_error(DPT_ERR_CONFIG, "train.batch_size = %lld is not divisible by the %d ranks",
                                 (long long)b->value[k], r->ci->world);
            return dpt_error(DPT_ERR_CONFIG, "train.batch_size: %lld (from epoch %lld) is not divisible by the %d ranks",
                             (long long)b->value[k], (long long)b->epoch[k], r->ci->world);
        }
    const int64_t k = r->cfg->train.accum_steps;
    for (int i = 0; i < b->n; i++)
        if (b->value[i] / r->ci->world % k != 0)
            return dpt_error(DPT_ERR_CONFIG,
                             "train.accum_steps = %lld does not divide the per-rank batch %lld (global %lld over %d "
                             "ranks%s)",
                             (long long)k, (long long)(b->value[i] / r->ci->world), (long long)b->value[i],
                             r->ci->world, b->n > 1 ? ", in one of the batch phases" : "");
    const int64_t group = r->cfg->model.bn_group;
    if (group > 1 && r->ci->world > 1 && r->ci->world % group != 0)
        return dpt_error(DPT_ERR_CONFIG, "model.bn_group = %lld does not divide the %d ranks", (long long)group,
                         r->ci->world);
    return DPT_OK;
}

int64_t run_batch_for_epoch(const run_ctx *r, int64_t epoch) {
    return cfg_phase_value(&r->cfg->train.batch_size, epoch, 0);
}

static void bn_reduce_fn(void *ctx, double *buf, int n) { comm_group_allreduce_sum_f64(ctx, buf, n); }
static void bn_reduce_dev_fn(void *ctx, double *buf, int n) { comm_dev_group_allreduce_sum_f64(ctx, buf, n); }

void run_copy_floats(const dpt_backend *be, void *dst, const void *src, size_t bytes) {
    dpt_tensor d = tensor_1d(dst, DT_F32, (int64_t)(bytes / sizeof(float)));
    dpt_tensor s = tensor_1d((void *)src, DT_F32, d.shape[0]);
    d.device = s.device = be->device;
    be->convert(&d, &s);
}

void *run_host_copy(const dpt_backend *be, const void *p, size_t bytes) {
    void *h = dpt_xmalloc(bytes ? bytes : 1);
    if (bytes) be->copy_to_host(h, p, bytes);
    return h;
}

void run_bcast_mem(const dpt_backend *be, void *p, size_t bytes) {
    if (be->device == DEV_CPU || bytes == 0) {
        comm_bcast(p, bytes, 0);
        return;
    }
    void *h = run_host_copy(be, p, bytes);
    comm_bcast(h, bytes, 0);
    be->copy_to_device(p, h, bytes);
    free(h);
}

/* A graph of the model for a per-rank batch and input size; cross-replica BatchNorm when the
 * statistics group has more than one rank. */
static nn_graph *build_graph(run_ctx *r, const model_spec *spec, int batch, dpt_status *st) {
    nn_graph *g = nn_graph_create(r->be, batch);
    if (r->bn_dev)
        nn_graph_set_bn_reduce(g, (be_reduce){.fn = bn_reduce_dev_fn, .ctx = r->bn_dev, .device = true, .ranks = r->bn_group});
    else if (r->bn_comm)
        nn_graph_set_bn_reduce(g, (be_reduce){.fn = bn_reduce_fn, .ctx = r->bn_comm});
    int logits = -1;
    *st = model_build(g, spec, &logits);
    if (*st == DPT_OK) *st = nn_graph_finalize(g, logits);
    return g;
}

void run_setup_threads(run_ctx *r, const dpt_config *cfg) {
    r->cfg = cfg;
    r->ci = comm_get();
    r->be = backend_cpu();
    r->gpu = -1;
    r->threads = resolve_threads(cfg, r->ci, r->threads_why, sizeof r->threads_why);
    r->be->set_threads(r->threads);
    r->workers = resolve_workers(cfg, r->threads, r->workers_why, sizeof r->workers_why);
}

/* This rank's back end: the CPU, or the GPU that its place on the node gives (train.device,
 * train.precision). Before any graph is built. */
dpt_status run_select_backend(run_ctx *r, const dpt_config *cfg) {
    const char *dev = cfg->train.device, *prec = cfg->train.precision;
    char why[256] = "";
    const int visible = strcmp(dev, "cpu") ? cuda_device_count(why, sizeof why) : 0;
    const bool cuda = !strcmp(dev, "cuda") || (!strcmp(dev, "auto") && visible > 0);
    if (!cuda) {
        if (strcmp(prec, "auto") && strcmp(prec, "fp32"))
            return dpt_error(DPT_ERR_CONFIG,
                             "train.precision = %s needs the CUDA back end, but this rank computes on the CPU "
                             "(train.device = %s%s%s), which runs fp32 only",
                             prec, dev, why[0] ? "; " : "", why);
        return DPT_OK;
    }
    if (visible == 0) return dpt_error(DPT_ERR_CONFIG, "train.device = cuda, but no GPU can be used: %s", why);
    r->gpu = comm_pick_device(r->ci->local_rank, r->ci->local_size, visible, r->gpu_why, sizeof r->gpu_why);
    if (r->gpu < 0) return dpt_error(DPT_ERR_CONFIG, "train.device = cuda: %s", r->gpu_why);
    dpt_precision p = PREC_BF16; /* the GPU default: bf16 activations, fp32 master weights */
    if (strcmp(prec, "auto")) DPT_CHECK(precision_parse(prec, &p));
    cuda_init(r->gpu);
    r->be = backend_cuda(p);
    return DPT_OK;
}

dpt_status run_open_device_comm(run_ctx *r, const dpt_config *cfg) {
    /* Whether all and whether any rank has a GPU; the lowest rank on a GPU and on the CPU. */
    const bool mine = r->gpu >= 0;
    int64_t v[4] = {mine, -(int64_t)mine, mine ? r->ci->rank : INT64_MAX, mine ? INT64_MAX : r->ci->rank};
    comm_allreduce_min_i64(v, 4);
    const bool all = v[0] == 1, any = v[1] == -1;
    if (!any) {
        if (!strcmp(cfg->comm.backend, "nccl"))
            return dpt_error(DPT_ERR_CONFIG, "comm.backend = nccl reduces GPU buffers, but every rank computes on the "
                                             "CPU (train.device = %s); CPU ranks use MPI",
                             cfg->train.device);
        return DPT_OK;
    }
    if (!all)
        return dpt_error(DPT_ERR_CONFIG,
                         "some ranks compute on a GPU and others on the CPU (rank %lld on a GPU, rank %lld on the CPU; "
                         "train.device = %s): set train.device = cuda or cpu for all of them",
                         (long long)v[2], (long long)v[3], cfg->train.device);
    if (r->ci->world == 1) return DPT_OK; /* nothing to reduce */
    return comm_dev_init(cfg->comm.backend, r->gpu, cuda_stream());
}

bool run_setup_common(run_ctx *r, const dpt_config *cfg, bool need_train_split) {
    run_setup_threads(r, cfg);
    if (!run_agree(run_select_backend(r, cfg))) return false;
    if (!run_agree(run_open_device_comm(r, cfg))) return false;
    if (!run_agree(check_batch(r))) return false;
    r->global_batch = (int)run_batch_for_epoch(r, 0);
    r->local_batch = r->global_batch / r->ci->world;
    r->accum = (int)cfg->train.accum_steps;
    r->micro_batch = r->local_batch / r->accum;
    int64_t group = cfg->model.bn_group == 0 ? r->ci->world : cfg->model.bn_group;
    r->bn_group = (int)DPT_MIN(group, (int64_t)r->ci->world);
    if (r->bn_group > 1) r->bn_comm = comm_group_create(r->bn_group);
    if (r->bn_group > 1 && comm_dev_get() == COMM_DEV_NCCL) r->bn_dev = comm_dev_group_create(r->bn_group);

    if (!run_agree(check_data_config(cfg))) return false;
    dataset_opts dopt = {.subset = cfg->data.train_subset,
                         .max_bytes = cfg->data.max_memory_mb << 20,
                         .cache_bytes = cfg->data.cache_mb << 20};
    /* The training split gives the model's shape and the normalisation, also for evaluation. */
    if (!run_agree(dataset_open_opts(&r->train, cfg->data.train, &dopt))) return false;
    dopt.subset = cfg->data.test_subset;
    if (!run_agree(dataset_open_opts(&r->test, cfg->data.test, &dopt))) return false;
    const bool raw = r->train.storage == DS_RAW;
    if (!run_agree(parse_size_phases(&cfg->data.image_size, raw ? r->train.h : 0, raw ? r->train.w : 0, r->phases,
                                     &r->nphases)))
        return false;
    const bool resized = cfg->data.random_resized_crop || !raw || r->nphases > 1 || r->phases[0].h != r->train.h ||
                         r->phases[0].w != r->train.w;
    if (!run_agree(dataset_check_compatible(&r->train, &r->test, resized))) return false;
    dpt_status st = DPT_OK;
    for (int k = 0; k < cfg->train.batch_size.n && st == DPT_OK; k++)
        if (need_train_split && r->train.n < cfg->train.batch_size.value[k])
            st = dpt_error(DPT_ERR_CONFIG, "%s: %lld training samples are fewer than train.batch_size = %lld",
                           r->train.path, (long long)r->train.n, (long long)cfg->train.batch_size.value[k]);
    if (st == DPT_OK && cfg->model.in_channels && cfg->model.in_channels != r->train.c)
        st = dpt_error(DPT_ERR_CONFIG, "model.in_channels = %lld but %s has %d channels",
                       (long long)cfg->model.in_channels, r->train.path, r->train.c);
    if (st == DPT_OK && cfg->model.num_classes && cfg->model.num_classes < r->train.num_classes)
        st = dpt_error(DPT_ERR_CONFIG, "model.num_classes = %lld but %s has %d classes",
                       (long long)cfg->model.num_classes, r->train.path, r->train.num_classes);
    if (!run_agree(st)) return false;

    r->spec = (model_spec){
        .name = cfg->model.name,
        .in_channels = r->train.c,
        .height = r->phases[0].h,
        .width = r->phases[0].w,
        .num_classes = cfg->model.num_classes ? (int)cfg->model.num_classes : r->train.num_classes,
        .width_base = (int)cfg->model.width,
        .batchnorm = strcmp(cfg->model.norm, "batch") == 0,
        .zero_init_residual = cfg->model.zero_init_residual,
    };
    r->g = build_graph(r, &r->spec, r->micro_batch, &st);
    if (!run_agree(st)) return false;
    nn_init_params(r->g, (uint64_t)cfg->train.seed);
    if (cfg->train.init_weights[0] && !run_agree(weights_load(r->g, cfg->train.init_weights))) return false;
    /* Replicas start identical: rank 0's parameters and buffers go to everyone. */
    run_bcast_mem(r->be, r->g->param_arena.base, r->g->param_arena.size);
    run_bcast_mem(r->be, r->g->buffer_arena.base, r->g->buffer_arena.size);

    run_make_loaders(r, need_train_split);
    return true;
}

void run_make_loaders(run_ctx *r, bool train) {
    const dpt_config *cfg = r->cfg;
    r->aug = (aug_params){
        .train = true,
        .crop_pad = cfg->data.random_resized_crop ? 0 : (int)cfg->data.crop_padding,
        .flip = cfg->data.flip,
        .seed = (uint64_t)cfg->train.seed,
        .c = r->train.c,
        .h = r->train.h,
        .w = r->train.w,
        .out_h = r->spec.height > 0 ? r->spec.height : r->phases[0].h,
        .out_w = r->spec.width > 0 ? r->spec.width : r->phases[0].w,
        .rrc = cfg->data.random_resized_crop,
        .scale_min = (float)cfg->data.rrc_scale.v[0],
        .scale_max = (float)cfg->data.rrc_scale.v[1],
        .ratio_min = (float)cfg->data.rrc_ratio.v[0],
        .ratio_max = (float)cfg->data.rrc_ratio.v[1],
        .eval_crop = (float)cfg->data.eval_crop,
        .decode_scaled = cfg->data.decode_scaled,
        .mean = r->train.mean,
        .std = r->train.std,
        .layout = r->g ? r->g->layout : LAYOUT_NHWC,
    };
    loader_opts lo = {.batch = r->local_batch,
                      .depth = (int)cfg->data.prefetch,
                      .workers = r->workers,
                      .alloc = r->be->host_alloc, /* pinned batches when the back end is a GPU */
                      .release = r->be->host_free};
    for (int k = 0; k < r->nphases; k++) {
        if (r->phases[k].h > lo.max_h) lo.max_h = r->phases[k].h;
        if (r->phases[k].w > lo.max_w) lo.max_w = r->phases[k].w;
    }
    if (train) r->train_loader = loader_create(&r->train, &r->aug, &lo);
    if (r->test.path[0]) r->eval_loader = loader_create(&r->test, &r->aug, &lo);
}

bool run_reshape(run_ctx *r, int global_batch, int h, int w) {
    if (r->spec.height == h && r->spec.width == w && r->global_batch == global_batch) return false;
    const bool new_batch = r->global_batch != global_batch;
    model_spec spec = r->spec;
    spec.height = h;
    spec.width = w;
    const int local = global_batch / r->ci->world;
    dpt_status st;
    nn_graph *g = build_graph(r, &spec, local / r->accum, &st);
    DPT_CHECK_LIB("dptrain", st == DPT_OK, "run_reshape", "cannot rebuild %s for batch %d of %dx%d: %s", spec.name,
                  local, h, w, dpt_error_message());
    /* The parameter and buffer layouts depend on neither the batch nor the input size. */
    DPT_CHECK(g->param_arena.size == r->g->param_arena.size && g->buffer_arena.size == r->g->buffer_arena.size);
    run_copy_floats(r->be, g->param_arena.base, r->g->param_arena.base, g->param_arena.size);
    run_copy_floats(r->be, g->buffer_arena.base, r->g->buffer_arena.base, g->buffer_arena.size);
    nn_graph_destroy(r->g);
    r->g = g;
    r->spec = spec;
    r->global_batch = global_batch;
    r->local_batch = local;
    r->micro_batch = local / r->accum;
    if (new_batch) { /* buffers are sized by the batch: new loaders */
        const bool train = r->train_loader != NULL;
        loader_destroy(r->train_loader);
        loader_destroy(r->eval_loader);
        r->train_loader = r->eval_loader = NULL;
        run_make_loaders(r, train);
    } else {
        if (r->train_loader) loader_set_size(r->train_loader, h, w);
        if (r->eval_loader) loader_set_size(r->eval_loader, h, w);
    }
    return true;
}

void run_teardown(run_ctx *r) {
    loader_destroy(r->train_loader);
    loader_destroy(r->eval_loader);
    grad_sync_free(&r->gsync);
    optimizer_free(&r->opt);
    nn_graph_destroy(r->g);
    comm_group_destroy(r->bn_comm);
    comm_dev_group_destroy(r->bn_dev);
    comm_dev_finalize();
    dataset_close(&r->train);
    dataset_close(&r->test);
    memset(r, 0, sizeof *r);
}

/* One rank's place for the banner's rank table (gathered to rank 0). */
typedef struct rank_record {
    int32_t threads, cores_online;
    char cpus[48];
    char device[48];
} rank_record;

/* The ranks: hosts, ranks per host, and (for up to 16 ranks) each rank's cores, threads and
 * device; a warning for nodes whose ranks run more threads than the node has cores. Collective:
 * every rank sends its record to rank 0 and writes its own line to its rank log. */
static void banner_ranks(const run_ctx *r) {
    const comm_info *ci = r->ci;
    rank_record me;
    memset(&me, 0, sizeof me);
    me.threads = r->threads;
    me.cores_online = (int32_t)sysconf(_SC_NPROCESSORS_ONLN);
    rank_cpus(me.cpus, sizeof me.cpus);
    if (r->gpu >= 0) snprintf(me.device, sizeof me.device, "cuda:%d %s", r->gpu, precision_name(r->be->precision));
    else snprintf(me.device, sizeof me.device, "cpu");
    rank_record *all = ci->rank == 0 ? dpt_xcalloc((size_t)ci->world, sizeof *all) : NULL;
    comm_gather_bytes(&me, (int)sizeof me, all, 0);
    const comm_place *pl = comm_places();
    if (ci->rank != 0)
        log_info("  this rank  %d on %s: node %d, local rank %d of %d, cores %s, %d thread(s), device %s", ci->rank,
                 ci->host, ci->node, ci->local_rank, ci->local_size, me.cpus, me.threads, me.device);
    if (!all) return;
    char hosts[1024];
    comm_describe_layout(pl, comm_host_of(0), COMM_HOST_LEN, ci->world, 8, hosts, sizeof hosts);
    log_info("  ranks      %d on %d node(s), launched by %s", ci->world, ci->num_nodes, ci->launcher);
    log_info("  hosts      %s", hosts);
    const int shown = ci->world <= 16 ? ci->world : 8;
    for (int q = 0; q < shown; q++)
        log_info("  rank %-5d %s, local rank %d of %d, cores %s, %d thread(s), device %s", q, comm_host_of(q),
                 pl[q].local_rank, pl[q].local_size, all[q].cpus, all[q].threads, all[q].device);
    if (shown < ci->world) log_info("  ...        %d more ranks (each rank's log has its own line)", ci->world - shown);
    log_info("  threads    %d per rank on rank 0 (%s)", r->threads, r->threads_why);
    for (int n = 0; n < ci->num_nodes; n++) {
        int threads = 0, first = -1;
        for (int q = 0; q < ci->world; q++)
            if (pl[q].node == n) {
                threads += all[q].threads;
                if (first < 0) first = q;
            }
        if (threads > all[first].cores_online)
            log_warn("node %d (%s): %d ranks run %d compute threads on %d cores: oversubscribed, slower than "
                     "it need be (fewer ranks, or fewer threads per rank: train.threads, OMP_NUM_THREADS)",
                     n, comm_host_of(first), pl[first].local_size, threads, all[first].cores_online);
    }
    free(all);
}

void run_banner(const run_ctx *r, const char *what) {
    const comm_info *ci = r->ci;
    log_info("dptrain %s: %s", DPT_VERSION, what);
    banner_ranks(r);
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    log_info("  build      CPU back end; CUDA back end %s; MPI %d.%d; HDF5 %u.%u.%u",
             cuda_built() ? "built" : "not built", MPI_VERSION, MPI_SUBVERSION, maj, min, rel);
    if (r->gpu >= 0)
        log_info("  backend    %s, %s (activations %s, fp32 master weights); %s", r->be->name, backend_cuda_describe(),
                 dtype_name(r->be->act_dtype), r->gpu_why);
    else
        log_info("  backend    %s", backend_cpu_describe());
    if (r->cfg->comm.timeout_s > 0)
        log_info("  comm       MPI (%s)%s; a collective waits at most %g s (comm.timeout_s)", ci->mpi_version,
                 comm_dev_get() == COMM_DEV_NONE ? ", host buffers" : "", r->cfg->comm.timeout_s);
    else
        log_info("  comm       MPI (%s)%s; collectives wait forever (comm.timeout_s = 0)", ci->mpi_version,
                 comm_dev_get() == COMM_DEV_NONE ? ", host buffers" : "");
    if (comm_dev_get() != COMM_DEV_NONE)
        log_info("  comm       device buffers: %s; gradients travel as %s%s", comm_dev_describe(),
                 r->cfg->comm.grad_dtype, r->bn_dev ? "; BatchNorm statistics over NCCL" : "");
    else if (ci->world > 1)
        log_info("  comm       gradients travel as %s", r->cfg->comm.grad_dtype);
    if (strcmp(r->spec.name, "biggan") != 0) /* a GAN prints G and D itself */
        log_info("  model      %s: %lld parameters", r->spec.name, (long long)nn_param_count(r->g));
    static const char *access[] = {"in memory", "read on demand (pread)", "read on demand (HDF5, chunk cache)"};
    if (r->train.storage == DS_RAW)
        log_info("  data       train %s: %lld x (%d, %d, %d), %d classes, %s", r->train.path, (long long)r->train.n,
                 r->train.c, r->train.h, r->train.w, r->train.num_classes, access[r->train.access]);
    else
        log_info("  data       train %s: %lld JPEGs (%d channels, shorter side %d), %d classes, %s", r->train.path,
                 (long long)r->train.n, r->train.c, r->train.h, r->train.num_classes, access[r->train.access]);
    if (r->test.path[0]) log_info("             test  %s: %lld samples, %s", r->test.path, (long long)r->test.n, access[r->test.access]);
    char sizes[256] = "";
    for (int k = 0; k < r->nphases; k++)
        snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%dx%d from epoch %lld", k ? ", " : "",
                 r->phases[k].h, r->phases[k].w, (long long)r->phases[k].epoch);
    log_info("  input      %s; %s; %d loader thread(s) per rank (%s)", sizes,
             r->aug.rrc                              ? "random-resized crop"
             : augment_resizes(&r->aug, &r->train) ? "whole image resized"
             : r->aug.crop_pad                       ? "padded random crop"
                                                     : "no crop",
             r->workers, r->workers_why);
    char phases[256];
    config_phases_text(&r->cfg->train.batch_size, phases, sizeof phases);
    char micro[96] = "";
    if (r->accum > 1)
        snprintf(micro, sizeof micro, " in %d micro-steps of %d (one allreduce per step)", r->accum, r->micro_batch);
    log_info("  batch      %d global, %d per rank%s%s%s%s", r->global_batch, r->local_batch, micro,
             r->cfg->train.batch_size.n > 1 ? " (phases " : "", r->cfg->train.batch_size.n > 1 ? phases : "",
             r->cfg->train.batch_size.n > 1 ? ")" : "");
    if (r->spec.batchnorm)
        log_info("  batchnorm  %s", r->bn_group > 1 ? (r->bn_group == ci->world ? "cross-replica over all ranks"
                                                                                 : "cross-replica in groups")
                                                    : "per rank");
}
