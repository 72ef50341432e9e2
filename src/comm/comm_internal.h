#ifndef DPT_COMM_INTERNAL_H
#define DPT_COMM_INTERNAL_H

#include <mpi.h>

#include "dpt/comm/comm.h"

#define MPI_CHECK(expr)                                                                        \
    do {                                                                                       \
        int mpi_rc_ = (expr);                                                                  \
        char mpi_msg_[MPI_MAX_ERROR_STRING] = "";                                              \
        int mpi_len_ = 0;                                                                      \
        if (mpi_rc_ != MPI_SUCCESS) MPI_Error_string(mpi_rc_, mpi_msg_, &mpi_len_);            \
        DPT_CHECK_LIB("MPI", mpi_rc_ == MPI_SUCCESS, #expr, "%s", mpi_msg_);                  \
    } while (0)

#endif
