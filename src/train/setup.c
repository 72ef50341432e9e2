/* Set-up shared by training and evaluation: threads, data, model, loaders. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/core/log.h"
#include "train_internal.h"

bool run_agree(dpt_status st) {
    int bad = comm_agree(st);
    if (bad < 0) return true;
    if (bad == comm_get()->rank) log_error("%s", dpt_error_message());
    return false;
}

/* Compute threads per rank: train.threads, else OMP_NUM_THREADS, else the cores this rank may
 * run on (the launcher's binding), shared among the node's ranks when nothing binds them. */
static int resolve_threads(const dpt_config *cfg, const comm_info *ci, char *why, size_t size) {
    if (cfg->train.threads > 0) {
        snprintf(why, size, "train.threads");
        return (int)cfg->train.threads;
    }
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && atoi(env) > 0) {
        snprintf(why, size, "OMP_NUM_THREADS");
        return atoi(env);
    }
    cpu_set_t set;
    int allowed = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) allowed = CPU_COUNT(&set);
    int online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (allowed > 0 && allowed < online) {
        snprintf(why, size, "cores bound to this rank");
        return allowed;
    }
    int n = (online > 0 ? online : 1) / (ci->local_size > 0 ? ci->local_size : 1);
    snprintf(why, size, "%d cores / %d ranks on this node", online, ci->local_size);
    return n > 0 ? n : 1;
}

static dpt_status check_batch(const run_ctx *r) {
    const dpt_config *cfg = r->cfg;
    if (cfg->train.batch_size % r->ci->world != 0)
        return dpt_error(DPT_ERR_CONFIG, "train.batch_size = %lld is not divisible by the %d ranks",
                         (long long)cfg->train.batch_size, r->ci->world);
    return DPT_OK;
}

bool run_setup_common(run_ctx *r, const dpt_config *cfg, bool need_train_split) {
    r->cfg = cfg;
    r->ci = comm_get();
    r->be = backend_cpu();
    r->threads = resolve_threads(cfg, r->ci, r->threads_why, sizeof r->threads_why);
    r->be->set_threads(r->threads);
    if (!run_agree(check_batch(r))) return false;
    r->global_batch = (int)cfg->train.batch_size;
    r->local_batch = r->global_batch / r->ci->world;

    const int64_t max_bytes = cfg->data.max_memory_mb << 20;
    /* The training split gives the model's shape and the normalisation, also for evaluation. */
    if (!run_agree(dataset_open(&r->train, cfg->data.train, cfg->data.train_subset, max_bytes)))
        return false;
    if (!run_agree(dataset_open(&r->test, cfg->data.test, cfg->data.test_subset, max_bytes))) return false;
    if (!run_agree(dataset_check_compatible(&r->train, &r->test))) return false;
    dpt_status st = DPT_OK;
    if (need_train_split && r->train.n < r->global_batch)
        st = dpt_error(DPT_ERR_CONFIG, "%s: %lld training samples are fewer than train.batch_size = %d", r->train.path,
                       (long long)r->train.n, r->global_batch);
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
        .height = r->train.h,
        .width = r->train.w,
        .num_classes = cfg->model.num_classes ? (int)cfg->model.num_classes : r->train.num_classes,
        .width_base = (int)cfg->model.width,
        .batchnorm = strcmp(cfg->model.norm, "batch") == 0,
        .zero_init_residual = cfg->model.zero_init_residual,
    };
    r->g = nn_graph_create(r->be, r->local_batch);
    int logits = -1;
    st = model_build(r->g, &r->spec, &logits);
    if (st == DPT_OK) st = nn_graph_finalize(r->g, logits);
    if (!run_agree(st)) return false;
    nn_init_params(r->g, (uint64_t)cfg->train.seed);
    if (cfg->train.init_weights[0] && !run_agree(weights_load(r->g, cfg->train.init_weights))) return false;
    /* Replicas start identical: rank 0's parameters and buffers go to everyone. */
    comm_bcast(r->g->param_arena.base, r->g->param_arena.size, 0);
    comm_bcast(r->g->buffer_arena.base, r->g->buffer_arena.size, 0);

    r->aug = (aug_params){
        .train = true,
        .crop_pad = (int)cfg->data.crop_padding,
        .flip = cfg->data.flip,
        .seed = (uint64_t)cfg->train.seed,
        .c = r->train.c,
        .h = r->train.h,
        .w = r->train.w,
        .mean = r->train.mean,
        .std = r->train.std,
        .layout = r->g->layout,
    };
    if (need_train_split) r->train_loader = loader_create(&r->train, r->local_batch, &r->aug, 3);
    r->eval_loader = loader_create(&r->test, r->local_batch, &r->aug, 3);
    return true;
}

void run_teardown(run_ctx *r) {
    loader_destroy(r->train_loader);
    loader_destroy(r->eval_loader);
    comm_grad_sync_destroy(r->sync);
    sgd_free(&r->sgd);
    nn_graph_destroy(r->g);
    dataset_close(&r->train);
    dataset_close(&r->test);
    free(r->node_param_start);
    free(r->node_param_count);
    memset(r, 0, sizeof *r);
}

void run_banner(const run_ctx *r, const char *what) {
    const comm_info *ci = r->ci;
    log_info("dptrain %s: %s", DPT_VERSION, what);
    log_info("  ranks      %d on %d node(s) (%d on this node); rank 0 on %s", ci->world, ci->num_nodes, ci->local_size,
             ci->host);
    log_info("  threads    %d per rank (%s)", r->threads, r->threads_why);
    log_info("  backend    %s", backend_cpu_describe());
    log_info("  comm       MPI (%s), host buffers", ci->mpi_version);
    log_info("  model      %s: %lld parameters", r->spec.name, (long long)nn_param_count(r->g));
    log_info("  data       train %s: %lld x (%d, %d, %d), %d classes", r->train.path, (long long)r->train.n, r->train.c,
             r->train.h, r->train.w, r->train.num_classes);
    log_info("             test  %s: %lld samples", r->test.path, (long long)r->test.n);
    log_info("  batch      %d global, %d per rank", r->global_batch, r->local_batch);
}
