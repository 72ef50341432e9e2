/* The loader: worker threads prepare batches (read, decode, augment, normalise) into a bounded
 * ring of buffers while the step runs, so the step does not wait on data in steady state.
 * Work is handed out in chunks of samples, several workers filling one batch; the content of a
 * batch depends only on (seed, epoch, step, rank, world), never on the number of workers.
 * A sample that cannot be read or decoded stops the run with a message naming file and index. */
#ifndef DPT_DATA_LOADER_H
#define DPT_DATA_LOADER_H

#include <stddef.h>

#include "dpt/data/augment.h"
#include "dpt/data/dataset.h"

typedef struct loader_batch {
    float *x;   /* (batch, C, H, W) at the current output size, in the graph's layout */
    int32_t *y; /* (batch) */
    int n;      /* valid samples; the rest is zero padding (last evaluation batch) */
    int64_t step;
} loader_batch;

typedef struct loader_opts {
    int batch;   /* per-rank batch */
    int depth;   /* buffers in the ring (>= 2): up to depth - 1 batches are prepared ahead */
    int workers; /* threads (>= 1) */
    int max_h, max_w; /* largest output size the buffers must hold (progressive resizing) */
    /* Batch buffer memory (pinned host memory when a GPU back end provides it); NULL: aligned malloc. */
    void *(*alloc)(size_t bytes);
    void (*release)(void *p);
} loader_opts;

typedef struct dpt_loader dpt_loader;

dpt_loader *loader_create(const dpt_dataset *ds, const aug_params *aug, const loader_opts *o);
void loader_destroy(dpt_loader *l);
/* Output size of the following passes (<= max); only between passes. */
void loader_set_size(dpt_loader *l, int out_h, int out_w);
/* Training epoch: global batches [first_step, first_step + nsteps) of the (seed, epoch)
 * permutation, this rank's slice of each. */
void loader_start_train(dpt_loader *l, int64_t epoch, int64_t first_step, int64_t nsteps, int64_t global_batch,
                        int rank, int world);
/* Evaluation of samples [begin, end) in order. */
void loader_start_eval(dpt_loader *l, int64_t begin, int64_t end);
/* The next batch, or NULL when the pass is over. The batch stays valid until the next call. */
const loader_batch *loader_next(dpt_loader *l);
/* Abandons the current pass (early stop) and waits for the workers to be idle. */
void loader_stop(dpt_loader *l);
/* Seconds the consumer spent waiting for batches since the last call. */
double loader_take_wait_time(dpt_loader *l);
int loader_workers(const dpt_loader *l);

#endif
