/* NCCL's calls that comm_device.cu makes, over MPI, for the emulated CUDA build of the tests
 * (DPT_CUDA_EMU): device memory is host memory there, so a reduction "on the device" is an
 * MPI_Allreduce of the same bytes, done when the call is queued (an emulated stream runs its work
 * at once). A communicator is the MPI communicator of the ranks that share its ncclUniqueId.
 * What this checks is dptrain's side: which calls are made, in which order, on which buffers. It
 * says nothing about NCCL itself. */
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern "C" {
#include "comm_internal.h"
}

struct ncclComm {
    MPI_Comm c;
};

extern "C" {

ncclResult_t ncclGetVersion(int *version) {
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
    return r == ncclSuccess ? "no error (emulated NCCL)" : "emulated NCCL error";
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const long v[3] = {(long)getpid(), ts.tv_sec, ts.tv_nsec};
    memcpy(id->internal, v, sizeof v);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    /* Every rank of the world calls this at the same time (world and group communicators are
     * created collectively): the id's hash is the colour of an MPI_Comm_split. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof id.internal; i++) h = (h ^ (uint8_t)id.internal[i]) * 16777619u;
    ncclComm *c = (ncclComm *)calloc(1, sizeof *c);
    if (!c) return ncclSystemError;
    if (MPI_Comm_split(MPI_COMM_WORLD, (int)(h & 0x7fffffff), rank, &c->c) != MPI_SUCCESS) return ncclSystemError;
    int size = 0;
    MPI_Comm_size(c->c, &size);
    if (size != nranks) return ncclInvalidUsage;
    *comm = c;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    MPI_Comm_free(&comm->c);
    free(comm);
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    (void)stream;
    if (op != ncclSum || count > (size_t)INT32_MAX) return ncclInvalidArgument;
    MPI_Datatype t;
    MPI_Op o = MPI_SUM;
    switch (datatype) {
    case ncclFloat: t = MPI_FLOAT; break;
    case ncclDouble: t = MPI_DOUBLE; break;
    case ncclBfloat16:
        t = MPI_UINT16_T;
        o = comm_bf16_sum_op();
        break;
    default: return ncclInvalidArgument;
    }
    const void *send = sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff;
    return MPI_Allreduce(send, recvbuff, (int)count, t, o, comm->c) == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}

} /* extern "C" */
