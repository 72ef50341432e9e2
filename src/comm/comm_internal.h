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

/* MPI counts are int: buffers larger than this many bytes go in pieces. A compile-time knob so
 * that a test build can make pieces small and exercise the piecewise paths. */
#ifndef DPT_COMM_PIECE_BYTES
#define DPT_COMM_PIECE_BYTES ((int64_t)1 << 30)
#endif

/* The stall watchdog (watchdog.c). Collectives are issued non-blocking and completed by
 * comm_wait, which polls with the deadline comm.timeout_s and, when it passes, finds out which
 * ranks have not arrived, reports them and stops every rank. */

/* Called by comm_init once MPI is up: reserves a duplicate of MPI_COMM_WORLD for status queries
 * and gathers every rank's pid and host name (collective). */
void comm_watchdog_init(const comm_info *ci);
void comm_watchdog_finalize(void);
/* Counts a collective about to be issued; returns its number (1 for the first). Every rank issues
 * the same collectives in the same order, so equal numbers name the same collective. */
uint64_t comm_next_seq(void);
/* Completes reqs[0, n) (MPI_Testall polling). `seq` is the collective's number and `what` a short
 * label ("allreduce", "gradient bucket 2") for the stall report. Never returns after the deadline:
 * it reports and stops every rank instead. */
void comm_wait(MPI_Request *reqs, int n, uint64_t seq, const char *what);
/* MPI_Abort, with a watchdog alarm that _exit()s should MPI_Abort itself hang. */
_Noreturn void comm_abort_bounded(int code);

#endif
