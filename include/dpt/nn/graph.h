/* The graph: a model builder records nodes once; forward walks them in order, backward in
 * reverse, each node producing its input gradients and its parameter gradients. Memory is
 * planned at finalize: parameters, gradients (laid out exactly like the parameters, so a
 * gradient bucket is a contiguous slice), buffers (BatchNorm running statistics) and
 * activations each live in one arena. */
#ifndef DPT_NN_GRAPH_H
#define DPT_NN_GRAPH_H

#include "dpt/backend/backend.h"
#include "dpt/core/arena.h"
#include "dpt/core/error.h"

#define NN_NAME_MAX 128

typedef enum nn_op_kind {
    NN_INPUT = 0,
    NN_CONV,
    NN_BATCHNORM, /* with optional fused ReLU */
    NN_RELU,
    NN_POOL,      /* windowed or global, max or average */
    NN_LINEAR,
    NN_ADD,       /* with optional ReLU */
    NN_SCALE,
} nn_op_kind;

typedef enum nn_init {
    INIT_ZEROS = 0,
    INIT_ONES,
    INIT_KAIMING_NORMAL_FAN_OUT, /* conv weights: N(0, 2 / (K*R*S)), as torchvision's ResNets */
    INIT_UNIFORM_FAN_IN,         /* linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default */
} nn_init;

typedef struct nn_param {
    char name[NN_NAME_MAX + 32]; /* stable hierarchical name, e.g. layer1.res1.conv.weight */
    dpt_tensor value;       /* in the parameter arena */
    dpt_tensor grad;        /* in the gradient arena, same offset */
    size_t offset;          /* bytes into both arenas */
    int64_t numel;
    bool no_decay; /* BatchNorm parameters and biases */
    nn_init init;
    int fan_in, fan_out;
    int node; /* the node whose backward makes this gradient final */
} nn_param;

typedef struct nn_buffer {
    char name[NN_NAME_MAX + 32]; /* e.g. layer1.bn.running_mean */
    dpt_tensor value;
    size_t offset;
    int64_t numel;
    float init_value;
} nn_buffer;

typedef struct nn_value {
    dpt_tensor t;    /* activation */
    dpt_tensor grad; /* its gradient (data NULL when no gradient flows to it) */
    size_t off, goff;
    int producer;
    bool needs_grad;
} nn_value;

typedef struct nn_node {
    nn_op_kind kind;
    char name[NN_NAME_MAX];
    int in[2], nin;
    int out;
    int param[2], nparam;   /* conv/linear: weight, bias; batchnorm: weight (gamma), bias (beta) */
    int buffer[2], nbuffer; /* batchnorm: running_mean, running_var */
    int saved[2];           /* batchnorm: batch mean and variance (activation arena values) */
    bool accumulate_in[2];  /* backward adds into the input gradient (set at finalize) */
    union {
        be_conv_desc conv;
        be_bn_desc bn;
        be_pool_desc pool;
        be_linear_desc linear;
        struct { bool relu; } add;
        struct { float alpha; } scale;
    } a;
    be_op *op;
} nn_node;

typedef struct nn_graph {
    const dpt_backend *be;
    int batch;
    dpt_layout layout;
    nn_node *nodes;
    int nnodes, cap_nodes;
    nn_value *values;
    int nvalues, cap_values;
    nn_param *params;
    int nparams, cap_params;
    nn_buffer *buffers;
    int nbuffers, cap_buffers;
    char scope[NN_NAME_MAX];
    int scope_len[16], scope_depth;
    int input, logits;
    dpt_arena param_arena, grad_arena, buffer_arena, act_arena;
    dpt_tensor losses; /* (N) per-sample loss */
    be_reduce bn_reduce; /* cross-replica BatchNorm (nn_graph_set_bn_reduce) */
    bool finalized;
    /* Per-node timing (nn_graph_profile): seconds summed over calls. */
    bool profile;
    double *t_fwd, *t_bwd;
    int64_t prof_steps;
} nn_graph;

/* Building. Layer names are appended to the current scope with '.'. */
nn_graph *nn_graph_create(const dpt_backend *be, int batch);
void nn_graph_destroy(nn_graph *g);
void nn_scope_push(nn_graph *g, const char *name);
void nn_scope_pop(nn_graph *g);

int nn_input(nn_graph *g, int c, int h, int w);
int nn_conv2d(nn_graph *g, const char *name, int x, int out_channels, int kernel, int stride, int pad, bool bias);
/* BatchNorm2d (+ReLU). zero_gamma starts gamma at 0 (last BN of a residual branch). */
int nn_batchnorm(nn_graph *g, const char *name, int x, bool relu, bool zero_gamma);
int nn_relu(nn_graph *g, int x);
int nn_maxpool(nn_graph *g, int x, int kernel, int stride, int pad);
int nn_avgpool(nn_graph *g, int x, int kernel, int stride, int pad);
int nn_global_pool(nn_graph *g, int x, be_pool_kind kind);
/* Input must be (N, C) or (N, C, 1, 1). */
int nn_linear(nn_graph *g, const char *name, int x, int out_features, bool bias);
int nn_add(nn_graph *g, int a, int b, bool relu);
int nn_scale(nn_graph *g, int x, float alpha);
/* Cross-replica BatchNorm: every BatchNorm computes its batch statistics over the group that
 * `reduce` sums across (see be_bn_desc). Before nn_graph_finalize. */
void nn_graph_set_bn_reduce(nn_graph *g, be_reduce reduce);
/* Marks x as the logits (N, classes) and plans memory, creates the back-end ops. */
dpt_status nn_graph_finalize(nn_graph *g, int logits);

/* Initialises parameters and buffers from the counter-based RNG keyed by (seed, name). */
void nn_init_params(nn_graph *g, uint64_t seed);

/* Running. x is a (N, C, H, W) batch in g->layout, labels int32 (N). */
void nn_forward(nn_graph *g, const float *x, bool train);
/* Loss of the last forward: fills per-sample losses and the logits' gradient, scaled by
 * grad_scale (1 / global batch, so that summing gradients across ranks gives the mean).
 * Returns the sum of the losses of the first n samples. */
double nn_loss(nn_graph *g, const int32_t *labels, float smoothing, float grad_scale, int n);
/* Called after each node's backward with the node index: gradients of parameters whose
 * nn_param.node equals it are final from then on. */
typedef void (*nn_backward_hook)(void *ctx, int node);
void nn_backward(nn_graph *g, bool param_accumulate, nn_backward_hook hook, void *ctx);
/* Top-1 and top-5 hits among the first n samples of the last forward. */
void nn_accuracy(nn_graph *g, const int32_t *labels, int n, int64_t *top1, int64_t *top5);

/* Queries. */
int64_t nn_param_count(const nn_graph *g);
const dpt_tensor *nn_value_tensor(const nn_graph *g, int v);
int nn_find_param(const nn_graph *g, const char *name);
int nn_find_buffer(const nn_graph *g, const char *name);
/* Logs a table of layers, output shapes and parameter counts. */
void nn_graph_summary(const nn_graph *g, void (*print)(const char *fmt, ...));
/* Times every node's forward and backward from now on (a clock read per node). */
void nn_graph_profile(nn_graph *g, bool on);
/* Logs the per-node times per step, slowest first, with totals per op kind. */
void nn_graph_profile_report(const nn_graph *g, void (*print)(const char *fmt, ...));

#endif
