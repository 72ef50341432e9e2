/* Shared by the CPU back end's files only. */
#ifndef DPT_BACKEND_CPU_INTERNAL_H
#define DPT_BACKEND_CPU_INTERNAL_H

#include <dnnl.h>

#include "dpt/backend/backend.h"
#include "dpt/core/error.h"

#define DNNL_CHECK(expr)                                                                  \
    do {                                                                                  \
        dnnl_status_t dnnl_s_ = (expr);                                                   \
        DPT_CHECK_LIB("oneDNN", dnnl_s_ == dnnl_success, #expr, "status %d (%s)", (int)dnnl_s_, \
                      cpu_dnnl_status_text(dnnl_s_));                                     \
    } while (0)

const char *cpu_dnnl_status_text(dnnl_status_t s);
dnnl_engine_t cpu_engine(void);
dnnl_stream_t cpu_stream(void);

/* A 4-d activation descriptor (N, C, H, W) in the given layout. */
void cpu_md_4d(dnnl_memory_desc_t *md, int n, int c, int h, int w, dpt_layout layout);
void cpu_md_any_4d(dnnl_memory_desc_t *md, int n, int c, int h, int w);
void cpu_md_1d(dnnl_memory_desc_t *md, int c);

/* A primitive together with the memory objects it runs on; handles are set per call. */
typedef struct cpu_prim {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
} cpu_prim;

void cpu_prim_make(cpu_prim *p, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                   const_dnnl_primitive_desc_t hint);
void cpu_prim_destroy(cpu_prim *p);
const dnnl_memory_desc_t *cpu_prim_md(const cpu_prim *p, dnnl_query_t what, int index);

/* Memory object with no data yet. */
dnnl_memory_t cpu_mem(const dnnl_memory_desc_t *md);
static inline void cpu_mem_set(dnnl_memory_t m, const void *ptr) {
    DNNL_CHECK(dnnl_memory_set_data_handle(m, (void *)ptr));
}
/* Runs a primitive to completion. */
void cpu_exec(dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args);

/* A reorder between two descriptors (NULL when they are equal: nothing to do). */
typedef struct cpu_reorder {
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst;
} cpu_reorder;
bool cpu_reorder_make(cpu_reorder *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to);
void cpu_reorder_run(cpu_reorder *r, const void *src, void *dst);
void cpu_reorder_destroy(cpu_reorder *r);

/* Size in bytes of a memory descriptor. */
size_t cpu_md_bytes(const dnnl_memory_desc_t *md);
/* 64-byte aligned, zeroed; for op-owned buffers created at build time. */
void *cpu_buffer(size_t bytes);

/* dst (+)= src over n floats. */
void cpu_copy_or_add(float *dst, const float *src, int64_t n, bool accumulate);
/* dst (+)= k * src over n floats (the backward of a scaling). */
void cpu_scale_into(float *dst, bool accumulate, const float *src, float k, int64_t n);

/* Below this many elements an elementwise parallel region costs more than it saves. */
#define CPU_PAR_MIN 32768

/* Filling the op table, one group per file. */
void cpu_fill_conv(dpt_backend *be);
void cpu_fill_norm(dpt_backend *be);
void cpu_fill_pool(dpt_backend *be);
void cpu_fill_linear(dpt_backend *be);
void cpu_fill_elementwise(dpt_backend *be);
void cpu_fill_loss(dpt_backend *be);
void cpu_fill_optim(dpt_backend *be);
void cpu_fill_gan(dpt_backend *be);

/* BatchNorm's statistics machinery (cpu_norm.c), shared with conditional BatchNorm (cpu_gan.c):
 * buffers sized at create time, blocked float/double channel sums, cross-replica reduction. */
typedef struct cpu_bn_stats {
    be_bn_desc d;
    int max_threads;
    double *acc;      /* (threads, 2, C) */
    float *fblk;      /* (threads, 2, C) block sums */
    float *a, *b, *k; /* per-channel coefficients (C) */
    double *sums;     /* (2, C) channel sums of the last pass */
    double *red;      /* (2C + 1) cross-replica reduction buffer */
    double *mu, *inv; /* (C) batch mean and 1 / sqrt(var + eps) of the last forward */
    double count;     /* values per channel behind the last batch statistics (all ranks) */
} cpu_bn_stats;

void cpu_bn_stats_init(cpu_bn_stats *s, const be_bn_desc *d);
void cpu_bn_stats_free(cpu_bn_stats *s);
/* Sums over P pixels of (N*H*W, C) data: (x - k, (x - k)^2) for statistics, or
 * (g, g * (x - k)) with g = dy masked by y > 0 when relu, for backward. Uses s->k. */
void cpu_bn_channel_sums(cpu_bn_stats *s, const float *x, const float *dy, const float *y, int64_t P, bool relu,
                         bool backward, double *s0, double *s1);
/* Batch statistics of x (the whole group's when d.reduce is set): saves mean and biased
 * variance, updates the running statistics, sets s->mu, s->inv and s->count. */
void cpu_bn_batch_stats(cpu_bn_stats *s, float *mean, float *var, float *running_mean, float *running_var,
                        const float *x);
/* y = a * x + b (then ReLU) over n samples of hw pixels; the coefficients of sample i start at
 * a + i * stride (stride 0: per channel, C: per sample and channel). */
void cpu_bn_affine(float *y, const float *x, const float *a, const float *b, int n, int64_t hw, int C,
                   int64_t stride, bool relu);
/* dx (+)= a * g + b * x + c0 with g = dy masked by y > 0 when relu; a per sample as above,
 * b and c0 per channel. */
void cpu_bn_dx(float *dx, bool accumulate, const float *x, const float *dy, const float *y, const float *a,
               int64_t a_stride, const float *b, const float *c0, int n, int64_t hw, int C, bool relu);



/* Every op object starts with this, so op_destroy can dispatch. */
struct be_op {
    void (*destroy)(be_op *op);
};
#endif
