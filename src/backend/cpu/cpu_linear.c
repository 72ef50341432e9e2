/* Linear layers through oneDNN's sgemm (row-major). */
#include <stdlib.h>

#include "cpu_internal.h"

typedef struct linear_op {
    be_op base;
    be_linear_desc d;
} linear_op;

static void linear_destroy(be_op *op) { free(op); }

static be_op *linear_create(const be_linear_desc *d) {
    linear_op *o = dpt_xcalloc(1, sizeof *o);
    o->base.destroy = linear_destroy;
    o->d = *d;
    return &o->base;
}

static void linear_forward(be_op *op, dpt_tensor *out, const dpt_tensor *in, const dpt_tensor *weight,
                           const dpt_tensor *bias) {
    const be_linear_desc *d = &((linear_op *)op)->d;
    float *y = out->data;
    /* y (N, OUT) = x (N, IN) W^T */
    DNNL_CHECK(dnnl_sgemm('N', 'T', d->n, d->out, d->in, 1.0f, in->data, d->in, weight->data, d->in, 0.0f, y,
                          d->out));
    if (d->bias) {
        const float *b = bias->data;
        for (int i = 0; i < d->n; i++)
            for (int j = 0; j < d->out; j++) y[(int64_t)i * d->out + j] += b[j];
    }
}

static void linear_backward(be_op *op, dpt_tensor *din, bool accumulate, dpt_tensor *dweight,
                            dpt_tensor *dbias, bool param_accumulate, const dpt_tensor *dout,
                            const dpt_tensor *in, const dpt_tensor *weight) {
    const be_linear_desc *d = &((linear_op *)op)->d;
    if (din)  /* dx (N, IN) = dy (N, OUT) W (OUT, IN) */
        DNNL_CHECK(dnnl_sgemm('N', 'N', d->n, d->in, d->out, 1.0f, dout->data, d->out, weight->data, d->in,
                              accumulate ? 1.0f : 0.0f, din->data, d->in));
    if (!dweight) return; /* the input's gradient only */
    /* dW (OUT, IN) = dy^T (OUT, N) x (N, IN) */
    DNNL_CHECK(dnnl_sgemm('T', 'N', d->out, d->in, d->n, 1.0f, dout->data, d->out, in->data, d->in,
                          param_accumulate ? 1.0f : 0.0f, dweight->data, d->in));
    if (d->bias && dbias) {
        float *db = dbias->data;
        const float *dy = dout->data;
        for (int j = 0; j < d->out; j++) {
            float s = 0.0f;
            for (int i = 0; i < d->n; i++) s += dy[(int64_t)i * d->out + j];
            db[j] = param_accumulate ? db[j] + s : s;
        }
    }
}

void cpu_fill_linear(dpt_backend *be) {
    be->linear_create = linear_create;
    be->linear_forward = linear_forward;
    be->linear_backward = linear_backward;
}
