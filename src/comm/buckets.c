/* Bucketed gradient allreduce, overlapped with backward: the layout (buckets in backward's
 * production order), the bookkeeping and the timeline, and the engine for host arenas
 * (MPI_Iallreduce, float32 or bf16 on the wire). Device arenas get their engine from
 * comm_device.cu. Each bucket is waited for on its own, so that a stall report names it. */
#include <stdio.h>
#include <stdlib.h>

#include "comm_internal.h"
#include "dpt/core/bf16.h"
#include "dpt/core/timer.h"

typedef struct bucket {
    int first, last;    /* parameter indices (registration order) */
    size_t begin, end;  /* bytes into the gradient arena */
    int remaining;      /* gradients not yet final this step */
    bool started, done;
    double t_start, t_done; /* when it was started and seen complete (timer_now) */
    uint64_t seq;       /* its collective number this step, for stall reports */
} bucket;

struct comm_grad_sync {
    bucket *b;
    int nb;
    int *param_bucket;
    int nparams;
    int outstanding;
    double polling; /* seconds inside comm_grad_progress this step */
    double dev_in_flight; /* the engine's own measurement of the last step, < 0: none */
    grad_engine e;
};

comm_grad_sync *comm_grad_layout(const size_t *offsets, const int64_t *numel, int nparams, size_t bucket_bytes) {
    comm_grad_sync *s = dpt_xcalloc(1, sizeof *s);
    s->nparams = nparams;
    s->b = dpt_xcalloc((size_t)(nparams ? nparams : 1), sizeof(bucket));
    s->param_bucket = dpt_xcalloc((size_t)(nparams ? nparams : 1), sizeof(int));
    s->dev_in_flight = -1.0;
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

void comm_grad_set_engine(comm_grad_sync *s, grad_engine e) { s->e = e; }

/* ---- the host engine: MPI_Iallreduce on the arena (float32), or on a bf16 copy of it ---- */

typedef struct host_engine {
    float *base;
    uint16_t *wire; /* bf16: the arena's values as bfloat16, NULL for float32 */
    MPI_Request *req;
    const comm_grad_sync *s;
} host_engine;

static void host_start(void *ctx, int b, size_t begin, size_t end) {
    host_engine *h = ctx;
    /* The span includes the alignment gaps between parameters: they hold zeros on every rank. */
    const int64_t first = (int64_t)(begin / sizeof(float)), count = (int64_t)((end - begin) / sizeof(float));
    DPT_CHECK_LIB("comm", count <= INT32_MAX, "gradient bucket", "bucket %d has %lld values (MPI counts are int)", b,
                  (long long)count);
    if (h->wire) {
        for (int64_t i = 0; i < count; i++) h->wire[first + i] = f32_to_bf16(h->base[first + i]);
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, h->wire + first, (int)count, MPI_UINT16_T, comm_bf16_sum_op(),
                                 MPI_COMM_WORLD, &h->req[b]));
    } else {
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, h->base + first, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                 &h->req[b]));
    }
}

static bool host_test(void *ctx, int b) {
    host_engine *h = ctx;
    int done = 0;
    MPI_CHECK(MPI_Test(&h->req[b], &done, MPI_STATUS_IGNORE));
    return done != 0;
}

static void host_wait(void *ctx, int b, uint64_t seq, const char *what) {
    host_engine *h = ctx;
    if (h->req[b] != MPI_REQUEST_NULL) comm_wait(&h->req[b], 1, seq, what);
    if (h->wire) {
        int first, last;
        size_t begin, end;
        comm_grad_bucket_range(h->s, b, &first, &last, &begin, &end);
        for (size_t i = begin / sizeof(float); i < end / sizeof(float); i++) h->base[i] = bf16_to_f32(h->wire[i]);
    }
}

static void host_destroy(void *ctx) {
    host_engine *h = ctx;
    free(h->wire);
    free(h->req);
    free(h);
}

comm_grad_sync *comm_grad_sync_create(float *base, const size_t *offsets, const int64_t *numel, int nparams,
                                      size_t bucket_bytes, bool bf16) {
    comm_grad_sync *s = comm_grad_layout(offsets, numel, nparams, bucket_bytes);
    host_engine *h = dpt_xcalloc(1, sizeof *h);
    h->base = base;
    h->s = s;
    h->req = dpt_xcalloc((size_t)(s->nb ? s->nb : 1), sizeof(MPI_Request));
    for (int i = 0; i < s->nb; i++) h->req[i] = MPI_REQUEST_NULL;
    if (bf16 && nparams > 0) {
        const size_t bytes = offsets[nparams - 1] + (size_t)numel[nparams - 1] * sizeof(float);
        h->wire = dpt_xcalloc(bytes / sizeof(float) + 1, sizeof(uint16_t));
    }
    comm_grad_set_engine(s, (grad_engine){h, host_start, host_test, host_wait, NULL, host_destroy});
    return s;
}

void comm_grad_sync_destroy(comm_grad_sync *s) {
    if (!s) return;
    if (s->e.destroy) s->e.destroy(s->e.ctx);
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
        s->b[i].started = s->b[i].done = false;
    }
    s->outstanding = 0;
    s->polling = 0.0;
    s->dev_in_flight = -1.0;
}

static void start(comm_grad_sync *s, bucket *bk) {
    bk->seq = comm_next_seq();
    bk->t_start = timer_now();
    bk->t_done = 0.0;
    s->e.start(s->e.ctx, (int)(bk - s->b), bk->begin, bk->end);
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
        bucket *bk = &s->b[i];
        if (!bk->started || bk->done) continue;
        if (s->e.test(s->e.ctx, i)) {
            bk->done = true;
            bk->t_done = timer_now();
            s->outstanding--;
        }
    }
    s->polling += timer_now() - t0;
}

double comm_grad_wait(comm_grad_sync *s) {
    double t0 = timer_now();
    for (int i = 0; i < s->nb; i++) {
        bucket *bk = &s->b[i];
        DPT_CHECK_LIB("comm", bk->started, "comm_grad_wait", "bucket %d never became ready", i);
        char what[32];
        snprintf(what, sizeof what, "gradient bucket %d", i);
        s->e.wait(s->e.ctx, i, bk->seq, what);
        if (!bk->done) bk->t_done = timer_now();
        bk->done = true;
    }
    s->outstanding = 0;
    double exposed = -1.0, in_flight = -1.0;
    if (s->e.finish) s->e.finish(s->e.ctx, &exposed, &in_flight);
    s->dev_in_flight = in_flight;
    return exposed >= 0.0 ? exposed : timer_now() - t0;
}

comm_grad_times comm_grad_last_times(const comm_grad_sync *s) {
    if (s->dev_in_flight >= 0.0) return (comm_grad_times){.in_flight = s->dev_in_flight, .polling = s->polling};
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
