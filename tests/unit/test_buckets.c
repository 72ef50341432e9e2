/* Gradient buckets: every gradient in exactly one bucket, buckets contiguous, in the reverse of
 * the registration order, and at least bucket_bytes each (but the last). */
#include <stdlib.h>

#include "dpt/comm/comm.h"
#include "testutil.h"

static void check(const int64_t *numel, int n, size_t bucket_bytes) {
    size_t *off = malloc(n * sizeof *off);
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        off[i] = pos;
        pos += (size_t)((numel[i] * 4 + 63) / 64 * 64); /* arena alignment leaves gaps */
    }
    float *base = calloc(pos / 4 + 16, sizeof(float));
    comm_grad_sync *s = comm_grad_sync_create(base, off, numel, n, bucket_bytes, false);
    int nb = comm_grad_num_buckets(s);
    int *count = calloc(n, sizeof(int));
    int expect_last = n - 1;
    for (int b = 0; b < nb; b++) {
        int first, last;
        size_t begin, end;
        comm_grad_bucket_range(s, b, &first, &last, &begin, &end);
        TU_CHECK(last == expect_last && first <= last, "bucket %d covers [%d, %d], expected to end at %d", b, first,
                 last, expect_last);
        TU_CHECK(begin == off[first] && end == off[last] + (size_t)numel[last] * 4, "bucket %d byte range", b);
        size_t bytes = 0;
        for (int i = first; i <= last; i++) {
            count[i]++;
            bytes += (size_t)numel[i] * 4;
        }
        if (b < nb - 1) TU_CHECK(bytes >= bucket_bytes, "bucket %d holds %zu < %zu bytes", b, bytes, bucket_bytes);
        /* Closed as soon as it is full: without its first parameter it would be under the size. */
        TU_CHECK(bytes - (size_t)numel[first] * 4 < bucket_bytes || first == last, "bucket %d is larger than needed", b);
        expect_last = first - 1;
    }
    TU_CHECK(expect_last == -1, "buckets stop at parameter %d", expect_last);
    bool once = true;
    for (int i = 0; i < n; i++) once = once && count[i] == 1;
    TU_CHECK(once, "a gradient is in no bucket or in two");
    comm_grad_sync_destroy(s);
    free(count);
    free(base);
    free(off);
}

int main(void) {
    int64_t sizes[] = {144, 16, 16, 4608, 32, 32, 9216, 32, 32, 9216, 32, 32, 18432, 64, 64, 73728, 128, 128, 1280};
    int n = (int)DPT_ARRAY_LEN(sizes);
    check(sizes, n, 0);          /* one per parameter */
    check(sizes, n, 1);
    check(sizes, n, 40000);
    check(sizes, n, 100000);
    check(sizes, n, (size_t)1 << 30); /* one bucket */
    int64_t one[] = {10};
    check(one, 1, 100);
    return tu_finish("test_buckets");
}
