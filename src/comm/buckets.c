/* Bucketed gradient allreduce, overlapped with backward (MPI_Iallreduce). Each bucket is waited
 * for on its own, so that a stall report names the bucket. */
#include <stdio.h>
#include <stdlib.h>

#include "comm_internal.h"
#include "dpt/core/timer.h"

typedef struct bucket {
    int first, last;    /* parameter indices (registration order) */
    size_t begin, end;  /* bytes into the gradient arena */
    int remaining;      /* gradients not yet final this step */
    bool started;
    double t_start, t_done; /* when it was started and seen complete (timer_now) */
    uint64_t seq;       /* its collective number this step, for stall reports */
    MPI_Request req;
} bucket;

struct comm_grad_sync {
    float *base;
    bucket *b;
    int nb;
    int *param_bucket;
    int nparams;
    int outstanding;
    double polling; /* seconds inside comm_grad_progress's MPI_Test calls this step */
};

comm_grad_sync *comm_grad_sync_create(float *base, const size_t *offsets, const int64_t *numel, int nparams,
                                      size_t bucket_bytes) {
    comm_grad_sync *s = dpt_xcalloc(1, sizeof *s);
    s->base = base;
    s->nparams = nparams;
    s->b = dpt_xcalloc((size_t)(nparams ? nparams : 1), sizeof(bucket));
    s->param_bucket = dpt_xcalloc((size_t)(nparams ? nparams : 1), sizeof(int));
    /* Walk backwards (backward's production order), closing a bucket once it holds bucket_bytes. */
    int last = nparams - 1;
    size_t bytes = 0;
    for (int i = nparams - 1; i >= 0; i--) {
        bytes += (size_t)numel[i] * sizeof(float);
        if (bytes >= bucket_bytes || i == 0) {
            bucket *bk = &s->b[s->nb];
            bk->first = i;
            bk->last = last;
            bk->begin = offsets[i];
            bk->end = offsets[last] + (size_t)numel[last] * sizeof(float);
            for (int j = i; j <= last; j++) s->param_bucket[j] = s->nb;
            s->nb++;
            last = i - 1;
            bytes = 0;
        }
    }
    return s;
}

void comm_grad_sync_destroy(comm_grad_sync *s) {
    if (!s) return;
    free(s->b);
    free(s->param_bucket);
    free(s);
}

int comm_grad_num_buckets(const comm_grad_sync *s) { return s->nb; }

void comm_grad_bucket_range(const comm_grad_sync *s, int b, int *first, int *last, size_t *begin, size_t *end) {
    *first = s->b[b].first;
    *last = s->b[b].last;
    *begin = s->b[b].begin;
    *end = s->b[b].end;
}

void comm_grad_begin(comm_grad_sync *s) {
    for (int i = 0; i < s->nb; i++) {
        s->b[i].remaining = s->b[i].last - s->b[i].first + 1;
        s->b[i].started = false;
        s->b[i].req = MPI_REQUEST_NULL;
    }
    s->outstanding = 0;
    s->polling = 0.0;
}

static void start(comm_grad_sync *s, bucket *bk) {
    /* The span includes the alignment gaps between parameters: they hold zeros on every rank. */
    int count = (int)((bk->end - bk->begin) / sizeof(float));
    float *p = (float *)((char *)s->base + bk->begin);
    bk->seq = comm_next_seq();
    bk->t_start = timer_now();
    bk->t_done = 0.0;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, p, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &bk->req));
    bk->started = true;
    s->outstanding++;
}

void comm_grad_ready(comm_grad_sync *s, int param) {
    bucket *bk = &s->b[s->param_bucket[param]];
    DPT_CHECK(bk->remaining > 0);
    if (--bk->remaining == 0) {
        /* Buckets start in a fixed order on every rank (MPI requires the same collective order):
         * a bucket completes only after every bucket that backward finishes earlier, since
         * buckets are contiguous in production order. */
        start(s, bk);
    }
}

void comm_grad_progress(comm_grad_sync *s) {
    if (s->outstanding == 0) return;
    const double t0 = timer_now();
    for (int i = 0; i < s->nb; i++) {
        if (!s->b[i].started || s->b[i].req == MPI_REQUEST_NULL) continue;
        int done = 0;
        MPI_CHECK(MPI_Test(&s->b[i].req, &done, MPI_STATUS_IGNORE));
        if (done) {
            s->b[i].t_done = timer_now();
            s->outstanding--;
        }
    }
    s->polling += timer_now() - t0;
}

double comm_grad_wait(comm_grad_sync *s) {
    double t0 = timer_now();
    for (int i = 0; i < s->nb; i++) {
        DPT_CHECK_LIB("comm", s->b[i].started, "comm_grad_wait", "bucket %d never became ready", i);
        if (s->b[i].req == MPI_REQUEST_NULL) continue;
        char what[32];
        snprintf(what, sizeof what, "gradient bucket %d", i);
        comm_wait(&s->b[i].req, 1, s->b[i].seq, what);
        s->b[i].t_done = timer_now();
    }
    s->outstanding = 0;
    return timer_now() - t0;
}

comm_grad_times comm_grad_last_times(const comm_grad_sync *s) {
    /* Buckets start in index order; the union of their [start, done] intervals. */
    double total = 0.0, lo = 0.0, hi = -1.0;
    for (int i = 0; i < s->nb; i++) {
        const bucket *bk = &s->b[i];
        if (!bk->started || bk->t_done <= 0.0) continue;
        if (bk->t_start > hi) {
            if (hi > lo) total += hi - lo;
            lo = bk->t_start;
            hi = bk->t_done;
        } else if (bk->t_done > hi) {
            hi = bk->t_done;
        }
    }
    if (hi > lo) total += hi - lo;
    return (comm_grad_times){.in_flight = total, .polling = s->polling};
}
