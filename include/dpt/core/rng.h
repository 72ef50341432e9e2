/* Counter-based randomness (Philox4x32-10, Salmon et al., SC'11). A random value is a pure
 * function of (seed, purpose, a, b): augmentation, shuffling and initialisation are then
 * independent of thread scheduling and rank count, and a resumed run replays exactly. */
#ifndef DPT_CORE_RNG_H
#define DPT_CORE_RNG_H

#include <math.h>

#include "dpt/core/common.h"

typedef enum rng_purpose {
    RNG_PARAM_INIT = 1, /* a = element index, b = hash of the parameter name */
    RNG_SHUFFLE = 2,    /* a = position / 4,  b = epoch */
    RNG_AUGMENT = 3,    /* a = sample index,  b = epoch */
    RNG_SYNTHETIC = 4,  /* a = element index, b = step (benchmarks) */
    RNG_TEST = 5,       /* tests */
    RNG_GAN_LATENT = 6, /* a = sample * dim_z + element (+ a retry count in bits 48..), b = draw */
    RNG_GAN_LABEL = 7,  /* a = sample, b = draw */
} rng_purpose;

DPT_HD static inline uint32_t rng_mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

DPT_HD static inline void philox4x32_10(const uint32_t ctr_in[4], const uint32_t key_in[2],
                                        uint32_t out[4]) {
    uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = rng_mulhilo(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = rng_mulhilo(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* Four independent 32-bit values for (seed, purpose, a, b). */
DPT_HD static inline void rng_block(uint64_t seed, uint32_t purpose, uint64_t a, uint32_t b,
                                    uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)a, (uint32_t)(a >> 32), b, purpose};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    philox4x32_10(ctr, key, out);
}

/* Uniform in [0, 1) with 24 bits. */
DPT_HD static inline float rng_u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* Uniform integer in [0, n) (multiply-shift; bias below 2^-32 * n, negligible for our n). */
DPT_HD static inline uint32_t rng_below(uint32_t x, uint32_t n) {
    return (uint32_t)(((uint64_t)x * (uint64_t)n) >> 32);
}

/* Standard normal from two 32-bit values (Box-Muller). */
DPT_HD static inline float rng_normal(uint32_t x0, uint32_t x1) {
    float u1 = ((float)(x0 >> 8) + 1.0f) * (1.0f / 16777217.0f); /* (0, 1] */
    float u2 = rng_u01(x1);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

/* FNV-1a, to key a random stream by a name (parameter initialisation). */
static inline uint32_t rng_hash_name(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

#endif
