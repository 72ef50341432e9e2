/* Why the CPU back end runs its convolutions through oneDNN on NHWC activations, measured in one
 * run on the 3x3 stride-1 pad-1 convolutions of ResNet-9 (width 16, Fashion-MNIST 28x28):
 *   A  oneDNN, NHWC activations, weights kept OIHW and reordered on every call: what
 *      src/backend/cpu/cpu_conv.c does, reorders included;
 *   B  oneDNN, activations in the layout the primitive prefers (blocked): the primitive alone;
 *   C  im2col / col2im + OpenBLAS sgemm on NCHW activations: the textbook alternative.
 * Every pass of every implementation is checked against a naive convolution on a small batch, and
 * the three are checked against each other at the timed batch; a mismatch makes the exit status
 * non-zero. It links oneDNN and OpenBLAS only, not the project's libraries, so that it measures
 * the libraries and its numbers do not move when our wrappers do. */
#include <cblas.h>
#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DNNL_CHECK(expr)                                                                          \
    do {                                                                                          \
        dnnl_status_t dnnl_s_ = (expr);                                                           \
        if (dnnl_s_ != dnnl_success) {                                                            \
            fprintf(stderr, "bench_conv_kernels: oneDNN failed at %s:%d: %s: status %d (%s)\n",   \
                    __FILE__, __LINE__, #expr, (int)dnnl_s_, dnnl_status2str(dnnl_s_));           \
            exit(2);                                                                              \
        }                                                                                         \
    } while (0)

#define KSIZE 3 /* every layer measured here is 3x3, stride 1, pad 1 */
#define KK (KSIZE * KSIZE)
#define PAD 1
#define TOL 1e-4 /* relative 2-norm error; fp32 sums of up to N*H*W terms stay far below it */
#define VERIFY_BATCH 2 /* the naive reference is O(flops) with no blocking: keep its batch small */

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS, PASS_COUNT };
enum { IMPL_A, IMPL_B, IMPL_C, IMPL_COUNT };
static const char *pass_names[PASS_COUNT] = {"fwd", "bwd-data", "bwd-weights"};
static const char *impl_names[IMPL_COUNT] = {"A", "B", "C"};

typedef struct conv_shape {
    int c, k, hw; /* input channels, output channels, H = W */
    int count;    /* occurrences in the network */
    bool input;   /* reads the network's input: the trainer computes no input gradient for it */
    const char *where;
} conv_shape;

static const conv_shape layers[] = {
    {1, 16, 28, 1, true, "prep"},
    {16, 32, 28, 1, false, "layer1.conv"},
    {32, 32, 14, 2, false, "layer1.res1/res2"},
    {32, 64, 14, 1, false, "layer2.conv"},
    {64, 128, 7, 1, false, "layer3.conv"},
    {128, 128, 3, 2, false, "layer3.res1/res2"},
};
#define LAYER_COUNT ((int)(sizeof layers / sizeof layers[0]))

typedef struct options {
    int batch, threads, warmup, repeats;
    int gemm_cols; /* C: images per GEMM chosen so that its N dimension reaches this */
} options;

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

static void *xalloc(size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, "bench_conv_kernels: cannot allocate %zu bytes\n", bytes);
        exit(2);
    }
    return p;
}

static float *fbuf(size_t n) { return xalloc(n * sizeof(float)); }

static void fill_uniform(float *x, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull | 1; /* xorshift64 needs a non-zero state */
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = (float)((double)(s >> 40) / (double)(1 << 24) * 2.0 - 1.0);
    }
}

/* NaN, so that an element an implementation forgets to write fails the check. */
static void fill_nan(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ||a - b|| / ||b||; NaN anywhere gives NaN, which no tolerance accepts. */
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

/* The larger error, NaN counting as the largest (fmax would drop it). */
static double worse(double a, double b) { return a > b || isnan(a) ? a : b; }

/* ---- One layer's tensors, in NCHW / OIHW; every implementation converts from and to these. ---- */

typedef struct conv_data {
    int n, c, k, h, w;
    float *x;              /* (N, C, H, W) input */
    float *wei;            /* (K, C, 3, 3) */
    float *dy;             /* (N, K, H, W) gradient of the output */
    float *y[IMPL_COUNT];  /* (N, K, H, W) per implementation */
    float *dx[IMPL_COUNT]; /* (N, C, H, W) */
    float *dw[IMPL_COUNT]; /* (K, C, 3, 3) */
} conv_data;

static size_t pass_len(const conv_data *d, int pass) {
    switch (pass) {
    case PASS_FWD: return (size_t)d->n * d->k * d->h * d->w;
    case PASS_BWD_DATA: return (size_t)d->n * d->c * d->h * d->w;
    default: return (size_t)d->k * d->c * KK;
    }
}

static float *pass_out(const conv_data *d, int impl, int pass) {
    return pass == PASS_FWD ? d->y[impl] : pass == PASS_BWD_DATA ? d->dx[impl] : d->dw[impl];
}

static void data_init(conv_data *d, const conv_shape *s, int n, uint64_t seed) {
    *d = (conv_data){.n = n, .c = s->c, .k = s->k, .h = s->hw, .w = s->hw};
    size_t nx = pass_len(d, PASS_BWD_DATA), ny = pass_len(d, PASS_FWD), nw = pass_len(d, PASS_BWD_WEIGHTS);
    d->x = fbuf(nx);
    d->wei = fbuf(nw);
    d->dy = fbuf(ny);
    fill_uniform(d->x, nx, seed);
    fill_uniform(d->wei, nw, seed + 1);
    fill_uniform(d->dy, ny, seed + 2);
    for (int i = 0; i < IMPL_COUNT; i++) {
        d->y[i] = fbuf(ny);
        d->dx[i] = fbuf(nx);
        d->dw[i] = fbuf(nw);
        fill_nan(d->y[i], ny);
        fill_nan(d->dx[i], nx);
        fill_nan(d->dw[i], nw);
    }
}

static void data_free(conv_data *d) {
    free(d->x);
    free(d->wei);
    free(d->dy);
    for (int i = 0; i < IMPL_COUNT; i++) {
        free(d->y[i]);
        free(d->dx[i]);
        free(d->dw[i]);
    }
}

/* ---- Naive reference: the definition, double accumulation, no layout tricks. ---- */

static float x_at(const conv_data *d, const float *t, int n, int c, int ih, int iw) {
    if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) return 0.0f;
    return t[(((size_t)n * d->c + c) * d->h + ih) * d->w + iw];
}

static float y_at(const conv_data *d, const float *t, int n, int k, int oh, int ow) {
    if (oh < 0 || oh >= d->h || ow < 0 || ow >= d->w) return 0.0f;
    return t[(((size_t)n * d->k + k) * d->h + oh) * d->w + ow];
}

static void ref_pass(float *out, const conv_data *d, int pass) {
    const float *w = d->wei;
    if (pass == PASS_FWD) {
        for (int n = 0; n < d->n; n++)
            for (int k = 0; k < d->k; k++)
                for (int oh = 0; oh < d->h; oh++)
                    for (int ow = 0; ow < d->w; ow++) {
                        double acc = 0.0;
                        for (int c = 0; c < d->c; c++)
                            for (int r = 0; r < KK; r++)
                                acc += (double)x_at(d, d->x, n, c, oh + r / KSIZE - PAD, ow + r % KSIZE - PAD) *
                                       w[((size_t)k * d->c + c) * KK + r];
                        out[(((size_t)n * d->k + k) * d->h + oh) * d->w + ow] = (float)acc;
                    }
    } else if (pass == PASS_BWD_DATA) {
        for (int n = 0; n < d->n; n++)
            for (int c = 0; c < d->c; c++)
                for (int ih = 0; ih < d->h; ih++)
                    for (int iw = 0; iw < d->w; iw++) {
                        double acc = 0.0;
                        for (int k = 0; k < d->k; k++)
                            for (int r = 0; r < KK; r++)
                                acc += (double)y_at(d, d->dy, n, k, ih - r / KSIZE + PAD, iw - r % KSIZE + PAD) *
                                       w[((size_t)k * d->c + c) * KK + r];
                        out[(((size_t)n * d->c + c) * d->h + ih) * d->w + iw] = (float)acc;
                    }
    } else {
        for (int k = 0; k < d->k; k++)
            for (int c = 0; c < d->c; c++)
                for (int r = 0; r < KK; r++) {
                    double acc = 0.0;
                    for (int n = 0; n < d->n; n++)
                        for (int oh = 0; oh < d->h; oh++)
                            for (int ow = 0; ow < d->w; ow++)
                                acc += (double)y_at(d, d->dy, n, k, oh, ow) *
                                       x_at(d, d->x, n, c, oh + r / KSIZE - PAD, ow + r % KSIZE - PAD);
                    out[((size_t)k * d->c + c) * KK + r] = (float)acc;
                }
    }
}

/* ---- A and B: oneDNN. ---- */

typedef struct dnn_arg {
    int arg;                  /* DNNL_ARG_* */
    bool output;              /* written by the primitive */
    bool timed;               /* its reorder is part of the timed region (A's weights) */
    dnnl_memory_t prim_mem;   /* in the primitive's layout; over conv_data's buffer when layouts agree */
    dnnl_memory_t user_mem;   /* NCHW / OIHW over conv_data's buffer; NULL when layouts agree */
    dnnl_primitive_t reorder; /* user -> primitive for inputs, primitive -> user for outputs */
} dnn_arg;

typedef struct dnn_pass {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnn_arg args[3];
} dnn_pass;

typedef struct dnn_conv { dnn_pass pass[PASS_COUNT]; } dnn_conv;

static void dnn_arg_init(dnn_arg *a, const dnn_pass *p, dnnl_query_t what, int arg, bool output, bool timed,
                         const dnnl_memory_desc_t *user_md, float *user) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(p->pd, what, 0);
    *a = (dnn_arg){.arg = arg, .output = output};
    if (dnnl_memory_desc_equal(md, user_md)) {
        DNNL_CHECK(dnnl_memory_create(&a->prim_mem, md, engine, user));
        return;
    }
    a->timed = timed;
    DNNL_CHECK(dnnl_memory_create(&a->prim_mem, md, engine, DNNL_MEMORY_ALLOCATE));
    DNNL_CHECK(dnnl_memory_create(&a->user_mem, user_md, engine, user));
    dnnl_primitive_desc_t rpd;
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&rpd, output ? md : user_md, engine, output ? user_md : md,
                                                  engine, NULL));
    DNNL_CHECK(dnnl_primitive_create(&a->reorder, rpd));
    dnnl_primitive_desc_destroy(rpd);
}

static void dnn_reorder(const dnn_arg *a) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a->output ? a->prim_mem : a->user_mem},
                               {DNNL_ARG_TO, a->output ? a->user_mem : a->prim_mem}};
    DNNL_CHECK(dnnl_primitive_execute(a->reorder, stream, 2, args));
}

/* What a training step pays: the primitive plus the reorders marked timed. */
static void dnn_step(const dnn_pass *p) {
    for (int i = 0; i < 3; i++)
        if (!p->args[i].output && p->args[i].timed) dnn_reorder(&p->args[i]);
    dnnl_exec_arg_t args[3];
    for (int i = 0; i < 3; i++) args[i] = (dnnl_exec_arg_t){p->args[i].arg, p->args[i].prim_mem};
    DNNL_CHECK(dnnl_primitive_execute(p->prim, stream, 3, args));
    for (int i = 0; i < 3; i++)
        if (p->args[i].output && p->args[i].timed) dnn_reorder(&p->args[i]);
    DNNL_CHECK(dnnl_stream_wait(stream));
}

/* Untimed: inputs into the primitive's layouts (load), results back to NCHW / OIHW (store). */
static void dnn_move(const dnn_pass *p, bool outputs) {
    for (int i = 0; i < 3; i++)
        if (p->args[i].output == outputs && p->args[i].reorder) dnn_reorder(&p->args[i]);
    DNNL_CHECK(dnnl_stream_wait(stream));
}

static void dnn_init(dnn_conv *dc, conv_data *d, int impl) {
    dnnl_dims_t xdims = {d->n, d->c, d->h, d->w}, ydims = {d->n, d->k, d->h, d->w};
    dnnl_dims_t wdims = {d->k, d->c, KSIZE, KSIZE};
    dnnl_dims_t strides = {1, 1}, pad = {PAD, PAD};
    dnnl_format_tag_t act = impl == IMPL_A ? dnnl_nhwc : dnnl_format_tag_any;
    dnnl_memory_desc_t x_user, y_user, w_user, x_md, y_md, w_any;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&x_user, 4, xdims, dnnl_f32, dnnl_nchw));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&y_user, 4, ydims, dnnl_f32, dnnl_nchw));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&w_user, 4, wdims, dnnl_f32, dnnl_oihw));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&x_md, 4, xdims, dnnl_f32, act));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&y_md, 4, ydims, dnnl_f32, act));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, wdims, dnnl_f32, dnnl_format_tag_any));

    /* The backward primitives get the forward one as a hint, as in cpu_conv.c: that is what lets
     * them agree with it on layouts. */
    dnnl_convolution_desc_t cd[PASS_COUNT];
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&cd[PASS_FWD], dnnl_forward_training, dnnl_convolution_direct,
                                                  &x_md, &w_any, NULL, &y_md, strides, pad, pad));
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&cd[PASS_BWD_DATA], dnnl_convolution_direct, &x_md, &w_any,
                                                        &y_md, strides, pad, pad));
    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&cd[PASS_BWD_WEIGHTS], dnnl_convolution_direct, &x_md,
                                                           &w_any, NULL, &y_md, strides, pad, pad));
    for (int p = 0; p < PASS_COUNT; p++) {
        dnn_pass *dp = &dc->pass[p];
        DNNL_CHECK(dnnl_primitive_desc_create(&dp->pd, &cd[p], NULL, engine, p ? dc->pass[PASS_FWD].pd : NULL));
        DNNL_CHECK(dnnl_primitive_create(&dp->prim, dp->pd));
    }
    /* A pays what the trainer pays: weights live as OIHW in the parameter arena. B is charged for
     * the primitive only. */
    bool t = impl == IMPL_A;
    dnn_pass *f = &dc->pass[PASS_FWD], *bd = &dc->pass[PASS_BWD_DATA], *bw = &dc->pass[PASS_BWD_WEIGHTS];
    dnn_arg_init(&f->args[0], f, dnnl_query_src_md, DNNL_ARG_SRC, false, false, &x_user, d->x);
    dnn_arg_init(&f->args[1], f, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, false, t, &w_user, d->wei);
    dnn_arg_init(&f->args[2], f, dnnl_query_dst_md, DNNL_ARG_DST, true, false, &y_user, d->y[impl]);
    dnn_arg_init(&bd->args[0], bd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, false, false, &y_user, d->dy);
    dnn_arg_init(&bd->args[1], bd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, false, t, &w_user, d->wei);
    dnn_arg_init(&bd->args[2], bd, dnnl_query_diff_src_md, DNNL_ARG_DIFF_SRC, true, false, &x_user, d->dx[impl]);
    dnn_arg_init(&bw->args[0], bw, dnnl_query_src_md, DNNL_ARG_SRC, false, false, &x_user, d->x);
    dnn_arg_init(&bw->args[1], bw, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, false, false, &y_user, d->dy);
    dnn_arg_init(&bw->args[2], bw, dnnl_query_diff_weights_md, DNNL_ARG_DIFF_WEIGHTS, true, t, &w_user,
                 d->dw[impl]);
    for (int p = 0; p < PASS_COUNT; p++) dnn_move(&dc->pass[p], false);
}

static void dnn_free(dnn_conv *dc) {
    for (int p = 0; p < PASS_COUNT; p++) {
        dnn_pass *dp = &dc->pass[p];
        for (int i = 0; i < 3; i++) {
            dnn_arg *a = &dp->args[i];
            if (a->reorder) dnnl_primitive_destroy(a->reorder);
            if (a->user_mem) dnnl_memory_destroy(a->user_mem);
            if (a->prim_mem) dnnl_memory_destroy(a->prim_mem);
        }
        dnnl_primitive_destroy(dp->prim);
        dnnl_primitive_desc_destroy(dp->pd);
    }
}

static const dnnl_memory_desc_t *mem_md(const_dnnl_memory_t m) {
    const dnnl_memory_desc_t *md;
    DNNL_CHECK(dnnl_memory_get_memory_desc(m, &md));
    return md;
}

/* A layout in oneDNN's notation (aBcd16b = nChw16c: a..d are the dimensions in NCHW / OIHW order,
 * outermost first, upper case where blocked), rebuilt from the strides: oneDNN 2.6's C API has no
 * printer for it. */
static void md_layout(char *buf, size_t len, const dnnl_memory_desc_t *md) {
    if (md->format_kind != dnnl_blocked) {
        snprintf(buf, len, "%s", dnnl_fmt_kind2str(md->format_kind));
        return;
    }
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int order[DNNL_MAX_NDIMS], n = md->ndims;
    for (int i = 0; i < n; i++) order[i] = i;
    /* A size-1 dimension's stride is arbitrary and ties with a neighbour's; placing it inside the
     * tie gives the names oneDNN uses (nhwc with C = 1 is acdb, not acbd). */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            int u = order[j - 1], v = order[j];
            bool swap = b->strides[v] > b->strides[u] ||
                        (b->strides[v] == b->strides[u] && md->dims[u] == 1 && md->dims[v] != 1);
            if (!swap) break;
            order[j - 1] = v;
            order[j] = u;
        }
    size_t pos = 0;
    for (int i = 0; i < n && pos + 1 < len; i++) {
        bool blocked = false;
        for (int j = 0; j < b->inner_nblks; j++) blocked |= b->inner_idxs[j] == order[i];
        buf[pos++] = (char)((blocked ? 'A' : 'a') + order[i]);
    }
    buf[pos] = '\0';
    for (int j = 0; j < b->inner_nblks && pos < len; j++)
        pos += (size_t)snprintf(buf + pos, len - pos, "%d%c", (int)b->inner_blks[j], 'a' + (int)b->inner_idxs[j]);
}

/* Which kernel oneDNN picked for each pass and on which layouts: the explanation behind the times. */
static void dnn_describe(char *buf, size_t len, const dnn_conv *dc) {
    size_t pos = 0;
    for (int p = 0; p < PASS_COUNT && pos < len; p++) {
        const dnn_pass *dp = &dc->pass[p];
        const char *info = "?";
        DNNL_CHECK(dnnl_primitive_desc_query(dp->pd, dnnl_query_impl_info_str, 0, &info));
        char act[32], wei[32];
        /* args[0] is an activation in every pass; the weights sit in slot 2 for bwd-weights. */
        md_layout(act, sizeof act, mem_md(dp->args[0].prim_mem));
        md_layout(wei, sizeof wei, mem_md(dp->args[p == PASS_BWD_WEIGHTS ? 2 : 1].prim_mem));
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%s %s act %s wei %s", p ? "; " : "", pass_names[p], info,
                                act, wei);
    }
}

/* ---- C: im2col / col2im + sgemm on NCHW. ----
 * A column matrix holds nb images side by side: row (c, kh, kw), column (image, oh, ow). One GEMM
 * per chunk of images rather than per image, because per image the 7x7 and 3x3 layers would run
 * GEMMs 49 and 9 columns wide, where sgemm is far from its peak; the chunk is bounded so that the
 * column matrix stays cache-sized rather than batch-sized. */

typedef struct gemm_conv {
    int chunk;  /* images per GEMM */
    float *col; /* (C*9, chunk*H*W) */
    float *mat; /* (K, chunk*H*W): output or output gradient of a chunk, image-major columns */
} gemm_conv;

static void im2col(float *col, const float *x, int nb, int c, int h, int w) {
    const int hw = h * w, rows = c * KK;
    const size_t ncol = (size_t)nb * hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            const int ci = r / KK, kh = r / KSIZE % KSIZE, kw = r % KSIZE;
            const int w0 = imax(0, PAD - kw), w1 = imin(w, w + PAD - kw); /* ow whose input column exists */
            const float *src = x + ((size_t)b * c + ci) * hw;
            float *dst = col + (size_t)r * ncol + (size_t)b * hw;
            for (int oh = 0; oh < h; oh++) {
                float *d = dst + (size_t)oh * w;
                const int ih = oh + kh - PAD;
                if (ih < 0 || ih >= h) {
                    memset(d, 0, (size_t)w * sizeof *d);
                    continue;
                }
                const float *s = src + (size_t)ih * w;
                for (int ow = 0; ow < w0; ow++) d[ow] = 0.0f;
                memcpy(d + w0, s + w0 + kw - PAD, (size_t)(w1 - w0) * sizeof *d);
                for (int ow = w1; ow < w; ow++) d[ow] = 0.0f;
            }
        }
}

/* Overwrites dx; one thread per (image, channel) plane, so the nine taps add without races. */
static void col2im(float *dx, const float *col, int nb, int c, int h, int w) {
    const int hw = h * w;
    const size_t ncol = (size_t)nb * hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < nb; b++)
        for (int ci = 0; ci < c; ci++) {
            float *dst = dx + ((size_t)b * c + ci) * hw;
            memset(dst, 0, (size_t)hw * sizeof *dst);
            for (int kh = 0; kh < KSIZE; kh++)
                for (int kw = 0; kw < KSIZE; kw++) {
                    const int w0 = imax(0, PAD - kw), w1 = imin(w, w + PAD - kw);
                    const float *src = col + (size_t)(ci * KK + kh * KSIZE + kw) * ncol + (size_t)b * hw;
                    for (int oh = 0; oh < h; oh++) {
                        const int ih = oh + kh - PAD;
                        if (ih < 0 || ih >= h) continue;
                        float *d = dst + (size_t)ih * w + kw - PAD + w0; /* d[i] is input column w0+i */
                        const float *s = src + (size_t)oh * w + w0;
                        for (int i = 0; i < w1 - w0; i++) d[i] += s[i];
                    }
                }
        }
}

/* nb NCHW images of (K, HW) <-> one (K, nb*HW) matrix. */
static void mat_from_nchw(float *mat, const float *t, int nb, int k, int hw) {
    const size_t ncol = (size_t)nb * hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int ko = 0; ko < k; ko++)
        for (int b = 0; b < nb; b++)
            memcpy(mat + ko * ncol + (size_t)b * hw, t + ((size_t)b * k + ko) * hw, (size_t)hw * sizeof *t);
}

static void mat_to_nchw(float *t, const float *mat, int nb, int k, int hw) {
    const size_t ncol = (size_t)nb * hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int ko = 0; ko < k; ko++)
        for (int b = 0; b < nb; b++)
            memcpy(t + ((size_t)b * k + ko) * hw, mat + ko * ncol + (size_t)b * hw, (size_t)hw * sizeof *t);
}

static void gemm_init(gemm_conv *g, const conv_data *d, int gemm_cols) {
    const int hw = d->h * d->w;
    g->chunk = imin(d->n, imax(1, (gemm_cols + hw - 1) / hw));
    g->col = fbuf((size_t)d->c * KK * g->chunk * hw);
    g->mat = fbuf((size_t)d->k * g->chunk * hw);
}

static void gemm_free(gemm_conv *g) {
    free(g->col);
    free(g->mat);
}

static void gemm_step(const gemm_conv *g, conv_data *d, int pass) {
    const int hw = d->h * d->w, kdim = d->c * KK;
    for (int n0 = 0; n0 < d->n; n0 += g->chunk) {
        const int nb = imin(g->chunk, d->n - n0), ncol = nb * hw;
        const float *x = d->x + (size_t)n0 * d->c * hw;
        const float *dy = d->dy + (size_t)n0 * d->k * hw;
        /* For a single image the (K, HW) matrix is the NCHW tensor itself: no copy. */
        const float *dy_mat = dy;
        if (pass != PASS_FWD && nb > 1) {
            mat_from_nchw(g->mat, dy, nb, d->k, hw);
            dy_mat = g->mat;
        }
        if (pass == PASS_FWD) {
            float *y = d->y[IMPL_C] + (size_t)n0 * d->k * hw;
            float *y_mat = nb > 1 ? g->mat : y;
            im2col(g->col, x, nb, d->c, d->h, d->w);
            /* Y (K, cols) = W (K, C*9) * col (C*9, cols) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->k, ncol, kdim, 1.0f, d->wei, kdim, g->col, ncol,
                        0.0f, y_mat, ncol);
            if (nb > 1) mat_to_nchw(y, y_mat, nb, d->k, hw);
        } else if (pass == PASS_BWD_DATA) {
            /* dcol (C*9, cols) = W^T (C*9, K) * dY (K, cols) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kdim, ncol, d->k, 1.0f, d->wei, kdim, dy_mat, ncol,
                        0.0f, g->col, ncol);
            col2im(d->dx[IMPL_C] + (size_t)n0 * d->c * hw, g->col, nb, d->c, d->h, d->w);
        } else {
            im2col(g->col, x, nb, d->c, d->h, d->w);
            /* dW (K, C*9) (+)= dY (K, cols) * col^T (cols, C*9), summed over the chunks */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d->k, kdim, ncol, 1.0f, dy_mat, ncol, g->col, ncol,
                        n0 ? 1.0f : 0.0f, d->dw[IMPL_C], kdim);
        }
    }
}

/* ---- One layer, all three implementations. ---- */

typedef struct conv_bench {
    conv_data d;
    dnn_conv dnn[2]; /* IMPL_A, IMPL_B */
    gemm_conv gemm;
} conv_bench;

static void bench_init(conv_bench *cb, const conv_shape *s, int n, const options *o, uint64_t seed) {
    data_init(&cb->d, s, n, seed);
    dnn_init(&cb->dnn[IMPL_A], &cb->d, IMPL_A);
    dnn_init(&cb->dnn[IMPL_B], &cb->d, IMPL_B);
    gemm_init(&cb->gemm, &cb->d, o->gemm_cols);
}

static void bench_free(conv_bench *cb) {
    dnn_free(&cb->dnn[IMPL_A]);
    dnn_free(&cb->dnn[IMPL_B]);
    gemm_free(&cb->gemm);
    data_free(&cb->d);
}

static void bench_step(conv_bench *cb, int impl, int pass) {
    if (impl == IMPL_C)
        gemm_step(&cb->gemm, &cb->d, pass);
    else
        dnn_step(&cb->dnn[impl].pass[pass]);
}

/* The pass's result in NCHW / OIHW, after the last step. */
static const float *bench_result(conv_bench *cb, int impl, int pass) {
    if (impl != IMPL_C) dnn_move(&cb->dnn[impl].pass[pass], true);
    return pass_out(&cb->d, impl, pass);
}

static double bench_time(conv_bench *cb, int impl, int pass, const options *o, double *samples) {
    for (int i = 0; i < o->warmup; i++) bench_step(cb, impl, pass);
    for (int i = 0; i < o->repeats; i++) {
        double t0 = now_ms();
        bench_step(cb, impl, pass);
        samples[i] = now_ms() - t0;
    }
    return median(samples, o->repeats);
}

typedef struct layer_result {
    double ms[IMPL_COUNT][PASS_COUNT];
    double ref_err[PASS_COUNT];   /* worst of A, B, C against the naive reference, small batch */
    double cross_err[PASS_COUNT]; /* worst pair among A, B, C at the timed batch */
    char kernels[IMPL_COUNT - 1][512];
} layer_result;

static bool layer_run(layer_result *res, const conv_shape *s, int li, const options *o) {
    conv_bench cb;
    bool ok = true;

    /* Against the definition, on a batch small enough for the naive loops. */
    bench_init(&cb, s, imin(VERIFY_BATCH, o->batch), o, 1000 + 10 * (uint64_t)li);
    size_t ref_len = 0;
    for (int p = 0; p < PASS_COUNT; p++)
        if (pass_len(&cb.d, p) > ref_len) ref_len = pass_len(&cb.d, p);
    float *ref = fbuf(ref_len);
    for (int p = 0; p < PASS_COUNT; p++) {
        ref_pass(ref, &cb.d, p);
        res->ref_err[p] = 0.0;
        for (int i = 0; i < IMPL_COUNT; i++) {
            bench_step(&cb, i, p);
            double e = rel_err(bench_result(&cb, i, p), ref, pass_len(&cb.d, p));
            if (!(e <= TOL)) {
                fprintf(stderr, "FAILED: %s, %s %s vs naive reference: relative error %.3g\n", s->where,
                        impl_names[i], pass_names[p], e);
                ok = false;
            }
            res->ref_err[p] = worse(res->ref_err[p], e);
        }
    }
    free(ref);
    bench_free(&cb);

    /* Timed, then the results of the last timed step compared with each other: the primitives at the
     * timed batch may be different kernels from those at the small one. Implementation-major
     * order: with several threads, OpenMP's and OpenBLAS's idle workers spin for a while after a
     * call, so switching libraries rarely keeps that spinning out of the timings (warm-up too). */
    bench_init(&cb, s, o->batch, o, 2000 + 10 * (uint64_t)li);
    double *samples = xalloc((size_t)o->repeats * sizeof *samples);
    for (int i = 0; i < IMPL_COUNT; i++)
        for (int p = 0; p < PASS_COUNT; p++) res->ms[i][p] = bench_time(&cb, i, p, o, samples);
    free(samples);
    for (int p = 0; p < PASS_COUNT; p++) {
        const float *r[IMPL_COUNT];
        for (int i = 0; i < IMPL_COUNT; i++) r[i] = bench_result(&cb, i, p);
        res->cross_err[p] = 0.0;
        for (int i = 0; i < IMPL_COUNT; i++)
            for (int j = i + 1; j < IMPL_COUNT; j++) {
                double e = rel_err(r[i], r[j], pass_len(&cb.d, p));
                if (!(e <= TOL)) {
                    fprintf(stderr, "FAILED: %s, %s: %s vs %s at batch %d: relative error %.3g\n", s->where,
                            pass_names[p], impl_names[i], impl_names[j], o->batch, e);
                    ok = false;
                }
                res->cross_err[p] = worse(res->cross_err[p], e);
            }
    }
    dnn_describe(res->kernels[IMPL_A], sizeof res->kernels[IMPL_A], &cb.dnn[IMPL_A]);
    dnn_describe(res->kernels[IMPL_B], sizeof res->kernels[IMPL_B], &cb.dnn[IMPL_B]);
    bench_free(&cb);
    return ok;
}

/* ---- Output. ---- */

static double flop_per_pass(const conv_shape *s, int n) { return 2.0 * n * s->k * s->hw * s->hw * s->c * KK; }

static void print_table_head(void) {
    printf("  %-12s %10s %10s %10s %10s %7s %7s\n", "pass", "A ms", "B ms", "C ms", "A GFLOP/s", "C/A", "A/B");
}

static void print_row(const char *name, const double ms[IMPL_COUNT], double flop) {
    printf("  %-12s %10.3f %10.3f %10.3f %10.2f %6.2fx %6.2fx\n", name, ms[IMPL_A], ms[IMPL_B], ms[IMPL_C],
           flop / (ms[IMPL_A] * 1e6), ms[IMPL_C] / ms[IMPL_A], ms[IMPL_A] / ms[IMPL_B]);
}

static const char *env_or(const char *name) {
    const char *v = getenv(name);
    return v ? v : "unset";
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_conv_kernels [--batch N] [--threads T] [--warmup W] [--repeats K] [--gemm-cols C]\n"
               "  --batch N      per-rank batch (default 128)\n"
               "  --threads T    OpenMP threads for oneDNN and the im2col loops, OpenBLAS threads (default 1)\n"
               "  --warmup W     untimed runs before each measurement (default 3)\n"
               "  --repeats K    timed runs; the median is reported (default 10)\n"
               "  --gemm-cols C  im2col: images per GEMM so that it is at least C columns wide (default 1024)\n");
}

static bool parse_int(const char *s, int lo, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > 1 << 20) return false;
    *out = (int)v;
    return true;
}

static bool parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        int *dst = !strcmp(a, "--batch")       ? &o->batch
                   : !strcmp(a, "--threads")   ? &o->threads
                   : !strcmp(a, "--warmup")    ? &o->warmup
                   : !strcmp(a, "--repeats")   ? &o->repeats
                   : !strcmp(a, "--gemm-cols") ? &o->gemm_cols
                                               : NULL;
        int lo = dst == &o->warmup ? 0 : 1;
        if (!dst || i + 1 >= argc || !parse_int(argv[i + 1], lo, dst)) {
            fprintf(stderr, "bench_conv_kernels: bad argument '%s'%s%s\n", a, i + 1 < argc ? " " : "",
                    i + 1 < argc ? argv[i + 1] : "");
            usage(stderr);
            return false;
        }
    }
    return true;
}

int main(int argc, char **argv) {
    options o = {.batch = 128, .threads = 1, .warmup = 3, .repeats = 10, .gemm_cols = 1024};
    if (!parse_args(argc, argv, &o)) return 2;
    /* oneDNN (OpenMP build) and our im2col loops read the OpenMP thread count; OpenBLAS (pthreads
     * build on Debian) keeps its own, set here so that the environment cannot skew the comparison. */
    omp_set_num_threads(o.threads);
#ifdef OPENBLAS_VERSION
    openblas_set_num_threads(o.threads);
#endif
    DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));

    const dnnl_version_t *v = dnnl_version();
    printf("3x3 stride-1 pad-1 convolutions of ResNet-9 (width 16, Fashion-MNIST 28x28), fp32, batch %d\n", o.batch);
    printf("oneDNN %d.%d.%d (%s runtime, ISA %s)", v->major, v->minor, v->patch, dnnl_runtime2str(v->cpu_runtime),
           dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()));
#ifdef OPENBLAS_VERSION
    static const char *blas_par[] = {"sequential", "pthreads", "OpenMP"};
    int par = openblas_get_parallel();
    printf("; %s, %s build, %d threads\n", openblas_get_config(), par >= 0 && par <= 2 ? blas_par[par] : "?",
           openblas_get_num_threads());
#else
    printf("; CBLAS (not OpenBLAS: its thread count is not set here)\n");
#endif
#ifdef OPENBLAS_VERSION
    /* OpenBLAS 0.3.21 maps CPUs it does not know (recent AVX-512 AMD EPYCs among them) to its Haswell
     * kernels while oneDNN uses AVX-512; that is what a trainer on the stock library would get, but
     * the like-for-like comparison needs the override, which OpenBLAS reads only at load time. */
    const char *core = openblas_get_corename();
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core && core &&
        (!strcmp(core, "Haswell") || !strcmp(core, "Zen") || !strcmp(core, "Sandybridge")))
        printf("note: OpenBLAS runs its %s kernels (no AVX-512) while oneDNN runs AVX-512; for the same ISA on\n"
               "      both sides rerun with OPENBLAS_CORETYPE=SkylakeX in the environment\n",
               core);
#endif
    printf("threads: %d (omp_get_max_threads %d); env OMP_NUM_THREADS=%s OPENBLAS_NUM_THREADS=%s\n", o.threads,
           omp_get_max_threads(), env_or("OMP_NUM_THREADS"), env_or("OPENBLAS_NUM_THREADS"));
    printf("timing: median of %d runs after %d untimed; ms per pass over the whole batch\n", o.repeats, o.warmup);
    printf("  A  oneDNN, NHWC activations; weights OIHW reordered into the primitive's layout in fwd and\n"
           "     bwd-data, weight gradient reordered back to OIHW in bwd-weights: all inside the timing\n"
           "  B  oneDNN, activations in the primitive's preferred (blocked) layout; the primitive alone: a\n"
           "     trainer using it would also pay reorders at the network's edges and of its weights, not counted\n"
           "  C  im2col/col2im + cblas_sgemm on NCHW activations, one GEMM per chunk of images\n"
           "  layouts in oneDNN's notation: abcd = NCHW / OIHW, acdb = NHWC, aBcd16b = nChw16c\n");

    double total_ms[PASS_COUNT][IMPL_COUNT] = {{0}}, total_flop[PASS_COUNT] = {0};
    int conv_count = 0;
    bool ok = true;
    for (int li = 0; li < LAYER_COUNT; li++) {
        const conv_shape *s = &layers[li];
        double flop = flop_per_pass(s, o.batch);
        printf("\n[%d/%d] %s: %d->%d @%dx%d, x%d in the network, %.3f GFLOP per pass\n", li + 1, LAYER_COUNT, s->where,
               s->c, s->k, s->hw, s->hw, s->count, flop * 1e-9);
        fflush(stdout); /* failures go to stderr: keep them under their layer */
        layer_result r;
        bool layer_ok = layer_run(&r, s, li, &o);
        ok &= layer_ok;
        printf("  A: %s\n  B: %s\n", r.kernels[IMPL_A], r.kernels[IMPL_B]);
        print_table_head();
        for (int p = 0; p < PASS_COUNT; p++) {
            double ms[IMPL_COUNT] = {r.ms[IMPL_A][p], r.ms[IMPL_B][p], r.ms[IMPL_C][p]};
            print_row(pass_names[p], ms, flop);
            if (s->input && p == PASS_BWD_DATA) continue;
            for (int i = 0; i < IMPL_COUNT; i++) total_ms[p][i] += s->count * ms[i];
            total_flop[p] += s->count * flop;
        }
        double ref_worst = 0.0, cross_worst = 0.0;
        for (int p = 0; p < PASS_COUNT; p++) {
            ref_worst = worse(ref_worst, r.ref_err[p]);
            cross_worst = worse(cross_worst, r.cross_err[p]);
        }
        printf("  check: %s (worst relative error: %.1e against the naive reference at batch %d, %.1e between\n"
               "         A, B and C at batch %d; tolerance %.0e)\n",
               layer_ok ? "OK" : "FAILED", ref_worst, imin(VERIFY_BATCH, o.batch), cross_worst, o.batch, TOL);
        conv_count += s->count;
    }

    printf("\nnetwork total: %d convolutions (the x2 layers counted twice), batch %d; the prep conv's bwd-data is\n"
           "left out: the trainer computes no gradient for the network's input\n",
           conv_count, o.batch);
    print_table_head();
    double step[IMPL_COUNT] = {0}, step_flop = 0.0;
    for (int p = 0; p < PASS_COUNT; p++) {
        print_row(pass_names[p], total_ms[p], total_flop[p]);
        for (int i = 0; i < IMPL_COUNT; i++) step[i] += total_ms[p][i];
        step_flop += total_flop[p];
    }
    print_row("all passes", step, step_flop);
    printf("C/A: how many times slower im2col + BLAS GEMM (NCHW) is than oneDNN on NHWC\n"
           "A/B: what NHWC with per-call weight reorders costs against oneDNN's blocked layout\n");
    printf("\nverification: %s\n", ok ? "OK" : "FAILED");

    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return ok ? 0 : 1;
}
