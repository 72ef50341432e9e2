/* Max and average pooling (windowed or global) through oneDNN. Max pooling keeps the argmax in
 * a workspace from forward to backward. Average pooling counts padded cells (PyTorch's default,
 * count_include_pad=True). */
#include <stdlib.h>

#include "cpu_internal.h"

typedef struct pool_op {
    be_op base;
    be_pool_desc d;
    cpu_prim fwd, bwd;
    dnnl_memory_t src, dst, ws, diff_src, diff_dst;
    void *ws_buf;
    float *scratch; /* diff_src when accumulating */
} pool_op;

static void pool_destroy(be_op *op) {
    pool_op *o = (pool_op *)op;
    cpu_prim_destroy(&o->fwd);
    cpu_prim_destroy(&o->bwd);
    dnnl_memory_t mems[] = {o->src, o->dst, o->ws, o->diff_src, o->diff_dst};
    for (size_t i = 0; i < DPT_ARRAY_LEN(mems); i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    free(o->ws_buf);
    free(o->scratch);
    free(o);
}

static be_op *pool_create(const be_pool_desc *d_in, dpt_layout layout) {
    pool_op *o = dpt_xcalloc(1, sizeof *o);
    o->base.destroy = pool_destroy;
    o->d = *d_in;
    be_pool_desc *d = &o->d;
    int kh = d->kernel ? d->kernel : d->h, kw = d->kernel ? d->kernel : d->w;
    int sh = d->kernel ? d->stride : 1, sw = d->kernel ? d->stride : 1;
    int pad = d->kernel ? d->pad : 0;
    dnnl_memory_desc_t src, dst;
    cpu_md_4d(&src, d->n, d->c, d->h, d->w, layout);
    cpu_md_4d(&dst, d->n, d->c, d->oh, d->ow, layout);
    dnnl_dims_t strides = {sh, sw}, kernel = {kh, kw}, dilation = {0, 0}, pad_l = {pad, pad};
    /* Floor mode: the right padding may be negative when the last window stops short. */
    dnnl_dims_t pad_r = {(d->oh - 1) * sh + kh - d->h - pad, (d->ow - 1) * sw + kw - d->w - pad};
    dnnl_alg_kind_t alg = d->kind == POOL_MAX ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    dnnl_pooling_v2_desc_t pd;
    DNNL_CHECK(dnnl_pooling_v2_forward_desc_init(&pd, dnnl_forward_training, alg, &src, &dst, strides, kernel,
                                                 dilation, pad_l, pad_r));
    cpu_prim_make(&o->fwd, &pd, NULL, NULL);
    DNNL_CHECK(dnnl_pooling_v2_backward_desc_init(&pd, alg, &src, &dst, strides, kernel, dilation, pad_l, pad_r));
    cpu_prim_make(&o->bwd, &pd, NULL, o->fwd.pd);
    o->src = cpu_mem(&src);
    o->dst = cpu_mem(&dst);
    o->diff_src = cpu_mem(&src);
    o->diff_dst = cpu_mem(&dst);
    if (d->kind == POOL_MAX) {
        const dnnl_memory_desc_t *ws_md = cpu_prim_md(&o->fwd, dnnl_query_workspace_md, 0);
        o->ws = cpu_mem(ws_md);
        o->ws_buf = cpu_buffer(cpu_md_bytes(ws_md));
        cpu_mem_set(o->ws, o->ws_buf);
    }
    o->scratch = cpu_buffer((size_t)d->n * d->c * d->h * d->w * sizeof(float));
    return &o->base;
}

static void pool_forward(be_op *op, dpt_tensor *out, const dpt_tensor *in) {
    pool_op *o = (pool_op *)op;
    cpu_mem_set(o->src, in->data);
    cpu_mem_set(o->dst, out->data);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, o->src}, {DNNL_ARG_DST, o->dst}};
    int nargs = 2;
    if (o->ws) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, o->ws};
    cpu_exec(o->fwd.prim, nargs, args);
}

static void pool_backward(be_op *op, dpt_tensor *din, bool accumulate, const dpt_tensor *dout,
                          const dpt_tensor *in, const dpt_tensor *out) {
    pool_op *o = (pool_op *)op;
    float *target = accumulate ? o->scratch : din->data;
    cpu_mem_set(o->diff_src, target);
    cpu_mem_set(o->diff_dst, dout->data);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_SRC, o->diff_src}, {DNNL_ARG_DIFF_DST, o->diff_dst}};
    int nargs = 2;
    if (o->ws) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, o->ws};
    cpu_exec(o->bwd.prim, nargs, args);
    if (accumulate) cpu_copy_or_add(din->data, target, (int64_t)o->d.n * o->d.c * o->d.h * o->d.w, true);
}

void cpu_fill_pool(dpt_backend *be) {
    be->pool_create = pool_create;
    be->pool_forward = pool_forward;
    be->pool_backward = pool_backward;
}
