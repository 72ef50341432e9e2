/* Philox4x32-10 known answers (Random123's kat_vectors) and the sampler's permutations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/rng.h"
#include "dpt/data/sampler.h"
#include "testutil.h"

static void kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4]) {
    uint32_t out[4];
    philox4x32_10(ctr, key, out);
    TU_CHECK(!memcmp(out, want, sizeof out), "philox got %08x %08x %08x %08x want %08x %08x %08x %08x", out[0],
             out[1], out[2], out[3], want[0], want[1], want[2], want[3]);
}

int main(void) {
    kat((uint32_t[4]){0, 0, 0, 0}, (uint32_t[2]){0, 0},
        (uint32_t[4]){0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    kat((uint32_t[4]){0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, (uint32_t[2]){0xffffffff, 0xffffffff},
        (uint32_t[4]){0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    kat((uint32_t[4]){0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, (uint32_t[2]){0xa4093822, 0x299f31d0},
        (uint32_t[4]){0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});

    /* Uniforms and normals have the right first moments. */
    double s = 0, s2 = 0, ns = 0, ns2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        uint32_t r[4];
        rng_block(7, RNG_TEST, (uint64_t)i, 3, r);
        double u = rng_u01(r[0]), z = rng_normal(r[1], r[2]);
        TU_CHECK(u >= 0.0 && u < 1.0, "u01 out of range: %g", u);
        s += u;
        s2 += u * u;
        ns += z;
        ns2 += z * z;
    }
    TU_CHECK(fabs(s / n - 0.5) < 0.005, "uniform mean %g", s / n);
    TU_CHECK(fabs(s2 / n - s / n * s / n - 1.0 / 12) < 0.002, "uniform variance");
    TU_CHECK(fabs(ns / n) < 0.01 && fabs(ns2 / n - 1.0) < 0.02, "normal moments %g %g", ns / n, ns2 / n);

    /* A permutation: every index once; a function of (seed, epoch) only. */
    const int64_t m = 1003;
    int64_t *p = malloc(m * sizeof *p), *q = malloc(m * sizeof *q), *seen = calloc(m, sizeof *seen);
    sampler_permutation(5, 2, m, p);
    for (int64_t i = 0; i < m; i++) seen[p[i]]++;
    bool once = true;
    for (int64_t i = 0; i < m; i++) once = once && seen[i] == 1;
    TU_CHECK(once, "not a permutation");
    sampler_permutation(5, 2, m, q);
    TU_CHECK(!memcmp(p, q, m * sizeof *p), "same (seed, epoch) gave another order");
    sampler_permutation(5, 3, m, q);
    int64_t same = 0;
    for (int64_t i = 0; i < m; i++) same += p[i] == q[i];
    TU_CHECK(same < 20, "epochs 2 and 3 agree in %lld places", (long long)same);
    sampler_permutation(6, 2, m, q);
    same = 0;
    for (int64_t i = 0; i < m; i++) same += p[i] == q[i];
    TU_CHECK(same < 20, "seeds 5 and 6 agree in %lld places", (long long)same);

    /* Rank slices of a global batch: disjoint, and together the batch, for any world size. */
    const int64_t gb = 24;
    for (int world = 1; world <= 8; world *= 2) {
        if (gb % world) continue;
        int64_t covered = 0;
        for (int r = 0; r < world; r++) {
            int64_t b = sampler_slice_begin(3, gb, r, world);
            TU_CHECK(b == 3 * gb + r * (gb / world), "slice begin world %d rank %d", world, r);
            covered += gb / world;
        }
        TU_CHECK(covered == gb, "world %d covers %lld of %lld", world, (long long)covered, (long long)gb);
    }
    /* Evaluation ranges cover [0, n) exactly once. */
    for (int world = 1; world <= 7; world++) {
        int64_t next = 0;
        for (int r = 0; r < world; r++) {
            int64_t b, e;
            sampler_eval_range(10001, r, world, &b, &e);
            TU_CHECK(b == next && e >= b, "eval range world %d rank %d [%lld, %lld)", world, r, (long long)b,
                     (long long)e);
            next = e;
        }
        TU_CHECK(next == 10001, "eval ranges of world %d end at %lld", world, (long long)next);
    }
    free(p);
    free(q);
    free(seen);
    return tu_finish("test_rng");
}
