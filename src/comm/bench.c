/* dptrain bench allreduce over host buffers (MPI) or device buffers (NCCL, or MPI for device
 * memory; comm_device.h), in the manner of nccl-tests (comm.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/backend/backend.h"
#include "dpt/comm/comm.h"
#include "dpt/core/bf16.h"
#include "dpt/core/log.h"
#include "dpt/core/timer.h"

/* Rank r's element i, and the exact sum over the world: small integers, so every partial sum
 * is exact in float32 (up to 2^24) and bf16 (up to 256), whatever the order of summation. */
static float contribution(bool bf16, int r, int64_t i) {
    if (bf16) return r < 256 ? (float)((r + i) % 2) : 0.0f; /* sums <= 128 */
    return (float)((7 * (int64_t)r + i) % 13);              /* sums <= 12 * world */
}

static float expected(bool bf16, int world, int64_t i) {
    double sum = 0;
    for (int r = 0; r < world; r++) sum += contribution(bf16, r, i);
    return (float)sum;
}

static void sum(void *buf, int64_t count, const comm_bench_opts *o) {
    if (o->dev)
        o->dev_sum(buf, count, o->bf16);
    else if (o->bf16)
        comm_allreduce_sum_bf16(buf, count);
    else
        comm_allreduce_sum_f32(buf, count);
}

/* One in-place sum of the verification pattern (buf: the benchmark's buffer, host: host memory
 * of the same size, the same when the buffer is on the host); wrong elements on this rank. */
static int64_t verify(void *buf, void *host, int64_t count, const comm_bench_opts *o, const comm_info *ci) {
    const size_t bytes = (size_t)count * (o->bf16 ? 2 : 4);
    for (int64_t i = 0; i < count; i++) {
        float v = contribution(o->bf16, ci->rank, i);
        if (o->bf16)
            ((uint16_t *)host)[i] = f32_to_bf16(v);
        else
            ((float *)host)[i] = v;
    }
    if (o->dev) o->dev->copy_to_device(buf, host, bytes);
    sum(buf, count, o);
    if (o->dev) {
        o->dev->synchronize();
        o->dev->copy_to_host(host, buf, bytes);
    }
    if (ci->rank == o->corrupt_rank) {
        if (o->bf16)
            ((uint16_t *)host)[count - 1] ^= 0x0100u;
        else
            ((float *)host)[count - 1] += 1.0f;
    }
    int64_t wrong = 0;
    for (int64_t i = 0; i < count; i++) {
        float got = o->bf16 ? bf16_to_f32(((uint16_t *)host)[i]) : ((float *)host)[i];
        if (got != expected(o->bf16, ci->world, i)) wrong++;
    }
    return wrong;
}

int64_t comm_bench_allreduce(const comm_bench_opts *o) {
    const comm_info *ci = comm_get();
    const size_t elem = o->bf16 ? 2 : 4;
    const char *type = o->bf16 ? "bf16" : "float";
    int64_t max_count = (o->max_bytes + (int64_t)elem - 1) / (int64_t)elem;
    const size_t buf_bytes = (size_t)(max_count > 0 ? max_count : 1) * elem;
    void *host = dpt_xcalloc(buf_bytes, 1);
    void *buf = o->dev ? o->dev->mem_alloc(buf_bytes) : host;
    if (ci->rank == 0) {
        if (o->dev)
            printf("# dptrain bench allreduce: %d rank(s) on %d node(s), device buffers, %s, in place, %s sum\n",
                   ci->world, ci->num_nodes, o->transport, type);
        else
            printf("# dptrain bench allreduce: %d rank(s) on %d node(s), MPI (%s), host buffers, in place, %s sum\n",
                   ci->world, ci->num_nodes, ci->mpi_version, type);
        printf("# warm-up %d, %d timed iterations per size; time: the slowest rank's mean; busbw = algbw * 2(n-1)/n\n",
               o->warmup, o->iters);
        printf("#\n# %10s %12s %6s %10s %8s %8s %7s\n", "size", "count", "type", "time", "algbw", "busbw", "#wrong");
        printf("# %10s %12s %6s %10s %8s %8s %7s\n", "(B)", "(elements)", "", "(us)", "(GB/s)", "(GB/s)", "");
        fflush(stdout);
    }
    int64_t wrong_total = 0;
    double busbw_sum = 0;
    int sizes = 0;
    for (int64_t bytes = o->min_bytes; bytes <= o->max_bytes; bytes *= 2) {
        int64_t count = (bytes + (int64_t)elem - 1) / (int64_t)elem;
        /* timed on zeros: no growing values, no denormals */
        if (o->dev)
            o->dev->fill_zero(buf, (size_t)count * elem);
        else
            memset(buf, 0, (size_t)count * elem);
        for (int k = 0; k < o->warmup; k++) sum(buf, count, o);
        if (o->dev) o->dev->synchronize();
        comm_barrier();
        double t0 = timer_now();
        for (int k = 0; k < o->iters; k++) sum(buf, count, o); /* queued back to back on a device */
        if (o->dev) o->dev->synchronize();
        double t[1] = {(timer_now() - t0) / o->iters};
        comm_allreduce_max_f64(t, 1);
        int64_t wrong[1] = {verify(buf, host, count, o, ci)};
        comm_allreduce_sum_i64(wrong, 1);
        wrong_total += wrong[0];
        double algbw = (double)count * (double)elem / t[0] / 1e9;
        double busbw = algbw * 2.0 * (ci->world - 1) / ci->world;
        busbw_sum += busbw;
        sizes++;
        if (ci->rank == 0) {
            printf("  %10lld %12lld %6s %10.2f %8.3f %8.3f %7lld\n", (long long)(count * (int64_t)elem),
                   (long long)count, type, t[0] * 1e6, algbw, busbw, (long long)wrong[0]);
            fflush(stdout);
        }
        if (bytes > INT64_MAX / 2) break;
    }
    if (ci->rank == 0) {
        printf("# wrong elements: %lld%s\n", (long long)wrong_total,
               wrong_total ? " (RESULTS ARE WRONG)" : " (every size verified exactly)");
        printf("# average busbw over %d sizes: %.3f GB/s\n", sizes, sizes ? busbw_sum / sizes : 0.0);
    }
    if (o->dev) o->dev->mem_free(buf);
    free(host);
    return wrong_total;
}
