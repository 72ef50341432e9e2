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
DPT_NORETURN void comm_abort_bounded(int code);
/* The seconds of comm_set_timeout (0: wait forever). */
double comm_timeout(void);

/* Sum of bfloat16 values (MPI_UINT16_T bit patterns) in float32, rounded to bf16. */
MPI_Op comm_bf16_sum_op(void);

/* How a gradient sync moves its buckets (buckets.c keeps the layout, the order and the timing):
 * the MPI engine for host arenas (buckets.c), the device engines (comm_device.cu).
 *   start:   bucket b, bytes [begin, end) of the arena, is final: start reducing it (buckets start
 *            in index order on every rank);
 *   test:    lets started work progress (no blocking); true once bucket b is complete;
 *   wait:    completes bucket b (with the watchdog's deadline where the host waits);
 *   finish:  (may be NULL) after every bucket's wait: later compute sees the sums. *exposed and
 *            *in_flight may be set to device-measured seconds; left < 0, the host's are kept;
 *   destroy: frees the context. */
typedef struct grad_engine {
    void *ctx;
    void (*start)(void *ctx, int b, size_t begin, size_t end);
    bool (*test)(void *ctx, int b);
    void (*wait)(void *ctx, int b, uint64_t seq, const char *what);
    void (*finish)(void *ctx, double *exposed, double *in_flight);
    void (*destroy)(void *ctx);
} grad_engine;
/* The bucket layout alone (no engine yet): comm_grad_set_engine completes it. */
comm_grad_sync *comm_grad_layout(const size_t *offsets, const int64_t *numel, int nparams, size_t bucket_bytes);
void comm_grad_set_engine(comm_grad_sync *s, grad_engine e);

#endif
