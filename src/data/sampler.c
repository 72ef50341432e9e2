#include "dpt/data/sampler.h"

#include "dpt/core/rng.h"

void sampler_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *perm) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    /* Fisher-Yates from the top, one Philox block per four positions. */
    uint32_t r[4];
    for (int64_t i = n - 1; i > 0; i--) {
        if (i == n - 1 || (i & 3) == 3) rng_block(seed, RNG_SHUFFLE, (uint64_t)(i >> 2), (uint32_t)epoch, r);
        int64_t j = (int64_t)rng_below(r[i & 3], (uint32_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void sampler_eval_range(int64_t n, int rank, int world, int64_t *begin, int64_t *end) {
    *begin = n * rank / world;
    *end = n * (rank + 1) / world;
}
