/* Which samples each rank sees. Training: a permutation of the split that is a pure function of
 * (seed, epoch); global batch `step` is perm[step*B, (step+1)*B), and rank r takes the r-th
 * B/world slice of it, so 1 rank and N ranks see the same global batches. The last partial
 * global batch is dropped. Evaluation: rank r takes a contiguous range and every sample is
 * counted exactly once across ranks. */
#ifndef DPT_DATA_SAMPLER_H
#define DPT_DATA_SAMPLER_H

#include "dpt/core/common.h"

void sampler_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *perm);
static inline int64_t sampler_steps_per_epoch(int64_t n, int64_t global_batch) { return n / global_batch; }
/* The first index of rank's slice of global batch `step` inside the permutation. */
static inline int64_t sampler_slice_begin(int64_t step, int64_t global_batch, int rank, int world) {
    return step * global_batch + (int64_t)rank * (global_batch / world);
}
void sampler_eval_range(int64_t n, int rank, int world, int64_t *begin, int64_t *end);

#endif
