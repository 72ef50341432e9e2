#ifndef DPT_NN_GRAPH_INTERNAL_H
#define DPT_NN_GRAPH_INTERNAL_H

#include "dpt/nn/graph.h"

int nn_add_value(nn_graph *g, int producer, int64_t n, int64_t c, int64_t h, int64_t w);
/* A value shaped like `shape` (any dtype, ndim, layout; its data is ignored). */
int nn_add_value_t(nn_graph *g, int producer, const dpt_tensor *shape);
/* The node's output value, of shape (N, c, h, w). */
int nn_finish_node(nn_graph *g, int node, int64_t c, int64_t h, int64_t w);
/* BatchNorm's and conditional BatchNorm's common part, once their parameters exist: the desc
 * from x's shape, the running-statistics buffers, the output and the saved batch statistics. */
int nn_norm_finish(nn_graph *g, int node, int x, bool relu);
/* A 2-d (N, F) value: (N, F, 1, 1) or (N, F) float. */
bool nn_is_2d(const dpt_tensor *t);
/* A float value: activations are F32, BF16 or F16 (the back end's act_dtype); labels are I32. */
static inline bool nn_is_float(const dpt_tensor *t) {
    return t->dtype == DT_F32 || t->dtype == DT_BF16 || t->dtype == DT_F16;
}
int nn_add_node(nn_graph *g, nn_op_kind kind, const char *name, int in0, int in1);
int nn_add_param(nn_graph *g, int node, const char *leaf, int ndim, const int64_t *shape, nn_init init,
                 bool no_decay, int fan_in, int fan_out);
int nn_add_buffer(nn_graph *g, const char *name_prefix, const char *leaf, int64_t c, float init_value);
/* "scope.name" into out. */
void nn_scoped_name(const nn_graph *g, const char *name, char *out, size_t size);

#endif
