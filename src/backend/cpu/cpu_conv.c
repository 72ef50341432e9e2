/* Convolution through oneDNN. Activations stay in the graph's layout (NHWC); weights live in the
 * parameter arena as (K, C, R, S) and are reordered into the primitive's preferred blocked layout
 * on each use, which costs little next to the convolution and keeps the parameters plain for
 * the optimizer, the allreduce and the weight files. */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct conv_op {
    be_op base;
    be_conv_desc d;
    cpu_prim fwd, bwd_data, bwd_weights;
    /* forward */
    dnnl_memory_t f_src, f_wei, f_bias, f_dst;
    cpu_reorder f_wei_reorder;
    void *f_wei_buf;
    /* backward data */
    dnnl_memory_t bd_diff_src, bd_wei, bd_diff_dst;
    cpu_reorder bd_wei_reorder;
    void *bd_wei_buf;
    float *bd_scratch; /* diff_src when accumulating */
    /* backward weights */
    dnnl_memory_t bw_src, bw_diff_wei, bw_diff_bias, bw_diff_dst;
    cpu_reorder bw_wei_reorder; /* primitive layout -> (K, C, R, S) */
    void *bw_wei_buf;           /* diff weights in the primitive's layout */
    float *bw_wei_plain;        /* diff weights (K, C, R, S) before accumulation */
    float *bw_bias_buf;
} conv_op;

static void conv_destroy(be_op *op) {
    conv_op *o = (conv_op *)op;
    cpu_prim_destroy(&o->fwd);
    cpu_prim_destroy(&o->bwd_data);
    cpu_prim_destroy(&o->bwd_weights);
    dnnl_memory_t mems[] = {o->f_src, o->f_wei, o->f_bias, o->f_dst, o->bd_diff_src, o->bd_wei,
                            o->bd_diff_dst, o->bw_src, o->bw_diff_wei, o->bw_diff_bias, o->bw_diff_dst};
    for (size_t i = 0; i < DPT_ARRAY_LEN(mems); i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    cpu_reorder_destroy(&o->f_wei_reorder);
    cpu_reorder_destroy(&o->bd_wei_reorder);
    cpu_reorder_destroy(&o->bw_wei_reorder);
    free(o->f_wei_buf);
    free(o->bd_wei_buf);
    free(o->bd_scratch);
    free(o->bw_wei_buf);
    free(o->bw_wei_plain);
    free(o->bw_bias_buf);
    free(o);
}

static be_op *conv_create(const be_conv_desc *d, dpt_layout layout) {
    conv_op *o = dpt_xcalloc(1, sizeof *o);
    o->base.destroy = conv_destroy;
    o->d = *d;
    dnnl_memory_desc_t src, dst, wei_any, wei_user, bias;
    cpu_md_4d(&src, d->n, d->c, d->h, d->w, layout);
    cpu_md_4d(&dst, d->n, d->k, d->oh, d->ow, layout);
    dnnl_dims_t wdims = {d->k, d->c, d->r, d->s};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wei_any, 4, wdims, dnnl_f32, dnnl_format_tag_any));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wei_user, 4, wdims, dnnl_f32, dnnl_oihw));
    cpu_md_1d(&bias, d->k);
    dnnl_dims_t strides = {d->stride, d->stride};
    dnnl_dims_t pad_l = {d->pad, d->pad};
    /* Right padding that makes the output size come out exactly (it can be smaller than the
     * left padding when the window does not reach the last row or column). */
    dnnl_dims_t pad_r = {(d->oh - 1) * d->stride + d->r - d->h - d->pad,
                         (d->ow - 1) * d->stride + d->s - d->w - d->pad};

    dnnl_convolution_desc_t cd;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src,
                                                  &wei_any, d->bias ? &bias : NULL, &dst, strides, pad_l,
                                                  pad_r));
    cpu_prim_make(&o->fwd, &cd, NULL, NULL);
    const dnnl_memory_desc_t *f_wei_md = cpu_prim_md(&o->fwd, dnnl_query_weights_md, 0);
    o->f_src = cpu_mem(&src);
    o->f_dst = cpu_mem(&dst);
    o->f_wei = cpu_mem(f_wei_md);
    if (d->bias) o->f_bias = cpu_mem(&bias);
    if (cpu_reorder_make(&o->f_wei_reorder, &wei_user, f_wei_md)) o->f_wei_buf = cpu_buffer(cpu_md_bytes(f_wei_md));

    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src, &wei_any, &dst,
                                                        strides, pad_l, pad_r));
    cpu_prim_make(&o->bwd_data, &cd, NULL, o->fwd.pd);
    const dnnl_memory_desc_t *bd_wei_md = cpu_prim_md(&o->bwd_data, dnnl_query_weights_md, 0);
    o->bd_diff_src = cpu_mem(&src);
    o->bd_diff_dst = cpu_mem(&dst);
    o->bd_wei = cpu_mem(bd_wei_md);
    if (cpu_reorder_make(&o->bd_wei_reorder, &wei_user, bd_wei_md))
        o->bd_wei_buf = cpu_buffer(cpu_md_bytes(bd_wei_md));
    o->bd_scratch = cpu_buffer((size_t)d->n * d->c * d->h * d->w * sizeof(float));

    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src, &wei_any,
                                                           d->bias ? &bias : NULL, &dst, strides, pad_l,
                                                           pad_r));
    cpu_prim_make(&o->bwd_weights, &cd, NULL, o->fwd.pd);
    const dnnl_memory_desc_t *bw_wei_md = cpu_prim_md(&o->bwd_weights, dnnl_query_diff_weights_md, 0);
    o->bw_src = cpu_mem(&src);
    o->bw_diff_dst = cpu_mem(&dst);
    o->bw_diff_wei = cpu_mem(bw_wei_md);
    if (d->bias) o->bw_diff_bias = cpu_mem(&bias);
    if (cpu_reorder_make(&o->bw_wei_reorder, bw_wei_md, &wei_user))
        o->bw_wei_buf = cpu_buffer(cpu_md_bytes(bw_wei_md));
    o->bw_wei_plain = cpu_buffer((size_t)d->k * d->c * d->r * d->s * sizeof(float));
    o->bw_bias_buf = cpu_buffer((size_t)d->k * sizeof(float));
    return &o->base;
}

static void conv_forward(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *weight,
                         const dpt_tensor *bias) {
    conv_op *o = (conv_op *)op;
    const void *wei = weight->data;
    if (o->f_wei_buf) {
        cpu_reorder_run(&o->f_wei_reorder, weight->data, o->f_wei_buf);
        wei = o->f_wei_buf;
    }
    cpu_mem_set(o->f_src, in->data);
    cpu_mem_set(o->f_wei, wei);
    cpu_mem_set(o->f_dst, out->data);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, o->f_src}, {DNNL_ARG_WEIGHTS, o->f_wei}, {DNNL_ARG_DST, o->f_dst}};
    int nargs = 3;
    if (o->d.bias) {
        cpu_mem_set(o->f_bias, bias->data);
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, o->f_bias};
    }
    cpu_exec(o->fwd.prim, nargs, args);
}

static void conv_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dweight, dpt_tensor *dbias,
                          bool param_accumulate, const dpt_tensor *dout, const dpt_tensor *in,
                          const dpt_tensor *weight) {
    conv_op *o = (conv_op *)op;
    const be_conv_desc *d = &o->d;
    if (din) {
        const void *wei = weight->data;
        if (o->bd_wei_buf) {
            cpu_reorder_run(&o->bd_wei_reorder, weight->data, o->bd_wei_buf);
            wei = o->bd_wei_buf;
        }
        float *target = accumulate ? o->bd_scratch : din->data;
        cpu_mem_set(o->bd_diff_src, target);
        cpu_mem_set(o->bd_wei, wei);
        cpu_mem_set(o->bd_diff_dst, dout->data);
        dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_SRC, o->bd_diff_src},
                                  {DNNL_ARG_WEIGHTS, o->bd_wei},
                                  {DNNL_ARG_DIFF_DST, o->bd_diff_dst}};
        cpu_exec(o->bwd_data.prim, 3, args);
        if (accumulate) cpu_copy_or_add(din->data, target, (int64_t)d->n * d->c * d->h * d->w, true);
    }
    if (!dweight) return; /* the input's gradient only */
    int64_t wn = (int64_t)d->k * d->c * d->r * d->s;
    /* Where the primitive writes: straight into dweight when layouts match and we overwrite. */
    void *diff_wei = o->bw_wei_buf ? o->bw_wei_buf : (param_accumulate ? (void *)o->bw_wei_plain : dweight->data);
    cpu_mem_set(o->bw_src, in->data);
    cpu_mem_set(o->bw_diff_dst, dout->data);
    cpu_mem_set(o->bw_diff_wei, diff_wei);
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, o->bw_src}, {DNNL_ARG_DIFF_DST, o->bw_diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, o->bw_diff_wei}};
    int nargs = 3;
    if (d->bias) {
        cpu_mem_set(o->bw_diff_bias, o->bw_bias_buf);
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, o->bw_diff_bias};
    }
    cpu_exec(o->bwd_weights.prim, nargs, args);
    if (o->bw_wei_buf) {
        float *plain = param_accumulate ? o->bw_wei_plain : dweight->data;
        cpu_reorder_run(&o->bw_wei_reorder, o->bw_wei_buf, plain);
        if (param_accumulate) cpu_copy_or_add(dweight->data, plain, wn, true);
    } else if (param_accumulate) {
        cpu_copy_or_add(dweight->data, o->bw_wei_plain, wn, true);
    }
    if (d->bias && dbias) cpu_copy_or_add(dbias->data, o->bw_bias_buf, d->k, param_accumulate);
}

void cpu_fill_conv(dpt_backend *be) {
    be->conv2d_create = conv_create;
    be->conv2d_forward = conv_forward;
    be->conv2d_backward = conv_backward;
}
