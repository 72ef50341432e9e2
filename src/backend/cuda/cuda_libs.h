/* cuDNN and cuBLAS for the real build's files (never the emulated one): their headers and the
 * check macros of the family every library's checks belong to (DPT_CHECK_LIB). */
#ifndef DPT_BACKEND_CUDA_LIBS_H
#define DPT_BACKEND_CUDA_LIBS_H

#include <cublas_v2.h>
#include <cudnn.h>

#include "cuda_internal.h"

#define CUDNN_CHECK(expr)                                                                                    \
    do {                                                                                                     \
        cudnnStatus_t cudnn_s_ = (expr);                                                                     \
        DPT_CHECK_LIB("cuDNN", cudnn_s_ == CUDNN_STATUS_SUCCESS, #expr, "device %d: %s", cu_ctx_get()->device, \
                      cudnnGetErrorString(cudnn_s_));                                                        \
    } while (0)

#define CUBLAS_CHECK(expr)                                                                               \
    do {                                                                                                 \
        cublasStatus_t cublas_s_ = (expr);                                                               \
        DPT_CHECK_LIB("cuBLAS", cublas_s_ == CUBLAS_STATUS_SUCCESS, #expr, "device %d: %s",              \
                      cu_ctx_get()->device, cublasGetStatusString(cublas_s_));                           \
    } while (0)

#endif
