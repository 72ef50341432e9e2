/* A tensor is a non-owning view: dtype, logical shape, memory layout, device and pointer.
 * 4-d activations always have the logical shape (N, C, H, W); `layout` says how they lie in
 * memory. 2-d tensors are (N, C); 1-d tensors are (C). */
#ifndef DPT_CORE_TENSOR_H
#define DPT_CORE_TENSOR_H

#include "dpt/core/common.h"

/* DT_BF16 and DT_F16 are the GPU's mixed-precision activations (parameters stay DT_F32). */
typedef enum dpt_dtype { DT_F32 = 0, DT_F64, DT_U8, DT_I32, DT_I64, DT_BF16, DT_F16 } dpt_dtype;
typedef enum dpt_layout { LAYOUT_NCHW = 0, LAYOUT_NHWC } dpt_layout;
typedef enum dpt_device { DEV_CPU = 0, DEV_CUDA } dpt_device;

typedef struct dpt_tensor {
    void *data;
    int64_t shape[4];
    int ndim;
    dpt_dtype dtype;
    dpt_layout layout;
    dpt_device device;
} dpt_tensor;

size_t dtype_size(dpt_dtype dt);
const char *dtype_name(dpt_dtype dt);

static inline int64_t tensor_numel(const dpt_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}
static inline size_t tensor_bytes(const dpt_tensor *t) {
    return (size_t)tensor_numel(t) * dtype_size(t->dtype);
}
static inline float *tensor_f32(const dpt_tensor *t) { return (float *)t->data; }

dpt_tensor tensor_make(void *data, dpt_dtype dt, int ndim, const int64_t *shape, dpt_layout layout);
dpt_tensor tensor_4d(void *data, dpt_dtype dt, int64_t n, int64_t c, int64_t h, int64_t w,
                     dpt_layout layout);
dpt_tensor tensor_2d(void *data, dpt_dtype dt, int64_t n, int64_t c);
dpt_tensor tensor_1d(void *data, dpt_dtype dt, int64_t c);
/* "(N, C, H, W)" style text, for messages. */
const char *tensor_shape_str(const dpt_tensor *t, char *buf, size_t size);

#endif
