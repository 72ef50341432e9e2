#include "dpt/core/tensor.h"

#include <stdio.h>
#include <string.h>

size_t dtype_size(dpt_dtype dt) {
    switch (dt) {
    case DT_F32: return 4;
    case DT_F64: return 8;
    case DT_U8: return 1;
    case DT_I32: return 4;
    case DT_I64: return 8;
    case DT_BF16: return 2;
    case DT_F16: return 2;
    }
    return 0;
}

const char *dtype_name(dpt_dtype dt) {
    switch (dt) {
    case DT_F32: return "f32";
    case DT_F64: return "f64";
    case DT_U8: return "u8";
    case DT_I32: return "i32";
    case DT_I64: return "i64";
    case DT_BF16: return "bf16";
    case DT_F16: return "f16";
    }
    return "?";
}

dpt_tensor tensor_make(void *data, dpt_dtype dt, int ndim, const int64_t *shape, dpt_layout layout) {
    dpt_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim && i < 4; i++) t.shape[i] = shape[i];
    t.layout = layout;
    t.device = DEV_CPU;
    return t;
}

dpt_tensor tensor_4d(void *data, dpt_dtype dt, int64_t n, int64_t c, int64_t h, int64_t w,
                     dpt_layout layout) {
    int64_t s[4] = {n, c, h, w};
    return tensor_make(data, dt, 4, s, layout);
}

dpt_tensor tensor_2d(void *data, dpt_dtype dt, int64_t n, int64_t c) {
    int64_t s[2] = {n, c};
    return tensor_make(data, dt, 2, s, LAYOUT_NCHW);
}

dpt_tensor tensor_1d(void *data, dpt_dtype dt, int64_t c) {
    int64_t s[1] = {c};
    return tensor_make(data, dt, 1, s, LAYOUT_NCHW);
}

const char *tensor_shape_str(const dpt_tensor *t, char *buf, size_t size) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, size - off, "(");
    for (int i = 0; i < t->ndim && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < size) snprintf(buf + off, size - off, ")");
    return buf;
}
