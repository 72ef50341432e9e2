/* The CPU back end: oneDNN for convolution, BatchNorm, pooling and GEMM; own OpenMP kernels for
 * elementwise ops, the loss and the optimizer. Activations are NHWC (see README "CPU kernels"
 * for the measurements behind that choice). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "dnnl_debug.h"

static dnnl_engine_t engine;
static dnnl_stream_t stream;

const char *cpu_dnnl_status_text(dnnl_status_t s) { return dnnl_status2str(s); }

static void cpu_init_once(void) {
    if (engine) return;
    DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
}

dnnl_engine_t cpu_engine(void) {
    cpu_init_once();
    return engine;
}

dnnl_stream_t cpu_stream(void) {
    cpu_init_once();
    return stream;
}

void cpu_md_4d(dnnl_memory_desc_t *md, int n, int c, int h, int w, dpt_layout layout) {
    dnnl_dims_t dims = {n, c, h, w};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, layout == LAYOUT_NHWC ? dnnl_nhwc : dnnl_nchw));
}

void cpu_md_any_4d(dnnl_memory_desc_t *md, int n, int c, int h, int w) {
    dnnl_dims_t dims = {n, c, h, w};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_format_tag_any));
}

void cpu_md_1d(dnnl_memory_desc_t *md, int c) {
    dnnl_dims_t dims = {c};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 1, dims, dnnl_f32, dnnl_a));
}

void cpu_prim_make(cpu_prim *p, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                   const_dnnl_primitive_desc_t hint) {
    DNNL_CHECK(dnnl_primitive_desc_create(&p->pd, desc, attr, cpu_engine(), hint));
    DNNL_CHECK(dnnl_primitive_create(&p->prim, p->pd));
}

void cpu_prim_destroy(cpu_prim *p) {
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    p->prim = NULL;
    p->pd = NULL;
}

const dnnl_memory_desc_t *cpu_prim_md(const cpu_prim *p, dnnl_query_t what, int index) {
    return dnnl_primitive_desc_query_md(p->pd, what, index);
}

dnnl_memory_t cpu_mem(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    DNNL_CHECK(dnnl_memory_create(&m, md, cpu_engine(), DNNL_MEMORY_NONE));
    return m;
}

void cpu_exec(dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args) {
    DNNL_CHECK(dnnl_primitive_execute(prim, cpu_stream(), nargs, args));
    DNNL_CHECK(dnnl_stream_wait(cpu_stream()));
}

bool cpu_reorder_make(cpu_reorder *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    memset(r, 0, sizeof *r);
    if (dnnl_memory_desc_equal(from, to)) return false;
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, from, cpu_engine(), to, cpu_engine(), NULL));
    DNNL_CHECK(dnnl_primitive_create(&r->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    r->src = cpu_mem(from);
    r->dst = cpu_mem(to);
    return true;
}

void cpu_reorder_run(cpu_reorder *r, const void *src, void *dst) {
    cpu_mem_set(r->src, src);
    cpu_mem_set(r->dst, dst);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, r->src}, {DNNL_ARG_TO, r->dst}};
    cpu_exec(r->prim, 2, args);
}

void cpu_reorder_destroy(cpu_reorder *r) {
    if (!r->prim) return;
    dnnl_primitive_destroy(r->prim);
    dnnl_memory_destroy(r->src);
    dnnl_memory_destroy(r->dst);
    memset(r, 0, sizeof *r);
}

size_t cpu_md_bytes(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md); }

void *cpu_buffer(size_t bytes) {
    size_t n = dpt_align_up(bytes ? bytes : DPT_ALIGN, DPT_ALIGN);
    void *p = aligned_alloc(DPT_ALIGN, n);
    DPT_CHECK_LIB("libc", p != NULL, "aligned_alloc", "cannot allocate %zu bytes", n);
    memset(p, 0, n);
    return p;
}

void cpu_copy_or_add(float *dst, const float *src, int64_t n, bool accumulate) {
    if (dst == src && !accumulate) return;
    if (accumulate) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) dst[i] += src[i];
    } else {
        memcpy(dst, src, (size_t)n * sizeof(float));
    }
}

static void cpu_op_destroy(be_op *op) {
    if (op) op->destroy(op);
}

static void cpu_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

static int cpu_get_threads(void) { return omp_get_max_threads(); }

static void *cpu_mem_alloc(size_t bytes) { return cpu_buffer(bytes); }
static void cpu_mem_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_fill_zero(void *dst, size_t bytes) { memset(dst, 0, bytes); }

/* The CPU computes in float32 only: a conversion is a copy. */
static void cpu_convert(dpt_tensor *dst, const dpt_tensor *src) {
    DPT_CHECK_LIB("cpu", dst->dtype == DT_F32 && src->dtype == DT_F32 && tensor_numel(dst) == tensor_numel(src),
                  "convert", "the CPU back end holds activations in f32 only (%s -> %s)", dtype_name(src->dtype),
                  dtype_name(dst->dtype));
    if (dst->data != src->data) memcpy(dst->data, src->data, tensor_bytes(src));
}

static int cpu_all_finite(const float *x, int64_t n) {
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (n > CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) bad |= !(x[i] - x[i] == 0.0f); /* NaN and +-Inf give NaN */
    return !bad;
}

static void cpu_synchronize(void) {}

const dpt_backend *backend_cpu(void) {
    static dpt_backend be;
    static bool filled;
    if (!filled) {
        cpu_init_once();
        be.name = "cpu";
        be.device = DEV_CPU;
        be.act_layout = LAYOUT_NHWC;
        be.precision = PREC_FP32;
        be.act_dtype = DT_F32;
        be.convert = cpu_convert;
        be.all_finite = cpu_all_finite;
        be.synchronize = cpu_synchronize;
        be.set_threads = cpu_set_threads;
        be.get_threads = cpu_get_threads;
        be.mem_alloc = cpu_mem_alloc;
        be.mem_free = cpu_mem_free;
        be.copy_to_device = cpu_copy;
        be.copy_to_host = cpu_copy;
        be.fill_zero = cpu_fill_zero;
        be.op_destroy = cpu_op_destroy;
        cpu_fill_conv(&be);
        cpu_fill_norm(&be);
        cpu_fill_pool(&be);
        cpu_fill_linear(&be);
        cpu_fill_elementwise(&be);
        cpu_fill_loss(&be);
        cpu_fill_optim(&be);
        cpu_fill_gan(&be);
        filled = true;
    }
    return &be;
}

const char *backend_cpu_describe(void) {
    static char text[256];
    const dnnl_version_t *v = dnnl_version();
    const char *isa = "unknown ISA";
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: isa = "sse41"; break;
    case dnnl_cpu_isa_avx: isa = "avx"; break;
    case dnnl_cpu_isa_avx2: isa = "avx2"; break;
    case dnnl_cpu_isa_avx512_mic: isa = "avx512_mic"; break;
    case dnnl_cpu_isa_avx512_mic_4ops: isa = "avx512_mic_4ops"; break;
    case dnnl_cpu_isa_avx512_core: isa = "avx512_core"; break;
    case dnnl_cpu_isa_avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl_cpu_isa_avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl_cpu_isa_avx512_core_amx: isa = "avx512_core_amx"; break;
    case dnnl_cpu_isa_avx2_vnni: isa = "avx2_vnni"; break;
    default: break;
    }
    snprintf(text, sizeof text, "oneDNN %d.%d.%d (%s, OpenMP) + own OpenMP kernels; activations NHWC, fp32",
             v->major, v->minor, v->patch, isa);
    return text;
}
