/* The CUDA back end (backend/cuda): the op table filled by cuDNN, cuBLAS and own kernels.
 * Built when nvcc is found (-DDPT_CUDA=ON); without it these functions say so and the CPU back
 * end is the only one. Everything here may be called on a machine without a GPU. */
#ifndef DPT_BACKEND_CUDA_H
#define DPT_BACKEND_CUDA_H

#include <stdio.h>

#include "dpt/backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when this binary has the CUDA back end compiled in. */
bool cuda_built(void);

/* Number of visible GPUs (0 with no driver or no device); why names the reason when 0. */
int cuda_device_count(char *why, size_t size);

/* Makes `device` current and creates the stream, cuBLAS and cuDNN handles; once per process.
 * Fatal (naming the device) when the device cannot be used. */
void cuda_init(int device);

/* The op table for a precision; cuda_init first. */
const dpt_backend *backend_cuda(dpt_precision precision);

/* The stream every op of the back end is queued on (a cudaStream_t), for comm/'s device
 * collectives to order themselves after; cuda_init first. */
void *cuda_stream(void);

/* "CUDA: NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB), driver 13.0, runtime 13.0, cuDNN 9.19.0,
 * cuBLAS 13.1.0, NCCL 2.28.9" style, for the run banner; cuda_init first. */
const char *backend_cuda_describe(void);

/* `dptrain info`'s CUDA section: versions of the libraries linked in, the driver, and every
 * visible GPU (or why none is visible). Works without a GPU. */
void cuda_print_info(FILE *f);

#ifdef __cplusplus
}
#endif

#endif
