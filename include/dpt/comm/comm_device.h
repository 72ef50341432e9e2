/* Collectives on device (GPU) buffers, the comm/ side of the CUDA back end. Three transports:
 *   NCCL      one communicator for the world's gradients (ncclUniqueId made on rank 0 and sent
 *             with MPI_Bcast) on a dedicated communication stream ordered after the compute
 *             stream by CUDA events, and one per BatchNorm statistics group (also when the group
 *             is the world: its sums run on the compute stream at the same time);
 *   MPI, CUDA-aware   MPI_Iallreduce on device pointers, when the MPI library says it can;
 *   MPI, host-staged  device -> pinned host copy, MPI_Iallreduce, copy back.
 * comm.backend = auto takes NCCL when it is built and no two ranks of a node share a GPU (NCCL
 * refuses that), MPI otherwise; the choice and its reason are logged.
 * Implemented by src/comm/comm_device.cu, built with nvcc against NCCL, or as host C++ for the
 * tests (DPT_CUDA_EMU: device memory is host memory and NCCL is emulated over MPI by
 * nccl_emu.cpp); a build without CUDA has comm_device_stub.c. Every function is collective unless
 * it says otherwise. */
#ifndef DPT_COMM_COMM_DEVICE_H
#define DPT_COMM_COMM_DEVICE_H

#include "dpt/comm/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum comm_dev_transport {
    COMM_DEV_NONE = 0,
    COMM_DEV_NCCL,
    COMM_DEV_MPI_CUDA, /* CUDA-aware MPI on device pointers */
    COMM_DEV_MPI_HOST, /* MPI through pinned host buffers */
} comm_dev_transport;

/* True when this binary can reduce device buffers with NCCL (not collective). */
bool comm_dev_nccl_built(void);

/* Opens device collectives for this rank's GPU. want: "auto", "nccl" or "mpi". stream: the
 * compute stream (a cudaStream_t) that produces gradients and runs the update. DPT_ERR_CONFIG,
 * with the reason, when `want` cannot be had (the same verdict on every rank). */
dpt_status comm_dev_init(const char *want, int gpu, void *stream);
comm_dev_transport comm_dev_get(void);
/* "NCCL 2.28.9, 2 ranks on 2 GPUs" style, with why it was chosen (not collective). */
const char *comm_dev_describe(void);
void comm_dev_finalize(void);

/* In-place sum of n float32 (bf16: uint16_t bit patterns, summed in float32 and rounded) values
 * of device memory, in the compute stream's order: it sums what the stream's queued work wrote,
 * and the stream's later work sees the sums (the back end's synchronize waits for it). */
void comm_dev_allreduce_sum(void *buf, int64_t n, bool bf16);

/* BatchNorm statistics groups on the device (NCCL only; NULL otherwise: the host path serves).
 * The sum is queued on the compute stream: no host round trip. */
typedef struct comm_dev_group comm_dev_group;
comm_dev_group *comm_dev_group_create(int size);
void comm_dev_group_destroy(comm_dev_group *g);
/* In-place sum of n doubles of device memory over the group (not collective over the world:
 * every rank of the group calls it in the same order). */
void comm_dev_group_allreduce_sum_f64(comm_dev_group *g, double *buf, int n);

/* The gradient synchronisation of comm.h (comm_grad_begin, comm_grad_ready, ...) for a gradient
 * arena in device memory. Bucket b's reduction is queued when its last gradient has been queued
 * on the compute stream (an event marks the point); comm_grad_wait makes the compute stream wait
 * for the last bucket (the optimizer waits on one event) and returns the exposed communication:
 * with NCCL measured by events on the device (from the end of backward to the last bucket's end),
 * with MPI the host's wait. bf16: buckets travel as bfloat16 (half the bytes), converted back
 * into the float32 arena. */
comm_grad_sync *comm_dev_grad_sync_create(float *base, const size_t *offsets, const int64_t *numel, int nparams,
                                          size_t bucket_bytes, bool bf16);

#ifdef __cplusplus
}
#endif

#endif
