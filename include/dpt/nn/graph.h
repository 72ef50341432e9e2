/* The graph: a model builder records nodes once; forward walks them in order, backward in
 * reverse, each node producing its input gradients and its parameter gradients. Memory is
 * planned at finalize: parameters, gradients (laid out exactly like the parameters, so a
 * gradient bucket is a contiguous slice), buffers (BatchNorm running statistics, spectral norm's
 * power-iteration vectors) and activations (with per-layer scratch) each live in one arena.
 *
 * Values are 4-d (N, C, H, W) in g->layout, except class labels (int32 (N)) and attention's
 * score matrices (3-d). A "2-d (N, F) value" is an (N, F, 1, 1) one: in either layout its memory
 * is the row-major (N, F) matrix (nn_linear's output, nn_input_vec, a global pool's output).
 *
 * A graph may have several inputs (an image, vectors, labels) and one output, the value given
 * to nn_graph_finalize; nn_loss trains a classifier's output, other losses (a GAN's hinge) fill
 * nn_output_grad before nn_backward. Two graphs chain through nn_input_requires_grad: the
 * discriminator's input gradient becomes the generator's output gradient. */
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
    NN_UPSAMPLE,   /* nearest 2x */
    NN_TANH,
    NN_EMBEDDING,  /* labels -> (N, D), optionally spectral-normalised */
    NN_CONCAT,     /* 2-d values along the feature axis */
    NN_SLICE,      /* a block of a 2-d value's features */
    NN_VIEW,       /* (N, C*H*W) seen as (N, C, H, W): aliases its input, no copy */
    NN_CBN,        /* conditional BatchNorm (+ReLU): inputs x, gain, bias */
    NN_ADD_SCALAR, /* x + c */
    NN_BMM,        /* batched matrix product of memory-order views (attention, rowdot) */
    NN_SOFTMAX,    /* softmax over the last dimension */
    NN_SCALED_ADD, /* a + gamma * b, gamma a learnable scalar */
    NN_KIND_COUNT,
} nn_op_kind;

typedef enum nn_init {
    INIT_ZEROS = 0,
    INIT_ONES,
    INIT_KAIMING_NORMAL_FAN_OUT, /* conv weights: N(0, 2 / (K*R*S)), as torchvision's ResNets */
    INIT_UNIFORM_FAN_IN,         /* linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default */
    INIT_NORMAL_002,             /* N(0, 0.02^2): BigGAN-PyTorch's 'N02', the default of the _sn
                                  * builders' weights and of embeddings */
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
    bool unit_random; /* instead of init_value: a random unit vector (spectral norm's u, v) */
} nn_buffer;

typedef struct nn_value {
    dpt_tensor t;    /* activation */
    dpt_tensor grad; /* its gradient (data NULL when no gradient flows to it) */
    size_t off, goff;
    int producer;
    bool needs_grad;
    bool requires_grad; /* an input whose gradient backward computes (nn_input_requires_grad) */
    bool fed;           /* an input that has data (nn_set_input or nn_forward's x) */
} nn_value;

/* Spectral normalisation of a node's weight (param[0]) seen as (rows, cols), rows = output
 * channels. u, v: buffers; w_sn, dw_sn: activation-arena scratch shaped like the weight;
 * sigma: the last forward's, used by backward. */
typedef struct nn_sn {
    bool on;
    int u, v;
    int w_sn, dw_sn;
    int rows, cols;
    float sigma;
} nn_sn;

typedef struct nn_node {
    nn_op_kind kind;
    char name[NN_NAME_MAX];
    int in[3], nin; /* cbn: x, gain, bias */
    int out;
    int param[2], nparam;   /* conv/linear: weight, bias; batchnorm: weight (gamma), bias (beta) */
    int buffer[2], nbuffer; /* batchnorm: running_mean, running_var */
    int saved[2];           /* batchnorm: batch mean and variance (activation arena values) */
    bool accumulate_in[3];  /* backward adds into the input gradient (set at finalize) */
    nn_sn sn;               /* conv, linear, embedding */
    union {
        be_conv_desc conv;
        be_bn_desc bn;
        be_pool_desc pool;
        be_linear_desc linear;
        struct { bool relu; } add;
        struct { float alpha; } scale;
        struct { float c; } shift;
        struct { int begin, count; } slice;
        struct { bool trans_a, trans_b, rowdot; } bmm;
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
    dpt_dtype act_dtype; /* activations and their gradients: the back end's (F32 on the CPU) */
    dpt_tensor losses; /* (N) per-sample loss */
    /* Off the CPU: device copies of the labels nn_loss and nn_accuracy get, a host copy of the
     * losses, and float32 device staging for inputs held in another dtype. */
    int32_t *labels_dev;
    float *losses_host;
    float *stage;
    be_reduce bn_reduce; /* cross-replica BatchNorm (nn_graph_set_bn_reduce) */
    int sn_iterations;   /* power iterations per training forward (nn_graph_set_sn) */
    float sn_eps;
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
/* Inputs besides the image: a float (N, features) vector (e.g. z) and int32 (N) class labels
 * (never a gradient). Named like layers. */
int nn_input_vec(nn_graph *g, const char *name, int features);
int nn_input_labels(nn_graph *g, const char *name);
/* Backward computes this float input's gradient (nn_value_grad): a discriminator's input
 * gradient flows into the generator. Before nn_graph_finalize. */
void nn_input_requires_grad(nn_graph *g, int value);

/* ---- BigGAN / SAGAN layers (graph_gan.c) ----
 * Spectral normalisation (Miyato et al. 2018, as torch.nn.utils.spectral_norm with u, v held
 * constant in backward): the parameter is the raw weight W, seen as (out, in*kh*kw); buffers
 * <name>.weight_u (out) and <name>.weight_v (in*kh*kw) hold the power-iteration vectors (random
 * unit vectors from nn_init_params). A training forward runs g->sn_iterations power iterations
 * (1) and uses W / sigma; an evaluation forward uses the stored u, v as they are. Weights start
 * N(0, 0.02^2) (INIT_NORMAL_002); biases as nn_conv2d's and nn_linear's. */
int nn_conv2d_sn(nn_graph *g, const char *name, int x, int out_channels, int kernel, int stride, int pad, bool bias);
int nn_linear_sn(nn_graph *g, const char *name, int x, int out_features, bool bias);
/* Power iterations per training forward (BigGAN-PyTorch's num_itrs, default 1; 0 keeps u and v
 * fixed, which gradient checks use) and the normalisation's eps (default 1e-12, PyTorch's). */
void nn_graph_set_sn(nn_graph *g, int power_iterations, float eps);
/* Class embedding: labels (an nn_input_labels value) -> (N, dim); parameter "weight"
 * (num_classes, dim), N(0, 0.02^2); spectral-normalised when sn (the discriminator's). */
int nn_embedding(nn_graph *g, const char *name, int labels, int num_classes, int dim, bool sn);
/* Feature concat (N, Fa) + (N, Fb) -> (N, Fa + Fb), and features [begin, begin + count). */
int nn_concat(nn_graph *g, int a, int b);
int nn_slice(nn_graph *g, int x, int begin, int count);
/* An (N, C*H*W) value seen as (N, C, H, W) in g->layout: feature f is the element at offset f of
 * the sample in that layout's memory order (NHWC: f = (y*W + x)*C + c; NCHW: f = (c*H + y)*W + x),
 * as a reshape of a row-major tensor of that layout. The view aliases its input (no copy);
 * its gradient has its own slot. */
int nn_view_image(nn_graph *g, int x, int c, int h, int w);
int nn_upsample2x(nn_graph *g, int x);
int nn_tanh(nn_graph *g, int x);
/* x + c elementwise. */
int nn_add_scalar(nn_graph *g, int x, float c);
/* a + gamma * b with gamma a learnable scalar parameter <name>.gamma, initialised to 0. */
int nn_scaled_add(nn_graph *g, const char *name, int a, int b);
/* BigGAN's conditional BatchNorm (ccbn with a shared embedding): cond is 2-d (N, F);
 * gain = 1 + linear_sn(cond -> C, no bias) (<name>.gain), bias = linear_sn(cond -> C, no bias)
 * (<name>.bias); out = xhat * gain + bias (+ReLU), xhat from batch statistics in training (across
 * the group of nn_graph_set_bn_reduce, as nn_batchnorm) and from <name>.running_mean/var in eval. */
int nn_cbn(nn_graph *g, const char *name, int x, int cond, bool relu);
/* SAGAN self-attention as BigGAN-PyTorch's Attention (C divisible by 8, H and W even):
 * theta = conv1x1_sn(C/8), phi = maxpool2(conv1x1_sn(C/8)), g = maxpool2(conv1x1_sn(C/2)), all
 * without bias; beta = softmax over phi's positions of theta^T phi (N, HW, HW/4);
 * o = conv1x1_sn(g beta^T -> C); out = x + gamma * o, gamma (<name>.gamma) starting at 0. */
int nn_attention(nn_graph *g, const char *name, int x);
/* Projection discriminator's inner product: (N, C) x (N, C) -> (N, 1), sum_c a[n,c] b[n,c]. */
int nn_rowdot(nn_graph *g, int a, int b);

/* Marks x as the logits (N, classes) and plans memory, creates the back-end ops. */
dpt_status nn_graph_finalize(nn_graph *g, int logits);

/* Initialises parameters and buffers from the counter-based RNG keyed by (seed, name). */
void nn_init_params(nn_graph *g, uint64_t seed);

/* Running. x is a (N, C, H, W) batch in g->layout for the image input (nn_input), labels int32
 * (N). x may be NULL when the graph has no image input or it was set with nn_set_input; every
 * input must have been set once. */
void nn_forward(nn_graph *g, const float *x, bool train);
/* Gives an input its data (host float32 or int32, the value's shape) for the following forwards.
 * On the CPU the value points at the caller's buffer (which must outlive those forwards, and whose
 * later changes they see); on other devices it is copied (and converted to the activation dtype),
 * so a caller that changes its buffer sets the input again. */
void nn_set_input(nn_graph *g, int value, const void *data);
/* The gradient of the output (the value given to nn_graph_finalize): nn_loss fills it; any
 * other loss fills it (e.g. with be->hinge_d's dlogits) before nn_backward. */
dpt_tensor *nn_output_grad(nn_graph *g);
/* Loss of the last forward: fills per-sample losses and the logits' gradient, scaled by
 * grad_scale (1 / global batch, so that summing gradients across ranks gives the mean).
 * Returns the sum of the losses of the first n samples. */
double nn_loss(nn_graph *g, const int32_t *labels, float smoothing, float grad_scale, int n);
/* Called after each node's backward with the node index: gradients of parameters whose
 * nn_param.node equals it are final from then on. */
typedef void (*nn_backward_hook)(void *ctx, int node);
void nn_backward(nn_graph *g, bool param_accumulate, nn_backward_hook hook, void *ctx);
/* Backward for the gradients of values (an nn_input_requires_grad input: a GAN's G step through
 * D) without the weight and bias gradients of convolutions and linear layers, the bulk of the
 * parameter gradients; the gradient arena is left partly stale (others are overwritten). */
void nn_backward_inputs(nn_graph *g);
/* A float value (an image or a layer's output) copied to host memory as float32, converted from
 * the activation dtype when that is not float32. */
void nn_read_value(nn_graph *g, int value, float *dst);
/* Top-1 and top-5 hits among the first n samples of the last forward. */
void nn_accuracy(nn_graph *g, const int32_t *labels, int n, int64_t *top1, int64_t *top5);

/* Queries. */
int64_t nn_param_count(const nn_graph *g);
const dpt_tensor *nn_value_tensor(const nn_graph *g, int v);
/* A value's gradient after nn_backward (data NULL when none flows to it). */
const dpt_tensor *nn_value_grad(const nn_graph *g, int v);
int nn_find_param(const nn_graph *g, const char *name);
int nn_find_buffer(const nn_graph *g, const char *name);
/* Logs a table of layers, output shapes and parameter counts. */
void nn_graph_summary(const nn_graph *g, void (*print)(const char *fmt, ...));
/* Times every node's forward and backward from now on (a clock read per node). */
void nn_graph_profile(nn_graph *g, bool on);
/* Logs the per-node times per step, slowest first, with totals per op kind. */
void nn_graph_profile_report(const nn_graph *g, void (*print)(const char *fmt, ...));

#endif
