/* The loader: a worker thread per rank prepares batches (gather, augment, normalise) into a ring
 * of buffers while the step runs, so the step does not wait on data in steady state. */
#ifndef DPT_DATA_LOADER_H
#define DPT_DATA_LOADER_H

#include "dpt/data/augment.h"
#include "dpt/data/dataset.h"

typedef struct loader_batch {
    float *x;   /* (batch, C, H, W) in the graph's layout */
    int32_t *y; /* (batch) */
    int n;      /* valid samples; the rest is zero padding (last evaluation batch) */
    int64_t step;
} loader_batch;

typedef struct dpt_loader dpt_loader;

/* batch: per-rank batch. depth: buffers in the ring (>= 2). */
dpt_loader *loader_create(const dpt_dataset *ds, int batch, const aug_params *aug, int depth);
void loader_destroy(dpt_loader *l);
/* Training epoch: global batches [first_step, first_step + nsteps) of the (seed, epoch)
 * permutation, this rank's slice of each. */
void loader_start_train(dpt_loader *l, int64_t epoch, int64_t first_step, int64_t nsteps, int64_t global_batch,
                        int rank, int world);
/* Evaluation of samples [begin, end) in order. */
void loader_start_eval(dpt_loader *l, int64_t begin, int64_t end);
/* The next batch, or NULL when the pass is over. The batch stays valid until the next call. */
const loader_batch *loader_next(dpt_loader *l);
/* Abandons the current pass (early stop) and waits for the worker to be idle. */
void loader_stop(dpt_loader *l);
/* Seconds the consumer spent waiting for batches since the last call. */
double loader_take_wait_time(dpt_loader *l);

#endif
