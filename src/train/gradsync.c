/* The bucketed gradient allreduce of one graph, driven from backward: a node's hook hands its
 * parameters' final gradients to comm/'s buckets (in decreasing parameter order, the order
 * backward produces them), so communication overlaps the rest of backward. */
#include <stdlib.h>
#include <string.h>

#include "dpt/comm/comm_device.h"
#include "train_internal.h"

void grad_sync_hook(void *ctx, int node) {
    grad_sync *s = ctx;
    const int start = s->node_param_start[node], count = s->node_param_count[node];
    for (int k = count - 1; k >= 0; k--) comm_grad_ready(s->sync, start + k);
    comm_grad_progress(s->sync);
}

void grad_sync_init(grad_sync *s, const nn_graph *g, int world, const dpt_config *cfg) {
    s->sync = NULL;
    s->node_param_start = dpt_xcalloc((size_t)g->nnodes, sizeof(int));
    s->node_param_count = dpt_xcalloc((size_t)g->nnodes, sizeof(int));
    for (int i = g->nparams - 1; i >= 0; i--) {
        s->node_param_start[g->params[i].node] = i;
        s->node_param_count[g->params[i].node]++;
    }
    if (world == 1) return; /* nothing to reduce */
    size_t *off = dpt_xmalloc((size_t)g->nparams * sizeof(size_t));
    int64_t *numel = dpt_xmalloc((size_t)g->nparams * sizeof(int64_t));
    for (int i = 0; i < g->nparams; i++) {
        off[i] = g->params[i].offset;
        numel[i] = g->params[i].numel;
    }
    const size_t bucket_bytes = (size_t)(cfg->comm.bucket_mb * 1024.0 * 1024.0);
    const bool bf16 = !strcmp(cfg->comm.grad_dtype, "bf16");
    float *base = (float *)g->grad_arena.base;
    if (g->be->device == DEV_CPU)
        s->sync = comm_grad_sync_create(base, off, numel, g->nparams, bucket_bytes, bf16);
    else
        s->sync = comm_dev_grad_sync_create(base, off, numel, g->nparams, bucket_bytes, bf16);
    free(off);
    free(numel);
}

void grad_sync_free(grad_sync *s) {
    comm_grad_sync_destroy(s->sync);
    free(s->node_param_start);
    free(s->node_param_count);
    s->sync = NULL;
    s->node_param_start = s->node_param_count = NULL;
}
