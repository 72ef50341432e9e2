/* BatchNorm through oneDNN, with the ReLU fused (oneDNN keeps a bit mask of the positive outputs
 * in a workspace that forward fills and backward reads). Running statistics follow PyTorch:
 * running = (1 - m) * running + m * batch, with the unbiased variance. */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct bn_op {
    be_op base;
    be_bn_desc d;
    cpu_prim fwd_train, fwd_eval, bwd;
    dnnl_memory_t src, dst, scale, shift, mean, var, ws;
    dnnl_memory_t diff_src, diff_dst, diff_scale, diff_shift;
    void *ws_buf;
    float *scratch_src;           /* diff_src when accumulating */
    float *dscale_buf, *dshift_buf;
} bn_op;

static void bn_destroy(be_op *op) {
    bn_op *o = (bn_op *)op;
    cpu_prim_destroy(&o->fwd_train);
    cpu_prim_destroy(&o->fwd_eval);
    cpu_prim_destroy(&o->bwd);
    dnnl_memory_t mems[] = {o->src, o->dst, o->scale, o->shift, o->mean, o->var, o->ws,
                            o->diff_src, o->diff_dst, o->diff_scale, o->diff_shift};
    for (size_t i = 0; i < DPT_ARRAY_LEN(mems); i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    free(o->ws_buf);
    free(o->scratch_src);
    free(o->dscale_buf);
    free(o->dshift_buf);
    free(o);
}

static be_op *bn_create(const be_bn_desc *d, dpt_layout layout) {
    bn_op *o = dpt_xcalloc(1, sizeof *o);
    o->base.destroy = bn_destroy;
    o->d = *d;
    dnnl_memory_desc_t data, ch;
    cpu_md_4d(&data, d->n, d->c, d->h, d->w, layout);
    cpu_md_1d(&ch, d->c);
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (d->relu ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t bd;
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, &data, d->eps, flags));
    cpu_prim_make(&o->fwd_train, &bd, NULL, NULL);
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &data, d->eps,
                                                          flags | dnnl_use_global_stats));
    cpu_prim_make(&o->fwd_eval, &bd, NULL, NULL);
    DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &data, &data, d->eps, flags));
    cpu_prim_make(&o->bwd, &bd, NULL, o->fwd_train.pd);
    o->src = cpu_mem(&data);
    o->dst = cpu_mem(&data);
    o->diff_src = cpu_mem(&data);
    o->diff_dst = cpu_mem(&data);
    o->scale = cpu_mem(&ch);
    o->shift = cpu_mem(&ch);
    o->mean = cpu_mem(&ch);
    o->var = cpu_mem(&ch);
    o->diff_scale = cpu_mem(&ch);
    o->diff_shift = cpu_mem(&ch);
    if (d->relu) {
        const dnnl_memory_desc_t *ws_md = cpu_prim_md(&o->fwd_train, dnnl_query_workspace_md, 0);
        o->ws = cpu_mem(ws_md);
        o->ws_buf = cpu_buffer(cpu_md_bytes(ws_md));
        cpu_mem_set(o->ws, o->ws_buf);
    }
    o->scratch_src = cpu_buffer((size_t)d->n * d->c * d->h * d->w * sizeof(float));
    o->dscale_buf = cpu_buffer((size_t)d->c * sizeof(float));
    o->dshift_buf = cpu_buffer((size_t)d->c * sizeof(float));
    return &o->base;
}

static void bn_forward_train(be_op *op, dpt_tensor *out, dpt_tensor *save_mean, dpt_tensor *save_var,
                             dpt_tensor *running_mean, dpt_tensor *running_var, const dpt_tensor *in,
                             const dpt_tensor *gamma, const dpt_tensor *beta) {
    bn_op *o = (bn_op *)op;
    cpu_mem_set(o->src, in->data);
    cpu_mem_set(o->dst, out->data);
    cpu_mem_set(o->scale, gamma->data);
    cpu_mem_set(o->shift, beta->data);
    cpu_mem_set(o->mean, save_mean->data);
    cpu_mem_set(o->var, save_var->data);
    dnnl_exec_arg_t args[7] = {{DNNL_ARG_SRC, o->src},     {DNNL_ARG_DST, o->dst},
                               {DNNL_ARG_SCALE, o->scale}, {DNNL_ARG_SHIFT, o->shift},
                               {DNNL_ARG_MEAN, o->mean},   {DNNL_ARG_VARIANCE, o->var}};
    int nargs = 6;
    if (o->d.relu) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, o->ws};
    cpu_exec(o->fwd_train.prim, nargs, args);

    const float m = o->d.momentum;
    const float count = (float)o->d.n * o->d.h * o->d.w;
    const float unbias = count > 1.0f ? count / (count - 1.0f) : 1.0f;
    float *rm = running_mean->data, *rv = running_var->data;
    const float *bm = save_mean->data, *bv = save_var->data;
    for (int c = 0; c < o->d.c; c++) {
        rm[c] = (1.0f - m) * rm[c] + m * bm[c];
        rv[c] = (1.0f - m) * rv[c] + m * bv[c] * unbias;
    }
}

static void bn_forward_eval(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *gamma,
                            const dpt_tensor *beta, const dpt_tensor *running_mean,
                            const dpt_tensor *running_var) {
    bn_op *o = (bn_op *)op;
    cpu_mem_set(o->src, in->data);
    cpu_mem_set(o->dst, out->data);
    cpu_mem_set(o->scale, gamma->data);
    cpu_mem_set(o->shift, beta->data);
    cpu_mem_set(o->mean, running_mean->data);
    cpu_mem_set(o->var, running_var->data);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, o->src},     {DNNL_ARG_DST, o->dst},
                              {DNNL_ARG_SCALE, o->scale}, {DNNL_ARG_SHIFT, o->shift},
                              {DNNL_ARG_MEAN, o->mean},   {DNNL_ARG_VARIANCE, o->var}};
    cpu_exec(o->fwd_eval.prim, 6, args);
}

static void bn_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dgamma, dpt_tensor *dbeta,
                        bool param_accumulate, const dpt_tensor *dout, const dpt_tensor *in,
                        const dpt_tensor *out, const dpt_tensor *gamma, const dpt_tensor *beta,
                        const dpt_tensor *save_mean, const dpt_tensor *save_var) {
    bn_op *o = (bn_op *)op;
    float *target = accumulate ? o->scratch_src : din->data;
    cpu_mem_set(o->src, in->data);
    cpu_mem_set(o->diff_dst, dout->data);
    cpu_mem_set(o->diff_src, target);
    cpu_mem_set(o->scale, gamma->data);
    cpu_mem_set(o->shift, beta->data);
    cpu_mem_set(o->mean, save_mean->data);
    cpu_mem_set(o->var, save_var->data);
    cpu_mem_set(o->diff_scale, o->dscale_buf);
    cpu_mem_set(o->diff_shift, o->dshift_buf);
    dnnl_exec_arg_t args[10] = {{DNNL_ARG_SRC, o->src},           {DNNL_ARG_DIFF_DST, o->diff_dst},
                                {DNNL_ARG_DIFF_SRC, o->diff_src}, {DNNL_ARG_SCALE, o->scale},
                                {DNNL_ARG_SHIFT, o->shift},       {DNNL_ARG_MEAN, o->mean},
                                {DNNL_ARG_VARIANCE, o->var},      {DNNL_ARG_DIFF_SCALE, o->diff_scale},
                                {DNNL_ARG_DIFF_SHIFT, o->diff_shift}};
    int nargs = 9;
    if (o->d.relu) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, o->ws};
    cpu_exec(o->bwd.prim, nargs, args);
    if (accumulate) cpu_copy_or_add(din->data, target, (int64_t)o->d.n * o->d.c * o->d.h * o->d.w, true);
    cpu_copy_or_add(dgamma->data, o->dscale_buf, o->d.c, param_accumulate);
    cpu_copy_or_add(dbeta->data, o->dshift_buf, o->d.c, param_accumulate);
}

void cpu_fill_norm(dpt_backend *be) {
    be->batchnorm_create = bn_create;
    be->batchnorm_forward_train = bn_forward_train;
    be->batchnorm_forward_eval = bn_forward_eval;
    be->batchnorm_backward = bn_backward;
}
